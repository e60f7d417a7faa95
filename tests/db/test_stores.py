"""The stores on SQLite and Postgres: the backend chosen once, row mapping, and the operations both run the same way
(``db.stores.common``): refresh-token reads, family revocation, grace-window replacement, the revocation list."""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db import admin
from oauth_service.db.stores import build_stores
from oauth_service.db.stores.postgres import (
    PostgresAuthorizationCodeStore,
    PostgresRefreshTokenStore,
    PostgresUserStore,
)
from oauth_service.db.stores.sqlite import (
    SqliteAuthorizationCodeStore,
    SqliteRefreshTokenStore,
)
from oauth_service.oauth.revocation_list import RevocationList
from oauth_service.oauth.storage import Stores
from oauth_service.runtime import Runtime
from tests.db.spending import (
    T0,
    children,
    clock,
    new_token,
    password_hash,
    refresh_claim,
    refresh_row,
    refresh_rows,
    revoked_jtis,
)
from tests.factories import make_client, make_user

REFRESH_GRANTS = ("password", "refresh_token")


async def _no_revocations(_: float) -> dict[str, float]:
    return {}


async def _not_revoked(_: str) -> bool:
    return False


def _revocation_list() -> RevocationList:
    """A list that loads nothing from the database: what it holds was put there by the stores."""
    return RevocationList(_no_revocations, _not_revoked, ttl=3600)


def _count_statements(engine: AsyncEngine) -> tuple[list[str], Any]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return statements, record


async def test_build_stores_picks_the_backend_once(database: AsyncEngine) -> None:
    stores = build_stores(database, clock=clock)
    if database.dialect.name == "postgresql":
        assert isinstance(stores.refresh_tokens, PostgresRefreshTokenStore)
        assert isinstance(stores.codes, PostgresAuthorizationCodeStore)
        assert isinstance(stores.users, PostgresUserStore)
    else:
        assert isinstance(stores.refresh_tokens, SqliteRefreshTokenStore)
        assert isinstance(stores.codes, SqliteAuthorizationCodeStore)


async def test_client_store_get_maps_row(runtime: Runtime, stores: Stores) -> None:
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    found = await stores.clients.get(client.client_id)
    assert found == client
    assert found is not None
    assert found.secret_hash is not None
    assert await stores.clients.reload(client.client_id) == client
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
    runtime: Runtime, stores: Stores, observer: AsyncEngine
) -> None:
    user, _ = await make_user(runtime)
    await stores.users.update_password_hash(
        user.id, "new-hash", replacing=user.password_hash
    )
    assert await password_hash(observer, user.id) == "new-hash"


async def test_user_store_rehash_does_not_overwrite_a_password_changed_meanwhile(
    runtime: Runtime, stores: Stores, observer: AsyncEngine
) -> None:
    user, _ = await make_user(runtime)
    # The change commits while the login hashes the old password again.
    async with runtime.sessionmaker() as other:
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
    assert await password_hash(observer, user.id) == changed.password_hash


async def test_scope_store_all_lists_seeded_scopes(stores: Stores) -> None:
    assert set(await stores.scopes.all()) == {
        "read",
        "write",
        "admin",
        "openid",
        "profile",
        "email",
        "offline_access",
    }


async def test_refresh_store_save_and_get_round_trip(
    runtime: Runtime, stores: Stores
) -> None:
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    user, _ = await make_user(runtime)
    new = new_token(client.client_id, user.id)
    await stores.refresh_tokens.save(new)
    record = await stores.refresh_tokens.get(new.token_hash)
    assert record is not None
    assert (record.id, record.family_id, record.parent_id, record.scope) == (
        new.id,
        new.family_id,
        None,
        new.scope,
    )
    assert (record.client_id, record.user_id) == (client.client_id, user.id)
    assert (record.issued_at, record.expires_at, record.family_expires_at) == (
        new.issued_at,
        new.expires_at,
        new.family_expires_at,
    )
    assert (record.auth_time, record.access_jti, record.access_expires_at) == (
        new.auth_time,
        new.access_jti,
        new.access_expires_at,
    )
    assert (record.rotated_at, record.revoked_at) == (None, None)
    assert await stores.refresh_tokens.get("unknown") is None


