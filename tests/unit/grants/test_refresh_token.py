"""refresh_token (RFC 6749 §6, RFC 9700 §4.14.2): rotation, binding, expiry, narrowing, reuse, grace window."""

import dataclasses
from datetime import timedelta

import pytest

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.errors import OAuthError
from oauth_service.oauth.grants import RefreshTokenGrant
from oauth_service.oauth.models import (
    Client,
    ClientCredentials,
    Grant,
    TokenRequest,
    User,
)
from oauth_service.oauth.storage import RefreshRecord
from tests.fakes import FakeStores, FixedClock, confidential_client, make_issuer

CLIENT = confidential_client()
INVALID = {
    "error": "invalid_grant",
    "error_description": "The refresh token is invalid, expired or revoked.",
}


@dataclasses.dataclass
class Setup:
    strategy: RefreshTokenGrant
    stores: FakeStores
    clock: FixedClock
    token: str

    async def refresh(
        self,
        token: str | None = None,
        *,
        client: Client = CLIENT,
        scope: frozenset[str] | None = None,
    ) -> str:
        request = TokenRequest(
            "refresh_token",
            ClientCredentials(client.client_id),
            refresh_token=token or self.token,
            scope=scope,
        )
        response = await self.strategy.issue(
            await self.strategy.validate(request, client)
        )
        assert response.refresh_token is not None
        return response.refresh_token

    def record(self, token: str) -> RefreshRecord:
        return next(
            t
            for t in self.stores.refresh_tokens.tokens.values()
            if t.token_hash == token_hash(token)
        )

    def live(self) -> int:
        return sum(
            1
            for t in self.stores.refresh_tokens.tokens.values()
            if not t.rotated_at and not t.revoked_at
        )


async def _setup(grace: timedelta = timedelta(0)) -> Setup:
    stores = FakeStores()
    stores.users.users["u1"] = User(id="u1", email="a@example.com")
    clock = FixedClock()
    issuer = make_issuer(stores, clock)
    first = await issuer.issue(
        Grant(
            client=CLIENT,
            subject="u1",
            scope=frozenset({"read", "write"}),
            with_refresh=True,
            auth_time=clock(),
        )
    )
    assert first.refresh_token is not None
    strategy = RefreshTokenGrant(
        stores.refresh_tokens, stores.users, issuer, grace=grace, clock=clock
    )
    return Setup(strategy, stores, clock, first.refresh_token)


async def _expect_invalid(
    setup: Setup, token: str | None = None, **kwargs: object
) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await setup.refresh(token, **kwargs)  # type: ignore[arg-type]
    return caught.value


async def test_refresh_rotates_and_keeps_family() -> None:
    setup = await _setup()
    new = await setup.refresh()
    assert new != setup.token
    old_record, new_record = setup.record(setup.token), setup.record(new)
    assert old_record.rotated_at is not None
    assert new_record.parent_id == old_record.id
    assert new_record.family_id == old_record.family_id
    assert setup.live() == 1


async def test_refresh_narrowed_scope_keeps_original_on_refresh_token() -> None:
    setup = await _setup()
    request = TokenRequest(
        "refresh_token",
        ClientCredentials("conf"),
        refresh_token=setup.token,
        scope=frozenset({"read"}),
    )
    response = await setup.strategy.issue(
        await setup.strategy.validate(request, CLIENT)
    )
    assert response.scope == "read"
    assert response.refresh_token is not None
    assert setup.record(response.refresh_token).scope == {"read", "write"}


async def test_refresh_idle_expiry_is_renewed_but_capped_by_family() -> None:
    setup = await _setup()
    setup.clock.advance(days=13)
    token = await setup.refresh()
    setup.clock.advance(days=13)
    token = await setup.refresh(token)
    setup.clock.advance(days=4)  # 30 days after the family started
    error = await _expect_invalid(setup, token)
    assert error.body() == INVALID


