"""Helpers of the key-rotation tests: keep the shared ``signing_keys`` rows intact, read JWT headers."""

import base64
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.tables import SigningKeyRow

KEYS = SigningKeyRow.__table__  # type: ignore[attr-defined]


@asynccontextmanager
async def preserved_signing_keys(engine: AsyncEngine) -> AsyncIterator[None]:
    """Let a test add, rotate and purge keys; put the rows back as they were afterwards.

    The conftest keeps signing keys across tests (RSA generation is slow), so a test that changes them restores
    them for the apps built by later tests.
    """
    async with engine.connect() as conn:
        saved = [dict(row._mapping) for row in await conn.execute(select(KEYS))]
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(KEYS))
            if saved:
                await conn.execute(KEYS.insert(), saved)


async def wipe_signing_keys(engine: AsyncEngine) -> None:
    """Delete every key (inside ``preserved_signing_keys``)."""
    async with engine.begin() as conn:
        await conn.execute(delete(KEYS))


async def stored_private_keys(engine: AsyncEngine) -> dict[str, str]:
    """The stored ``private_key`` column by kid."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(KEYS.c.kid, KEYS.c.private_key))
        return {row.kid: row.private_key for row in rows}


def jwt_header(token: str) -> dict[str, Any]:
    """The decoded JOSE header of a compact JWS."""
    segment = token.split(".")[0]
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


async def eventually(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll ``condition`` until it holds (a background loop's next pass; never an expiry)."""
    with anyio.fail_after(within):
        for _ in itertools.count():
            if condition():
                return
            await anyio.sleep(0.02)
