"""The unit of work of every store: one operation, on a pooled connection held only while it runs.

The rule, the same on both backends: each store operation is atomic and committed when it returns. An
operation of one statement runs on an autocommit connection (no BEGIN or COMMIT round trip); one of several
statements runs in a transaction of its own. A request therefore never holds a connection between two
operations (not while a password hash waits for the CPU, nor while an error response is rendered), and a
refusal that must outlive the request (a family revoked on reuse) is committed like any other operation.
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Database:
    """Connections for store operations: ``statement()`` for one statement, ``transaction()`` for several."""

    __slots__ = ("_autocommit", "engine")

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Shares the engine's pool; only the isolation level of the connections it hands out differs.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def dialect(self) -> str:
        """The backend's name: ``postgresql`` or ``sqlite``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement commits as it runs: for an operation of one statement."""
        connection = await self._autocommit.connect()
        try:
            yield connection
        finally:
            # Closed here, not by ``async with``: its exit closes in a task of its own, three turns of the
            # event loop per operation. Nothing is pending on an autocommit connection: the close returns it
            # to the pool without waiting on the database.
            await connection.close()

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a transaction committed when the block ends (rolled back if it raises)."""
        return self.engine.begin()
