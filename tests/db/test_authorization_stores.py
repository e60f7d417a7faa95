"""SQL stores of the authorization endpoint, on SQLite and Postgres: codes (stored, read with their user, replay
revocation), consents, login sessions, pending requests and the shared server secret.

Redeeming a code (``redeem``) has its own tests (``test_code_redemption``); consents, login sessions and pending
requests live in the page's session and commit with it.
"""

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.crypto.tokens import token_hash
from oauth_service.db.authorization_stores import (
    SqlAuthorizationRequestStore,
    SqlConsentStore,
    SqlLoginSessionStore,
)
from oauth_service.db.server_secrets import server_secret
from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.storage import CodeRecord, Stores
from oauth_service.runtime import Runtime
from tests.db.spending import (
    T0,
    clock,
    code_claim,
    code_record,
    code_row,
    revoked_jtis,
)
from tests.factories import make_client, make_user


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
    return code_record(user_id, redirect_uri=None, challenge="c" * 43, method="S256")


async def test_code_store_round_trip_and_single_redemption(
    runtime: Runtime, stores: Stores, observer: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    await stores.codes.save(_code(user_id))
    assert await stores.codes.get(token_hash("code-1")) == _code(user_id)
    assert await code_row(observer, token_hash("code-1")) == _code(user_id)
    claim = code_claim(
        _code(user_id),
        redirect_uri=None,
        s256_challenge="c" * 43,
        verifier_sent=True,
        with_refresh=False,
    )
    assert await stores.codes.redeem(claim) is not None
    assert await stores.codes.redeem(claim) is None
    used = await stores.codes.get(token_hash("code-1"))
    assert used is not None
    assert (used.used_at, used.family_id, used.access_jti) == (
        claim.at,
        claim.family_id,
        claim.access.jti,
    )
    assert used.access_expires_at == claim.access.expires_at


async def test_code_store_get_reads_user_in_same_query(
    runtime: Runtime, stores: Stores, database: AsyncEngine
) -> None:
    user_id = await _fixtures(runtime)
    await stores.codes.save(_code(user_id))
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(database.sync_engine, "before_cursor_execute", record)
    try:
        found = await stores.codes.get(token_hash("code-1"))
    finally:
        event.remove(database.sync_engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert found is not None
    assert found.user is not None
    assert (found.user.id, found.user.email) == (user_id, "alice@example.com")
    assert (found.user.is_active, found.user.is_admin) == (True, False)
    assert await stores.codes.get(token_hash("unknown")) is None


async def test_code_store_revoke_issued_commits_on_its_own(
    runtime: Runtime, stores: Stores, observer: AsyncEngine
) -> None:
    """Code replay: the access token the code issued is listed, committed when it returns, idempotent."""
    user_id = await _fixtures(runtime)
    unused = code_record(user_id, raw="unused", redirect_uri=None)
    await stores.codes.save(unused)
    await stores.codes.revoke_issued(unused.code_hash, T0)  # nothing issued yet
    await stores.codes.revoke_issued(token_hash("unknown"), T0)
    code = code_record(user_id, redirect_uri=None)
    await stores.codes.save(code)
    claim = code_claim(code, redirect_uri=None)
    assert await stores.codes.redeem(claim) is not None
    await stores.codes.revoke_issued(code.code_hash, claim.access.expires_at)
    assert await revoked_jtis(observer) == set()  # already expired: nothing to list
    await stores.codes.revoke_issued(code.code_hash, claim.at)
    await stores.codes.revoke_issued(code.code_hash, claim.at)  # idempotent
    assert await revoked_jtis(observer) == {claim.access.jti}


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
