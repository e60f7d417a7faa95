"""``SqlUserStore.release``: a read-only unit of work gives its pooled connection back; one that wrote keeps it.

Every case runs on SQLite and Postgres. Ordinary sessions are transactional on both, the token endpoint's
``LazySession`` autocommits on Postgres (where a write is durable as soon as it ran, so releasing is safe)
and is transactional on SQLite (where a write must keep its transaction until the endpoint commits).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from oauth_service.db.direct import LazySession, direct_for
from oauth_service.db.stores import SqlUserStore
from oauth_service.db.tables import ScopeRow
from oauth_service.runtime import Runtime
from tests.factories import make_user, queue_pool

NEW_HASH = "$argon2id$v=19$m=19456,t=3,p=1$stored-by-the-test"


async def _stored_hash(engine: AsyncEngine, user_id: str) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
        )
    return str(value)


@pytest.fixture
async def session(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    async with runtime.sessionmaker() as value:
        yield value


@pytest.fixture
async def lazy(runtime: Runtime) -> AsyncIterator[LazySession]:
    value = LazySession(runtime.token_sessionmaker)
    try:
        yield value
    finally:
        await value.close()


async def test_user_release_after_reads_returns_connection_and_session_is_reusable(
    runtime: Runtime, database: AsyncEngine, session: AsyncSession
) -> None:
    user, _ = await make_user(runtime)
    users = SqlUserStore(session)
    assert await users.get_by_email(user.email) == user
    assert queue_pool(runtime).checkedout() == 1
    await users.release()
    assert queue_pool(runtime).checkedout() == 0
    assert not session.in_transaction()
    # Later statements check a connection out again, and their writes commit as usual.
    await users.update_password_hash(user.id, NEW_HASH, replacing=user.password_hash)
    await session.commit()
    assert await _stored_hash(database, user.id) == NEW_HASH


async def test_user_release_after_a_write_keeps_the_transaction(
    runtime: Runtime, database: AsyncEngine, session: AsyncSession
) -> None:
    user, _ = await make_user(runtime)
    users = SqlUserStore(session)
    await users.update_password_hash(
        user.id, NEW_HASH, replacing=user.password_hash
    )  # a Core UPDATE: the ORM does not see it
    await users.get_by_email(user.email)
    await users.release()
    assert queue_pool(runtime).checkedout() == 1
    assert session.in_transaction()
    await session.commit()
    assert await _stored_hash(database, user.id) == NEW_HASH


async def test_user_release_keeps_unflushed_orm_changes(
    runtime: Runtime, database: AsyncEngine, session: AsyncSession
) -> None:
    user, _ = await make_user(runtime)
    users = SqlUserStore(session)
    await users.get_by_email(user.email)
    scope = ScopeRow(name="photos", description="kept", created_at=datetime.now(UTC))
    session.add(scope)
    await users.release()
    assert scope in session.new
    assert queue_pool(runtime).checkedout() == 1
    await session.commit()
    async with database.connect() as conn:
        stored = await conn.scalar(
            text("SELECT description FROM scopes WHERE name = 'photos'")
        )
    assert stored == "kept"


async def test_user_release_on_token_session_returns_connection_and_reuses_it(
    runtime: Runtime, database: AsyncEngine, lazy: LazySession
) -> None:
    user, _ = await make_user(runtime)
    users = SqlUserStore(cast(AsyncSession, lazy))
    assert await users.get_by_email(user.email) == user
    assert queue_pool(runtime).checkedout() == 1
    await users.release()
    assert queue_pool(runtime).checkedout() == 0
    await users.update_password_hash(user.id, NEW_HASH, replacing=user.password_hash)
    if lazy.in_transaction():  # as the token endpoint ends a request
        await lazy.commit()
    assert await _stored_hash(database, user.id) == NEW_HASH


async def test_user_release_on_token_session_never_drops_a_write(
    runtime: Runtime, database: AsyncEngine, lazy: LazySession
) -> None:
    user, _ = await make_user(runtime)
    users = SqlUserStore(cast(AsyncSession, lazy))
    await users.update_password_hash(user.id, NEW_HASH, replacing=user.password_hash)
    await users.get_by_email(user.email)
    await users.release()
    # Postgres: the UPDATE committed as it ran (autocommit), so the connection could go back; SQLite: kept.
    postgres = database.dialect.name == "postgresql"
    assert queue_pool(runtime).checkedout() == (0 if postgres else 1)
    if lazy.in_transaction():
        await lazy.commit()
    assert await _stored_hash(database, user.id) == NEW_HASH


@pytest.mark.postgres
async def test_user_release_gives_back_the_connection_lent_to_direct_statements(
    runtime: Runtime, database: AsyncEngine, lazy: LazySession
) -> None:
    del (
        database
    )  # requested for the clean-up; direct statements exist on Postgres only (marker)
    assert await direct_for(lazy) is not None
    assert queue_pool(runtime).checkedout() == 1
    await SqlUserStore(cast(AsyncSession, lazy)).release()
    assert queue_pool(runtime).checkedout() == 0
    again = await direct_for(lazy)  # lent anew on the next use
    assert again is not None
    assert again.usable
