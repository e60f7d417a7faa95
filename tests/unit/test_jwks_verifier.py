"""``JwksTokenVerifier`` against a fake issuer: discovery, key caching, bounded refresh, SSRF guard, outages.

The issuer is an ``httpx.MockTransport`` serving RFC 8414 metadata and a JWK Set, counting every request; time
comes from injected clocks, so nothing sleeps except to hold a fetch open while others pile up behind it.
"""

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.oauth.access_tokens import AccessToken
from oauth_service.oauth.errors import InvalidTokenError, TemporarilyUnavailableError
from oauth_service.resource_server import CombinedVerifier, JwksTokenVerifier
from oauth_service.resource_server.fastapi import ResourceProtector

ISS = "http://oauth.test"
JWKS_URI = f"{ISS}/.well-known/jwks.json"
METADATA_URL = f"{ISS}/.well-known/oauth-authorization-server"
NOW = 1_800_000_000.0


class FakeTimer:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeIssuer:
    """Metadata and JWKS over ``httpx.MockTransport``; ``down`` refuses connections, ``delay`` holds answers."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.metadata: dict[str, Any] = {"issuer": ISS, "jwks_uri": JWKS_URI}
        self.cache_control = "public, max-age=300"
        self.down = False
        self.delay = 0.0
        self.requests: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if url == METADATA_URL:
            return httpx.Response(200, json=self.metadata)
        if url == self.metadata["jwks_uri"]:
            headers = {"Cache-Control": self.cache_control}
            return httpx.Response(200, json=self.keys.jwks(), headers=headers)
        return httpx.Response(404)

    @property
    def jwks_fetches(self) -> int:
        return sum(url == self.metadata["jwks_uri"] for url in self.requests)


def _key_set(alg: str = "ES256") -> KeySet:
    kid, pem, _ = generate_key(alg)  # type: ignore[arg-type]
    return KeySet(SigningKey.from_pem(kid, alg, pem))


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return _key_set()


@pytest.fixture
def issuer(keys: KeySet) -> FakeIssuer:
    return FakeIssuer(keys)


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


Factory = Callable[..., JwksTokenVerifier]


@pytest.fixture
async def make_verifier(issuer: FakeIssuer, timer: FakeTimer) -> AsyncIterator[Factory]:
    made: list[JwksTokenVerifier] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(issuer))

    def make(**options: Any) -> JwksTokenVerifier:
        values: dict[str, Any] = {"http": http, "clock": lambda: NOW, "timer": timer}
        values.update(options)
        verifier = JwksTokenVerifier(values.pop("issuer", ISS), **values)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()
    await http.aclose()


def claims(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": ISS,
        "aud": ISS,
        "sub": "user-1",
        "client_id": "app",
        "scope": "read write",
        "iat": int(NOW),
        "exp": int(NOW) + 600,
        "jti": uuid.uuid4().hex,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def _jwks_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """This verifier's log lines (other loggers may log too once an app configured logging)."""
    return [record for record in caplog.records if record.name == "oauth_service.jwks"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_header(token: str, **header: Any) -> str:
    """The token with its header replaced (the signature no longer matches it)."""
    _, payload, signature = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


async def test_verify_published_key_returns_access_token_and_caches_keys(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet
) -> None:
    verifier = make_verifier()
    token = keys.sign(claims())
    access = await verifier.verify(token)
    assert (access.subject, access.client_id) == ("user-1", "app")
    assert access.scopes == frozenset({"read", "write"})
    assert (access.issuer, access.audience) == (ISS, (ISS,))
    await verifier.verify(token)
    await verifier.verify(keys.sign(claims()))
    assert issuer.requests == [METADATA_URL, JWKS_URI]


def _refusals(keys: KeySet) -> dict[str, str]:
    good = keys.sign(claims())
    header, payload, signature = good.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    kid = keys.signing.kid
    id_token = claims(aud="app", nonce="n-1", client_id=None, jti=None)
    return {
        "wrong_audience": keys.sign(claims(aud="http://other.api")),
        "wrong_issuer": keys.sign(claims(iss="http://evil.test")),
        "expired": keys.sign(claims(iat=int(NOW) - 700, exp=int(NOW) - 31)),
        "id_token_typ_jwt": keys.sign(id_token, typ="JWT"),
        "id_token_claims_as_at_jwt": keys.sign(id_token),
        "no_jti": keys.sign(claims(jti=None)),
        "tampered_signature": f"{header}.{payload}.{flipped}",
        "tampered_claims": f"{header}.{_b64(json.dumps(claims(sub='admin')).encode())}.{signature}",
        "alg_none": _with_header(good, alg="none", typ="at+jwt", kid=kid).rpartition(
            "."
        )[0]
        + ".",
        "alg_hs256": _with_header(good, alg="HS256", typ="at+jwt", kid=kid),
        "other_issuers_key": _key_set().sign(claims()),
        "not_a_jwt": "not-a-jwt",
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong_audience",
        "wrong_issuer",
        "expired",
        "id_token_typ_jwt",
        "id_token_claims_as_at_jwt",
        "no_jti",
        "tampered_signature",
        "tampered_claims",
        "alg_none",
        "alg_hs256",
        "other_issuers_key",
        "not_a_jwt",
    ],
)
async def test_verify_bad_token_is_invalid_token(
    make_verifier: Factory, keys: KeySet, case: str
) -> None:
    verifier = make_verifier()
    await verifier.verify(
        keys.sign(claims())
    )  # keys cached: the refusal is the token's, not an outage
    with pytest.raises(InvalidTokenError):
        await verifier.verify(_refusals(keys)[case])


