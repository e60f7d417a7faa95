"""Builders and readers for the store tests: tokens, codes, claims, and rows read on a connection of their own.

The stores are built on the session's migrated engine (``build_stores(database)``) with a fixed clock; the
rows are read back through ``observer``, an engine with no pool, so what a test sees was committed by the
store operation and not merely left on a pooled connection.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.crypto.tokens import token_hash
from oauth_service.db.stores.common import (
    CODES,
    REFRESH,
    REVOKED,
    USERS,
    code_from,
    refresh_from,
)
from oauth_service.oauth.storage import (
    AccessRecord,
    CodeClaim,
    CodeRecord,
    NewRefreshToken,
    RefreshClaim,
    RefreshRecord,
    Successor,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SCOPE = frozenset({"read", "write"})
IDLE = timedelta(days=1)
FAMILY_LIFETIME = timedelta(days=30)
ACCESS_LIFETIME = timedelta(minutes=10)
REDIRECT = "https://app.example/cb"
OTHER_REDIRECT = "https://app.example/other"


def clock() -> datetime:
    """The stores' clock (``created_at``, ``revoked_at`` of the revocation list, ``updated_at``)."""
    return T0


def new_token(
    client_id: str,
    user_id: str | None,
    *,
    family: uuid.UUID | None = None,
    parent: uuid.UUID | None = None,
    jti: str | None = None,
    at: datetime = T0,
    scope: frozenset[str] = SCOPE,
    expires_at: datetime | None = None,
    family_expires_at: datetime | None = None,
) -> NewRefreshToken:
    """A refresh token issued at ``at``: idle for a day, its family for thirty, its access token for ten minutes."""
    token_id = uuid.uuid4()
    return NewRefreshToken(
        id=token_id,
        token_hash=token_hash(f"refresh-{token_id.hex}"),
        family_id=family or uuid.uuid4(),
        parent_id=parent,
        client_id=client_id,
        user_id=user_id,
        scope=scope,
        issued_at=at,
        expires_at=expires_at or at + IDLE,
        family_expires_at=family_expires_at or at + FAMILY_LIFETIME,
        auth_time=at - timedelta(minutes=1),
        access_jti=jti or token_id.hex,
        access_expires_at=at + ACCESS_LIFETIME,
    )


def successor(at: datetime, *, idle: timedelta = IDLE) -> Successor:
    """A fresh successor whose idle end is ``at + idle``."""
    successor_id = uuid.uuid4()
    return Successor(
        id=successor_id,
        token_hash=token_hash(f"refresh-{successor_id.hex}"),
        idle_until=at + idle,
    )


def access(at: datetime) -> AccessRecord:
    """A fresh access token minted at ``at``."""
    return AccessRecord(jti=uuid.uuid4().hex, expires_at=at + ACCESS_LIFETIME)


def refresh_claim(
    token: NewRefreshToken,
    *,
    at: datetime = T0 + timedelta(minutes=5),
    client_id: str | None = None,
    presented_hash: str | None = None,
    required_scope: frozenset[str] = frozenset(),
    requires_admin: bool = False,
    idle: timedelta = IDLE,
) -> RefreshClaim:
    """A claim to rotate ``token`` at ``at``, as its own client presents it unless told otherwise."""
    return RefreshClaim(
        token_hash=presented_hash or token.token_hash,
        client_id=client_id or token.client_id,
        at=at,
        required_scope=required_scope,
        requires_admin=requires_admin,
        successor=successor(at, idle=idle),
        access=access(at),
    )


def code_record(
    user_id: str,
    *,
    raw: str = "code-1",
    client_id: str = "web",
    redirect_uri: str | None = REDIRECT,
    challenge: str | None = None,
    method: str | None = None,
    expires_at: datetime = T0 + timedelta(seconds=60),
) -> CodeRecord:
    """An unused code of ``client_id`` for ``user_id``, issued at T0."""
    return CodeRecord(
        code_hash=token_hash(raw),
        client_id=client_id,
        user_id=user_id,
        redirect_uri=redirect_uri,
        scope=SCOPE,
        auth_time=T0,
        expires_at=expires_at,
        code_challenge=challenge,
        code_challenge_method=method,
    )


def code_claim(
    code: CodeRecord,
    *,
    at: datetime = T0 + timedelta(seconds=10),
    client_id: str | None = None,
    redirect_uri: str | None = REDIRECT,
    redirect_uri_registered: bool = True,
    s256_challenge: str | None = None,
    plain_challenge: str | None = None,
    verifier_sent: bool = False,
    public_client: bool = False,
    with_refresh: bool = True,
    idle: timedelta = IDLE,
) -> CodeClaim:
    """A claim to redeem ``code`` at ``at`` (its own client unless told otherwise), with a refresh token."""
    return CodeClaim(
        code_hash=code.code_hash,
        client_id=client_id or code.client_id,
        at=at,
        redirect_uri=redirect_uri,
        redirect_uri_registered=redirect_uri_registered,
        s256_challenge=s256_challenge,
        plain_challenge=plain_challenge,
        verifier_sent=verifier_sent,
        public_client=public_client,
        family_id=uuid.uuid4(),
        family_expires_at=at + FAMILY_LIFETIME,
        access=access(at),
        refresh=successor(at, idle=idle) if with_refresh else None,
    )


async def refresh_rows(engine: AsyncEngine) -> list[RefreshRecord]:
    """Every stored refresh token, oldest first."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(REFRESH).order_by(REFRESH.c.issued_at, REFRESH.c.id)
            )
        ).all()
    return [refresh_from(row._mapping) for row in rows]


async def refresh_row(engine: AsyncEngine, token_id: uuid.UUID) -> RefreshRecord:
    """The stored refresh token ``token_id``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(REFRESH).where(REFRESH.c.id == token_id))
        ).one()
    return refresh_from(row._mapping)


async def children(engine: AsyncEngine, parent_id: uuid.UUID) -> list[RefreshRecord]:
    """The tokens stored as successors of ``parent_id``."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(REFRESH).where(REFRESH.c.parent_id == parent_id))
        ).all()
    return [refresh_from(row._mapping) for row in rows]


async def code_row(engine: AsyncEngine, code_hash: str) -> CodeRecord:
    """The stored code ``code_hash`` (without its user)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(CODES).where(CODES.c.code_hash == code_hash))
        ).one()
    return code_from(row._mapping, None)


async def revoked_jtis(engine: AsyncEngine) -> set[str]:
    """The ``jti``s on the revocation list."""
    async with engine.connect() as conn:
        return set((await conn.execute(select(REVOKED.c.jti))).scalars())


async def count_refresh(engine: AsyncEngine) -> int:
    """How many refresh tokens are stored."""
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(REFRESH)) or 0)


async def password_hash(engine: AsyncEngine, user_id: str) -> str:
    """The user's stored password hash."""
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(USERS.c.password_hash).where(USERS.c.id == user_id)
        )
    return str(value)


async def deactivate(engine: AsyncEngine, user_id: str) -> None:
    """Mark the user inactive and nothing else (their tokens and codes stay as they are)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(USERS).where(USERS.c.id == user_id).values(is_active=False)
        )
