"""Authlib's OpenID Connect client, driven as its docs drive it, signs a user in through Chromium and out again.

Discovery → code + PKCE (S256) + nonce → login and consent pages → ID token validated by Authlib (JWKS
signature, iss, aud, exp, nonce, at_hash) → UserInfo → refresh (same sub and auth_time, no nonce) →
RP-initiated logout back to the RP with its state → a back-channel logout token the RP validates → a silent
``prompt=none`` sign-in then answers ``login_required``.
"""

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import BrowserContext, Page

from oauth_service.runtime import Runtime
from tests.live_server import free_port, serve_in_thread
from tests.rp.authlib_app import BACKCHANNEL_EVENT, RpLog, build_rp
from tests.rp.conftest import (
    EMAIL,
    PROFILE,
    Provider,
    approve,
    make_end_user,
    register_rp,
    sign_in,
)

pytestmark = pytest.mark.browser

CLIENT_ID = "authlib-rp"
ID_TOKEN_CLAIMS = {
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "amr",
    "sid",
}
BACKCHANNEL_WAIT = 5.0


async def _status(page: Page, rp_url: str, path: str) -> str:
    await page.wait_for_url(f"{rp_url}{path}**")
    return await page.inner_text("#status")


async def _logout_tokens(log: RpLog) -> list[dict[str, Any]]:
    """The validated logout tokens, once the receiver was called or the bounded wait is over."""
    await asyncio.to_thread(log.backchannel_called.wait, BACKCHANNEL_WAIT)
    return log.logout_tokens


async def test_authlib_rp_end_to_end(
    provider: Provider, runtime: Runtime, browser_context: BrowserContext
) -> None:
    user = await make_end_user(runtime)
    rp_port = free_port()
    rp_url = f"http://127.0.0.1:{rp_port}"
    secret = await register_rp(runtime, client_id=CLIENT_ID, rp_url=rp_url)
    assert secret is not None
    log = RpLog()
    app = build_rp(
        issuer=provider.url,
        base_url=rp_url,
        client_id=CLIENT_ID,
        client_secret=secret,
        log=log,
    )
    with serve_in_thread(app, rp_port, name="authlib-rp"):
        page = await browser_context.new_page()

        # Sign-in: Authlib builds the request from discovery (PKCE S256, nonce, state) and validates the reply.
        await page.goto(f"{rp_url}/login")
        await sign_in(page)
        await approve(page)
        assert await _status(page, rp_url, "/callback") == "signed in", log.steps
        signed_in = log.steps["callback"]
        token, id_claims = signed_in["token"], signed_in["id_token_claims"]
        assert set(token) == {
            "access_token",
            "token_type",
            "expires_in",
            "expires_at",
            "refresh_token",
            "id_token",
            "scope",
            "userinfo",
        }
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "email offline_access openid profile"
        assert set(id_claims) == ID_TOKEN_CLAIMS
        assert id_claims["iss"] == provider.url
        assert id_claims["sub"] == user.subject
        assert id_claims["aud"] == CLIENT_ID
        assert id_claims["amr"] == ["pwd"]
        assert id_claims["exp"] > id_claims["iat"] >= id_claims["auth_time"]

        # UserInfo: the same subject, and exactly the claims profile and email release.
        userinfo = log.steps["userinfo"]
        assert isinstance(userinfo.get("updated_at"), int), userinfo
        assert userinfo == {
            "sub": user.subject,
            "email": EMAIL,
            "email_verified": True,
            **PROFILE,
            "updated_at": userinfo["updated_at"],
        }

        # Refresh: a new ID token for the same authentication, without the nonce (OIDC Core §12.2).
        refresh = log.steps["refresh"]
        assert "error" not in refresh, refresh
        refreshed = refresh["id_token_claims"]
        assert set(refreshed) == ID_TOKEN_CLAIMS - {"nonce"}
        assert refreshed["sub"] == id_claims["sub"]
        assert refreshed["auth_time"] == id_claims["auth_time"]
        assert refreshed["sid"] == id_claims["sid"]
        assert refresh["token"]["refresh_token"] != token["refresh_token"]

        # RP-initiated logout: the provider returns to the registered URI with the RP's state.
        await page.goto(f"{rp_url}/logout")
        assert await _status(page, rp_url, "/logged-out") == "signed out", log.steps
        sent = parse_qs(urlsplit(log.steps["logout"]["location"]).query)
        assert set(sent) == {"id_token_hint", "post_logout_redirect_uri", "state"}
        assert log.steps["logged_out"]["state"] == sent["state"][0]

        # Back-channel logout: one token for this session, validated by the RP (signature, iss, aud, events).
        tokens = await _logout_tokens(log)
        assert log.backchannel_errors == []
        assert len(tokens) == 1, tokens
        header, claims = tokens[0]["header"], tokens[0]["claims"]
        assert header["typ"] == "logout+jwt"
        assert set(claims) == {
            "iss",
            "aud",
            "iat",
            "exp",
            "jti",
            "events",
            "sub",
            "sid",
        }
        assert claims["events"] == {BACKCHANNEL_EVENT: {}}
        assert claims["sid"] == id_claims["sid"]
        assert claims["sub"] == user.subject

        # The provider session is gone: a silent sign-in is refused with login_required.
        await page.goto(f"{rp_url}/login?prompt=none")
        assert (await _status(page, rp_url, "/callback")).startswith("sign-in failed")
        assert log.steps["callback"]["error"] == "login_required"
