"""SQL implementations of the ``oauth.storage`` Protocols (all but the authorization-code store).

Refresh-token rotation is a conditional ``UPDATE ... WHERE rotated_at IS NULL AND revoked_at IS NULL``: on
Postgres the row lock makes concurrent rotations of one token wait and then see zero rows, on SQLite writers are
serialised, so exactly one request wins on both (RFC 9700 §4.14.2). ``revoke_family`` commits on its own
connection so the revocation survives the error response that follows it, and it puts the family's unexpired
access-token ids on the revocation list (RFC 9700 §4.14.2, RFC 7009 §2.1): in the database, in this process's
list once committed, and in every other process's through the change feed (``db.change_feed``).
``SqlUserStore.release`` gives a read-only unit of work's connection back before a password hash; whether
anything was written is asked of the database (``db.release``), never assumed.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CursorResult, Executable, Row, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlmodel import col

from oauth_service.db.authorization_stores import SqlAuthorizationCodeStore
from oauth_service.db.change_feed import jtis_revoked, publish
from oauth_service.db.direct import DirectStatement, direct_for
from oauth_service.db.mapping import client_from_row, joined_user, split_set
from oauth_service.db.refresh_sql import (
    INSERT_NEW_REFRESH,
    INSERT_REFRESH,
    REFRESH,
    insert_after,
    new_refresh_params,
    refresh_values,
)
from oauth_service.db.release import release_reads
from oauth_service.db.tables import (
    ClientRow,
    RevokedTokenRow,
    ScopeRow,
    UserRow,
)
from oauth_service.oauth.client_cache import CachedClientStore, ClientCache
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.models import Client, User
from oauth_service.oauth.revocation_list import ListedRevokedTokenStore, RevocationList
from oauth_service.oauth.storage import (
    ClientStore,
    NewRefreshToken,
    RefreshRecord,
    RevokedTokenStore,
    Stores,
)

_REVOKED = RevokedTokenRow.__table__  # type: ignore[attr-defined]

# Hot-path statements are built once with bind parameters: building one per call (and coercing its values and
# computing its cache key) cost more CPU than the database round trip itself (bench/README.md).
_USERS = UserRow.__table__  # type: ignore[attr-defined]
_USER_COLUMNS = (
    _USERS.c.id,
    _USERS.c.email,
    _USERS.c.is_active,
    _USERS.c.is_admin,
    _USERS.c.password_hash,
)
# Core rows, not ORM entities: loading a UserRow cost half again as much as the read itself.
_SELECT_USER = select(*_USER_COLUMNS).where(_USERS.c.id == bindparam("user_id"))
_SELECT_USER_BY_EMAIL = select(*_USER_COLUMNS).where(
    _USERS.c.email_normalized == bindparam("email")
)
# The token with its user (LEFT JOIN): a refresh needs both, and one query saves a round trip.
_SELECT_REFRESH = (
    select(REFRESH, *(column.label(f"u_{column.name}") for column in _USER_COLUMNS))
    .outerjoin(_USERS, _USERS.c.id == REFRESH.c.user_id)
    .where(REFRESH.c.token_hash == bindparam("hash"))
)
_MARK_REFRESH = {
    column: update(REFRESH)
    .where(
        REFRESH.c.id == bindparam("token_id"),
        REFRESH.c.rotated_at.is_(None),
        REFRESH.c.revoked_at.is_(None),
    )
    .values({column: bindparam("at")})
    for column in ("rotated_at", "revoked_at")
}


def _rotate_in_one_statement() -> Executable:
    """Postgres: the conditional UPDATE and the INSERT of the successor as one statement (``refresh_sql``)."""
    old = _MARK_REFRESH["rotated_at"].returning(REFRESH.c.id.label("old_id")).cte("old")
    return insert_after(old)


_ROTATE_PG = _rotate_in_one_statement()
# The same statements for the asyncpg connection of an autocommit session (``db.direct``): a refresh's two, and
# a password grant's read of the user and insert of its refresh token.
_SELECT_REFRESH_DIRECT = DirectStatement.compile(_SELECT_REFRESH)
_ROTATE_PG_DIRECT = DirectStatement.compile(_ROTATE_PG)
_SELECT_USER_BY_EMAIL_DIRECT = DirectStatement.compile(_SELECT_USER_BY_EMAIL)
_INSERT_REFRESH_DIRECT = DirectStatement.compile(INSERT_NEW_REFRESH)


class SqlClientStore:
    """``ClientStore`` over the ``clients`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, client_id: str) -> Client | None:
        """Return the client, or None."""
        row = await self._session.scalar(
            select(ClientRow).where(col(ClientRow.client_id) == client_id)
        )
        return client_from_row(row) if row is not None else None


def _user(row: Mapping[Any, Any] | None) -> User | None:
    """A user row (a Core row's ``_mapping`` or an asyncpg record) as a ``User``."""
    if row is None:
        return None
    return User(
        id=row["id"],
        email=row["email"],
        is_active=row["is_active"],
        is_admin=row["is_admin"],
        password_hash=row["password_hash"],
    )


def _mapping(row: Row[*tuple[Any, ...]] | None) -> Mapping[Any, Any] | None:
    """A Core row's mapping (the shape direct statements return), or None."""
    return row._mapping if row is not None else None


class SqlUserStore:
    """``UserStore`` over the ``users`` table (emails match case-insensitively)."""

    def __init__(self, session: AsyncSession, *, clock: Clock = utcnow) -> None:
        self._session = session
        self._clock = clock

    async def get(self, user_id: str) -> User | None:
        """Return the user by id, or None."""
        result = await self._session.execute(_SELECT_USER, {"user_id": user_id})
        return _user(_mapping(result.first()))

    async def get_by_email(self, email: str) -> User | None:
        """Return the user by email, or None."""
        values = {"email": canonical_email(email)}
        direct = await direct_for(self._session)
        if direct is not None:  # the token endpoint on Postgres (the password grant)
            return _user(await _SELECT_USER_BY_EMAIL_DIRECT.fetchrow(direct, values))
        result = await self._session.execute(_SELECT_USER_BY_EMAIL, values)
        return _user(_mapping(result.first()))

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        """Store a rehashed password unless the password changed since it was verified against ``replacing``."""
        await self._session.execute(
            update(UserRow)
            .where(col(UserRow.id) == user_id, col(UserRow.password_hash) == replacing)
            .values(password_hash=password_hash, updated_at=self._clock())
        )

    async def release(self) -> None:
        """Give the session's pooled connection back before a password hash; a later statement takes another.

        Ends the read-only transaction (a rollback: nothing was written, so nothing is lost) and, for the token
        endpoint's ``LazySession``, the connection it lent to direct statements; the session stays usable.
        A session that has written keeps its connection (``db.release.release_reads``). The rollback expires
        ORM objects the session loaded: the stores hand out plain records, never ORM rows, so none is touched
        afterwards.
        """
        await release_reads(self._session)


class SqlScopeStore:
    """``ScopeStore`` over the ``scopes`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def all(self) -> dict[str, str]:
        """Return every scope name mapped to its description."""
        result = await self._session.execute(
            select(col(ScopeRow.name), col(ScopeRow.description)).order_by(
                col(ScopeRow.name)
            )
        )
        return {str(name): str(description) for name, description in result.all()}


