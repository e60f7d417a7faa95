"""The async engine and session factory, built at start-up (never at import time).

SQLite runs in WAL mode with foreign keys on and a busy timeout; Postgres goes through asyncpg with a bounded
pool, connect timeout and statement timeout, so an outage yields a fast error instead of a hang.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from oauth_service.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(settings: Settings) -> AsyncEngine:
    """Create the engine for ``settings.database_url``."""
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 5}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        # Statement parameters (emails, token hashes) never appear in error messages or tracebacks.
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_pool_timeout,
            "command_timeout": settings.db_statement_timeout_ms / 1000,
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "application_name": "oauth-service",
            },
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (rows are mapped to dataclasses anyway)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
