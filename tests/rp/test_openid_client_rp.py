"""openid-client (panva, an OpenID Certified relying party) signs a user in through Chromium and out again.

``tests/rp/node/rp.mjs`` is written from the library's README: discovery, code + PKCE + nonce + state,
``authorizationCodeGrant`` (ID token signature, iss, aud, exp, nonce), ``fetchUserInfo`` (same ``sub``),
``refreshTokenGrant`` and ``buildEndSessionUrl``. The client is public (``token_endpoint_auth_method`` none),
the other case from the Authlib test. Node.js and the locked packages come from ``make tools``.
"""

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import BrowserContext, Page

from oauth_service.runtime import Runtime
from tests.live_server import free_port
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

NODE_RP = Path(__file__).resolve().parent / "node"
CLIENT_ID = "openid-client-rp"
START_TIMEOUT = 15.0
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


def node_executable() -> str:
    """Node.js and the RP's locked packages, or a failure that says what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "no Node.js for the openid-client RP test; run: apt-get install nodejs npm, then make tools",
            pytrace=False,
        )
    if not (NODE_RP / "node_modules" / "openid-client").is_dir():
        pytest.fail(
            "openid-client is not installed in tests/rp/node; run: make tools",
            pytrace=False,
        )
    return node


@asynccontextmanager
async def node_rp(issuer: str, port: int, secret: str | None) -> AsyncIterator[str]:
    """Run ``node rp.mjs`` until it prints ``listening``; yield its base URL; stop it on exit."""
    env = os.environ | {
        "RP_ISSUER": issuer,
        "RP_CLIENT_ID": CLIENT_ID,
        "RP_PORT": str(port),
    }
    if secret is not None:
        env["RP_CLIENT_SECRET"] = secret
    process = await asyncio.create_subprocess_exec(
        node_executable(),
        "rp.mjs",
        cwd=NODE_RP,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if line.strip() != b"listening":
            process.kill()
            error = (await process.stderr.read()).decode(errors="replace")
            pytest.fail(f"rp.mjs did not start: {error.strip()}", pytrace=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def _result(page: Page, url: str) -> dict[str, Any]:
    await page.wait_for_url(f"{url}**")
    outcome: dict[str, Any] = json.loads(await page.inner_text("#result"))
    return outcome


async def test_openid_client_rp_end_to_end(
    provider: Provider, runtime: Runtime, browser_context: BrowserContext
) -> None:
    user = await make_end_user(runtime)
    port = free_port()
    rp_url = f"http://127.0.0.1:{port}"
    secret = await register_rp(
        runtime, client_id=CLIENT_ID, rp_url=rp_url, is_public=True, backchannel=False
    )
    async with node_rp(provider.url, port, secret):
        page = await browser_context.new_page()
        await page.goto(f"{rp_url}/login")
        await sign_in(page)
        await approve(page)
        steps = await _result(page, f"{rp_url}/callback")
        assert "failed" not in steps, steps

        token, claims = steps["code"]["token"], steps["code"]["claims"]
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "email offline_access openid profile"
        assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(token)
        assert set(claims) == ID_TOKEN_CLAIMS
        assert claims["iss"] == provider.url
        assert claims["sub"] == user.subject
        assert claims["aud"] == CLIENT_ID
        assert claims["amr"] == ["pwd"]

        userinfo = steps["userinfo"]
        assert userinfo == {
            "sub": user.subject,
            "email": EMAIL,
            "email_verified": True,
            **PROFILE,
            "updated_at": userinfo.get("updated_at"),
        }
        assert isinstance(userinfo["updated_at"], int)

        refreshed = steps["refresh"]["claims"]
        assert set(refreshed) == ID_TOKEN_CLAIMS - {"nonce"}
        assert refreshed["sub"] == claims["sub"]
        assert refreshed["auth_time"] == claims["auth_time"]
        assert steps["refresh"]["token"]["refresh_token"] != token["refresh_token"]

        # RP-initiated logout: the browser follows the library's end-session URL back to the RP.
        logout = steps["logout"]
        sent = parse_qs(urlsplit(logout["url"]).query)
        assert logout["url"].startswith(f"{provider.url}/oauth/logout?")
        assert set(sent) == {
            "client_id",
            "id_token_hint",
            "post_logout_redirect_uri",
            "state",
        }
        await page.goto(logout["url"])
        landed = await _result(page, f"{rp_url}/logged-out")
        assert landed == {"state": logout["state"], "matches": True}

        # The provider session is gone: a silent sign-in is refused with login_required.
        await page.goto(f"{rp_url}/login?prompt=none")
        refused = await _result(page, f"{rp_url}/callback")
        assert refused["failed"]["error"] == "login_required", refused