async def test_verify_configured_audience_refuses_issuer_audience(
    make_verifier: Factory, keys: KeySet
) -> None:
    verifier = make_verifier(audience="http://notes.api")
    assert (await verifier.verify(keys.sign(claims(aud="http://notes.api")))).jti
    with pytest.raises(InvalidTokenError):
        await verifier.verify(keys.sign(claims()))


async def test_verify_new_kid_is_fetched_on_first_sight(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet, timer: FakeTimer
) -> None:
    verifier = make_verifier()
    await verifier.verify(keys.sign(claims()))
    rotated = _key_set("RS256")
    issuer.keys = KeySet(rotated.signing, [keys.signing.verification_key()])
    timer.now += 10  # the refresh bound has passed, the cache lifetime (300 s) has not
    access = await verifier.verify(rotated.sign(claims(sub="after")))
    assert access.subject == "after"
    assert issuer.jwks_fetches == 2
    assert verifier.kids == {keys.signing.kid, rotated.signing.kid}
    assert (await verifier.verify(keys.sign(claims()))).subject == "user-1"


async def test_verify_concurrent_tokens_of_a_new_kid_share_one_fetch(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet, timer: FakeTimer
) -> None:
    verifier = make_verifier()
    await verifier.verify(keys.sign(claims()))
    rotated = _key_set()
    issuer.keys = rotated
    issuer.delay = 0.05  # every request arrives while the one fetch is running
    timer.now += 10
    tokens = [rotated.sign(claims(sub=f"user-{i}")) for i in range(20)]
    answers = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [access.subject for access in answers] == [f"user-{i}" for i in range(20)]
    assert issuer.jwks_fetches == 2


async def test_verify_fifty_random_kids_cause_at_most_one_refetch(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet, timer: FakeTimer
) -> None:
    verifier = make_verifier()
    good = keys.sign(claims())
    await verifier.verify(good)
    timer.now += 60
    issuer.delay = 0.05  # the refetch is still running while the other 49 arrive
    forged = [
        _with_header(good, alg="ES256", typ="at+jwt", kid=uuid.uuid4().hex)
        for _ in range(50)
    ]
    results = await asyncio.gather(
        *(verifier.verify(token) for token in forged), return_exceptions=True
    )
    assert all(isinstance(result, InvalidTokenError) for result in results)
    assert issuer.jwks_fetches == 2
    timer.now += 9.9  # still within the 10 s bound
    for token in forged:
        with pytest.raises(InvalidTokenError):
            await verifier.verify(token)
    assert issuer.jwks_fetches == 2
    timer.now += 0.1
    with pytest.raises(InvalidTokenError):
        await verifier.verify(forged[0])
    assert issuer.jwks_fetches == 3
    assert (await verifier.verify(good)).subject == "user-1"


