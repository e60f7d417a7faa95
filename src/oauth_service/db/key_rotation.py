"""Staged signing-key rotation shared by every replica (RFC 7517 key sets, RFC 9068 §4 validation by ``kid``).

A rotation inserts a ``pending`` key that is published in the JWKS at once and starts signing at its
``activates_at`` (now plus the publish delay), so relying parties that cache the JWKS see it before any token
carries its ``kid``. The key it supersedes becomes ``retired`` at that moment and stays published until
``expires_at`` (retirement plus the access-token lifetime plus leeway), when no token it signed can still be
valid; purge then deletes it. Every state follows from the rows and the clock alone (``resolve_states``), so
all replicas agree without talking to each other; ``settle_keys`` merely writes the resolved states back.
Automatic rotation (``rotate_if_due``) is serialised by the signing-key lock, so only one replica rotates.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import anyio.to_thread
from sqlalchemy import false, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from oauth_service.crypto.jwt import Algorithm, generate_key
from oauth_service.crypto.key_encryption import PrivateKeyCipher
from oauth_service.db.change_feed import KeysChanged, publish
from oauth_service.db.keys import _ADVISORY_LOCK_ID
from oauth_service.db.tables import SigningKeyRow
from oauth_service.oauth.clock import Clock, utcnow

# Covers the verifier's leeway on ``exp`` (30 s) plus clock skew between replicas and resource servers.
RETIRE_LEEWAY = timedelta(seconds=60)
_COLUMNS = (
    "kid",
    "alg",
    "state",
    "created_at",
    "activates_at",
    "retired_at",
    "expires_at",
)


def retire_after(token_ttl: int) -> timedelta:
    """How long a superseded key stays published: the longest a token it signed can remain valid.

    ``token_ttl`` is ``Settings.signed_token_ttl``: ID tokens usually outlive access tokens, and a relying party
    checks one (or sends it back as ``id_token_hint``) until it expires.
    """
    return timedelta(seconds=token_ttl) + RETIRE_LEEWAY


@dataclass(frozen=True, slots=True)
class KeyView:
    """A signing key's public description and its state at one instant (never the private key).

    ``state`` is ``pending``, ``active``, ``retired`` or ``expired`` (retired and past ``expires_at``).
    """

    kid: str
    alg: str
    state: str
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None
    expires_at: datetime | None

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready form (ISO 8601 times)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "kid": self.kid,
            "alg": self.alg,
            "state": self.state,
            "created_at": iso(self.created_at),
            "activates_at": iso(self.activates_at),
            "retired_at": iso(self.retired_at),
            "expires_at": iso(self.expires_at),
        }


def _view(
    row: Any,
    now: datetime,
    state: str,
    retired: datetime | None = None,
    expires: datetime | None = None,
) -> KeyView:
    if state == "retired" and expires is not None and expires <= now:
        state = "expired"
    return KeyView(
        row.kid, row.alg, state, row.created_at, row.activates_at, retired, expires
    )


def resolve_states(
    rows: Sequence[Any], now: datetime, retire_after: timedelta
) -> list[KeyView]:
    """Each key's state at ``now``, ordered oldest activation first.

    The newest key whose activation has passed signs; each key it superseded is retired from the moment its
    successor activated, and expires ``retire_after`` later.
    """
    ordered = sorted(rows, key=lambda r: (r.activates_at, r.kid))
    live = [
        r for r in ordered if r.state in ("pending", "active") and r.activates_at <= now
    ]
    successor = {a.kid: b.activates_at for a, b in pairwise(live)}
    views = []
    for row in ordered:
        if row.state == "retired":
            views.append(_view(row, now, "retired", row.retired_at, row.expires_at))
        elif row.kid in successor:
            retired = successor[row.kid]
            views.append(_view(row, now, "retired", retired, retired + retire_after))
        elif live and row.kid == live[-1].kid:
            views.append(_view(row, now, "active"))
        else:
            views.append(_view(row, now, "pending"))
    return views


def next_key_event(views: Sequence[KeyView], now: datetime) -> datetime | None:
    """The next instant the key set changes on its own: a pending key activates or a retired key expires."""
    times = [
        v.activates_at for v in views if v.state == "pending" and v.activates_at > now
    ]
    times += [
        v.expires_at
        for v in views
        if v.state == "retired" and v.expires_at and v.expires_at > now
    ]
    return min(times, default=None)


async def _rows(conn: AsyncConnection) -> list[Any]:
    columns = [getattr(SigningKeyRow, name) for name in _COLUMNS]
    return list((await conn.execute(select(*columns))).all())


async def list_keys(
    engine: AsyncEngine, *, retire_after: timedelta, clock: Clock = utcnow
) -> list[KeyView]:
    """Every stored key with its state now (``keys list``)."""
    async with engine.connect() as conn:
        rows = await _rows(conn)
    return resolve_states(rows, clock(), retire_after)


async def settle_keys(
    engine: AsyncEngine, *, retire_after: timedelta, clock: Clock = utcnow
) -> list[KeyView]:
    """Write the resolved states back (pending → active → retired) and return every key's view.

    Idempotent, and replicas racing here write identical values: each update is conditional on the old state.
    """
    now = clock()
    async with engine.begin() as conn:
        rows = {row.kid: row for row in await _rows(conn)}
        views = resolve_states(list(rows.values()), now, retire_after)
        changed = False
        for view in views:
            stored = rows[view.kid].state
            target = "retired" if view.state == "expired" else view.state
            if target == stored or target == "pending":
                continue
            changed = True
            await conn.execute(
                update(SigningKeyRow)
                .where(
                    col(SigningKeyRow.kid) == view.kid,
                    col(SigningKeyRow.state) == stored,
                )
                .values(
                    state=target, retired_at=view.retired_at, expires_at=view.expires_at
                )
            )
        if changed:
            await publish(conn, KeysChanged())
    return views


async def _serialise(conn: AsyncConnection) -> None:
    # The same lock as the first-key bootstrap. On SQLite a no-op UPDATE takes the database write lock.
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID}
        )
    else:
        await conn.execute(update(SigningKeyRow).where(false()).values(state="pending"))


async def _insert_pending(
    conn: AsyncConnection,
    key: tuple[str, str, dict[str, str]],
    alg: str,
    *,
    now: datetime,
    delay: timedelta,
    cipher: PrivateKeyCipher,
) -> None:
    kid, pem, public = key
    await conn.execute(
        SigningKeyRow.__table__.insert().values(  # type: ignore[attr-defined]
            kid=kid,
            alg=alg,
            private_key=cipher.seal(pem),
            public_jwk=public,
            state="pending",
            created_at=now,
            activates_at=now + delay,
        )
    )
    # Every replica publishes the new key in its JWKS as soon as this commits.
    await publish(conn, KeysChanged())


async def rotate_key(
    engine: AsyncEngine,
    alg: Algorithm,
    *,
    publish_delay: timedelta,
    retire_after: timedelta,
    cipher: PrivateKeyCipher,
    clock: Clock = utcnow,
) -> KeyView:
    """Add a key that is published now and signs after ``publish_delay``; return its view."""
    key = await anyio.to_thread.run_sync(generate_key, alg)
    async with engine.begin() as conn:
        await _serialise(conn)
        await _insert_pending(
            conn, key, alg, now=clock(), delay=publish_delay, cipher=cipher
        )
    views = await settle_keys(engine, retire_after=retire_after, clock=clock)
    return next(view for view in views if view.kid == key[0])


async def rotate_if_due(
    engine: AsyncEngine,
    alg: Algorithm,
    *,
    interval: timedelta,
    publish_delay: timedelta,
    retire_after: timedelta,
    cipher: PrivateKeyCipher,
    clock: Clock = utcnow,
) -> KeyView | None:
    """Rotate when the newest pending or active key is older than ``interval``; None when not due.

    The due check and the insert run under the signing-key lock, so replicas racing here add one key.
    """
    newest = await _newest_created(engine)
    if newest is not None and clock() - newest < interval:
        return None
    key = await anyio.to_thread.run_sync(generate_key, alg)
    async with engine.begin() as conn:
        await _serialise(conn)
        newest = await _newest_created(conn)
        now = clock()
        if newest is not None and now - newest < interval:
            return None
        await _insert_pending(
            conn, key, alg, now=now, delay=publish_delay, cipher=cipher
        )
    views = await settle_keys(engine, retire_after=retire_after, clock=clock)
    return next(view for view in views if view.kid == key[0])


async def _newest_created(bind: AsyncEngine | AsyncConnection) -> datetime | None:
    query = select(col(SigningKeyRow.created_at)).where(
        col(SigningKeyRow.state).in_(("pending", "active"))
    )
    query = query.order_by(col(SigningKeyRow.created_at).desc()).limit(1)
    if isinstance(bind, AsyncEngine):
        async with bind.connect() as conn:
            value = (await conn.execute(query)).scalar()
    else:
        value = (await bind.execute(query)).scalar()
    return value


async def check_private_keys(engine: AsyncEngine, *, cipher: PrivateKeyCipher) -> int:
    """Open every stored private key with ``cipher``; return how many there are.

    Raises:
        KeyEncryptionError: a stored key is encrypted and ``cipher`` cannot open it.
    """
    async with engine.connect() as conn:
        stored = list(
            (await conn.execute(select(col(SigningKeyRow.private_key)))).scalars()
        )
    for value in stored:
        cipher.open(value)
    return len(stored)


async def reseal_keys(engine: AsyncEngine, *, cipher: PrivateKeyCipher) -> int:
    """Encrypt plaintext private keys (and re-encrypt under the newest key-encryption key); return how many.

    Raises:
        KeyEncryptionError: a stored key cannot be opened with ``cipher``.
    """
    count = 0
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                select(col(SigningKeyRow.kid), col(SigningKeyRow.private_key))
            )
        ).all()
        for kid, stored in rows:
            sealed = await anyio.to_thread.run_sync(cipher.reseal, stored)
            if sealed is not None:
                await conn.execute(
                    update(SigningKeyRow)
                    .where(col(SigningKeyRow.kid) == kid)
                    .values(private_key=sealed)
                )
                count += 1
    return count
