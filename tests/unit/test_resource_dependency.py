"""The public resource-server dependency against forged, expired, revoked and misplaced tokens (RFC 6750, 9068)."""

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.oauth.access_tokens import (
    AccessToken,
    LocalTokenVerifier,
    TtlCache,
    VerifiedTokenCache,
)
from oauth_service.resource_server.fastapi import ResourceProtector

ISS = "http://oauth.test"
AUD = "http://api.test"
NOW = 1_800_000_000.0
INVALID = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}
INVALID_CHALLENGE = (
    'Bearer realm="oauth-service", error="invalid_token", '
    'error_description="The access token is invalid."'
)
BARE_CHALLENGE = 'Bearer realm="oauth-service"'


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class FakeRevocationList:
    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.lookups = 0

    async def __call__(self, jti: str) -> bool:
        self.lookups += 1
        return jti in self.revoked


@pytest.fixture(scope="module")
def keyset() -> KeySet:
    kid, pem, _ = generate_key("RS256")
    return KeySet(SigningKey.from_pem(kid, "RS256", pem))


@pytest.fixture(scope="module")
def other_keyset() -> KeySet:
    kid, pem, _ = generate_key("RS256")
    return KeySet(SigningKey.from_pem(kid, "RS256", pem))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "client_id": "app",
        "iat": int(NOW),
        "exp": int(NOW) + 600,
        "jti": "jti-1",
        "scope": "read write",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _app(
    keyset: KeySet,
    clock: FakeClock,
    revocations: FakeRevocationList,
    *,
    cache_ttl: float = 0,
    verified_cache: VerifiedTokenCache | None = None,
) -> FastAPI:
    verifier = LocalTokenVerifier(
        lambda: keyset,
        issuer=ISS,
        audience=AUD,
        is_revoked=revocations,
        revocation_cache_ttl=cache_ttl,
        clock=clock,
        cache=verified_cache,
    )
    protector = ResourceProtector(verifier)
    app = FastAPI()
    protector.install(app)

    @app.get("/me")
    async def me(
        token: Annotated[AccessToken, Depends(protector.require_scopes())],
    ) -> dict[str, str]:
        return {"sub": token.subject, "client_id": token.client_id}

    @app.get("/notes")
    async def notes(
        token: Annotated[
            AccessToken, Depends(protector.require_scopes("read", "notes"))
        ],
    ) -> dict[str, str]:
        return {"sub": token.subject}

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def revocations() -> FakeRevocationList:
    return FakeRevocationList()


