"""The dispatcher's fixed order (STYLE §3.4): lookup, client auth, client-may-use-grant, validate, issue."""

from typing import ClassVar

import pytest

from oauth_service.oauth.dispatcher import TokenDispatcher
from oauth_service.oauth.errors import (
    InvalidClientError,
    OAuthError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from oauth_service.oauth.grants import (
    GrantConfig,
    GrantStrategy,
    LazyStrategies,
    build_strategies,
)
from oauth_service.oauth.models import (
    Client,
    ClientCredentials,
    Grant,
    TokenRequest,
    TokenResponse,
)
from tests.fakes import (
    CLIENT_SECRET,
    FakeClientStore,
    FakeStores,
    FixedClock,
    confidential_client,
    fast_hasher,
    make_issuer,
    public_client,
)


class RecordingGrant:
    """A strategy that records calls, to observe the dispatcher's order."""

    grant_type: ClassVar[str] = "urn:test"
    allows_public_clients: ClassVar[bool] = True

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        self.calls.append(f"validate:{client.client_id}:{request.grant_type}")
        return Grant(client=client, subject=None, scope=frozenset(), with_refresh=False)

    async def issue(self, grant: Grant) -> TokenResponse:
        self.calls.append(f"issue:{grant.client.client_id}")
        return TokenResponse(access_token="at", expires_in=1, scope="")


class ExplodingClients:
    async def get(self, client_id: str) -> Client | None:
        raise AssertionError(f"client lookup of {client_id} must not happen")


def _request(grant_type: str, creds: ClientCredentials) -> TokenRequest:
    return TokenRequest(grant_type=grant_type, credentials=creds)


async def test_dispatch_unknown_grant_is_unsupported_before_client_lookup() -> None:
    dispatcher = TokenDispatcher({}, ExplodingClients())
    with pytest.raises(UnsupportedGrantTypeError) as caught:
        await dispatcher.dispatch(_request("urn:nope", ClientCredentials("x")))
    assert caught.value.body() == {
        "error": "unsupported_grant_type",
        "error_description": "The grant type is not supported.",
    }


async def test_dispatch_runs_validate_then_issue() -> None:
    grant = RecordingGrant()
    spa = public_client(grant_types=("urn:test",))
    dispatcher = TokenDispatcher({"urn:test": grant}, FakeClientStore([spa]))
    response = await dispatcher.dispatch(_request("urn:test", ClientCredentials("spa")))
    assert response.access_token == "at"
    assert grant.calls == ["validate:spa:urn:test", "issue:spa"]


async def test_dispatch_grant_not_registered_for_client_is_unauthorized_client() -> (
    None
):
    grant = RecordingGrant()
    dispatcher = TokenDispatcher(
        {"urn:test": grant}, FakeClientStore([public_client()])
    )
    with pytest.raises(UnauthorizedClientError) as caught:
        await dispatcher.dispatch(_request("urn:test", ClientCredentials("spa")))
    assert caught.value.body() == {
        "error": "unauthorized_client",
        "error_description": "The client is not allowed to use this grant type.",
    }
    assert grant.calls == []


async def test_dispatch_failed_client_auth_stops_before_validate() -> None:
    grant = RecordingGrant()
    client = confidential_client(grant_types=("urn:test",))
    dispatcher = TokenDispatcher({"urn:test": grant}, FakeClientStore([client]))
    creds = ClientCredentials("conf", "wrong", "client_secret_basic")
    with pytest.raises(InvalidClientError):
        await dispatcher.dispatch(_request("urn:test", creds))
    assert grant.calls == []


def _registry(enabled: list[str]) -> dict[str, GrantStrategy]:
    fakes = FakeStores()
    clock = FixedClock()
    return build_strategies(
        stores=fakes.bundle(),
        issuer=make_issuer(fakes, clock),
        passwords=fast_hasher(),
        enabled=enabled,
        config=GrantConfig(),
        clock=clock,
    )


def test_build_strategies_honours_enabled_grants() -> None:
    everything = [
        "authorization_code",
        "implicit",
        "password",
        "client_credentials",
        "refresh_token",
    ]
    assert set(_registry(everything)) >= {
        "password",
        "client_credentials",
        "refresh_token",
    }
    assert set(_registry(["client_credentials"])) == {"client_credentials"}
    dispatcher = TokenDispatcher(_registry(["password"]), FakeClientStore())
    assert dispatcher.grant_types == {"password"}


def test_build_strategies_keys_match_grant_type() -> None:
    for name, strategy in _registry(
        ["password", "client_credentials", "refresh_token"]
    ).items():
        assert strategy.grant_type == name


async def test_dispatch_public_client_cannot_use_client_credentials() -> None:
    fakes = FakeStores()
    spa = public_client(grant_types=("client_credentials",))
    fakes.clients.clients["spa"] = spa
    clock = FixedClock()
    strategies = build_strategies(
        stores=fakes.bundle(),
        issuer=make_issuer(fakes, clock),
        passwords=fast_hasher(),
        enabled=["client_credentials"],
        clock=clock,
    )
    dispatcher = TokenDispatcher(strategies, fakes.clients)
    with pytest.raises(OAuthError) as caught:
        await dispatcher.dispatch(
            _request("client_credentials", ClientCredentials("spa"))
        )
    assert caught.value.error == "invalid_client"
    ok = confidential_client()
    fakes.clients.clients["conf"] = ok
    creds = ClientCredentials("conf", CLIENT_SECRET, "client_secret_post")
    assert (
        await dispatcher.dispatch(_request("client_credentials", creds))
    ).refresh_token is None


async def test_lazy_registry_builds_only_the_requested_strategy_once() -> None:
    built: list[str] = []

    def factory(name: str) -> RecordingGrant:
        built.append(name)
        return RecordingGrant()

    registry = LazyStrategies(
        {"urn:test": lambda: factory("urn:test"), "urn:other": lambda: factory("x")}
    )
    spa = public_client(grant_types=("urn:test",))
    dispatcher = TokenDispatcher(registry, FakeClientStore([spa]))
    assert dispatcher.grant_types == {"urn:test", "urn:other"}
    assert built == []
    await dispatcher.dispatch(_request("urn:test", ClientCredentials("spa")))
    await dispatcher.dispatch(_request("urn:test", ClientCredentials("spa")))
    assert built == ["urn:test"]
    with pytest.raises(UnsupportedGrantTypeError):
        await dispatcher.dispatch(_request("urn:nope", ClientCredentials("spa")))
