"""refresh_token (RFC 6749 §6, RFC 9700 §4.14.2): rotation, binding, expiry, narrowing, reuse, grace window.

``validate`` names the rotation (``RefreshRotation``); ``issue`` rotates in the store's one step
(``RefreshTokenStore.rotate``) and reads the token only when that step rotated nothing, to say why.
"""

import asyncio
import dataclasses
from datetime import timedelta
from uuid import UUID

import pytest

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.errors import InvalidGrantError, OAuthError
from oauth_service.oauth.grants import RefreshTokenGrant
from oauth_service.oauth.models import (
    Client,
    ClientCredentials,
    TokenRequest,
    TokenSet,
    User,
)
from oauth_service.oauth.outcomes import Grant, RefreshRotation
from oauth_service.oauth.storage import RefreshClaim, RefreshRecord
from tests.fakes import (
    ISSUER,
    FakeRefreshTokenStore,
    FakeStores,
    FixedClock,
    confidential_client,
    make_issuer,
    shared_keyset,
)
from tests.unit.grants.no_reads import NoUserReads

CLIENT = confidential_client()
SCOPE = frozenset({"read", "write"})
INVALID = {
    "error": "invalid_grant",
    "error_description": "The refresh token is invalid, expired or revoked.",
}


class CountingRefreshStore(FakeRefreshTokenStore):
    """The fake refresh token store, noting each call the grant makes."""

    def __init__(self, stores: FakeStores) -> None:
        super().__init__(stores.revoked_tokens, stores.users)
        self.calls: list[str] = []
        # What each ``rotate`` answered (None: nothing rotated).
        self.rotated: list[RefreshRecord | None] = []
        self._in_step = False

    async def get(self, token_hash: str) -> RefreshRecord | None:
        if not self._in_step:  # the fake's ``rotate`` looks the token up itself
            self.calls.append("get")
        return await super().get(token_hash)

    async def rotate(self, claim: RefreshClaim) -> RefreshRecord | None:
        self.calls.append("rotate")
        self._in_step = True
        try:
            record = await super().rotate(claim)
        finally:
            self._in_step = False
        self.rotated.append(record)
        return record

    async def get_successor(self, parent_id: UUID) -> RefreshRecord | None:
        self.calls.append("get_successor")
        return await super().get_successor(parent_id)


def _request(
    token: str, client: Client = CLIENT, scope: frozenset[str] | None = None
) -> TokenRequest:
    return TokenRequest(
        "refresh_token",
        ClientCredentials(client.client_id),
        refresh_token=token,
        scope=scope,
    )


@dataclasses.dataclass
class Setup:
    strategy: RefreshTokenGrant
    stores: FakeStores
    tokens: CountingRefreshStore
    clock: FixedClock
    token: str

    async def issue(
        self,
        token: str | None = None,
        *,
        client: Client = CLIENT,
        scope: frozenset[str] | None = None,
    ) -> TokenSet:
        rotation = await self.strategy.validate(
            _request(token or self.token, client, scope), client
        )
        return await self.strategy.issue(rotation)

    async def refresh(
        self,
        token: str | None = None,
        *,
        client: Client = CLIENT,
        scope: frozenset[str] | None = None,
    ) -> str:
        response = await self.issue(token, client=client, scope=scope)
        assert response.refresh_token is not None
        return response.refresh_token

    def record(self, token: str) -> RefreshRecord:
        return next(
            t for t in self.tokens.tokens.values() if t.token_hash == token_hash(token)
        )

    def live(self) -> int:
        return sum(
            1
            for t in self.tokens.tokens.values()
            if not t.rotated_at and not t.revoked_at
        )


async def _setup(
    grace: timedelta = timedelta(0),
    *,
    scope: frozenset[str] = SCOPE,
    is_admin: bool = False,
    no_user_reads: bool = False,
) -> Setup:
    stores = FakeStores()
    stores.users.users["u1"] = User(id="u1", email="a@example.com", is_admin=is_admin)
    # The store under test counts its calls; it reads users from the same place the grant would.
    tokens = CountingRefreshStore(stores)
    stores.refresh_tokens = tokens
    clock = FixedClock()
    issuer = make_issuer(stores, clock)
    first = await issuer.issue(
        Grant(
            client=CLIENT,
            subject="u1",
            scope=scope,
            with_refresh=True,
            auth_time=clock(),
        )
    )
    assert first.refresh_token is not None
    strategy = RefreshTokenGrant(
        tokens,
        NoUserReads() if no_user_reads else stores.users,
        issuer,
        grace=grace,
        clock=clock,
    )
    return Setup(strategy, stores, tokens, clock, first.refresh_token)


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
    response = await setup.issue(scope=frozenset({"read"}))
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
    assert len(setup.tokens.tokens) == 1
    assert setup.record(setup.token).rotated_at is None


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
    first = await setup.strategy.validate(_request(setup.token), CLIENT)
    second = await setup.strategy.validate(_request(setup.token), CLIENT)
    await setup.strategy.issue(first)
    with pytest.raises(OAuthError) as caught:
        await setup.strategy.issue(second)
    assert caught.value.body() == INVALID
    assert setup.live() == 0


async def test_concurrent_rotations_of_one_token_have_exactly_one_winner() -> None:
    setup = await _setup()
    rotation = await setup.strategy.validate(_request(setup.token), CLIENT)
    results = await asyncio.gather(
        setup.strategy.issue(rotation),
        setup.strategy.issue(rotation),
        return_exceptions=True,
    )
    [won] = [r for r in results if isinstance(r, TokenSet)]
    [lost] = [r for r in results if isinstance(r, InvalidGrantError)]
    assert lost.body() == INVALID
    # One rotation happened: one successor, child of the presented token, minted for the winner.
    assert [r is not None for r in setup.tokens.rotated] == [True, False]
    assert won.refresh_token is not None
    successor = setup.record(won.refresh_token)
    assert successor.parent_id == setup.record(setup.token).id
    assert len(setup.tokens.tokens) == 2
    # The loser presented a token already rotated: reuse, so the family (the winner's pair too) is revoked.
    assert setup.tokens.revoked_families == [successor.family_id]
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