@pytest.fixture(params=[False, True], ids=["uncached", "verified-token-cache"])
async def http(
    request: pytest.FixtureRequest,
    keyset: KeySet,
    clock: FakeClock,
    revocations: FakeRevocationList,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the test app; every test runs with and without a verified-token cache."""
    cache = VerifiedTokenCache() if request.param else None
    app = _app(keyset, clock, revocations, verified_cache=cache)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=AUD) as client:
        yield client


async def _get(
    http: httpx.AsyncClient, token: str, path: str = "/me"
) -> httpx.Response:
    return await http.get(path, headers={"Authorization": f"Bearer {token}"})


def _assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["www-authenticate"] == INVALID_CHALLENGE
    assert response.headers["cache-control"] == "no-store"


async def test_dependency_with_valid_token_returns_subject(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    response = await _get(http, keyset.sign(_claims()))
    assert response.status_code == 200
    assert response.json() == {"sub": "user-1", "client_id": "app"}


async def test_dependency_with_alg_none_is_invalid_token(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": keyset.signing.kid}
    token = f"{_segment(header)}.{_segment(_claims())}."
    _assert_invalid(await _get(http, token))


async def test_dependency_with_hs256_keyed_by_public_key_is_invalid_token(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    public_pem = json.dumps(keyset.signing.public_jwk).encode()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keyset.signing.kid}
    signing_input = f"{_segment(header)}.{_segment(_claims())}"
    for secret in (public_pem, keyset.signing.public_jwk["n"].encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        _assert_invalid(await _get(http, f"{signing_input}.{_b64(mac)}"))


async def test_dependency_with_unknown_kid_is_invalid_token(
    http: httpx.AsyncClient, other_keyset: KeySet
) -> None:
    _assert_invalid(await _get(http, other_keyset.sign(_claims())))


async def test_dependency_with_tampered_payload_is_invalid_token(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    header, _, signature = keyset.sign(_claims(scope="read")).split(".")
    forged = f"{header}.{_segment(_claims(scope='read admin'))}.{signature}"
    _assert_invalid(await _get(http, forged))


@pytest.mark.parametrize(
    ("typ", "overrides"),
    [
        ("JWT", {}),
        ("at+jwt", {"client_id": None}),
        ("at+jwt", {"jti": None}),
        ("at+jwt", {"aud": "some-client"}),
    ],
    ids=["typ-jwt", "no-client-id", "no-jti", "aud-is-a-client"],
)
async def test_dependency_with_id_token_shaped_jwt_is_invalid_token(
    http: httpx.AsyncClient, keyset: KeySet, typ: str, overrides: dict[str, Any]
) -> None:
    _assert_invalid(await _get(http, keyset.sign(_claims(**overrides), typ=typ)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(NOW) - 31},
        {"iss": "http://evil.test"},
        {"aud": "http://other-api.test"},
        {"iat": int(NOW) + 3600},
        {"exp": None},
        {"sub": None},
    ],
    ids=["expired", "wrong-iss", "wrong-aud", "iat-in-future", "no-exp", "no-sub"],
)
async def test_dependency_with_bad_claims_is_invalid_token(
    http: httpx.AsyncClient, keyset: KeySet, overrides: dict[str, Any]
) -> None:
    _assert_invalid(await _get(http, keyset.sign(_claims(**overrides))))


async def test_dependency_with_exp_within_leeway_is_accepted(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    response = await _get(http, keyset.sign(_claims(exp=int(NOW) - 10)))
    assert response.status_code == 200


async def test_dependency_expiry_follows_injected_clock(
    http: httpx.AsyncClient, keyset: KeySet, clock: FakeClock
) -> None:
    token = keyset.sign(_claims())
    assert (await _get(http, token)).status_code == 200
    clock.now += 600 + 30
    _assert_invalid(await _get(http, token))


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"params": {"access_token": "TOKEN"}},
        {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
        {"headers": {"X-Access-Token": "TOKEN"}},
    ],
    ids=["no-token", "query-string", "basic-scheme", "other-header"],
)
async def test_dependency_without_header_token_is_bare_challenge(
    http: httpx.AsyncClient, keyset: KeySet, request_kwargs: dict[str, Any]
) -> None:
    token = keyset.sign(_claims())
    for mapping in request_kwargs.values():
        for key, value in list(mapping.items()):
            mapping[key] = value.replace("TOKEN", token)
    response = await http.get("/me", **request_kwargs)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "Bearer token required.",
    }


async def test_dependency_with_token_in_form_body_is_bare_challenge(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    response = await http.request(
        "GET", "/me", data={"access_token": keyset.sign(_claims())}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer a b", "Bearer <script>"], ids=str
)
async def test_dependency_with_malformed_bearer_header_is_invalid_token(
    http: httpx.AsyncClient, value: str
) -> None:
    response = await http.get("/me", headers={"Authorization": value})
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token is malformed.",
    }
    assert response.headers["www-authenticate"] == (
        'Bearer realm="oauth-service", error="invalid_token", '
        'error_description="The access token is malformed."'
    )


async def test_dependency_with_two_authorization_headers_is_invalid_request(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    token = keyset.sign(_claims())
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")]
    response = await http.get("/me", headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Send exactly one Authorization header.",
    }


async def test_dependency_with_lowercase_scheme_is_accepted(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    response = await http.get(
        "/me", headers={"Authorization": f"bearer {keyset.sign(_claims())}"}
    )
    assert response.status_code == 200


async def test_dependency_without_required_scope_is_insufficient_scope(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    response = await _get(http, keyset.sign(_claims(scope="read")), "/notes")
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks a required scope.",
    }
    assert response.headers["www-authenticate"] == (
        'Bearer realm="oauth-service", error="insufficient_scope", '
        'error_description="The access token lacks a required scope.", scope="notes read"'
    )


async def test_dependency_with_every_scope_is_accepted(
    http: httpx.AsyncClient, keyset: KeySet
) -> None:
    response = await _get(http, keyset.sign(_claims(scope="notes read")), "/notes")
    assert response.status_code == 200


async def test_dependency_with_revoked_jti_is_invalid_token(
    http: httpx.AsyncClient, keyset: KeySet, revocations: FakeRevocationList
) -> None:
    token = keyset.sign(_claims(jti="gone"))
    assert (await _get(http, token)).status_code == 200
    revocations.revoked.add("gone")
    _assert_invalid(await _get(http, token))


async def test_revocation_cache_accepts_revoked_token_at_most_ttl_seconds(
    keyset: KeySet, clock: FakeClock, revocations: FakeRevocationList
) -> None:
    app = _app(keyset, clock, revocations, cache_ttl=5)
    token = keyset.sign(_claims(jti="cached"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=AUD) as http:
        assert (await _get(http, token)).status_code == 200
        revocations.revoked.add("cached")
        clock.now += 4.9
        assert (await _get(http, token)).status_code == 200  # within the bound
        assert revocations.lookups == 1
        clock.now += 0.2
        _assert_invalid(await _get(http, token))
        assert revocations.lookups == 2
        clock.now += 60
        _assert_invalid(await _get(http, token))  # "revoked" is remembered
        assert revocations.lookups == 2


def test_ttl_cache_evicts_least_recently_used_entry() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(max_entries=2, clock=clock)
    cache.put("a", 1, until=NOW + 10)
    cache.put("b", 2, until=NOW + 10)
    assert cache.get("a") == 1
    cache.put("c", 3, until=NOW + 10)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("d", 4, until=NOW)  # already expired: not stored
    assert len(cache) == 2


def test_dependency_documents_its_scheme_and_scopes_in_openapi(
    keyset: KeySet, clock: FakeClock, revocations: FakeRevocationList
) -> None:
    schema = _app(keyset, clock, revocations).openapi()
    assert schema["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert schema["paths"]["/notes"]["get"]["security"] == [
        {"HTTPBearer": ["read", "notes"]}
    ]
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
