"""Chromium drives the real pages of a live server: code + PKCE, deny, remembered consent, prompt=login, implicit.

The "client app" is a tiny loopback HTTP server (``http://127.0.0.1/callback`` registered, its ephemeral port used,
RFC 8252 §7.3), so the redirect is observed exactly as a native app would see it.
"""

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from jose import jwt
from playwright.async_api import BrowserContext, Page

from oauth_service.runtime import Runtime
from tests.authorization_helpers import new_pkce
from tests.browser.conftest import LiveServer
from tests.factories import make_client, make_user

pytestmark = pytest.mark.browser

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


class ClientApp:
    """The native app's loopback callback; the page URL after the redirect keeps query and fragment."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri

    async def wait(self, page: Page) -> dict[str, str]:
        await page.wait_for_url(self.redirect_uri + "**")
        parts = urlsplit(page.url)
        raw = parts.fragment or parts.query
        return {k: v[0] for k, v in parse_qs(raw).items()}


@pytest.fixture
def client_app(callback_server: str) -> ClientApp:
    return ClientApp(callback_server)


async def _setup(runtime: Runtime, *, grant: str = "authorization_code") -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    grants = (
        ("authorization_code", "refresh_token")
        if grant == "authorization_code"
        else ("implicit",)
    )
    await make_client(
        runtime,
        client_id="native",
        name="Native Notes",
        is_public=True,
        grant_types=grants,
        redirect_uris=("http://127.0.0.1/callback",),
        scopes=("read", "write"),
    )


def _authorize(server: LiveServer, client_app: ClientApp, **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": "native",
        "redirect_uri": client_app.redirect_uri,
        "scope": "read write",
        "state": "browser-state",
    } | params
    return f"{server.url}/oauth/authorize?{urlencode(query)}"


async def _login(page: Page, artifacts: Path | None = None) -> None:
    await page.wait_for_selector("form[action='/oauth/login']")
    if artifacts is not None:
        await page.screenshot(path=str(artifacts / "login.png"), full_page=True)
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def _consent(page: Page, decision: str, artifacts: Path | None = None) -> None:
    await page.wait_for_selector("form[action='/oauth/consent']")
    if artifacts is not None:
        await page.screenshot(path=str(artifacts / "consent.png"), full_page=True)
    await page.get_by_role("button", name=decision).click()


async def test_browser_code_flow_with_pkce_reaches_protected_api(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    client_app: ClientApp,
    artifacts: Path,
) -> None:
    await _setup(runtime)
    verifier, challenge = new_pkce()
    page = await browser_context.new_page()
    await page.goto(
        _authorize(
            live_server,
            client_app,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    await _login(page, artifacts)
    assert "Native Notes" in await page.content()
    assert "Read your data" in await page.inner_text("ul.scopes")
    await _consent(page, "Allow", artifacts)
    result = await client_app.wait(page)
    assert result["state"] == "browser-state"
    assert result["iss"] == live_server.url
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        token = await http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": result["code"],
                "redirect_uri": client_app.redirect_uri,
                "client_id": "native",
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
        body = token.json()
        jwks = (await http.get("/.well-known/jwks.json")).json()
        claims = jwt.decode(
            body["access_token"],
            jwks,
            algorithms=["RS256", "ES256"],
            audience=live_server.url,
            issuer=live_server.url,
        )
        me = await http.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
    assert claims["client_id"] == "native"
    assert claims["scope"] == "read write"
    assert me.status_code == 200
    assert me.json()["email"] == EMAIL


async def test_browser_deny_returns_access_denied(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    client_app: ClientApp,
) -> None:
    await _setup(runtime)
    _verifier, challenge = new_pkce()
    page = await browser_context.new_page()
    await page.goto(
        _authorize(
            live_server,
            client_app,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    await _login(page)
    await _consent(page, "Deny")
    assert await client_app.wait(page) == {
        "error": "access_denied",
        "error_description": "The resource owner denied the request.",
        "state": "browser-state",
        "iss": live_server.url,
    }


async def test_browser_remembered_consent_and_prompt_login(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    client_app: ClientApp,
) -> None:
    await _setup(runtime)
    page = await browser_context.new_page()
    _verifier, challenge = new_pkce()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    await page.goto(_authorize(live_server, client_app, **pkce))
    await _login(page)
    await _consent(page, "Allow")
    assert "code" in await client_app.wait(page)

    # Signed in and consent remembered: straight back to the app, no page in between.
    await page.goto(_authorize(live_server, client_app, state="second", **pkce))
    second = await client_app.wait(page)
    assert second["state"] == "second"
    assert "code" in second

    # prompt=login: the password is asked again, then no consent page (it is remembered).
    await page.goto(
        _authorize(live_server, client_app, state="third", prompt="login", **pkce)
    )
    await _login(page)
    third = await client_app.wait(page)
    assert third["state"] == "third"
    assert "code" in third


async def test_browser_implicit_flow_returns_token_in_fragment(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    client_app: ClientApp,
) -> None:
    await _setup(runtime, grant="implicit")
    page = await browser_context.new_page()
    await page.goto(
        _authorize(live_server, client_app, response_type="token", scope="read")
    )
    await _login(page)
    await _consent(page, "Allow")
    result = await client_app.wait(page)
    assert urlsplit(page.url).query == ""
    assert set(result) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "state",
        "iss",
    }
    assert (result["token_type"], result["scope"], result["state"]) == (
        "Bearer",
        "read",
        "browser-state",
    )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        me = await http.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {result['access_token']}"}
        )
    assert me.status_code == 200


async def test_browser_authlib_client_completes_code_flow_with_pkce(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    client_app: ClientApp,
) -> None:
    """A strict third-party client (Authlib) builds the request, checks ``state`` and redeems the code."""
    await _setup(runtime)
    session = OAuth2Session(
        client_id="native",
        redirect_uri=client_app.redirect_uri,
        scope="read write",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    url, state = session.create_authorization_url(
        f"{live_server.url}/oauth/authorize", code_verifier=verifier
    )
    page = await browser_context.new_page()
    await page.goto(url)
    await _login(page)
    await _consent(page, "Allow")
    result = await client_app.wait(page)
    assert (result["state"], result["iss"]) == (state, live_server.url)
    token = await asyncio.to_thread(
        session.fetch_token,
        f"{live_server.url}/oauth/token",
        authorization_response=page.url,
        code_verifier=verifier,
    )
    assert (token["token_type"], token["scope"]) == ("Bearer", "read write")
    assert "refresh_token" in token
    me = await asyncio.to_thread(session.get, f"{live_server.url}/api/v1/me")
    assert me.status_code == 200
    assert me.json()["client_id"] == "native"
    session.close()