async def test_refresh_store_get_reads_user_in_same_query(
    runtime: Runtime, stores: Stores, database: AsyncEngine
) -> None:
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    user, _ = await make_user(runtime, is_admin=True)
    for_user = new_token(client.client_id, user.id)
    for_client = new_token(client.client_id, None)
    await stores.refresh_tokens.save(for_user)
    await stores.refresh_tokens.save(for_client)
    statements, record = _count_statements(database)
    try:
        found = await stores.refresh_tokens.get(for_user.token_hash)
    finally:
        event.remove(database.sync_engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert found is not None
    assert found.user == user
    assert found.user is not None
    assert found.user.password_hash == user.password_hash
    client_token = await stores.refresh_tokens.get(for_client.token_hash)
    assert client_token is not None
    assert client_token.user is None


async def test_refresh_store_get_successor_is_the_newest_child(
    runtime: Runtime, stores: Stores
) -> None:
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    first = new_token(client.client_id, None)
    await stores.refresh_tokens.save(first)
    assert await stores.refresh_tokens.get_successor(first.id) is None
    older = new_token(
        client.client_id, None, family=first.family_id, parent=first.id, at=T0
    )
    newer = new_token(
        client.client_id,
        None,
        family=first.family_id,
        parent=first.id,
        at=T0 + timedelta(seconds=1),
    )
    unrelated = new_token(client.client_id, None, parent=first.id)  # another family
    for token in (older, newer, unrelated):
        await stores.refresh_tokens.save(token)
    found = await stores.refresh_tokens.get_successor(first.id)
    assert found is not None
    assert found.id == newer.id


async def test_refresh_store_revoke_family_revokes_every_link_and_live_access_token(
    runtime: Runtime, database: AsyncEngine, observer: AsyncEngine
) -> None:
    """Committed when it returns (read on another connection, no commit anywhere), on the list at once."""
    revocations = _revocation_list()
    stores = build_stores(database, clock=clock, revocations=revocations)
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    family = uuid.uuid4()
    first = new_token(client.client_id, None, family=family, jti="jti-1")
    second = new_token(
        client.client_id, None, family=family, parent=first.id, jti="jti-2"
    )
    old = new_token(
        client.client_id, None, family=family, jti="jti-old", at=T0 - timedelta(hours=1)
    )
    other = new_token(client.client_id, None, jti="jti-other")
    for token in (first, second, old, other):
        await stores.refresh_tokens.save(token)
    await stores.refresh_tokens.revoke_family(family, T0)
    for token in (first, second, old):
        assert (await refresh_row(observer, token.id)).revoked_at == T0
    assert (await refresh_row(observer, other.id)).revoked_at is None
    # The access token of "old" had already expired: nothing to revoke.
    assert await revoked_jtis(observer) == {"jti-1", "jti-2"}
    assert len(revocations) == 2
    assert await stores.revoked_tokens.contains("jti-1") is True
    assert await stores.revoked_tokens.contains("jti-other") is False
    later = T0 + timedelta(minutes=1)
    await stores.refresh_tokens.revoke_family(family, later)  # idempotent
    assert await revoked_jtis(observer) == {"jti-1", "jti-2"}
    assert (await refresh_row(observer, first.id)).revoked_at == T0


async def test_refresh_store_replace_successor_revokes_unused_successor(
    runtime: Runtime, database: AsyncEngine, observer: AsyncEngine
) -> None:
    revocations = _revocation_list()
    stores = build_stores(database, clock=clock, revocations=revocations)
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    first = new_token(client.client_id, None)
    await stores.refresh_tokens.save(first)
    claim = refresh_claim(first, at=T0)
    assert await stores.refresh_tokens.rotate(claim) is not None
    lost = await stores.refresh_tokens.get(claim.successor.token_hash)
    assert lost is not None
    retry = new_token(
        client.client_id,
        None,
        family=first.family_id,
        parent=first.id,
        at=T0 + timedelta(seconds=1),
    )
    at = T0 + timedelta(seconds=1)
    assert await stores.refresh_tokens.replace_successor(lost.id, retry, at) is True
    assert (await refresh_row(observer, lost.id)).revoked_at == at
    assert await revoked_jtis(observer) == {claim.access.jti}
    assert len(revocations) == 1
    successor = await stores.refresh_tokens.get_successor(first.id)
    assert successor is not None
    assert successor.id == retry.id
    # The lost successor is revoked now: a second replacement is refused and stores nothing.
    again = new_token(client.client_id, None, family=first.family_id, parent=first.id)
    assert await stores.refresh_tokens.replace_successor(lost.id, again, at) is False
    assert await stores.refresh_tokens.get(again.token_hash) is None
    assert {token.id for token in await children(observer, first.id)} == {
        lost.id,
        retry.id,
    }


async def test_refresh_store_replace_successor_refuses_a_used_successor(
    runtime: Runtime, stores: Stores, observer: AsyncEngine
) -> None:
    client, _ = await make_client(runtime, grant_types=REFRESH_GRANTS)
    first = new_token(client.client_id, None)
    await stores.refresh_tokens.save(first)
    claim = refresh_claim(first, at=T0)
    assert await stores.refresh_tokens.rotate(claim) is not None
    used = await stores.refresh_tokens.get(claim.successor.token_hash)
    assert used is not None
    next_claim = refresh_claim(first, presented_hash=used.token_hash, at=T0)
    assert await stores.refresh_tokens.rotate(next_claim) is not None
    retry = new_token(client.client_id, None, family=first.family_id, parent=first.id)
    assert await stores.refresh_tokens.replace_successor(used.id, retry, T0) is False
    stored = await refresh_row(observer, used.id)
    assert (stored.rotated_at, stored.revoked_at) == (T0, None)
    assert retry.id not in {token.id for token in await refresh_rows(observer)}
    assert await revoked_jtis(observer) == set()


async def test_revoked_store_add_is_idempotent(
    database: AsyncEngine, observer: AsyncEngine
) -> None:
    revocations = _revocation_list()
    stores = build_stores(database, clock=clock, revocations=revocations)
    await stores.revoked_tokens.add("jti-x", T0)
    await stores.revoked_tokens.add("jti-x", T0 + timedelta(minutes=1))
    assert await revoked_jtis(observer) == {"jti-x"}
    assert len(revocations) == 1
    plain = build_stores(database, clock=clock).revoked_tokens
    assert await plain.contains("jti-x") is True
    assert await plain.contains("jti-y") is False
