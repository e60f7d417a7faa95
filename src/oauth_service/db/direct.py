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

from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


@dataclass(frozen=True, slots=True)
class Direct:
    """The session's pooled connection: SQLAlchemy's view of it and the asyncpg connection beneath."""

    connection: AsyncConnection
    adapter: Any  # SQLAlchemy's DBAPI adapter around the asyncpg connection
    driver: Any  # the asyncpg connection (asyncpg ships no type information)

    async def translate(self, sql: str, error: Exception) -> BaseException:
        """``error`` as SQLAlchemy would have raised it; a lost connection is invalidated first."""
        try:
            self.adapter._handle_exception(error)  # raises the DBAPI-level error
        except Exception as dbapi_error:
            translated: Exception = dbapi_error
        else:  # pragma: no cover - _handle_exception always raises
            translated = error
        dialect = self.connection.dialect
        lost = dialect.is_disconnect(translated, self.adapter, None)  # type: ignore[arg-type]
        if lost:
            await self.connection.invalidate()
        return DBAPIError.instance(
            sql,
            None,
            translated,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
        )


async def direct_for(session: AsyncSession) -> Direct | None:
    """The connection of ``session`` for direct statements when it autocommits on Postgres, else None.

    Looked up once per session (kept in ``session.info`` while the session holds that connection).
    """
    known = session.info.get(_INFO_KEY)
    if (
        isinstance(known, Direct)
        and not known.connection.closed
        and not known.connection.invalidated
    ):
        return known
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    if bind.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return None
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    direct = Direct(connection, raw.dbapi_connection, raw.driver_connection)
    session.info[_INFO_KEY] = direct
    return direct
