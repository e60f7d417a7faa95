"""Login CSRF: a cross-site page cannot sign a victim's browser into the attacker's account.

Anyone can start an authorization request and read its login form, so a CSRF token bound only to the pending
request would let an attacker replay their own form (with their own credentials) from the victim's browser.
The token is also bound to a signed browser-id cookie the login page sets (SameSite=Lax: a cross-site POST does
not carry it). Under an https issuer both cookies are ``__Host-`` prefixed, so a same-site sibling subdomain
cannot plant its own (cookie tossing).
"""

import httpx
from fastapi import FastAPI

from oauth_service.runtime import Runtime
from tests.api.test_authorize import EMAIL, PASSWORD, code_client, code_url
from tests.authorization_helpers import hidden, submit_login
from tests.conftest import ISSUER
from tests.factories import make_user
from tests.security.conftest import AppFactory


def _browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)


async def _attacker_form(http: httpx.AsyncClient) -> dict[str, str]:
    """The attacker starts a request in their own browser and copies the login form, credentials filled in."""
    start = await http.get(code_url())
    page = await http.get(start.headers["location"])
    assert page.status_code == 200
    return {
        "request": hidden(page.text, "request"),
        "csrf_token": hidden(page.text, "csrf_token"),
        "email": EMAIL,
        "password": PASSWORD,
    }


async def test_login_form_replayed_from_another_browser_is_refused(
    app: FastAPI, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    async with _browser(app) as attacker, _browser(app) as victim:
        form = await _attacker_form(attacker)
        response = await victim.post("/oauth/login", data=form)
    assert response.status_code == 400
    assert "The form expired." in response.text
    assert "set-cookie" not in response.headers


async def test_login_form_with_another_browsers_cookie_is_refused(
    app: FastAPI, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    async with _browser(app) as attacker, _browser(app) as victim:
        form = await _attacker_form(attacker)
        await victim.get(code_url())
        victim_page = await victim.get(
            f"/oauth/login?request={form['request']}"
        )  # the victim's browser now holds its own browser id
        assert victim_page.status_code == 200
        response = await victim.post("/oauth/login", data=form)
    assert response.status_code == 400
    assert "The form expired." in response.text
    assert "set-cookie" not in response.headers


async def test_login_page_sets_signed_browser_cookie_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url())
    first = await client.get(start.headers["location"])
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("oauth_browser=")
    for attribute in ("HttpOnly", "Path=/oauth", "SameSite=lax"):
        assert attribute in cookie
    second = await client.get(start.headers["location"])
    assert "set-cookie" not in second.headers
    response = await submit_login(client, start.headers["location"], EMAIL, PASSWORD)
    assert response.status_code == 303
    assert response.headers["set-cookie"].startswith("oauth_session=")


HTTPS_ISSUER = "https://oauth.test"


def _https_browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=HTTPS_ISSUER
    )


def _attributes(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


async def test_https_issuer_cookies_take_the_host_prefix(
    make_app: AppFactory,
) -> None:
    app = await make_app(issuer=HTTPS_ISSUER, cookie_secure=None)
    runtime: Runtime = app.state.runtime
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    async with _https_browser(app) as browser:
        start = await browser.get(code_url())
        page = await browser.get(start.headers["location"])
        browser_cookie = page.headers["set-cookie"]
        assert browser_cookie.startswith("__Host-oauth_browser=")
        # What a browser demands of __Host- (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain.
        assert _attributes(browser_cookie) == {
            "httponly",
            "path=/",
            "samesite=lax",
            "secure",
        }
        signed_in = await submit_login(
            browser, start.headers["location"], EMAIL, PASSWORD
        )
        assert signed_in.status_code == 303, signed_in.text
        session_cookie = signed_in.headers["set-cookie"]
        assert session_cookie.startswith("__Host-oauth_session=")
        assert {"secure", "path=/", "httponly", "samesite=lax"} <= _attributes(
            session_cookie
        )
        assert not any(a.startswith("domain") for a in _attributes(session_cookie))
        consent = await browser.get(signed_in.headers["location"])
        assert consent.status_code == 200, consent.text
        assert 'action="/oauth/consent"' in consent.text


async def test_https_issuer_ignores_unprefixed_cookies(make_app: AppFactory) -> None:
    """A sibling subdomain can set ``oauth_session`` for the parent domain, never ``__Host-oauth_session``."""
    app = await make_app(issuer=HTTPS_ISSUER, cookie_secure=None)
    runtime: Runtime = app.state.runtime
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    async with _https_browser(app) as attacker:
        start = await attacker.get(code_url())
        signed_in = await submit_login(
            attacker, start.headers["location"], EMAIL, PASSWORD
        )
        assert signed_in.status_code == 303
        planted = attacker.cookies["__Host-oauth_session"]
    async with _https_browser(app) as victim:
        victim.cookies.set("oauth_session", planted, domain="oauth.test", path="/")
        response = await victim.get(code_url())
    assert response.status_code == 302
    assert response.headers["location"].startswith("/oauth/login?request=")
