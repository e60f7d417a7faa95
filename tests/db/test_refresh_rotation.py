"""``RefreshTokenStore.rotate`` on SQLite (a short transaction) and Postgres (one statement): the contract of
``oauth.storage.RefreshClaim``. A rotation returns the spent token with its user and stores the successor in
its family; a refusal returns None having changed nothing; of concurrent rotations of one token one wins."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.oauth.models import Client, User
from oauth_service.oauth.storage import NewRefreshToken, RefreshClaim, Stores
from oauth_service.runtime import Runtime
from tests.db.spending import (
    FAMILY_LIFETIME,
    T0,
    children,
    count_refresh,
    deactivate,
    new_token,
    refresh_claim,
    refresh_row,
)
from tests.factories import make_client, make_user

GRANTS = ("password", "refresh_token")
AT = T0 + timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Seeded:
    client: Client
    other_client: Client
    user: User
    admin: User


@pytest.fixture
async def seeded(runtime: Runtime) -> Seeded:
    client, _ = await make_client(runtime, grant_types=GRANTS, client_id="app")
    other, _ = await make_client(runtime, grant_types=GRANTS, client_id="other")
    user, _ = await make_user(runtime)
    admin, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    return Seeded(client, other, user, admin)


async def _saved(stores: Stores, token: NewRefreshToken) -> NewRefreshToken:
    await stores.refresh_tokens.save(token)
    return token


async def test_rotate_returns_the_spent_token_with_its_user_and_stores_the_successor(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    token = await _saved(stores, new_token("app", seeded.user.id))
    claim = refresh_claim(token, at=AT, required_scope=frozenset({"read"}))
    spent = await stores.refresh_tokens.rotate(claim)
    assert spent is not None
    assert (spent.id, spent.token_hash, spent.family_id, spent.parent_id) == (
        token.id,
        token.token_hash,
        token.family_id,
        None,
    )
    assert (spent.client_id, spent.user_id, spent.scope) == (
        "app",
        seeded.user.id,
        token.scope,
    )
    assert (spent.expires_at, spent.family_expires_at, spent.auth_time) == (
        token.expires_at,
        token.family_expires_at,
        token.auth_time,
    )
    assert (spent.rotated_at, spent.revoked_at) == (AT, None)
    assert (spent.access_jti, spent.access_expires_at) == (
        token.access_jti,
        token.access_expires_at,
    )
    assert spent.user == seeded.user
    assert spent.user is not None
    assert spent.user.password_hash == seeded.user.password_hash
    assert (await refresh_row(observer, token.id)).rotated_at == AT
    [successor] = await children(observer, token.id)
    assert (successor.id, successor.token_hash) == (
        claim.successor.id,
        claim.successor.token_hash,
    )
    assert (successor.family_id, successor.parent_id) == (token.family_id, token.id)
    assert (successor.client_id, successor.user_id, successor.scope) == (
        "app",
        seeded.user.id,
        token.scope,
    )
    assert (successor.auth_time, successor.issued_at) == (token.auth_time, AT)
    # Its idle end comes before the family's: the idle end.
    assert successor.expires_at == claim.successor.idle_until
    assert successor.family_expires_at == token.family_expires_at
    assert (successor.access_jti, successor.access_expires_at) == (
        claim.access.jti,
        claim.access.expires_at,
    )
    assert (successor.rotated_at, successor.revoked_at) == (None, None)
    assert await count_refresh(observer) == 2


async def test_rotate_ends_the_successor_with_its_family(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    """RFC 9700 §4.14.2: rotation never extends a family; the successor ends when the family does."""
    token = await _saved(stores, new_token("app", seeded.user.id))
    claim = refresh_claim(token, at=AT, idle=FAMILY_LIFETIME)
    assert await stores.refresh_tokens.rotate(claim) is not None
    [successor] = await children(observer, token.id)
    assert claim.successor.idle_until > token.family_expires_at
    assert successor.expires_at == token.family_expires_at


async def test_rotate_a_client_token_has_no_user(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    token = await _saved(stores, new_token("app", None))
    spent = await stores.refresh_tokens.rotate(
        refresh_claim(token, at=AT, requires_admin=True)
    )
    assert spent is not None
    assert (spent.user_id, spent.user) == (None, None)
    [successor] = await children(observer, token.id)
    assert successor.user_id is None


async def test_rotate_for_an_admin_scope_by_an_administrator(
    seeded: Seeded, stores: Stores
) -> None:
    scope = frozenset({"read", "admin"})
    token = await _saved(stores, new_token("app", seeded.admin.id, scope=scope))
    claim = refresh_claim(
        token, at=AT, required_scope=frozenset({"admin"}), requires_admin=True
    )
    spent = await stores.refresh_tokens.rotate(claim)
    assert spent is not None
    assert spent.user == seeded.admin
    successor = await stores.refresh_tokens.get(claim.successor.token_hash)
    assert successor is not None
    assert successor.scope == scope


async def _unchanged(observer: AsyncEngine, token: NewRefreshToken) -> None:
    """The token is as saved (not rotated, not revoked) and no successor was stored."""
    stored = await refresh_row(observer, token.id)
    assert (stored.rotated_at, stored.revoked_at) == (None, None)
    assert await children(observer, token.id) == []
    assert await count_refresh(observer) == 1


Refusal = Callable[
    [Seeded, Stores, AsyncEngine], Awaitable[tuple[NewRefreshToken, RefreshClaim]]
]


async def _unknown_hash(
    seeded: Seeded, stores: Stores, _: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    token = await _saved(stores, new_token("app", seeded.user.id))
    return token, refresh_claim(token, at=AT, presented_hash="0" * 64)


async def _other_client(
    seeded: Seeded, stores: Stores, _: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    token = await _saved(stores, new_token("app", seeded.user.id))
    return token, refresh_claim(token, at=AT, client_id="other")


async def _idle_expired(
    seeded: Seeded, stores: Stores, _: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    token = await _saved(stores, new_token("app", seeded.user.id))
    return token, refresh_claim(token, at=token.expires_at)


async def _family_expired(
    seeded: Seeded, stores: Stores, _: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    # Idle end after the family's (a row the service does not write) so only the family's end refuses it.
    token = new_token(
        "app",
        seeded.user.id,
        expires_at=T0 + timedelta(days=40),
        family_expires_at=T0 + timedelta(days=30),
    )
    await _saved(stores, token)
    return token, refresh_claim(token, at=token.family_expires_at)


async def _inactive_user(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    token = await _saved(stores, new_token("app", seeded.user.id))
    await deactivate(observer, seeded.user.id)
    return token, refresh_claim(token, at=AT)


async def _scope_not_within(
    seeded: Seeded, stores: Stores, _: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    token = await _saved(stores, new_token("app", seeded.user.id))
    return token, refresh_claim(
        token, at=AT, required_scope=frozenset({"read", "admin"})
    )


async def _admin_required(
    seeded: Seeded, stores: Stores, _: AsyncEngine
) -> tuple[NewRefreshToken, RefreshClaim]:
    scope = frozenset({"read", "admin"})
    token = await _saved(stores, new_token("app", seeded.user.id, scope=scope))
    return token, refresh_claim(
        token, at=AT, required_scope=frozenset({"admin"}), requires_admin=True
    )


@pytest.mark.parametrize(
    "refusal",
    [
        _unknown_hash,
        _other_client,
        _idle_expired,
        _family_expired,
        _inactive_user,
        _scope_not_within,
        _admin_required,
    ],
    ids=lambda refusal: refusal.__name__.strip("_"),
)
async def test_rotate_refused_changes_nothing(
    seeded: Seeded, stores: Stores, observer: AsyncEngine, refusal: Refusal
) -> None:
    token, claim = await refusal(seeded, stores, observer)
    assert await stores.refresh_tokens.rotate(claim) is None
    await _unchanged(observer, token)
    assert await stores.refresh_tokens.get(claim.successor.token_hash) is None


async def test_rotate_refused_after_marking_leaves_the_token_rotatable(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    """A refusal decided after the token matched (scope, administrator) undoes the mark: the token rotates."""
    scope = frozenset({"read", "admin"})
    token = await _saved(stores, new_token("app", seeded.user.id, scope=scope))
    admin_claim = refresh_claim(
        token, at=AT, required_scope=frozenset({"admin"}), requires_admin=True
    )
    assert await stores.refresh_tokens.rotate(admin_claim) is None
    await _unchanged(observer, token)
    valid = refresh_claim(token, at=AT, required_scope=frozenset({"admin"}))
    assert await stores.refresh_tokens.rotate(valid) is not None
    assert [child.id for child in await children(observer, token.id)] == [
        valid.successor.id
    ]


async def test_rotate_a_revoked_token_is_refused_and_changes_nothing(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    token = await _saved(stores, new_token("app", seeded.user.id))
    await stores.refresh_tokens.revoke_family(token.family_id, T0)
    assert await stores.refresh_tokens.rotate(refresh_claim(token, at=AT)) is None
    stored = await refresh_row(observer, token.id)
    assert (stored.rotated_at, stored.revoked_at) == (None, T0)
    assert await children(observer, token.id) == []
    assert await count_refresh(observer) == 1


async def test_rotate_an_already_rotated_token_is_refused_and_changes_nothing(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    token = await _saved(stores, new_token("app", seeded.user.id))
    first = refresh_claim(token, at=AT)
    assert await stores.refresh_tokens.rotate(first) is not None
    again = refresh_claim(token, at=AT + timedelta(seconds=1))
    assert await stores.refresh_tokens.rotate(again) is None
    stored = await refresh_row(observer, token.id)
    assert (stored.rotated_at, stored.revoked_at) == (AT, None)
    assert [child.id for child in await children(observer, token.id)] == [
        first.successor.id
    ]
    assert await stores.refresh_tokens.get(again.successor.token_hash) is None
    assert await count_refresh(observer) == 2


async def test_concurrent_rotations_of_one_token_have_one_winner(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    token = await _saved(stores, new_token("app", seeded.user.id))
    claims = [refresh_claim(token, at=AT) for _ in range(20)]
    results = await asyncio.gather(
        *(stores.refresh_tokens.rotate(claim) for claim in claims)
    )
    winners = [claim for claim, spent in zip(claims, results, strict=True) if spent]
    assert len(winners) == 1
    [successor] = await children(observer, token.id)
    assert successor.id == winners[0].successor.id
    assert successor.access_jti == winners[0].access.jti
    assert await count_refresh(observer) == 2
