"""The token endpoint's hottest statements run on the asyncpg connection itself (Postgres, autocommit sessions).

Each statement is still written with SQLAlchemy Core and compiled once, at import, to asyncpg's ``$n`` form;
only the execution skips SQLAlchemy. Through the session, a statement went through the ORM's execute
machinery, a compiled-cache lookup, an execution context, event dispatch, the DBAPI adapter and result
processing; directly, asyncpg binds the values to its cached prepared statement and returns a ``Record``. The
profile of a refresh (bench/README.md) showed that path as the largest Python cost of the grant after the
round trips themselves.

Used only when the session autocommits on Postgres (``db.engine.make_token_sessionmaker``): there every
statement is its own transaction anyway, so running it beside SQLAlchemy changes nothing about transactions.
Elsewhere ``direct_for`` answers None and the stores go through the session as before. The values bound are
those SQLAlchemy would bind on Postgres: aware UTC datetimes, ``uuid.UUID`` and strings.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Executable
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_INFO_KEY = "oauth_service.direct"


@dataclass(frozen=True, slots=True)
class DirectStatement:
    """A Core statement compiled for asyncpg, with the names of its bind parameters in ``$n`` order."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def compile(cls, statement: Executable) -> "DirectStatement":
        """Compile ``statement`` for asyncpg (once, at import)."""
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        return cls(compiled.string, tuple(compiled.positiontup or ()))

    async def fetchrow(
        self, direct: "Direct", values: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """Run the statement; its first row (an asyncpg ``Record``), or None.

        Failures surface as they would through the session: SQLAlchemy's exceptions (``IntegrityError``,
        ``DBAPIError`` with ``connection_invalidated`` for a lost connection, which is then dropped from the
        pool), so the error handlers answer the same (400, 503).
        """
        args = [values[name] for name in self.names]
        try:
            row: Mapping[str, Any] | None = await direct.driver.fetchrow(
                self.sql, *args
            )
        except Exception as error:
            raise await direct.translate(self.sql, error) from error
        return row


@dataclass(slots=True)
class Direct:
    """A pooled Postgres connection for direct statements: SQLAlchemy's pool entry and the asyncpg connection.

    Either borrowed from a session that holds it (``connection`` set) or lent by the pool to a ``LazySession``
    that never opened a session (``connection`` None; the lazy session gives it back).
    """

    dialect: Dialect
    pooled: PoolProxiedConnection
    connection: AsyncConnection | None = None
    released: bool = False

    @property
    def adapter(self) -> Any:
        """SQLAlchemy's DBAPI adapter around the asyncpg connection."""
        return self.pooled.dbapi_connection

    @property
    def driver(self) -> Any:
        """The asyncpg connection (asyncpg ships no type information)."""
        return self.pooled.driver_connection

    @property
    def usable(self) -> bool:
        """Still held and valid (a session's commit or rollback releases its connection)."""
        if self.connection is not None:
            return not (self.connection.closed or self.connection.invalidated)
        return not self.released and self.pooled.is_valid

    async def release(self) -> None:
        """Give a pool-lent connection back (nothing to do for one borrowed from a session)."""
        if self.connection is None and not self.released:
            self.released = True
            await greenlet_spawn(self.pooled.close)

    async def translate(self, sql: str, error: Exception) -> BaseException:
        """``error`` as SQLAlchemy would have raised it; a lost connection is invalidated first."""
        try:
            self.adapter._handle_exception(error)  # raises the DBAPI-level error
        except Exception as dbapi_error:
            translated: Exception = dbapi_error
        else:  # pragma: no cover - _handle_exception always raises
            translated = error
        lost = self.dialect.is_disconnect(translated, self.adapter, None)  # type: ignore[arg-type]
        if lost:
            if self.connection is not None:
                await self.connection.invalidate()
            else:
                await greenlet_spawn(self.pooled.invalidate)
        if not isinstance(translated, self.dialect.loaded_dbapi.Error):
            # Not a database error (a client-side timeout, an OSError): the session lets these through as they
            # are, and so do we, so their handlers (503 for OSError and TimeoutError) still apply.
            return translated
        return DBAPIError.instance(
            sql,
            None,
            translated,
            self.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=self.dialect,
        )


def _autocommits_on_postgres(bind: Engine | Connection) -> bool:
    return (
        bind.dialect.name == "postgresql"
        and bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    )


class LazySession:
    """Stands in for an ``AsyncSession`` and opens the real one on first use.

    A client-credentials grant with a cached client, or the introspection of an access token, never touches
    the database: building and closing an unused ``AsyncSession`` cost about 5 % of such a request. On
    Postgres autocommit sessions (the token endpoint's) it also lends direct statements a connection straight
    from the pool, so a refresh or a code redemption opens no session at all (a session's begin, connection
    lookup and commit cost about 90 us of CPU, the pool checkout alone about 13 us).
    """

    __slots__ = ("_direct", "_factory", "session")

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self.session: AsyncSession | None = None
        self._direct: Direct | None = None

    def in_transaction(self) -> bool:
        """Whether a transaction was begun (never, while the session is not open)."""
        return self.session is not None and self.session.in_transaction()

    async def direct(self) -> Direct | None:
        """A pool-lent connection for direct statements, or None when they must go through the session."""
        if self._direct is not None and self._direct.usable:
            return self._direct
        bind = self._factory.kw.get("bind")
        if self.session is not None or not isinstance(bind, AsyncEngine):
            return None
        if not _autocommits_on_postgres(bind.sync_engine):
            return None
        self._direct = Direct(bind.dialect, await _checkout(bind))
        return self._direct

    async def rollback(self) -> None:
        """Give the lent connection back and roll the session back, if open; it holds no connection then.

        Still usable: the next statement checks a connection out again (``SqlUserStore.release`` relies on it).
        """
        await self._release_direct()
        if self.session is not None:
            await self.session.rollback()

    async def close(self) -> None:
        """End of the request: give everything back; what was not committed is rolled back."""
        try:
            await self._release_direct()
        finally:
            session = self.session
            if session is not None:
                try:
                    if session.in_transaction():
                        await session.rollback()
                finally:
                    await session.close()

    async def _release_direct(self) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            await direct.release()

    def __getattr__(self, name: str) -> Any:
        if self.session is None:
            self.session = self._factory()
        return getattr(self.session, name)


async def _checkout(engine: AsyncEngine) -> PoolProxiedConnection:
    """A connection from the pool, failing the way ``engine.connect()`` does.

    The pool raises the driver's own error when Postgres refuses a new connection; ``engine.connect()`` wraps
    it in SQLAlchemy's ``DBAPIError``, which the error handlers judge by SQLSTATE: out of connection slots
    (53300) or shutting down (57P03) is a 503, as on every other path. Unwrapped, it was a 500.
    """
    dialect = engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        return await engine.raw_connection()
    except dbapi_error as error:
        raise DBAPIError.instance(
            None,
            None,
            error,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=dialect.is_disconnect(error, None, None),
            dialect=dialect,
        ) from error


async def direct_for(session: AsyncSession | LazySession) -> Direct | None:
    """The connection for direct statements when ``session`` autocommits on Postgres, else None.

    A lazy session lends one from the pool while no real session is open. Otherwise it is the session's own
    connection, looked up once (kept in ``session.info`` while the session holds it).
    """
    if isinstance(session, LazySession):
        lent = await session.direct()
        if lent is not None or session.session is None:
            return lent
        session = session.session
    known = session.info.get(_INFO_KEY)
    if isinstance(known, Direct) and known.usable:
        return known
    bind = session.get_bind()
    if not _autocommits_on_postgres(bind):
        return None
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    direct = Direct(bind.dialect, pooled, connection)
    session.info[_INFO_KEY] = direct
    return direct
