"""Refresh rotation journeys: the optional grace window, and concurrent rotation on Postgres (RFC 9700 §4.14.2)."""

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.crypto.tokens import token_hash
from oauth_service.runtime import Runtime
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client, make_user, peak_checkouts
from tests.fakes import FixedClock

TOKEN = "/oauth/token"
BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "The refresh token is invalid, expired or revoked.",
}


@pytest.fixture
async def grace_app(db_url: str, database: AsyncEngine) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(db_url, refresh_grace_seconds=30))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def grace_client(grace_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=grace_app), base_url=ISSUER
    ) as http:
        yield http


class Session:
    """A confidential client that logged a user in with the password grant."""

    def __init__(
        self, http: httpx.AsyncClient, headers: dict[str, str], refresh_token: str
    ) -> None:
        self.http = http
        self.headers = headers
        self.refresh_token = refresh_token

    async def refresh(self, token: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": token}
        return await self.http.post(TOKEN, data=form, headers=self.headers)

    async def new_token(self, token: str) -> str:
        response = await self.refresh(token)
        assert response.status_code == 200, response.text
        value: str = response.json()["refresh_token"]
        return value


async def _login(http: httpx.AsyncClient, runtime: Runtime) -> Session:
    client, secret = await make_client(
        runtime, grant_types=("password", "refresh_token")
    )
    user, password = await make_user(runtime)
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    form = {"grant_type": "password", "email": user.email, "password": password}
    response = await http.post(TOKEN, data=form, headers=headers)
    assert response.status_code == 200, response.text
    return Session(http, headers, response.json()["refresh_token"])


async def _family_state(engine: AsyncEngine, token: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        family = await conn.scalar(
            text("SELECT family_id FROM refresh_tokens WHERE token_hash = :h"),
            {"h": token_hash(token)},
        )
        rows = await conn.execute(
            text(
                "SELECT id, parent_id, rotated_at, revoked_at FROM refresh_tokens WHERE family_id = :f"
            ),
            {"f": family},
        )
        return [dict(row._mapping) for row in rows]


def _live(rows: list[dict[str, Any]]) -> int:
    return sum(
        1 for row in rows if row["rotated_at"] is None and row["revoked_at"] is None
    )


async def test_refresh_grace_lost_response_retry_gets_fresh_pair_once(
    grace_client: httpx.AsyncClient, grace_app: FastAPI, database: AsyncEngine
) -> None:
    runtime: Runtime = grace_app.state.runtime
    session = await _login(grace_client, runtime)
    clock = FixedClock(runtime.clock())
    runtime.clock = clock
    lost = await session.new_token(
        session.refresh_token
    )  # the client never saw this response
    clock.advance(seconds=10)
    retried = await session.new_token(session.refresh_token)
    assert retried != lost
    assert _live(await _family_state(database, retried)) == 1
    # The lost successor was revoked, so there is one live branch; using it now is simply refused.
    response = await session.refresh(lost)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)
    rows = await _family_state(database, retried)
    assert _live(rows) == 1
    # The retried branch carries on normally.
    following = await session.new_token(retried)
    assert _live(await _family_state(database, following)) == 1


@pytest.mark.postgres
async def test_refresh_grace_retry_holds_one_pooled_connection_at_a_time(
    grace_client: httpx.AsyncClient, grace_app: FastAPI
) -> None:
    """The retry reads the token, then its successor, then replaces it in a transaction of its own: each step
    gives the previous connection back. Holding one while waiting for the next, a pool's worth of concurrent
    retries would each wait for the pool until it timed out (503 for every request of the worker)."""
    runtime: Runtime = grace_app.state.runtime
    session = await _login(grace_client, runtime)
    await session.new_token(session.refresh_token)  # its response was lost
    with peak_checkouts(runtime) as peak:
        retried = await session.refresh(session.refresh_token)
    assert retried.status_code == 200, retried.text
    assert peak == [1]


async def test_refresh_grace_reuse_after_successor_used_revokes_family(
    grace_client: httpx.AsyncClient, grace_app: FastAPI, database: AsyncEngine
) -> None:
    runtime: Runtime = grace_app.state.runtime
    session = await _login(grace_client, runtime)
    clock = FixedClock(runtime.clock())
    runtime.clock = clock
    successor = await session.new_token(session.refresh_token)
    newest = await session.new_token(successor)
    clock.advance(seconds=5)
    response = await session.refresh(session.refresh_token)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)
    assert _live(await _family_state(database, newest)) == 0
    response = await session.refresh(newest)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)


async def test_refresh_grace_window_elapsed_reuse_revokes_family(
    grace_client: httpx.AsyncClient, grace_app: FastAPI, database: AsyncEngine
) -> None:
    runtime: Runtime = grace_app.state.runtime
    session = await _login(grace_client, runtime)
    clock = FixedClock(runtime.clock())
    runtime.clock = clock
    successor = await session.new_token(session.refresh_token)
    clock.advance(seconds=31)
    response = await session.refresh(session.refresh_token)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)
    assert _live(await _family_state(database, successor)) == 0


async def test_refresh_without_grace_immediate_retry_revokes_family(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    session = await _login(client, runtime)
    successor = await session.new_token(session.refresh_token)
    response = await session.refresh(session.refresh_token)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)
    assert _live(await _family_state(database, successor)) == 0


@pytest.mark.postgres
async def test_refresh_concurrent_rotation_has_exactly_one_winner(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine, db_url: str
) -> None:
    session = await _login(client, runtime)
    responses = await asyncio.gather(
        *(session.refresh(session.refresh_token) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 19
    assert all(r.json() == BAD_REFRESH for r in responses if r.status_code == 400)
    rows = await _family_state(database, session.refresh_token)
    original = next(row for row in rows if row["parent_id"] is None)
    # Exactly one rotation happened: one new family head, child of the presented token.
    assert len([row for row in rows if row["parent_id"] == original["id"]]) == 1
    assert len(rows) == 2
    # The 19 losers presented an already-rotated token: reuse, so the family is revoked (RFC 9700 §4.14.2).
    assert _live(rows) == 0
    winner = next(r for r in responses if r.status_code == 200).json()["refresh_token"]
    response = await session.refresh(winner)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)


async def test_refresh_rows_get_ids_that_grow_with_time(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    # Random ids put each issuance's index inserts on random pages; time-ordered ones on the newest pages,
    # which stay in Postgres' buffer cache however many tokens are stored (bench/README.md, growth).
    session = await _login(client, runtime)
    await asyncio.sleep(
        0.002
    )  # the ids order by millisecond: the rotation's comes from a later one
    successor = await session.new_token(session.refresh_token)
    rows = await _family_state(database, successor)
    async with database.connect() as conn:
        family = await conn.scalar(
            text("SELECT family_id FROM refresh_tokens WHERE token_hash = :h"),
            {"h": token_hash(successor)},
        )
    ids = {str(row["id"]): row["parent_id"] for row in rows}
    assert len(ids) == 2
    assert {uuid.UUID(str(value)).version for value in [*ids, family]} == {7}
    (parent,) = (value for value, parent_id in ids.items() if parent_id is None)
    (child,) = (value for value, parent_id in ids.items() if parent_id is not None)
    assert uuid.UUID(parent) < uuid.UUID(child)  # issued later, sorts later
