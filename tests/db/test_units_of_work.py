"""Every store operation is its own unit of work (``db.stores.units``), on SQLite and Postgres: what it wrote is
committed when it returns (another connection reads it, and nothing anywhere calls commit), and it holds no
pooled connection once it returned, whether it succeeded, was refused or failed."""

import dataclasses
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from oauth_service.oauth.models import User
from oauth_service.oauth.storage import Stores
from oauth_service.runtime import Runtime
from tests.db.spending import (
    T0,
    children,
    code_claim,
    code_record,
    code_row,
    count_refresh,
    new_token,
    password_hash,
    refresh_claim,
    refresh_row,
    revoked_jtis,
)
from tests.factories import make_client, make_user

R = TypeVar("R")


class Steps:
    """Runs store operations one at a time and checks that none keeps a pooled connection."""

    def __init__(self, pool: QueuePool) -> None:
        self._pool = pool
        assert pool.checkedout() == 0

    async def __call__(self, operation: Awaitable[R]) -> R:
        result = await operation
        assert self._pool.checkedout() == 0
        return result


async def _web_client_and_user(runtime: Runtime) -> User:
    """The code client ``web`` and a user, as every test here starts."""
    user, _ = await make_user(runtime)
    await make_client(
        runtime,
        client_id="web",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("https://app.example/cb",),
    )
    return user


async def test_every_write_is_committed_when_it_returns(
    runtime: Runtime, stores: Stores, pool: QueuePool, observer: AsyncEngine
) -> None:
    step = Steps(pool)
    user = await _web_client_and_user(runtime)

    await step(
        stores.users.update_password_hash(
            user.id, "rehash", replacing=user.password_hash
        )
    )
    assert await password_hash(observer, user.id) == "rehash"

    token = new_token("web", user.id)
    await step(stores.refresh_tokens.save(token))
    assert (await refresh_row(observer, token.id)).token_hash == token.token_hash

    claim = refresh_claim(token, at=T0)
    assert await step(stores.refresh_tokens.rotate(claim)) is not None
    assert (await refresh_row(observer, token.id)).rotated_at == T0
    [lost] = await children(observer, token.id)

    retry = new_token("web", user.id, family=token.family_id, parent=token.id)
    assert await step(stores.refresh_tokens.replace_successor(lost.id, retry, T0))
    assert (await refresh_row(observer, lost.id)).revoked_at == T0
    assert (await refresh_row(observer, retry.id)).revoked_at is None
    assert await revoked_jtis(observer) == {claim.access.jti}

    later = T0 + timedelta(seconds=1)
    await step(stores.refresh_tokens.revoke_family(token.family_id, later))
    assert (await refresh_row(observer, retry.id)).revoked_at == later
    assert await revoked_jtis(observer) == {
        token.access_jti,
        claim.access.jti,
        retry.access_jti,
    }

    await step(stores.revoked_tokens.add("jti-revoked", T0 + timedelta(hours=1)))
    assert "jti-revoked" in await revoked_jtis(observer)

    code = code_record(user.id)
    await step(stores.codes.save(code))
    assert await code_row(observer, code.code_hash) == code

    redemption = code_claim(code)
    assert await step(stores.codes.redeem(redemption)) is not None
    assert (await code_row(observer, code.code_hash)).used_at == redemption.at
    assert await count_refresh(observer) == 4  # token, lost, retry, the code's

    await step(stores.codes.revoke_issued(code.code_hash, redemption.at))
    assert redemption.access.jti in await revoked_jtis(observer)


async def test_reads_give_their_connection_back(
    runtime: Runtime, stores: Stores, pool: QueuePool
) -> None:
    step = Steps(pool)
    user, _ = await make_user(runtime)
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    token = new_token(client.client_id, user.id)
    await step(stores.refresh_tokens.save(token))
    code = code_record(user.id, client_id=client.client_id)
    await step(stores.codes.save(code))
    assert await step(stores.clients.get(client.client_id)) == client
    assert await step(stores.clients.reload(client.client_id)) == client
    assert await step(stores.users.get(user.id)) == user
    assert await step(stores.users.get_by_email(user.email)) == user
    assert set(await step(stores.scopes.all())) == {
        "read",
        "write",
        "admin",
        "openid",
        "profile",
        "email",
        "offline_access",
    }
    assert await step(stores.refresh_tokens.get(token.token_hash)) is not None
    assert await step(stores.refresh_tokens.get_successor(token.id)) is None
    assert await step(stores.codes.get(code.code_hash)) is not None
    assert await step(stores.revoked_tokens.contains("jti")) is False


async def test_refusals_and_failures_give_their_connection_back(
    runtime: Runtime, stores: Stores, pool: QueuePool, observer: AsyncEngine
) -> None:
    step = Steps(pool)
    user = await _web_client_and_user(runtime)
    token = new_token("web", user.id)
    await step(stores.refresh_tokens.save(token))
    # Refused after the token matched (SQLite rolls its transaction back), and refused by the match itself.
    beyond = refresh_claim(token, required_scope=frozenset({"admin"}))
    assert await step(stores.refresh_tokens.rotate(beyond)) is None
    foreign = refresh_claim(token, client_id="other")
    assert await step(stores.refresh_tokens.rotate(foreign)) is None
    retry = new_token("web", user.id, family=token.family_id, parent=token.id)
    unknown = uuid.uuid4()
    assert (
        await step(stores.refresh_tokens.replace_successor(unknown, retry, T0)) is False
    )
    code = code_record(user.id)
    await step(stores.codes.save(code))
    assert await step(stores.codes.redeem(code_claim(code, client_id="other"))) is None
    with pytest.raises((IntegrityError, asyncpg.UniqueViolationError)):
        await step(stores.refresh_tokens.save(token))
    assert pool.checkedout() == 0
    claim = code_claim(code)
    assert claim.refresh is not None
    taken = dataclasses.replace(claim.refresh, token_hash=token.token_hash)
    duplicate = dataclasses.replace(claim, refresh=taken)
    with pytest.raises((IntegrityError, asyncpg.UniqueViolationError)):
        await step(stores.codes.redeem(duplicate))
    assert pool.checkedout() == 0
    assert await count_refresh(observer) == 1
