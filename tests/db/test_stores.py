"""The SQL stores on SQLite and Postgres: mapping, rotation atomicity, family revocation committed on its own."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from oauth_service.db import admin
from oauth_service.db.direct import LazySession, direct_for
from oauth_service.db.engine import make_sessionmaker
from oauth_service.db.stores import build_stores
from oauth_service.oauth.storage import NewRefreshToken, Stores
from oauth_service.runtime import Runtime
from tests.factories import make_client, make_user

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _new_token(
    client_id: str,
    user_id: str | None,
    *,
    family: uuid.UUID,
    parent: uuid.UUID | None = None,
    jti: str | None = None,
    at: datetime = T0,
) -> NewRefreshToken:
    token_id = uuid.uuid4()
    return NewRefreshToken(
        id=token_id,
        token_hash=f"hash-{token_id.hex}",
        family_id=family,
        parent_id=parent,
        client_id=client_id,
        user_id=user_id,
        scope=frozenset({"read", "write"}),
        issued_at=at,
        expires_at=at + timedelta(days=1),
        family_expires_at=at + timedelta(days=30),
        auth_time=at,
        access_jti=jti or token_id.hex,
        access_expires_at=at + timedelta(minutes=10),
    )


async def _revoked_jtis(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return {
            row[0] for row in await conn.execute(text("SELECT jti FROM revoked_tokens"))
        }


@pytest.fixture
async def session(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    async with runtime.sessionmaker() as value:
        yield value


@pytest.fixture
def stores(session: AsyncSession, runtime: Runtime) -> Stores:
    return build_stores(session, runtime.engine)


async def test_client_store_get_maps_row(runtime: Runtime, stores: Stores) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    found = await stores.clients.get(client.client_id)
    assert found == client
    assert found is not None
    assert found.secret_hash is not None
    assert await stores.clients.get("nope") is None


async def test_user_store_get_by_email_is_case_insensitive(
    runtime: Runtime, stores: Stores
) -> None:
    user, _ = await make_user(runtime, email="Alice@Example.com")
    assert await stores.users.get_by_email("  alice@EXAMPLE.com ") == user
    assert await stores.users.get(user.id) == user
    assert await stores.users.get_by_email("bob@example.com") is None
    assert await stores.users.get("missing") is None


async def test_user_store_update_password_hash_persists(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    user, _ = await make_user(runtime)
    await stores.users.update_password_hash(
        user.id, "new-hash", replacing=user.password_hash
    )
    await session.commit()
    reloaded = await stores.users.get(user.id)
    assert reloaded is not None
    assert reloaded.password_hash == "new-hash"


async def test_user_store_rehash_does_not_overwrite_a_password_changed_meanwhile(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    user, _ = await make_user(runtime)
    async with (
        runtime.sessionmaker() as other
    ):  # the change commits while the login hashes
        changed = await admin.set_user_password(
            other,
            user_id=user.id,
            password="another long passphrase",
            hasher=runtime.passwords,
        )
        await other.commit()
    await stores.users.update_password_hash(
        user.id, "rehash-of-the-old-password", replacing=user.password_hash
    )
    await session.commit()
    reloaded = await stores.users.get(user.id)
    assert reloaded is not None
    assert reloaded.password_hash == changed.password_hash


async def test_scope_store_all_lists_seeded_scopes(stores: Stores) -> None:
    assert set(await stores.scopes.all()) == {"read", "write", "admin"}


async def test_refresh_store_save_and_get_round_trip(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime)
    new = _new_token(client.client_id, user.id, family=uuid.uuid4())
    await stores.refresh_tokens.save(new)
    await session.commit()
    record = await stores.refresh_tokens.get(new.token_hash)
    assert record is not None
    assert (record.id, record.family_id, record.scope) == (
        new.id,
        new.family_id,
        new.scope,
    )
    assert (record.expires_at, record.auth_time, record.access_jti) == (
        new.expires_at,
        T0,
        new.access_jti,
    )
    assert record.rotated_at is None
    assert record.revoked_at is None
    assert await stores.refresh_tokens.get("unknown") is None


async def test_refresh_store_rotate_wins_once(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    family = uuid.uuid4()
    first = _new_token(client.client_id, None, family=family)
    await stores.refresh_tokens.save(first)
    await session.commit()
    second = _new_token(client.client_id, None, family=family, parent=first.id)
    assert await stores.refresh_tokens.rotate(first.id, second, T0) is True
    await session.commit()
    third = _new_token(client.client_id, None, family=family, parent=first.id)
    assert await stores.refresh_tokens.rotate(first.id, third, T0) is False
    assert await stores.refresh_tokens.get(third.token_hash) is None
    successor = await stores.refresh_tokens.get_successor(first.id)
    assert successor is not None
    assert successor.id == second.id
    rotated = await stores.refresh_tokens.get(first.token_hash)
    assert rotated is not None
    assert rotated.rotated_at == T0


async def test_refresh_store_rotate_one_round_trip_on_postgres_stores_successor(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime)
    family = uuid.uuid4()
    first = _new_token(client.client_id, user.id, family=family)
    await stores.refresh_tokens.save(first)
    await session.commit()
    later = T0 + timedelta(minutes=5)
    second = _new_token(
        client.client_id, user.id, family=family, parent=first.id, at=later
    )
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert await stores.refresh_tokens.rotate(first.id, second, later) is True
    finally:
        event.remove(engine, "before_cursor_execute", record)
    await session.commit()
    postgres = runtime.engine.dialect.name == "postgresql"
    assert len(statements) == (1 if postgres else 2)
    stored = await stores.refresh_tokens.get(second.token_hash)
    assert stored is not None
    assert (stored.id, stored.family_id, stored.parent_id) == (
        second.id,
        family,
        first.id,
    )
    assert (stored.client_id, stored.user_id, stored.scope) == (
        client.client_id,
        user.id,
        frozenset({"read", "write"}),
    )
    assert (stored.issued_at, stored.expires_at, stored.family_expires_at) == (
        later,
        later + timedelta(days=1),
        later + timedelta(days=30),
    )
    assert (stored.auth_time, stored.rotated_at, stored.revoked_at) == (
        later,
        None,
        None,
    )
    rotated = await stores.refresh_tokens.get(first.token_hash)
    assert rotated is not None
    assert rotated.rotated_at == later


async def test_refresh_store_rotate_revoked_token_loses_and_inserts_nothing(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    family = uuid.uuid4()
    first = _new_token(client.client_id, None, family=family)
    await stores.refresh_tokens.save(first)
    await session.commit()
    await stores.refresh_tokens.revoke_family(family, T0)
    second = _new_token(client.client_id, None, family=family, parent=first.id)
    assert await stores.refresh_tokens.rotate(first.id, second, T0) is False
    assert await stores.refresh_tokens.get(second.token_hash) is None
    revoked = await stores.refresh_tokens.get(first.token_hash)
    assert revoked is not None
    assert (revoked.rotated_at, revoked.revoked_at) == (None, T0)


async def test_refresh_store_get_reads_user_in_same_query(
    runtime: Runtime, stores: Stores, session: AsyncSession
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime, is_admin=True)
    for_user = _new_token(client.client_id, user.id, family=uuid.uuid4())
    for_client = _new_token(client.client_id, None, family=uuid.uuid4())
    await stores.refresh_tokens.save(for_user)
    await stores.refresh_tokens.save(for_client)
    await session.commit()
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        found = await stores.refresh_tokens.get(for_user.token_hash)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert found is not None
    assert found.user is not None
    assert (found.user.id, found.user.email) == (user.id, user.email)
    assert (found.user.is_active, found.user.is_admin) == (True, True)
    assert found.user.password_hash == user.password_hash
    client_token = await stores.refresh_tokens.get(for_client.token_hash)
    assert client_token is not None
    assert client_token.user is None


async def test_refresh_store_revoke_family_survives_rollback(
    runtime: Runtime, stores: Stores, session: AsyncSession, database: AsyncEngine
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    family = uuid.uuid4()
    first = _new_token(client.client_id, None, family=family, jti="jti-1")
    second = _new_token(
        client.client_id, None, family=family, parent=first.id, jti="jti-2"
    )
    old = _new_token(
        client.client_id, None, family=family, jti="jti-old", at=T0 - timedelta(hours=1)
    )
    other = _new_token(client.client_id, None, family=uuid.uuid4(), jti="jti-other")
    for token in (first, second, old, other):
        await stores.refresh_tokens.save(token)
    await session.commit()
    await stores.refresh_tokens.revoke_family(family, T0)
    await (
        session.rollback()
    )  # the request's own transaction fails; the revocation must stay
    async with make_sessionmaker(database)() as fresh:
        check = build_stores(fresh, database)
        for token in (first, second, old):
            record = await check.refresh_tokens.get(token.token_hash)
            assert record is not None
            assert record.revoked_at == T0
        untouched = await check.refresh_tokens.get(other.token_hash)
        assert untouched is not None
        assert untouched.revoked_at is None
        # The access token of "old" had already expired: nothing to revoke.
        assert await _revoked_jtis(database) == {"jti-1", "jti-2"}
        assert await check.revoked_tokens.contains("jti-1") is True
        assert await check.revoked_tokens.contains("jti-other") is False
    await stores.refresh_tokens.revoke_family(family, T0)  # idempotent
    assert await _revoked_jtis(database) == {"jti-1", "jti-2"}


async def test_refresh_store_replace_successor_revokes_unused_successor(
    runtime: Runtime, stores: Stores, session: AsyncSession, database: AsyncEngine
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    family = uuid.uuid4()
    first = _new_token(client.client_id, None, family=family)
    lost = _new_token(
        client.client_id, None, family=family, parent=first.id, jti="jti-lost"
    )
    await stores.refresh_tokens.save(first)
    await stores.refresh_tokens.rotate(first.id, lost, T0)
    await session.commit()
    retry = _new_token(
        client.client_id,
        None,
        family=family,
        parent=first.id,
        at=T0 + timedelta(seconds=1),
    )
    assert await stores.refresh_tokens.replace_successor(lost.id, retry, T0) is True
    await session.commit()
    lost_record = await stores.refresh_tokens.get(lost.token_hash)
    assert lost_record is not None
    assert lost_record.revoked_at == T0
    assert await _revoked_jtis(database) == {"jti-lost"}
    successor = await stores.refresh_tokens.get_successor(first.id)
    assert successor is not None
    assert successor.id == retry.id
    again = _new_token(client.client_id, None, family=family, parent=first.id)
    assert await stores.refresh_tokens.replace_successor(lost.id, again, T0) is False


async def test_revoked_store_add_is_idempotent(
    stores: Stores, session: AsyncSession
) -> None:
    await stores.revoked_tokens.add("jti-x", T0)
    await stores.revoked_tokens.add("jti-x", T0)
    await session.commit()
    assert await stores.revoked_tokens.contains("jti-x") is True
    assert await stores.revoked_tokens.contains("jti-y") is False


async def test_token_session_commits_each_grant_write_at_once_on_postgres(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """The token endpoint's session: on Postgres no BEGIN/COMMIT round trips (each write is one statement, and
    durable when it returns); on SQLite an ordinary transaction. Grace-window replacement stays atomic."""
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    family = uuid.uuid4()
    first = _new_token(client.client_id, None, family=family)
    second = _new_token(client.client_id, None, family=family, parent=first.id)
    retry = _new_token(client.client_id, None, family=family, parent=first.id)
    postgres = database.dialect.name == "postgresql"
    async with runtime.token_sessionmaker() as session:
        stores = build_stores(session, database)
        await stores.refresh_tokens.save(first)
        assert await stores.refresh_tokens.rotate(first.id, second, T0) is True
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        if postgres:
            driver = raw.driver_connection
            assert driver is not None
            assert driver.is_in_transaction() is False
        async with database.connect() as other:
            seen = await other.scalar(
                text("SELECT count(*) FROM refresh_tokens WHERE family_id = :f"),
                {"f": family if postgres else family.hex},
            )
        assert seen == (2 if postgres else 0)
        await session.commit()
        assert await stores.refresh_tokens.replace_successor(second.id, retry, T0)
        await session.commit()
    async with runtime.sessionmaker() as check:
        refresh = build_stores(check, database).refresh_tokens
        replaced = await refresh.get(second.token_hash)
        assert replaced is not None
        assert replaced.revoked_at == T0
        assert await refresh.get(retry.token_hash) is not None
    assert await _revoked_jtis(database) == {second.access_jti}


async def test_token_session_reads_and_rotates_directly_on_postgres(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """On Postgres the token endpoint's refresh read and rotation bypass SQLAlchemy's execution (``db.direct``)
    and map to the same records as the session path; elsewhere they go through the session."""
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime)
    family = uuid.uuid4()
    first = _new_token(client.client_id, user.id, family=family)
    second = _new_token(client.client_id, user.id, family=family, parent=first.id)
    async with runtime.sessionmaker() as session:
        await build_stores(session, database).refresh_tokens.save(first)
        await session.commit()
        expected = await build_stores(session, database).refresh_tokens.get(
            first.token_hash
        )
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with runtime.token_sessionmaker() as session:
            refresh = build_stores(session, database).refresh_tokens
            assert await refresh.get(first.token_hash) == expected
            assert await refresh.rotate(first.id, second, T0) is True
            assert await refresh.rotate(first.id, second, T0) is False
            await session.commit()
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)
    postgres = database.dialect.name == "postgresql"
    assert len(statements) == (0 if postgres else 4)
    assert expected is not None
    assert expected.user is not None
    assert expected.user.id == user.id


async def test_direct_connection_is_looked_up_once_per_held_connection(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """Kept while the session holds its connection; looked up again once a commit or rollback released it."""
    async with runtime.token_sessionmaker() as session:
        first = await direct_for(session)
        if database.dialect.name != "postgresql":
            assert first is None
            return
        assert first is not None
        assert await direct_for(session) is first
        await session.commit()
        again = await direct_for(session)
        assert again is not None
        assert again is not first
        assert await again.driver.fetchval("SELECT 1") == 1
        await session.rollback()
        assert await direct_for(session) is not again


async def test_lazy_session_lends_a_pooled_connection_without_opening_a_session(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """On Postgres a refresh's read and rotation through a lazy token session open no session: one pooled
    connection is lent and given back on rollback and on close. Elsewhere the session opens as usual."""
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    family = uuid.uuid4()
    first = _new_token(client.client_id, None, family=family)
    second = _new_token(client.client_id, None, family=family, parent=first.id)
    async with runtime.sessionmaker() as session:
        await build_stores(session, database).refresh_tokens.save(first)
        await session.commit()
    postgres = database.dialect.name == "postgresql"
    pool = runtime.engine.sync_engine.pool
    lazy = LazySession(runtime.token_sessionmaker)
    try:
        refresh = build_stores(cast(AsyncSession, lazy), database).refresh_tokens
        found = await refresh.get(first.token_hash)
        assert found is not None
        assert found.id == first.id
        assert await refresh.rotate(first.id, second, T0) is True
        assert (lazy.session is None) is postgres
        assert pool.checkedout() == 1  # type: ignore[attr-defined]
        await lazy.rollback()
        if postgres:
            assert pool.checkedout() == 0  # type: ignore[attr-defined]
            assert await refresh.get(second.token_hash) is not None  # lent again
    finally:
        await lazy.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    async with runtime.sessionmaker() as check:
        stored = await build_stores(check, database).refresh_tokens.get(
            second.token_hash
        )
    assert (stored is not None) is postgres  # SQLite: the rotation was rolled back


async def test_lazy_session_password_grant_reads_user_and_stores_token_without_a_session(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """The password grant's statements through a lazy token session: on Postgres the user read and the refresh
    token insert run on lent pooled connections (none held across the release before the hash) and open no
    session; elsewhere through the session. Either way the user is read and the token row is stored."""
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime, email="Dora@Example.com")
    postgres = database.dialect.name == "postgresql"
    pool = runtime.engine.sync_engine.pool
    token = _new_token(client.client_id, user.id, family=uuid.uuid4())
    lazy = LazySession(runtime.token_sessionmaker)
    try:
        stores = build_stores(cast(AsyncSession, lazy), database)
        found = await stores.users.get_by_email("  dora@EXAMPLE.com ")
        assert found is not None
        assert (found.id, found.email, found.is_active) == (user.id, user.email, True)
        assert found.password_hash == user.password_hash
        assert await stores.users.get_by_email("nobody@example.com") is None
        await stores.users.release()
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        await stores.refresh_tokens.save(token)
        assert (lazy.session is None) is postgres
        if lazy.in_transaction():
            await lazy.commit()
    finally:
        await lazy.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    async with runtime.sessionmaker() as check:
        stored = await build_stores(check, database).refresh_tokens.get(
            token.token_hash
        )
    assert stored is not None
    assert (stored.user_id, stored.scope) == (user.id, token.scope)
    assert stored.family_expires_at == token.family_expires_at


@pytest.mark.postgres
async def test_direct_errors_surface_as_through_the_session(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """A database error becomes SQLAlchemy's (IntegrityError); anything else (a client-side timeout) is raised
    as it is, as the session does, so the 503 handlers for OSError and TimeoutError still see it."""
    del (
        database
    )  # requested for the clean-up; direct statements exist on Postgres only (marker)
    lazy = LazySession(runtime.token_sessionmaker)
    try:
        direct = await lazy.direct()
        assert direct is not None
        timeout = TimeoutError()
        assert await direct.translate("SELECT 1", timeout) is timeout
        unique = asyncpg.exceptions.UniqueViolationError("duplicate key")
        translated = await direct.translate("INSERT", unique)
        assert isinstance(translated, IntegrityError)
        assert translated.orig is not None
    finally:
        await lazy.close()