def _refresh_record(row: Mapping[Any, Any], user: User | None = None) -> RefreshRecord:
    """A refresh-token row (a Core row's ``_mapping`` or an asyncpg record) as a ``RefreshRecord``."""
    return RefreshRecord(
        id=row["id"],
        token_hash=row["token_hash"],
        family_id=row["family_id"],
        parent_id=row["parent_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scope=split_set(row["scope"]),
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        family_expires_at=row["family_expires_at"],
        auth_time=row["auth_time"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
        access_jti=row["access_jti"],
        access_expires_at=row["access_expires_at"],
        user=user,
    )


async def add_revoked_jtis(
    conn: AsyncConnection | AsyncSession,
    entries: Sequence[tuple[str, datetime]],
    at: datetime,
) -> None:
    """Put access-token ids on the revocation list; ids already there are left alone."""
    if not entries:
        return
    dialect = (
        conn.dialect.name
        if isinstance(conn, AsyncConnection)
        else conn.get_bind().dialect.name
    )
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = [{"jti": jti, "expires_at": exp, "revoked_at": at} for jti, exp in entries]
    await conn.execute(dialect_insert(_REVOKED).values(values).on_conflict_do_nothing())
    await publish(conn, *jtis_revoked(entries))


def list_locally(
    revocations: RevocationList | None, entries: Sequence[tuple[str, datetime]]
) -> None:
    """Put committed revocations on this process's list at once (its listener would hear of them later)."""
    if revocations is not None:
        for jti, expires_at in entries:
            revocations.add(jti, expires_at.timestamp())


class SqlRefreshTokenStore:
    """``RefreshTokenStore`` over ``refresh_tokens``: reads and rotation in the request's session."""

    def __init__(
        self,
        session: AsyncSession,
        engine: AsyncEngine,
        revocations: RevocationList | None = None,
    ) -> None:
        self._session = session
        self._engine = engine
        self._revocations = revocations

    async def save(self, token: NewRefreshToken) -> None:
        """Store a new refresh token."""
        direct = await direct_for(self._session)
        if direct is not None:  # the token endpoint on Postgres (the password grant)
            await _INSERT_REFRESH_DIRECT.fetchrow(direct, refresh_values(token))
            return
        await self._session.execute(INSERT_REFRESH, refresh_values(token))

    async def get(self, token_hash: str) -> RefreshRecord | None:
        """Return the token by hash, whatever its state."""
        direct = await direct_for(self._session)
        row: Mapping[Any, Any] | None
        if direct is not None:
            row = await _SELECT_REFRESH_DIRECT.fetchrow(direct, {"hash": token_hash})
        else:
            result = await self._session.execute(_SELECT_REFRESH, {"hash": token_hash})
            row = _mapping(result.first())
        if row is None:
            return None
        return _refresh_record(row, joined_user(row))

    async def get_successor(self, parent_id: UUID) -> RefreshRecord | None:
        """Return the newest token rotated from ``parent_id``, or None.

        Looked up within the parent's family (``parent_id`` has no index of its own; the family's does), so
        the read stays an index scan of one family however many tokens are stored.
        """
        # The grace-window path: the token was read on a lent connection; give it back before the session
        # takes its own (db.release: nothing written is dropped), so a request never holds two.
        await release_reads(self._session)
        family = (
            select(REFRESH.c.family_id)
            .where(REFRESH.c.id == parent_id)
            .scalar_subquery()
        )
        result = await self._session.execute(
            select(REFRESH)
            .where(REFRESH.c.family_id == family, REFRESH.c.parent_id == parent_id)
            .order_by(REFRESH.c.issued_at.desc(), REFRESH.c.id.desc())
            .limit(1)
        )
        row = _mapping(result.first())
        return _refresh_record(row) if row is not None else None

    async def _mark(self, token_id: UUID, at: datetime, *, column: str) -> bool:
        result = await self._session.execute(
            _MARK_REFRESH[column], {"token_id": token_id, "at": at}
        )
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            # Release the write lock (SQLite) before the caller revokes the family on another connection.
            await self._session.rollback()
            return False
        return True

    async def rotate(self, old_id: UUID, new: NewRefreshToken, at: datetime) -> bool:
        """Atomically mark ``old_id`` rotated and insert ``new``; False when it was already rotated or revoked.

        One statement on Postgres (``_ROTATE_PG``); the conditional UPDATE then the INSERT elsewhere (SQLite
        serialises writers, so the UPDATE alone decides the winner).
        """
        if self._engine.dialect.name == "postgresql":
            params = {"token_id": old_id, "at": at, **new_refresh_params(new)}
            direct = await direct_for(self._session)
            if direct is not None:
                return await _ROTATE_PG_DIRECT.fetchrow(direct, params) is not None
            result = await self._session.execute(_ROTATE_PG, params)
            if result.first() is not None:
                return True
            await self._session.rollback()
            return False
        if not await self._mark(old_id, at, column="rotated_at"):
            return False
        await self.save(new)
        return True

    async def replace_successor(
        self, successor_id: UUID, new: NewRefreshToken, at: datetime
    ) -> bool:
        """Revoke an unused successor (and its access token) and insert ``new``; False when it was used.

        Several statements: on Postgres (where the token endpoint's session autocommits) they run in a
        transaction of their own; elsewhere in the request's transaction.
        """
        if self._engine.dialect.name == "postgresql":
            # Its own transaction takes a connection: the request's goes back first (the token endpoint's
            # session autocommits, so it holds nothing uncommitted). Holding one while waiting for another, a
            # pool's worth of such requests would each wait for the pool until it timed out.
            await release_reads(self._session)
            async with self._engine.begin() as conn:
                revoked = await _replace_successor(conn, successor_id, new, at)
            list_locally(self._revocations, revoked or ())
            return revoked is not None
        revoked = await _replace_successor(self._session, successor_id, new, at)
        if revoked is not None:
            # In the request's transaction: applied when the session commits (``db.change_feed``).
            return True
        # Release the write lock (SQLite) before the caller revokes the family on another connection.
        await self._session.rollback()
        return False

    async def revoke_family(self, family_id: UUID, at: datetime) -> None:
        """Revoke the family and its unexpired access tokens, committed on a connection of its own.

        The request's own transaction is ended first (an error response follows): it then holds no pooled
        connection and no SQLite write lock while the revocation commits.
        """
        await self._session.rollback()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(REFRESH)
                .where(REFRESH.c.family_id == family_id, REFRESH.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            result = await conn.execute(
                select(REFRESH.c.access_jti, REFRESH.c.access_expires_at).where(
                    REFRESH.c.family_id == family_id,
                    REFRESH.c.access_jti.is_not(None),
                    REFRESH.c.access_expires_at > at,
                )
            )
            entries = [(jti, exp) for jti, exp in result.all()]
            await add_revoked_jtis(conn, entries, at)
        list_locally(self._revocations, entries)


async def _replace_successor(
    executor: AsyncConnection | AsyncSession,
    successor_id: UUID,
    new: NewRefreshToken,
    at: datetime,
) -> list[tuple[str, datetime]] | None:
    """The access token ids revoked with the successor; None when it was already used."""
    marked = await executor.execute(
        _MARK_REFRESH["revoked_at"], {"token_id": successor_id, "at": at}
    )
    if not isinstance(marked, CursorResult) or marked.rowcount != 1:
        return None
    result = await executor.execute(
        select(REFRESH.c.access_jti, REFRESH.c.access_expires_at).where(
            REFRESH.c.id == successor_id, REFRESH.c.access_jti.is_not(None)
        )
    )
    entries = [(jti, exp) for jti, exp in result.all() if exp is not None and exp > at]
    await add_revoked_jtis(executor, entries, at)
    await executor.execute(INSERT_REFRESH, refresh_values(new))
    return entries


class SqlRevokedTokenStore:
    """``RevokedTokenStore`` over ``revoked_tokens``."""

    def __init__(self, session: AsyncSession, *, clock: Clock = utcnow) -> None:
        self._session = session
        self._clock = clock

    async def add(self, jti: str, expires_at: datetime) -> None:
        """Put a ``jti`` on the list (idempotent)."""
        await add_revoked_jtis(self._session, [(jti, expires_at)], self._clock())

    async def contains(self, jti: str) -> bool:
        """Return whether the ``jti`` is revoked."""
        found = await self._session.scalar(
            select(col(RevokedTokenRow.jti)).where(col(RevokedTokenRow.jti) == jti)
        )
        return found is not None


def build_stores(
    session: AsyncSession,
    engine: AsyncEngine,
    *,
    clock: Clock = utcnow,
    client_cache: ClientCache | None = None,
    revocations: RevocationList | None = None,
) -> Stores:
    """Bind every SQL store to one request's session; clients and revocations through the caches, if given."""
    clients: ClientStore = SqlClientStore(session)
    revoked: RevokedTokenStore = SqlRevokedTokenStore(session, clock=clock)
    return Stores(
        clients=CachedClientStore(clients, client_cache)
        if client_cache is not None
        else clients,
        users=SqlUserStore(session, clock=clock),
        scopes=SqlScopeStore(session),
        refresh_tokens=SqlRefreshTokenStore(session, engine, revocations),
        revoked_tokens=ListedRevokedTokenStore(revoked, revocations)
        if revocations is not None
        else revoked,
        codes=SqlAuthorizationCodeStore(session, engine, clock, revocations),
    )
