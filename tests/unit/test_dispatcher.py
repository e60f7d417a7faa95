"""The dispatcher's fixed order (STYLE §3.4): lookup, client auth, client-may-use-grant, validate, issue."""

from typing import Any, ClassVar

import pytest

from oauth_service.oauth.dispatcher import TokenDispatcher
from oauth_service.oauth.errors import (
    InvalidClientError,
    OAuthError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from oauth_service.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    GrantConfig,
    GrantStrategy,
    PasswordGrant,
    RefreshTokenGrant,
    build_strategies,
)
from oauth_service.oauth.models import (
    Client,
    ClientCredentials,
    TokenRequest,
    TokenSet,
)
from oauth_service.oauth.outcomes import Grant
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
        self.outcomes: list[Grant] = []

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        self.calls.append(f"validate:{client.client_id}:{request.grant_type}")
        outcome = Grant(client, None, frozenset())
        self.outcomes.append(outcome)
        return outcome

    async def issue(self, outcome: Grant) -> TokenSet:
        self.calls.append(f"issue:{outcome.client.client_id}")
        # The dispatcher hands issue exactly what validate returned.
        assert outcome is self.outcomes[-1]
        return TokenSet(access_token="at", expires_in=1, scope="")


class ExplodingClients:
    async def get(self, client_id: str) -> Client | None:
        raise AssertionError(f"client lookup of {client_id} must not happen")

    async def reload(self, client_id: str) -> Client | None:
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


def _registry(enabled: list[str]) -> dict[str, GrantStrategy[Any]]:
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


def test_build_strategies_builds_each_enabled_strategy() -> None:
    registry = _registry(
        ["authorization_code", "password", "client_credentials", "refresh_token"]
    )
    assert isinstance(registry["authorization_code"], AuthorizationCodeGrant)
    assert isinstance(registry["password"], PasswordGrant)
    assert isinstance(registry["client_credentials"], ClientCredentialsGrant)
    assert isinstance(registry["refresh_token"], RefreshTokenGrant)
    # ``implicit`` has no token-endpoint strategy: enabling it adds nothing here.
    assert set(_registry(["implicit"])) == set()


async def test_dispatcher_serves_the_registry_it_was_built_with() -> None:
    grant = RecordingGrant()
    registry: dict[str, GrantStrategy[Any]] = {"urn:test": grant}
    spa = public_client(grant_types=("urn:test", "urn:later"))
    dispatcher = TokenDispatcher(registry, FakeClientStore([spa]))
    # The registry is built once at start-up and copied: a later change to the mapping is not served.
    registry["urn:later"] = RecordingGrant()
    assert dispatcher.grant_types == {"urn:test"}
    with pytest.raises(UnsupportedGrantTypeError):
        await dispatcher.dispatch(_request("urn:later", ClientCredentials("spa")))
    # The same strategy object serves every request.
    await dispatcher.dispatch(_request("urn:test", ClientCredentials("spa")))
    await dispatcher.dispatch(_request("urn:test", ClientCredentials("spa")))
    assert grant.calls == ["validate:spa:urn:test", "issue:spa"] * 2
