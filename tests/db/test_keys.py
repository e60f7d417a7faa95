"""Signing keys in the database: bootstrap, concurrency, rotation on algorithm change, key set loading."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.keys import ensure_signing_key, load_keyset

ISS = "http://oauth.test"
T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def _states(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT alg, state FROM signing_keys ORDER BY alg")
        )
        return [(r[0], r[1]) for r in rows]


async def _wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM signing_keys"))


async def test_ensure_signing_key_concurrent_bootstrap_creates_one_key(
    database: AsyncEngine,
) -> None:
    await _wipe(database)
    kids = await asyncio.gather(
        *(
            ensure_signing_key(database, "RS256", retire_after=timedelta(minutes=11))
            for _ in range(4)
        )
    )
    assert len(set(kids)) == 1
    assert await _states(database) == [("RS256", "active")]
    keys = await load_keyset(database)
    assert keys.signing.kid == kids[0]


async def test_ensure_signing_key_existing_key_is_reused(database: AsyncEngine) -> None:
    first = await ensure_signing_key(
        database, "RS256", retire_after=timedelta(minutes=11)
    )
    second = await ensure_signing_key(
        database, "RS256", retire_after=timedelta(minutes=11)
    )
    assert first == second


async def test_ensure_signing_key_alg_change_retires_old_key(
    database: AsyncEngine,
) -> None:
    await _wipe(database)
    old = await ensure_signing_key(
        database, "RS256", retire_after=timedelta(minutes=11), clock=lambda: T0
    )
    old_keys = await load_keyset(database, clock=lambda: T0)
    token = old_keys.sign({"iss": ISS, "aud": ISS, "exp": int(T0.timestamp()) + 600})
    new = await ensure_signing_key(
        database, "ES256", retire_after=timedelta(minutes=11), clock=lambda: T0
    )
    try:
        assert await _states(database) == [("ES256", "active"), ("RS256", "retired")]
        keys = await load_keyset(database, clock=lambda: T0 + timedelta(minutes=5))
        assert keys.signing.kid == new
        assert keys.signing.alg == "ES256"
        assert {k["kid"] for k in keys.jwks()["keys"]} == {old, new}
        assert (
            keys.verify(token, issuer=ISS, audience=ISS, now=T0.timestamp())["iss"]
            == ISS
        )
        expired = await load_keyset(database, clock=lambda: T0 + timedelta(minutes=12))
        assert expired.kids == {new}
    finally:
        await _wipe(database)
        await ensure_signing_key(database, "RS256", retire_after=timedelta(minutes=11))
