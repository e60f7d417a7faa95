"""client_credentials (RFC 6749 §4.4): the client is the subject; no refresh token; scope within the client's."""

import pytest

from oauth_service.oauth.errors import OAuthError
from oauth_service.oauth.grants import ClientCredentialsGrant
from oauth_service.oauth.models import ClientCredentials, TokenRequest
from tests.fakes import (
    ISSUER,
    FakeStores,
    FixedClock,
    confidential_client,
    make_issuer,
    shared_keyset,
)

CLIENT = confidential_client(scopes=("read", "write"))


def _grant() -> ClientCredentialsGrant:
    return ClientCredentialsGrant(make_issuer(FakeStores(), FixedClock()))


def _request(scope: frozenset[str] | None = None) -> TokenRequest:
    return TokenRequest("client_credentials", ClientCredentials("conf"), scope=scope)


async def test_client_credentials_without_scope_grants_client_scopes() -> None:
    grant = await _grant().validate(_request(), CLIENT)
    assert grant.subject is None
    assert grant.scope == {"read", "write"}
    assert grant.with_refresh is False


async def test_client_credentials_issue_mints_token_for_client() -> None:
    strategy = _grant()
    response = await strategy.issue(
        await strategy.validate(_request(frozenset({"read"})), CLIENT)
    )
    assert response.refresh_token is None
    assert response.scope == "read"
    assert response.expires_in == 600
    claims = shared_keyset().verify(
        response.access_token,
        issuer=ISSUER,
        audience=ISSUER,
        now=FixedClock()().timestamp(),
    )
    assert claims["sub"] == "conf"
    assert claims["client_id"] == "conf"
    assert "auth_time" not in claims


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        (frozenset({"admin"}), "invalid_scope"),
        (frozenset({"read", "delete"}), "invalid_scope"),
    ],
    ids=["invalid_scope-not-allowed", "invalid_scope-unknown"],
)
async def test_client_credentials_errors(scope: frozenset[str], error: str) -> None:
    with pytest.raises(OAuthError) as caught:
        await _grant().validate(_request(scope), CLIENT)
    assert caught.value.error == error