@pytest.mark.parametrize(
    "case",
    ["unknown", "other-client", "idle-expired", "revoked", "inactive-user", "missing"],
    ids=[
        "invalid_grant-unknown",
        "invalid_grant-other-client",
        "invalid_grant-idle-expired",
        "invalid_grant-revoked",
        "invalid_grant-inactive-user",
        "invalid_request-missing",
    ],
)
async def test_refresh_errors(case: str) -> None:
    setup = await _setup()
    token: str | None = setup.token
    client = CLIENT
    if case == "unknown":
        token = "not-a-token"
    elif case == "other-client":
        client = confidential_client("other")
    elif case == "idle-expired":
        setup.clock.advance(days=14)
    elif case == "revoked":
        await setup.stores.refresh_tokens.revoke_family(
            setup.record(setup.token).family_id, setup.clock()
        )
    elif case == "inactive-user":
        setup.stores.users.users["u1"] = User(
            id="u1", email="a@example.com", is_active=False
        )
    if case == "missing":
        request = TokenRequest("refresh_token", ClientCredentials("conf"))
        with pytest.raises(OAuthError) as caught:
            await setup.strategy.validate(request, CLIENT)
        assert caught.value.body() == {
            "error": "invalid_request",
            "error_description": "Missing 'refresh_token' parameter.",
        }
        return
    error = await _expect_invalid(setup, token, client=client)
    assert error.body() == INVALID
    assert setup.stores.refresh_tokens.revoked_families == (
        [setup.record(setup.token).family_id] if case == "revoked" else []
    )


async def test_refresh_wider_scope_is_invalid_scope() -> None:
    setup = await _setup()
    error = await _expect_invalid(setup, scope=frozenset({"read", "admin"}))
    assert error.body() == {
        "error": "invalid_scope",
        "error_description": "The requested scope exceeds what may be granted.",
    }
    assert setup.live() == 1


async def test_refresh_with_reused_token_revokes_family() -> None:
    setup = await _setup()
    new = await setup.refresh()
    error = await _expect_invalid(setup, setup.token)
    assert error.body() == INVALID
    assert setup.live() == 0
    first, second = setup.record(setup.token), setup.record(new)
    assert {first.access_jti, second.access_jti} <= set(
        setup.stores.revoked_tokens.revoked
    )
    assert (await _expect_invalid(setup, new)).body() == INVALID


async def test_refresh_lost_rotation_race_revokes_family() -> None:
    setup = await _setup()
    request = TokenRequest(
        "refresh_token", ClientCredentials("conf"), refresh_token=setup.token
    )
    first = await setup.strategy.validate(request, CLIENT)
    second = await setup.strategy.validate(request, CLIENT)
    await setup.strategy.issue(first)
    with pytest.raises(OAuthError) as caught:
        await setup.strategy.issue(second)
    assert caught.value.body() == INVALID
    assert setup.live() == 0


async def test_refresh_grace_retry_replaces_unused_successor() -> None:
    setup = await _setup(grace=timedelta(seconds=30))
    lost = await setup.refresh()
    setup.clock.advance(seconds=10)
    retry = await setup.refresh(setup.token)
    assert setup.record(lost).revoked_at is not None
    assert setup.record(lost).access_jti in setup.stores.revoked_tokens.revoked
    assert setup.live() == 1
    assert await setup.refresh(retry)
    assert setup.live() == 1


async def test_refresh_grace_reuse_after_successor_used_revokes_family() -> None:
    setup = await _setup(grace=timedelta(seconds=30))
    successor = await setup.refresh()
    await setup.refresh(successor)
    setup.clock.advance(seconds=5)
    assert (await _expect_invalid(setup, setup.token)).body() == INVALID
    assert setup.live() == 0


async def test_refresh_grace_expired_reuse_revokes_family() -> None:
    setup = await _setup(grace=timedelta(seconds=30))
    await setup.refresh()
    setup.clock.advance(seconds=31)
    assert (await _expect_invalid(setup, setup.token)).body() == INVALID
    assert setup.live() == 0


class _NoReads:
    """A user store that fails the test if the grant reads it."""

    async def get(self, user_id: str) -> User | None:
        raise AssertionError(f"user {user_id} read separately")


async def test_refresh_with_user_loaded_by_store_skips_user_read() -> None:
    setup = await _setup()
    record = setup.record(setup.token)
    user = setup.stores.users.users["u1"]
    setup.stores.refresh_tokens.tokens[record.id] = dataclasses.replace(
        record, user=user
    )
    strategy = RefreshTokenGrant(
        setup.stores.refresh_tokens,
        _NoReads(),  # type: ignore[arg-type]
        make_issuer(setup.stores, setup.clock),
        clock=setup.clock,
    )
    request = TokenRequest(
        "refresh_token", ClientCredentials("conf"), refresh_token=setup.token
    )
    grant = await strategy.validate(request, CLIENT)
    assert (grant.subject, grant.scope) == ("u1", frozenset({"read", "write"}))


async def test_refresh_with_loaded_user_deactivated_is_invalid_grant() -> None:
    setup = await _setup()
    record = setup.record(setup.token)
    inactive = dataclasses.replace(setup.stores.users.users["u1"], is_active=False)
    setup.stores.refresh_tokens.tokens[record.id] = dataclasses.replace(
        record, user=inactive
    )
    error = await _expect_invalid(setup)
    assert error.body() == INVALID
