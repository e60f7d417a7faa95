"""Giving a read-only unit of work's pooled connection back before a long wait (a password hash).

Whether the session has written is asked of the database, never assumed: a Core ``insert``/``update`` run
through the session leaves no trace in the ORM's ``new``/``dirty``/``deleted``. Ending the transaction is a
rollback, so a release can never make anything durable early; a session that has written keeps its connection.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from oauth_service.db.direct import LazySession

# A Postgres transaction gets an id at its first write (or row lock), never for reads: NULL means nothing to lose.
# ``txid_current_if_assigned`` exists since Postgres 10 (``pg_current_xact_id_if_assigned`` only since 13).
_PG_HAS_WRITTEN = text("SELECT txid_current_if_assigned() IS NOT NULL")


async def has_written(session: AsyncSession) -> bool:
    """Whether ending ``session``'s transaction now would commit or drop a write (then it is kept).

    Asked of the database, because the ORM cannot tell: a Core ``insert``/``update`` run through the session
    leaves no trace in ``new``/``dirty``/``deleted``. A backend we cannot ask counts as written.
    """
    if session.new or session.dirty or session.deleted:
        return True  # ORM changes not yet flushed (autoflush is off)
    if not session.in_transaction():
        return False
    if (
        session.get_bind().get_execution_options().get("isolation_level")
        == "AUTOCOMMIT"
    ):
        return False  # every statement committed as it ran (the token endpoint on Postgres)
    connection = await session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # pysqlite and aiosqlite BEGIN only before the first write: reads leave the driver outside a transaction.
        driver = (await connection.get_raw_connection()).driver_connection
        return driver is None or bool(driver.in_transaction)
    if dialect == "postgresql":
        return bool(await connection.scalar(_PG_HAS_WRITTEN))
    return True


async def release_reads(session: AsyncSession | LazySession) -> None:
    """Give ``session``'s connection back unless it has written; the session stays usable afterwards.

    For the token endpoint's ``LazySession`` this also returns the connection it lent to direct statements.
    """
    if isinstance(session, LazySession):
        opened = session.session
        if opened is None or not await has_written(opened):
            await session.rollback()
    elif session.in_transaction() and not await has_written(session):
        await session.rollback()
