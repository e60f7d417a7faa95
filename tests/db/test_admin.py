"""``oauth_service.db.admin`` on SQLite and Postgres: what it writes, and that rejected input writes nothing."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, select, table
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from oauth_service.crypto.tokens import token_hash, verify_token_hash
from oauth_service.db import admin
from oauth_service.db.tables import ClientRow, LoginSessionRow, RefreshTokenRow, UserRow
from oauth_service.runtime import Runtime
from tests.factories import make_client, make_user


async def _count(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(select(func.count()).select_from(table(name)))
        return int(result.scalar_one())


async def test_create_user_stores_argon2id_hash_and_normalized_email(
    runtime: Runtime,
) -> None:
    user, password = await make_user(runtime, email="  Alice@Example.COM ")
    assert user.email == "Alice@Example.COM"
    assert user.password_hash.startswith("$argon2id$")
    assert (await runtime.passwords.verify(user.password_hash, password)).ok
    async with runtime.sessionmaker() as session:
        row = await session.get(UserRow, user.id)
    assert row is not None
    assert row.email_normalized == "alice@example.com"
    assert row.created_at.tzinfo is not None
    assert "password_hash" not in repr(user)


async def test_create_user_with_duplicate_email_other_case_raises(
    runtime: Runtime, database: AsyncEngine
) -> None:
    await make_user(runtime, email="alice@example.com")
    with pytest.raises(admin.AdminError, match="already exists"):
        await make_user(runtime, email="ALICE@example.com")
    assert await _count(database, "users") == 1


async def test_create_user_with_short_password_writes_nothing(
    runtime: Runtime, database: AsyncEngine
) -> None:
    with pytest.raises(admin.AdminError, match="at least 8"):
        await make_user(runtime, password="1234567")
    assert await _count(database, "users") == 0


async def test_list_users_ordered_by_email(runtime: Runtime) -> None:
    await make_user(runtime, email="zed@example.com")
    await make_user(runtime, email="Bob@example.com", is_admin=True)
    async with runtime.sessionmaker() as session:
        users = await admin.list_users(session)
    assert [(u.email, u.is_admin) for u in users] == [
        ("Bob@example.com", True),
        ("zed@example.com", False),
    ]


async def _seed_grants(runtime: Runtime, user_id: str, client_id: str) -> None:
    now = datetime.now(UTC)
    async with runtime.sessionmaker() as session:
        session.add(
            RefreshTokenRow(
                id=uuid4(),
                token_hash=token_hash("rt"),
                family_id=uuid4(),
                client_id=client_id,
                user_id=user_id,
                scope="read",
                issued_at=now,
                expires_at=now + timedelta(days=1),
                family_expires_at=now + timedelta(days=30),
            )
        )
        session.add(
            LoginSessionRow(
                id_hash=token_hash("sid"),
                user_id=user_id,
                auth_time=now,
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        await session.commit()


async def test_deactivate_user_revokes_refresh_tokens_and_sessions(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user, _ = await make_user(runtime)
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    await _seed_grants(runtime, user.id, client.client_id)
    async with runtime.sessionmaker() as session:
        updated = await admin.deactivate_user(session, email="ALICE@example.com")
        await session.commit()
    assert updated.is_active is False
    async with runtime.sessionmaker() as session:
        revoked = await session.scalar(select(col(RefreshTokenRow.revoked_at)))
    assert revoked is not None
    assert await _count(database, "login_sessions") == 0


async def test_set_user_password_rehashes_and_revokes(runtime: Runtime) -> None:
    user, old = await make_user(runtime)
    client, _ = await make_client(runtime, grant_types=("password",))
    await _seed_grants(runtime, user.id, client.client_id)
    async with runtime.sessionmaker() as session:
        updated = await admin.set_user_password(
            session,
            user_id=user.id,
            password="a new passphrase",
            hasher=runtime.passwords,
        )
        await session.commit()
    assert not (await runtime.passwords.verify(updated.password_hash, old)).ok
    assert (
        await runtime.passwords.verify(updated.password_hash, "a new passphrase")
    ).ok
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(col(RefreshTokenRow.revoked_at))) is not None


async def test_find_user_unknown_raises(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session:
        with pytest.raises(admin.AdminError, match="no such user"):
            await admin.find_user(session, email="ghost@example.com")
        with pytest.raises(admin.AdminError, match="exactly one"):
            await admin.find_user(session)


async def test_create_confidential_client_returns_secret_once_stores_hash(
    runtime: Runtime,
) -> None:
    client, secret = await make_client(runtime, name=" Billing ", scopes=("read",))
    assert secret is not None
    assert len(secret) >= 43  # 256 bits, base64url
    assert client.name == "Billing"
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.grant_types == frozenset({"client_credentials"})
    assert client.scopes == frozenset({"read"})
    async with runtime.sessionmaker() as session:
        row = await session.get(ClientRow, client.client_id)
    assert row is not None
    assert row.secret_hash == token_hash(secret)
    assert secret not in repr(client)


async def test_create_public_client_has_no_secret(runtime: Runtime) -> None:
    client, secret = await make_client(
        runtime,
        client_id="spa",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("http://127.0.0.1:8000/cb", "com.example.app:/cb"),
        is_public=True,
        is_first_party=True,
    )
    assert secret is None
    assert client.client_id == "spa"
    assert client.secret_hash is None
    assert client.token_endpoint_auth_method == "none"
    assert client.redirect_uris == ("http://127.0.0.1:8000/cb", "com.example.app:/cb")
    assert client.is_first_party


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"grant_types": ("magic",)}, "unknown grant type 'magic'"),
        ({"scopes": ("read", "nope")}, "unknown scope 'nope'"),
        (
            {
                "grant_types": ("authorization_code",),
                "redirect_uris": ("https://a.example/#x",),
            },
            "must not contain a fragment",
        ),
        (
            {
                "grant_types": ("authorization_code",),
                "redirect_uris": ("http://a.example/cb",),
            },
            "must use https",
        ),
        ({"is_public": True}, "public client cannot use client_credentials"),
        ({"grant_types": ("implicit",)}, "needs at least one redirect URI"),
        ({"client_id": "taken"}, "client_id 'taken' already exists"),
    ],
    ids=[
        "grant",
        "scope",
        "fragment",
        "http",
        "public-cc",
        "no-redirect",
        "duplicate-id",
    ],
)
async def test_create_client_bad_input_writes_nothing(
    runtime: Runtime, database: AsyncEngine, overrides: dict[str, object], message: str
) -> None:
    await make_client(runtime, client_id="taken")
    with pytest.raises(admin.AdminError, match=message):
        await make_client(runtime, **overrides)  # type: ignore[arg-type]
    assert await _count(database, "clients") == 1


async def test_rotate_client_secret_replaces_hash(runtime: Runtime) -> None:
    client, old = await make_client(runtime)
    async with runtime.sessionmaker() as session:
        rotated, new = await admin.rotate_client_secret(
            session, client_id=client.client_id
        )
        await session.commit()
    assert old is not None
    assert new != old
    assert rotated.secret_hash is not None
    assert verify_token_hash(new, rotated.secret_hash)
    assert not verify_token_hash(old, rotated.secret_hash)


async def test_rotate_client_secret_public_client_raises(runtime: Runtime) -> None:
    client, _ = await make_client(
        runtime,
        grant_types=("implicit",),
        redirect_uris=("https://a.example/cb",),
        is_public=True,
    )
    async with runtime.sessionmaker() as session:
        with pytest.raises(admin.AdminError, match="is public"):
            await admin.rotate_client_secret(session, client_id=client.client_id)


async def test_delete_client_cascades_refresh_tokens(
    runtime: Runtime, database: AsyncEngine
) -> None:
    user, _ = await make_user(runtime)
    client, _ = await make_client(runtime, grant_types=("password",))
    await _seed_grants(runtime, user.id, client.client_id)
    async with runtime.sessionmaker() as session:
        await admin.delete_client(
            session, client_id=client.client_id, client_cache_ttl=0
        )
        await session.commit()
    assert await _count(database, "clients") == 0
    assert await _count(database, "refresh_tokens") == 0


async def test_delete_client_unknown_raises(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session:
        with pytest.raises(admin.AdminError, match="no such client: 'ghost'"):
            await admin.delete_client(session, client_id="ghost", client_cache_ttl=0)


async def test_list_clients_ordered_by_client_id(runtime: Runtime) -> None:
    await make_client(runtime, client_id="b-client")
    await make_client(runtime, client_id="a-client")
    async with runtime.sessionmaker() as session:
        clients = await admin.list_clients(session)
    assert [c.client_id for c in clients] == ["a-client", "b-client"]


async def test_scopes_default_seeded_and_create_adds(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session:
        created = await admin.create_scope(
            session, name="notes:read", description=" Read your notes "
        )
        await session.commit()
        scopes = await admin.list_scopes(session)
    assert created == admin.Scope(name="notes:read", description="Read your notes")
    assert [s.name for s in scopes] == [
        "admin",
        "email",
        "notes:read",
        "offline_access",
        "openid",
        "profile",
        "read",
        "write",
    ]
    assert all(s.description for s in scopes)


@pytest.mark.parametrize(
    ("name", "message"),
    [("read", "already exists"), ("bad scope", "not a valid scope token")],
    ids=["duplicate", "syntax"],
)
async def test_create_scope_bad_input_writes_nothing(
    runtime: Runtime, database: AsyncEngine, name: str, message: str
) -> None:
    async with runtime.sessionmaker() as session:
        with pytest.raises(admin.AdminError, match=message):
            await admin.create_scope(session, name=name, description="x")
    assert await _count(database, "scopes") == 7