async def test_verify_endpoint_down_with_keys_cached_still_verifies(
    make_verifier: Factory,
    issuer: FakeIssuer,
    keys: KeySet,
    timer: FakeTimer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = make_verifier()
    await verifier.verify(keys.sign(claims()))
    issuer.down = True
    timer.now += 301  # stale: the next request refreshes in the background, which fails
    caplog.set_level(logging.WARNING, "oauth_service.jwks")
    for _ in range(3):
        assert (await verifier.verify(keys.sign(claims()))).subject == "user-1"
        await asyncio.sleep(0)  # let the background refresh run
    await verifier.aclose()
    assert len(issuer.requests) == 3  # metadata, JWKS, one failed refresh
    [record] = _jwks_records(caplog)
    assert record.getMessage() == (
        f"JWKS refresh for issuer {ISS} failed: GET {JWKS_URI}: ConnectError "
        "[Errno 111] Connection refused; keeping the cached keys"
    )
    # A token whose key is not cached cannot be decided while the issuer is down.
    with pytest.raises(TemporarilyUnavailableError):
        await verifier.verify(_key_set().sign(claims()))


async def test_verify_endpoint_down_without_keys_is_temporarily_unavailable(
    make_verifier: Factory,
    issuer: FakeIssuer,
    keys: KeySet,
    timer: FakeTimer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = make_verifier()
    issuer.down = True
    caplog.set_level(logging.WARNING, "oauth_service.jwks")
    for _ in range(5):
        with pytest.raises(TemporarilyUnavailableError) as raised:
            await verifier.verify(keys.sign(claims()))
    assert raised.value.http_status == 503
    assert issuer.requests == [METADATA_URL]  # one attempt per refresh interval
    [record] = _jwks_records(caplog)
    assert record.getMessage() == (
        f"JWKS refresh for issuer {ISS} failed: GET {METADATA_URL}: ConnectError "
        "[Errno 111] Connection refused; no keys cached, answering 503"
    )
    issuer.down = False
    timer.now += 10
    assert (await verifier.verify(keys.sign(claims()))).subject == "user-1"


async def test_verify_foreign_jwks_uri_is_refused_without_a_request(
    make_verifier: Factory,
    issuer: FakeIssuer,
    keys: KeySet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer.metadata["jwks_uri"] = "http://169.254.169.254/latest/jwks.json"
    caplog.set_level(logging.WARNING, "oauth_service.jwks")
    with pytest.raises(TemporarilyUnavailableError):
        await make_verifier().verify(keys.sign(claims()))
    assert issuer.requests == [METADATA_URL]
    assert "not on the issuer's origin" in _jwks_records(caplog)[0].getMessage()


@pytest.mark.parametrize(
    ("jwks_uri", "allowed"),
    [
        ("https://keys.example/jwks.json", True),
        ("http://keys.example/jwks.json", True),  # the issuer is http too
        ("http://oauth.test:8080/jwks.json", True),  # another port is another origin
        ("ftp://oauth.test/jwks.json", False),
        ("/.well-known/jwks.json", False),
    ],
    ids=["https", "http_like_issuer", "other_port", "ftp", "relative"],
)
async def test_verify_foreign_jwks_uri_is_fetched_only_with_the_flag(
    make_verifier: Factory,
    issuer: FakeIssuer,
    keys: KeySet,
    jwks_uri: str,
    allowed: bool,
) -> None:
    issuer.metadata["jwks_uri"] = jwks_uri
    with pytest.raises(TemporarilyUnavailableError):
        await make_verifier().verify(keys.sign(claims()))
    assert issuer.requests == [METADATA_URL]
    issuer.requests.clear()
    verifier = make_verifier(allow_foreign_jwks_uri=True)
    if allowed:
        assert (await verifier.verify(keys.sign(claims()))).subject == "user-1"
        assert issuer.requests == [METADATA_URL, jwks_uri]
    else:
        with pytest.raises(TemporarilyUnavailableError):
            await verifier.verify(keys.sign(claims()))
        assert issuer.requests == [METADATA_URL]


async def test_verify_https_issuer_refuses_foreign_http_jwks_uri(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet
) -> None:
    issuer.metadata = {"issuer": "https://oauth.test", "jwks_uri": JWKS_URI}
    verifier = make_verifier(issuer="https://oauth.test", allow_foreign_jwks_uri=True)
    with pytest.raises(TemporarilyUnavailableError):
        await verifier.verify(keys.sign(claims(iss="https://oauth.test")))
    assert issuer.requests == [
        "https://oauth.test/.well-known/oauth-authorization-server"
    ]


@pytest.mark.parametrize(
    "metadata_issuer",
    ["http://evil.test", "http://oauth.test/", None],
    ids=["other_host", "trailing_slash", "missing"],
)
async def test_verify_metadata_naming_another_issuer_is_refused(
    make_verifier: Factory,
    issuer: FakeIssuer,
    keys: KeySet,
    metadata_issuer: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer.metadata["issuer"] = metadata_issuer
    caplog.set_level(logging.WARNING, "oauth_service.jwks")
    with pytest.raises(TemporarilyUnavailableError):
        await make_verifier().verify(keys.sign(claims()))
    assert issuer.requests == [METADATA_URL]
    assert "(RFC 8414 §3.3)" in _jwks_records(caplog)[0].getMessage()


async def test_verify_stale_keys_refresh_in_background_after_max_age(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet, timer: FakeTimer
) -> None:
    issuer.cache_control = "public, max-age=120"
    verifier = make_verifier()
    token = keys.sign(claims())
    await verifier.verify(token)
    timer.now += 119
    await verifier.verify(token)
    await asyncio.sleep(0)
    assert issuer.jwks_fetches == 1
    timer.now += 1
    issuer.delay = 0.05
    await verifier.verify(token)  # answered from the cache while the refresh runs
    assert issuer.jwks_fetches == 1
    await asyncio.sleep(0.1)
    assert issuer.jwks_fetches == 2
    await verifier.verify(token)
    assert issuer.jwks_fetches == 2


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [("no-store", 300), ("max-age=0", 30), ("public, max-age=999999", 3600)],
    ids=["absent_default", "floor", "ceiling"],
)
async def test_verify_cache_lifetime_is_bounded(
    make_verifier: Factory,
    issuer: FakeIssuer,
    keys: KeySet,
    timer: FakeTimer,
    cache_control: str,
    lifetime: float,
) -> None:
    issuer.cache_control = cache_control
    verifier = make_verifier()
    token = keys.sign(claims())
    await verifier.verify(token)
    timer.now += lifetime - 1
    await verifier.verify(token)
    await asyncio.sleep(0)
    assert issuer.jwks_fetches == 1
    timer.now += 1
    await verifier.verify(token)
    await asyncio.sleep(0)
    assert issuer.jwks_fetches == 2


async def test_verify_jwks_redirect_is_not_followed(
    make_verifier: Factory, keys: KeySet
) -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://evil.test/jwks.json"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(redirect))
    async with http:
        with pytest.raises(TemporarilyUnavailableError):
            await make_verifier(http=http).verify(keys.sign(claims()))


async def test_verify_jwks_skips_unusable_keys(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet
) -> None:
    published = keys.jwks()["keys"][0]
    odd: list[dict[str, str]] = [
        {k: v for k, v in published.items() if k != "alg"},
        {**published, "kid": "enc", "use": "enc"},
        {**published, "kid": "hmac", "kty": "oct", "alg": "HS256"},
        {**published, "kid": "broken", "x": "!!"},
    ]

    class Published:
        def jwks(self) -> dict[str, list[dict[str, str]]]:
            return {"keys": [*odd, published]}

    issuer.keys = Published()  # type: ignore[assignment]
    verifier = make_verifier()
    assert (await verifier.verify(keys.sign(claims()))).subject == "user-1"
    assert verifier.kids == {keys.signing.kid}


async def test_verify_jwks_without_usable_keys_is_invalid_token(
    make_verifier: Factory, issuer: FakeIssuer, keys: KeySet
) -> None:
    class Empty:
        def jwks(self) -> dict[str, list[dict[str, str]]]:
            return {"keys": []}

    issuer.keys = Empty()  # type: ignore[assignment]
    with pytest.raises(InvalidTokenError):
        await make_verifier().verify(keys.sign(claims()))


def test_issuer_must_be_absolute_http_url() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        JwksTokenVerifier("oauth.test")


class RecordingVerifier:
    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.tokens: list[str] = []

    async def verify(self, token: str) -> AccessToken:
        self.tokens.append(token)
        if self.refuse:
            raise InvalidTokenError(detail="token is not active")
        return AccessToken("remote", "app", frozenset(), "jti", int(NOW) + 60)


async def test_combined_verifier_asks_remote_only_after_local_passes(
    make_verifier: Factory, keys: KeySet
) -> None:
    remote = RecordingVerifier(refuse=False)
    combined = CombinedVerifier(make_verifier(), remote)
    assert ResourceProtector(combined).verifier is combined  # a TokenVerifier, for mypy
    with pytest.raises(InvalidTokenError):
        await combined.verify(_refusals(keys)["tampered_signature"])
    assert remote.tokens == []
    token = keys.sign(claims())
    access = await combined.verify(token)
    assert (access.subject, remote.tokens) == ("user-1", [token])
    remote.refuse = True
    with pytest.raises(InvalidTokenError):
        await combined.verify(keys.sign(claims()))
