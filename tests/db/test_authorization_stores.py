"""SQL stores of the authorization endpoint, on SQLite and Postgres: codes (single use, replay revocation),
consents, login sessions, pending requests and the shared server secret."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.crypto.tokens import token_hash
from oauth_service.db.authorization_stores import (
    SqlAuthorizationCodeStore,
    SqlAuthorizationRequestStore,
    SqlConsentStore,
    SqlLoginSessionStore,
)
from oauth_service.db.server_secrets import server_secret
from oauth_service.db.stores import SqlRefreshTokenStore
from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.storage import CodeRecord, NewRefreshToken
from oauth_service.runtime import Runtime
from tests.factories import make_client, make_user

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return T0


async def _fixtures(runtime: Runtime) -> str:
    user, _ = await make_user(runtime)
    await make_client(
        runtime,
        client_id="web",
        grant_types=("authorization_code",),
        redirect_uris=("https://app.example/cb",),
    )
    return user.id


def _code(user_id: str) -> CodeRecord:
    return CodeRecord(
        code_hash=token_hash("code-1"),
        client_id="web",
        user_id=user_id,
        redirect_uri=None,
        scope=frozenset({"read", "write"}),
        auth_time=T0,
        expires_at=T0 + timedelta(seconds=60),
        code_challenge="c" * 43,
        code_challenge_method="S256",
    )


async def test_code_store_round_trip_and_single_consume(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        await SqlAuthorizationCodeStore(session, database, clock).save(_code(user_id))
        await session.commit()
    family = uuid.uuid4()
    async with runtime.sessionmaker() as session:
        store = SqlAuthorizationCodeStore(session, database, clock)
        assert await store.get(token_hash("code-1")) == _code(user_id)
        kwargs = {
            "family_id": family,
            "access_jti": "j1",
            "access_expires_at": T0 + timedelta(minutes=10),
        }
        assert await store.consume(token_hash("code-1"), T0, **kwargs) is True  # type: ignore[arg-type]
        await session.commit()
        assert await store.consume(token_hash("code-1"), T0, **kwargs) is False  # type: ignore[arg-type]
        await session.commit()
    async with runtime.sessionmaker() as session:
        used = await SqlAuthorizationCodeStore(session, database, clock).get(
            token_hash("code-1")
        )
    assert used is not None
    assert (used.used_at, used.family_id, used.access_jti) == (T0, family, "j1")


async def test_code_store_get_reads_user_in_same_query(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        await SqlAuthorizationCodeStore(session, database, clock).save(_code(user_id))
        await session.commit()
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with runtime.sessionmaker() as session:
            found = await SqlAuthorizationCodeStore(session, database, clock).get(
                token_hash("code-1")
            )
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert found is not None
    assert found.user is not None
    assert (found.user.id, found.user.email) == (user_id, "alice@example.com")
    assert (found.user.is_active, found.user.is_admin) == (True, False)


async def test_code_store_concurrent_consume_has_one_winner(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        await SqlAuthorizationCodeStore(session, database, clock).save(_code(user_id))
        await session.commit()

    async def attempt(jti: str) -> bool:
        async with runtime.sessionmaker() as session:
            store = SqlAuthorizationCodeStore(session, database, clock)
            won = await store.consume(
                token_hash("code-1"),
                T0,
                family_id=uuid.uuid4(),
                access_jti=jti,
                access_expires_at=T0,
            )
            await session.commit()
            return won

    results = await asyncio.gather(*(attempt(f"j{i}") for i in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_code_store_revoke_issued_commits_on_its_own(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        store = SqlAuthorizationCodeStore(session, database, clock)
        await store.save(_code(user_id))
        await store.consume(
            token_hash("code-1"),
            T0,
            family_id=uuid.uuid4(),
            access_jti="j9",
            access_expires_at=T0 + timedelta(minutes=5),
        )
        await session.commit()
    async with runtime.sessionmaker() as session:
        store = SqlAuthorizationCodeStore(session, database, clock)
        await store.revoke_issued(token_hash("code-1"), T0)
        await store.revoke_issued(token_hash("code-1"), T0)  # idempotent
        await session.rollback()  # the request's transaction failing does not undo it
    async with database.connect() as conn:
        rows = (
            (await conn.execute(text("SELECT jti FROM revoked_tokens"))).scalars().all()
        )
    assert rows == ["j9"]


async def test_consent_store_remembers_union_of_scopes(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        store = SqlConsentStore(session)
        assert await store.get(user_id, "web") is None
        await store.grant(user_id, "web", frozenset({"read"}), T0)
        await store.grant(user_id, "web", frozenset({"write"}), T0)
        await session.commit()
        assert await store.get(user_id, "web") == frozenset({"read", "write"})


async def test_login_session_store_hashes_ids_and_expires(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        store = SqlLoginSessionStore(session)
        raw = await store.create(
            user_id, auth_time=T0, expires_at=T0 + timedelta(hours=1)
        )
        await session.commit()
        live = await store.get(raw, T0)
        assert live is not None
        assert (live.user_id, live.auth_time) == (user_id, T0)
        assert await store.get(raw, T0 + timedelta(hours=1)) is None
        assert await store.get("forged", T0) is None
        await store.delete(raw)
        assert await store.get(raw, T0) is None
    async with database.connect() as conn:
        stored = (
            (await conn.execute(text("SELECT id_hash FROM login_sessions")))
            .scalars()
            .all()
        )
    assert raw not in stored


async def test_pending_request_store_round_trip(
    runtime: Runtime, database: AsyncEngine
) -> None:
    await _fixtures(runtime)
    request = AuthorizationRequest(
        client_id="web",
        response_type="code",
        redirect_uri="https://app.example/cb",
        scope=frozenset({"read"}),
        issuer="http://oauth.test",
        state="s",
        code_challenge="c" * 43,
        code_challenge_method="S256",
        prompt=frozenset({"login"}),
    )
    async with runtime.sessionmaker() as session:
        store = SqlAuthorizationRequestStore(session)
        raw = await store.save(
            request, created_at=T0, expires_at=T0 + timedelta(minutes=10)
        )
        await session.commit()
        pending = await store.get(raw, T0)
        assert pending is not None
        assert (pending.request, pending.created_at) == (request, T0)
        assert await store.get(raw, T0 + timedelta(minutes=10)) is None
        await store.delete(raw)
        await session.commit()
        assert await store.get(raw, T0) is None


async def test_server_secret_is_generated_once_and_shared(
    database: AsyncEngine,
) -> None:
    first, second = await asyncio.gather(
        server_secret(database, "test-secret", clock),
        server_secret(database, "test-secret", clock),
    )
    assert first == second
    assert len(first) == 32
    assert await server_secret(database, "test-secret", clock) == first


async def test_pending_request_store_sweeps_expired_requests(
    runtime: Runtime, database: AsyncEngine
) -> None:
    await _fixtures(runtime)
    request = AuthorizationRequest(
        client_id="web",
        response_type="code",
        redirect_uri="https://app.example/cb",
        scope=frozenset({"read"}),
        issuer="http://oauth.test",
    )
    async with runtime.sessionmaker() as session:
        store = SqlAuthorizationRequestStore(session)
        await store.save(request, created_at=T0, expires_at=T0 + timedelta(minutes=10))
        later = T0 + timedelta(minutes=11)
        await store.save(
            request, created_at=later, expires_at=later + timedelta(minutes=10)
        )
        await session.commit()
    async with database.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM authorization_requests"))
    assert count == 1


async def test_login_session_store_sweeps_expired_sessions(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        store = SqlLoginSessionStore(session)
        old = await store.create(
            user_id, auth_time=T0, expires_at=T0 + timedelta(hours=1)
        )
        later = T0 + timedelta(hours=2)
        await store.create(
            user_id, auth_time=later, expires_at=later + timedelta(hours=1)
        )
        await session.commit()
    async with database.connect() as conn:
        hashes = (
            (await conn.execute(text("SELECT id_hash FROM login_sessions")))
            .scalars()
            .all()
        )
    assert token_hash(old) not in hashes
    assert len(hashes) == 1


def _refresh(user_id: str, family: uuid.UUID, raw: str) -> NewRefreshToken:
    return NewRefreshToken(
        id=uuid.uuid4(),
        token_hash=token_hash(raw),
        family_id=family,
        parent_id=None,
        client_id="web",
        user_id=user_id,
        scope=frozenset({"read"}),
        issued_at=T0,
        expires_at=T0 + timedelta(days=1),
        family_expires_at=T0 + timedelta(days=30),
        auth_time=T0,
        access_jti="j-code",
        access_expires_at=T0 + timedelta(minutes=10),
    )


async def _count_refresh(database: AsyncEngine) -> int:
    async with database.connect() as conn:
        return int(
            (await conn.scalar(text("SELECT count(*) FROM refresh_tokens"))) or 0
        )


async def test_code_consumed_with_its_refresh_token_on_the_token_session(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """The token endpoint's session (autocommit on Postgres): consume + refresh insert, one winner of five."""
    user_id = await _fixtures(runtime)
    async with runtime.sessionmaker() as session:
        await SqlAuthorizationCodeStore(session, database, clock).save(_code(user_id))
        await session.commit()

    async def attempt(i: int) -> bool:
        family = uuid.uuid4()
        async with runtime.token_sessionmaker() as session:
            store = SqlAuthorizationCodeStore(session, database, clock)
            won = await store.consume(
                token_hash("code-1"),
                T0,
                family_id=family,
                access_jti=f"j{i}",
                access_expires_at=T0,
                refresh=_refresh(user_id, family, f"rt-{i}"),
            )
            await session.commit()
            return won

    results = await asyncio.gather(*(attempt(i) for i in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await _count_refresh(database) == 1
    async with runtime.sessionmaker() as session:
        used = await SqlAuthorizationCodeStore(session, database, clock).get(
            token_hash("code-1")
        )
    assert used is not None
    assert used.used_at is not None
    async with database.connect() as conn:
        family = await conn.scalar(text("SELECT family_id FROM refresh_tokens"))
    assert uuid.UUID(str(family)) == used.family_id


async def test_code_stays_unused_when_its_refresh_token_cannot_be_stored(
    runtime: Runtime, database: AsyncEngine
) -> None:
    """All or nothing: a refresh insert that fails (here a duplicate hash) leaves the code redeemable."""
    user_id = await _fixtures(runtime)
    taken = _refresh(user_id, uuid.uuid4(), "rt-taken")
    async with runtime.sessionmaker() as session:
        await SqlAuthorizationCodeStore(session, database, clock).save(_code(user_id))
        await SqlRefreshTokenStore(session, database).save(taken)
        await session.commit()
    family = uuid.uuid4()
    duplicate = dataclasses.replace(
        _refresh(user_id, family, "rt-taken"), id=uuid.uuid4()
    )
    async with runtime.token_sessionmaker() as session:
        store = SqlAuthorizationCodeStore(session, database, clock)
        with pytest.raises(IntegrityError):
            await store.consume(
                token_hash("code-1"),
                T0,
                family_id=family,
                access_jti="j1",
                access_expires_at=T0,
                refresh=duplicate,
            )
    async with runtime.sessionmaker() as session:
        code = await SqlAuthorizationCodeStore(session, database, clock).get(
            token_hash("code-1")
        )
    assert code is not None
    assert code.used_at is None
    assert code.family_id is None
    assert await _count_refresh(database) == 1
