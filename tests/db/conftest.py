"""Fixtures of the store tests: the stores on the migrated engine, and an observer reading what they committed."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, QueuePool

from oauth_service.db.stores import build_stores
from oauth_service.oauth.storage import Stores
from tests.db.spending import clock


@pytest.fixture
def stores(database: AsyncEngine) -> Stores:
    """The stores of ``database``'s backend, as ``Runtime`` builds them (without the caches)."""
    return build_stores(database, clock=clock)


@pytest.fixture
def pool(database: AsyncEngine) -> QueuePool:
    """The stores' connection pool (a ``QueuePool`` on both test backends)."""
    value = database.pool
    assert isinstance(value, QueuePool)
    return value


@pytest.fixture
async def observer(db_url: str, database: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine of its own without a pool: each read is a new connection, which sees committed rows only."""
    del database  # requested so the rows it reads are cleaned up after the test
    engine = create_async_engine(db_url, poolclass=NullPool)
    yield engine
    await engine.dispose()