async def test_refresh_happy_path_is_one_store_step() -> None:
    # The store's step returns the token with its user: no read of the token, its successor or the user.
    setup = await _setup(no_user_reads=True)
    response = await setup.issue()
    assert setup.tokens.calls == ["rotate"]
    claims = shared_keyset().verify(
        response.access_token,
        issuer=ISSUER,
        audience=ISSUER,
        now=setup.clock().timestamp(),
    )
    assert (claims["sub"], claims["scope"]) == ("u1", "read write")
    assert response.scope == "read write"


async def test_refresh_reads_the_token_only_when_rotate_refused() -> None:
    setup = await _setup()
    await setup.refresh()
    assert setup.tokens.calls == ["rotate"]
    setup.tokens.calls.clear()
    await _expect_invalid(setup, setup.token)  # reuse
    assert setup.tokens.calls == ["rotate", "get"]
    assert setup.tokens.rotated[-1] is None


async def test_refresh_scope_beyond_the_client_is_refused_without_a_store_step() -> (
    None
):
    setup = await _setup()
    error = await _expect_invalid(setup, scope=frozenset({"read", "delete"}))
    assert error.body()["error"] == "invalid_scope"
    assert setup.tokens.calls == ["get"]
    assert setup.live() == 1


async def test_validate_names_the_rotation_without_touching_the_store() -> None:
    setup = await _setup()
    rotation = await setup.strategy.validate(
        _request(setup.token, scope=frozenset({"read"})), CLIENT
    )
    assert rotation == RefreshRotation(
        CLIENT, token_hash(setup.token), frozenset({"read"}), setup.clock()
    )
    assert setup.tokens.calls == []


def _demote(setup: Setup) -> None:
    setup.stores.users.users["u1"] = dataclasses.replace(
        setup.stores.users.users["u1"], is_admin=False
    )


def _deactivate(setup: Setup) -> None:
    setup.stores.users.users["u1"] = dataclasses.replace(
        setup.stores.users.users["u1"], is_active=False
    )


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("scope-not-in-token", "invalid_scope"),
        ("admin-for-demoted-user", "invalid_scope"),
        ("inactive-user", "invalid_grant"),
        ("other-client", "invalid_grant"),
        ("idle-expired", "invalid_grant"),
        ("family-expired", "invalid_grant"),
    ],
)
async def test_refused_rotation_leaves_token_unrotated_and_stores_no_successor(
    case: str, error: str
) -> None:
    # The token holds read and admin, the client may also have write: each case fails one ``RefreshClaim`` check.
    setup = await _setup(scope=frozenset({"read", "admin"}), is_admin=True)
    client = CLIENT
    scope: frozenset[str] | None = None
    if case == "scope-not-in-token":
        scope = frozenset({"read", "write"})
    elif case == "admin-for-demoted-user":
        scope = frozenset({"admin"})
        _demote(setup)
    elif case == "inactive-user":
        _deactivate(setup)
    elif case == "other-client":
        client = confidential_client("other")
    elif case == "idle-expired":
        setup.clock.advance(days=14)
    else:
        record = setup.record(setup.token)
        setup.tokens.tokens[record.id] = dataclasses.replace(
            record, family_expires_at=setup.clock()
        )
    before = dict(setup.tokens.tokens)
    with pytest.raises(OAuthError) as caught:
        await setup.issue(client=client, scope=scope)
    assert caught.value.error == error
    assert setup.tokens.calls[0] == "rotate"
    assert setup.tokens.rotated == [None]
    assert setup.record(setup.token).rotated_at is None
    assert setup.tokens.tokens == before  # no successor, nothing marked
    assert setup.tokens.revoked_families == []
    assert setup.stores.revoked_tokens.revoked == {}


async def test_successor_keeps_the_token_scope_while_access_tokens_are_narrowed() -> (
    None
):
    # RFC 6749 §6: the new refresh token's scope is identical to the presented one's. What the client lost and
    # ``admin`` of a demoted user are left out of each access token minted from the family instead.
    setup = await _setup(scope=frozenset({"read", "write", "admin"}), is_admin=True)
    _demote(setup)
    shrunk = confidential_client(scopes=("read", "admin"))
    first = await setup.issue(client=shrunk)
    assert first.scope == "read"
    assert first.refresh_token is not None
    assert setup.record(first.refresh_token).scope == {"read", "write", "admin"}
    # The client gets write back: the family still holds it, and the next access token carries it again.
    second = await setup.issue(first.refresh_token)
    assert second.scope == "read write"
    assert second.refresh_token is not None
    assert setup.record(second.refresh_token).scope == {"read", "write", "admin"}


async def test_refresh_with_deactivated_user_is_refused_without_a_user_read() -> None:
    # The refusal reads the token with its user loaded: the grant reads no user of its own.
    setup = await _setup(no_user_reads=True)
    _deactivate(setup)
    record = setup.record(setup.token)
    setup.tokens.tokens[record.id] = dataclasses.replace(
        record, user=setup.stores.users.users["u1"]
    )
    error = await _expect_invalid(setup)
    assert error.body() == INVALID
    assert setup.tokens.calls == ["rotate", "get"]
    assert setup.live() == 1
