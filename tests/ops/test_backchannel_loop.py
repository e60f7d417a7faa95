"""The back-channel delivery loop makes its HTTP client only for a pass with something to send.

An idle worker (most of them, most of the time) keeps no TLS context and connection pool in memory for it.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.tables import BackchannelLogoutRow
from oauth_service.runtime import Runtime, background
from tests.factories import make_client

OUTBOX = BackchannelLogoutRow.__table__  # type: ignore[attr-defined]


@pytest.fixture
def clients_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the HTTP clients the loop makes; each answers 204 without a network."""
    made: list[int] = []

    @asynccontextmanager
    async def counted() -> AsyncIterator[httpx.AsyncClient]:
        made.append(1)
        transport = httpx.MockTransport(lambda _request: httpx.Response(204))
        async with httpx.AsyncClient(transport=transport) as http:
            yield http

    monkeypatch.setattr(background, "outbound_client", counted)
    return made


async def _one_pass(runtime: Runtime) -> None:
    stop = asyncio.Event()
    loop = asyncio.create_task(background.backchannel_loop(runtime, stop))
    await asyncio.sleep(0.2)  # the first pass runs at once
    stop.set()
    await asyncio.wait_for(loop, timeout=5)


async def test_a_pass_with_nothing_due_makes_no_client(
    runtime: Runtime, clients_made: list[int]
) -> None:
    await _one_pass(runtime)
    assert clients_made == []


async def test_a_pass_with_a_due_row_makes_one_client(
    runtime: Runtime, database: AsyncEngine, clients_made: list[int]
) -> None:
    client, _ = await make_client(runtime, client_id="rp")
    now = runtime.clock()
    async with database.begin() as conn:
        await conn.execute(
            insert(OUTBOX).values(
                id=uuid.uuid4(),
                client_id=client.client_id,
                subject="u1",
                sid=None,
                reason="logout",
                created_at=now,
                next_attempt_at=now,
                attempts=0,
            )
        )
    await _one_pass(runtime)
    assert clients_made == [1]
