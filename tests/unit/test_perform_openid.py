"""``perform authorization-code`` with ``openid``: a nonce is sent, and only then (OpenID Connect Core §3.1.2.1)."""

from urllib.parse import parse_qs, urlsplit

from oauth_service.cli.authorization_code import AuthorizationRequest
from oauth_service.cli.authorization_server import ServerMetadata

METADATA = ServerMetadata(
    issuer="https://as.example",
    token_endpoint="https://as.example/oauth/token",
    authorization_endpoint="https://as.example/oauth/authorize",
    iss_parameter_supported=True,
)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_an_openid_request_carries_its_own_nonce() -> None:
    request = AuthorizationRequest()
    query = _query(
        request.url(METADATA, "app", "http://127.0.0.1:9/cb", "openid profile")
    )
    assert query["nonce"] == [request.nonce]
    assert query["scope"] == ["openid profile"]
    assert AuthorizationRequest().nonce != request.nonce


def test_a_plain_oauth_request_sends_no_nonce() -> None:
    query = _query(
        AuthorizationRequest().url(METADATA, "app", "http://127.0.0.1:9/cb", "read")
    )
    assert "nonce" not in query
