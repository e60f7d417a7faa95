"""Fixtures for relying-party tests: the provider on a loopback port, a user with profile claims, RP clients.

The provider is the real app served by uvicorn, its issuer its own address; outbound requests may reach
loopback, so back-channel logout tokens arrive at the RPs' receivers. The browser fixtures are the browser
tests' (Debian's Chromium, bounded timeouts).
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.db import admin
from oauth_service.runtime import Runtime
from tests.browser.conftest import (  # noqa: F401 - fixtures shared with the browser tests
    artifacts,
    browser,
    browser_context,
)
from tests.conftest import make_settings
from tests.factories import make_user
from tests.live_server import free_port, serve_in_thread

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
# OpenID Connect Core §5.1 claims the user holds; the RPs must receive exactly these by scope.
PROFILE = {
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "preferred_username": "ada",
    "picture": "https://example.com/ada.png",
    "locale": "en-GB",
    "zoneinfo": "Europe/London",
}


@dataclass(frozen=True, slots=True)
class Provider:
    """The running OpenID Provider; its issuer is its own address."""

    url: str


@pytest.fixture
def provider(db_url: str, database: AsyncEngine) -> Iterator[Provider]:
    """``create_app`` served on a free loopback port, allowed to POST logout tokens to loopback receivers."""
    port = free_port()
    settings = make_settings(
        db_url,
        issuer=f"http://127.0.0.1:{port}",
        outbound_allow_private_networks=True,
    )
    with serve_in_thread(create_app(settings), port, name="provider") as url:
        yield Provider(url)


@dataclass(frozen=True, slots=True)
class EndUser:
    """The user who signs in: their id (the ``sub``) and email."""

    subject: str
    email: str


async def make_end_user(runtime: Runtime, *, is_admin: bool = False) -> EndUser:
    """A user with a verified email and the standard profile claims, set as ``users update`` sets them."""
    user, _ = await make_user(
        runtime, email=EMAIL, password=PASSWORD, is_admin=is_admin
    )
    async with runtime.sessionmaker() as session:
        await admin.update_user(
            session,
            user_id=user.id,
            changes={"email_verified": True, **PROFILE},
            clock=runtime.clock,
        )
        await session.commit()
    return EndUser(subject=user.id, email=EMAIL)


async def register_rp(
    runtime: Runtime,
    *,
    client_id: str,
    rp_url: str,
    is_public: bool = False,
    backchannel: bool = True,
) -> str | None:
    """Register an RP as its operator would (the CLI's admin functions); return its secret, ``None`` if public.

    Redirect URI ``<rp>/callback``, post-logout redirect URI ``<rp>/logged-out``, back-channel logout URI
    ``<rp>/backchannel`` (with ``sid`` required), scopes ``openid profile email offline_access``.
    """
    async with runtime.sessionmaker() as session:
        _, secret = await admin.create_client(
            session,
            client_id=client_id,
            name=f"RP {client_id}",
            is_public=is_public,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(f"{rp_url}/callback",),
            scopes=("openid", "profile", "email", "offline_access"),
            post_logout_redirect_uris=(f"{rp_url}/logged-out",),
            backchannel_logout_uri=f"{rp_url}/backchannel" if backchannel else None,
            backchannel_logout_session_required=backchannel,
            clock=runtime.clock,
        )
        await session.commit()
    return secret


async def sign_in(page: Page) -> None:
    """Fill the provider's login page as the user would."""
    await page.wait_for_selector("form[action='/oauth/login']")
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def approve(page: Page) -> None:
    """Allow on the provider's consent page."""
    await page.wait_for_selector("form[action='/oauth/consent']")
    await page.get_by_role("button", name="Allow").click()
