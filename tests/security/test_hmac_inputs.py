"""Attacker-supplied values compared against an HMAC never become a 500 (non-ASCII, any length).

``hmac.compare_digest`` raises ``TypeError`` for a ``str`` with a character outside ASCII, so every comparison of
a cookie, CSRF token or cursor against its MAC goes through bytes: a non-ASCII value is simply a wrong one.
"""

import httpx
import pytest
from fastapi import FastAPI

from oauth_service.runtime import Runtime
from tests.api.test_authorize import EMAIL, PASSWORD, code_client, code_url
from tests.authorization_helpers import hidden, submit_login
from tests.bearer import access_token, bearer
from tests.conftest import ISSUER
from tests.factories import make_user

# What a browser may send: UTF-8 bytes, which Starlette reads as Latin-1 text (all outside ASCII).
NON_ASCII = ["\u00e9", "\u2004", "\U0001f600", "a" * 43 + "\u00e9"]
EXPIRED = "The form expired. Go back and try again."


def _browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)


def _cookie(name: str, value: str) -> dict[bytes, bytes]:
    return {b"cookie": f"{name}={value}".encode()}


@pytest.mark.parametrize("value", NON_ASCII, ids=ascii)
@pytest.mark.parametrize("mac_only", [True, False], ids=["mac", "both"])
async def test_session_cookie_with_non_ascii_is_no_session(
    app: FastAPI, runtime: Runtime, value: str, mac_only: bool
) -> None:
    await code_client(runtime)
    cookie = f"sessionid.{value}" if mac_only else f"{value}.{value}"
    async with _browser(app) as browser:
        response = await browser.get(
            code_url(), headers=_cookie("oauth_session", cookie)
        )
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith("/oauth/login?request=")


@pytest.mark.parametrize("value", NON_ASCII, ids=ascii)
async def test_browser_cookie_with_non_ascii_is_replaced(
    app: FastAPI, runtime: Runtime, value: str
) -> None:
    await code_client(runtime)
    async with _browser(app) as browser:
        login = (await browser.get(code_url())).headers["location"]
        response = await browser.get(
            login, headers=_cookie("oauth_browser", f"id.{value}")
        )
    assert response.status_code == 200, response.text
    assert "oauth_browser=" in response.headers["set-cookie"]


@pytest.mark.parametrize("value", NON_ASCII, ids=ascii)
async def test_login_with_non_ascii_csrf_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, value: str
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    login = (await client.get(code_url())).headers["location"]
    page = await client.get(login)
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": value,
        "email": EMAIL,
        "password": PASSWORD,
    }
    response = await client.post("/oauth/login", data=form)
    assert response.status_code == 400, response.text
    assert EXPIRED in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("value", NON_ASCII, ids=ascii)
async def test_consent_with_non_ascii_csrf_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, value: str
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    login = (await client.get(code_url())).headers["location"]
    signed_in = await submit_login(client, login, EMAIL, PASSWORD)
    assert signed_in.status_code == 303, signed_in.text
    page = await client.get(signed_in.headers["location"])
    assert page.status_code == 200, page.text
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": value,
        "decision": "approve",
    }
    response = await client.post("/oauth/consent", data=form)
    assert response.status_code == 400, response.text
    assert EXPIRED in response.text


@pytest.mark.parametrize(
    "cursor", ["eg.\u00e9", "\u00e9.\u00e9", "\u00e9", "eg." + "A" * 42 + "\u00e9"]
)
async def test_admin_cursor_with_non_ascii_is_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime, cursor: str
) -> None:
    admin, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    headers = bearer(access_token(runtime, subject=admin.id, scope="admin"))
    response = await client.get(
        "/admin/users", params={"cursor": cursor}, headers=headers
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The cursor is invalid.",
    }
    assert response.headers["cache-control"] == "no-store"
