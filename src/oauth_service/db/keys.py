"""Signing keys shared by every replica (RFC 7517 key sets; RFC 9068 access-token signing).

Keys live in ``signing_keys`` with a state: ``pending`` (published, not yet signing), ``active`` (signing) and
``retired`` (published until ``expires_at``, so tokens it signed keep verifying). ``ensure_signing_key`` creates
the first key at start-up; the check-and-insert runs under a Postgres advisory lock (SQLite serialises writers),
so replicas starting together end up with one active key. ``load_keyset`` builds the in-memory ``KeySet``.
"""

from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from oauth_service.crypto.jwt import (
    Algorithm,
    KeySet,
    SigningKey,
    VerificationKey,
    generate_key,
)
from oauth_service.crypto.key_encryption import PrivateKeyCipher
from oauth_service.db.change_feed import KeysChanged, publish
from oauth_service.db.tables import SigningKeyRow
from oauth_service.oauth.clock import Clock, utcnow

# Arbitrary constant naming the "signing key bootstrap" advisory lock.
_ADVISORY_LOCK_ID = 0x6F61_7574_686B_6579 & 0x7FFF_FFFF_FFFF_FFFF


class NoSigningKeyError(RuntimeError):
    """No active signing key exists (run ``ensure_signing_key`` first)."""


async def _active_kids(conn: AsyncConnection, alg: str) -> list[str]:
    rows = await conn.execute(
        select(col(SigningKeyRow.kid))
        .where(col(SigningKeyRow.state) == "active", col(SigningKeyRow.alg) == alg)
        .order_by(col(SigningKeyRow.activates_at), col(SigningKeyRow.kid))
    )
    return list(rows.scalars())


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID}
        )


async def ensure_signing_key(
    engine: AsyncEngine,
    alg: Algorithm,
    *,
    retire_after: timedelta,
    clock: Clock = utcnow,
    cipher: PrivateKeyCipher | None = None,
) -> str:
    """Make sure one active key of ``alg`` exists; return its kid.

    Active and pending keys of another algorithm (the setting changed) are retired and stay published for
    ``retire_after``. Key generation runs in a worker thread, before the lock is taken. With a ``cipher``
    that encrypts, the private key is stored sealed.
    """
    async with engine.connect() as conn:
        existing = await _active_kids(conn, alg)
    if existing:
        return existing[0]
    kid, pem, public = await anyio.to_thread.run_sync(generate_key, alg)
    async with engine.begin() as conn:
        await _lock(conn)
        now = clock()
        # On SQLite this UPDATE is also the lock: it takes the write lock before the re-check below.
        await conn.execute(
            update(SigningKeyRow)
            .where(
                col(SigningKeyRow.state).in_(("active", "pending")),
                col(SigningKeyRow.alg) != alg,
            )
            .values(state="retired", retired_at=now, expires_at=now + retire_after)
        )
        existing = await _active_kids(conn, alg)
        if existing:
            return existing[0]
        await conn.execute(
            SigningKeyRow.__table__.insert().values(  # type: ignore[attr-defined]
                kid=kid,
                alg=alg,
                private_key=cipher.seal(pem) if cipher else pem,
                public_jwk=public,
                state="active",
                created_at=now,
                activates_at=now,
            )
        )
        await publish(conn, KeysChanged())
    return kid


def _build_keyset(rows: list[Any], now: datetime, cipher: PrivateKeyCipher) -> KeySet:
    # Every stored private key must open, so a missing or wrong key-encryption key fails at start-up.
    pems = {r.kid: cipher.open(r.private_key) for r in rows}
    # The signer is the newest key whose activation time has passed: a pending key takes over on time on
    # every replica, whether or not its state column has been updated yet (see db.key_rotation).
    active = [
        r for r in rows if r.state in ("active", "pending") and r.activates_at <= now
    ]
    if not active:
        active = [r for r in rows if r.state == "active"]
    if not active:
        raise NoSigningKeyError("no active signing key")
    # The most recently activated key signs; ties broken by kid so every replica agrees.
    signer = max(active, key=lambda r: (r.activates_at, r.kid))
    others = [
        VerificationKey.from_jwk(r.kid, r.alg, r.public_jwk)
        for r in rows
        if r.kid != signer.kid and (r.expires_at is None or r.expires_at > now)
    ]
    return KeySet(SigningKey.from_pem(signer.kid, signer.alg, pems[signer.kid]), others)


async def load_keyset(
    engine: AsyncEngine,
    *,
    clock: Clock = utcnow,
    cipher: PrivateKeyCipher | None = None,
) -> KeySet:
    """Read every publishable key; the active one signs, the others verify and are published.

    Private-key parsing is CPU-bound, so the ``KeySet`` is built in a worker thread.

    Raises:
        NoSigningKeyError: no key has been activated.
        KeyEncryptionError: a stored key is sealed and ``cipher`` cannot open it.
    """
    now = clock()
    async with engine.connect() as conn:
        result = await conn.execute(
            select(SigningKeyRow.__table__).where(  # type: ignore[attr-defined]
                col(SigningKeyRow.state).in_(("pending", "active", "retired"))
            )
        )
        rows = list(result.all())
    opener = cipher or PrivateKeyCipher(None)
    return await anyio.to_thread.run_sync(_build_keyset, rows, now, opener)
