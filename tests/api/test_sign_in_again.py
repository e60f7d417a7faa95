"""Signing in again in the same browser (``prompt=login``, ``max_age``, another account).

The same user continues the browser session: a new cookie secret (no fixation) but the same ``sid``, so the
clients answered in it stay bound to it and a later logout still tells them (Back-Channel Logout 1.0 §2.5).
Another user replaces the session: the first user's session ends as a logout does, and its clients are told.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.db.tables import LoginSessionRow
from oauth_service.oauth.models import User
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
)
from tests.backchannel_receiver import (
    Receiver,
    running_receiver,
    verified_logout_token,
)
from tests.conftest import ISSUER, make_settings
from tests.factories import make_user
from tests.logout_helpers import (
    add_refresh_token,
    make_logout_client,
    refresh_revoked_at,
    session_sid,
)


@pytest.fixture
async def app(db_url: str, database: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The app, allowed to reach the loopback receiver."""
    application = create_app(
        make_settings(db_url, outbound_allow_private_networks=True)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
async def rp(runtime: Runtime, receiver: Receiver) -> str:
    await make_logout_client(runtime, "rp", backchannel_logout_uri=receiver.url)
    return "rp"


async def _sign_in(
    http: httpx.AsyncClient, user: User, password: str, *, prompt: str | None = None
) -> None:
    _, challenge = new_pkce()
    params = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if prompt is not None:
        params["prompt"] = prompt
    response = await authorize_through_pages(
        http, authorize_url(**params), email=user.email, password=password
    )
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"].startswith(CALLBACK)


async def _session_count(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(LoginSessionRow))
    return int(count or 0)


async def _eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_same_user_signing_in_again_keeps_the_session_sid(
    client: httpx.AsyncClient, runtime: Runtime, rp: str, receiver: Receiver
) -> None:
    alice, password = await make_user(runtime, email="alice@example.com")
    await _sign_in(client, alice, password)
    first_cookie = client.cookies.get("oauth_session")
    sid = await session_sid(runtime, alice.id)
    await _sign_in(client, alice, password, prompt="login")
    assert client.cookies.get("oauth_session") != first_cookie  # no fixation
    assert await session_sid(runtime, alice.id) == sid
    assert await _session_count(runtime) == 1
    await asyncio.sleep(0.2)
    assert receiver.received == []


async def test_another_user_signing_in_ends_the_first_session_and_tells_its_clients(
    client: httpx.AsyncClient, runtime: Runtime, rp: str, receiver: Receiver
) -> None:
    alice, alice_password = await make_user(runtime, email="alice@example.com")
    bob, bob_password = await make_user(runtime, email="bob@example.com")
    await _sign_in(client, alice, alice_password)
    sid = await session_sid(runtime, alice.id)
    online, _ = await add_refresh_token(
        runtime, client_id="rp", user_id=alice.id, sid=sid, scope="openid"
    )
    await _sign_in(client, bob, bob_password, prompt="login")
    assert await _session_count(runtime) == 1
    assert await session_sid(runtime, bob.id) != sid
    assert await refresh_revoked_at(runtime, online) is not None
    await _eventually(lambda: len(receiver.received) == 1)
    _, claims = verified_logout_token(
        receiver.tokens()[0], runtime.keys.jwks(), issuer=ISSUER, client_id="rp"
    )
    assert (claims["sub"], claims["sid"]) == (alice.id, sid)
