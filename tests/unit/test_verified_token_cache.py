"""The verified-token cache: a hit skips the signature check and changes no answer (RFC 9068 §4, RFC 7009 §2.1)."""

from collections.abc import Hashable
from typing import Any

import pytest

from oauth_service.crypto.jwt import KeySet, SigningKey, VerificationKey, generate_key
from oauth_service.oauth.access_tokens import (
    LocalTokenVerifier,
    VerifiedTokenCache,
)
from oauth_service.oauth.errors import InvalidTokenError

ISS = "http://oauth.test"
AUD = "http://api.test"
NOW = 1_800_000_000.0
LEEWAY = 30


class CountingKeys:
    """A ``TokenKeys`` that counts full verifications of the ``KeySet`` it wraps."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.verifications = 0

    @property
    def fingerprint(self) -> Hashable:
        return self.keys.fingerprint

    def verify(self, token: str, **kwargs: Any) -> dict[str, Any]:
        self.verifications += 1
        return self.keys.verify(token, **kwargs)


class Revocations:
    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.lookups = 0

    async def __call__(self, jti: str) -> bool:
        self.lookups += 1
        return jti in self.revoked


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _keyset(alg: str = "RS256") -> KeySet:
    kid, pem, _ = generate_key(alg)  # type: ignore[arg-type]
    return KeySet(SigningKey.from_pem(kid, alg, pem))


@pytest.fixture(scope="module")
def keyset() -> KeySet:
    return _keyset()


@pytest.fixture
def keys(keyset: KeySet) -> CountingKeys:
    return CountingKeys(keyset)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def revocations() -> Revocations:
    return Revocations()


@pytest.fixture
def cache() -> VerifiedTokenCache:
    return VerifiedTokenCache(max_entries=100)


def _verifier(
    keys: CountingKeys,
    clock: Clock,
    revocations: Revocations,
    cache: VerifiedTokenCache | None,
    *,
    audience: str = AUD,
) -> LocalTokenVerifier:
    return LocalTokenVerifier(
        lambda: keys,
        issuer=ISS,
        audience=audience,
        is_revoked=revocations,
        leeway=LEEWAY,
        clock=clock,
        cache=cache,
    )


@pytest.fixture
def verifier(
    keys: CountingKeys,
    clock: Clock,
    revocations: Revocations,
    cache: VerifiedTokenCache,
) -> LocalTokenVerifier:
    return _verifier(keys, clock, revocations, cache)


async def _reason(verifier: LocalTokenVerifier, token: str) -> str:
    """The private reason ``verifier`` refuses ``token`` for."""
    with pytest.raises(InvalidTokenError) as caught:
        await verifier.verify(token)
    return str(caught.value.detail)


def _token(keyset: KeySet, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "client_id": "app",
        "iat": int(NOW),
        "exp": int(NOW) + 600,
        "jti": "jti-1",
        "scope": "read",
    }
    claims.update(overrides)
    return keyset.sign({k: v for k, v in claims.items() if v is not None})


async def test_hit_skips_the_signature_check(
    verifier: LocalTokenVerifier, keys: CountingKeys, keyset: KeySet
) -> None:
    token = _token(keyset)
    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert keys.verifications == 1
    assert again == first
    assert again.subject == "user-1"
    assert again.scopes == {"read"}


async def test_without_a_cache_every_use_is_verified(
    keys: CountingKeys, clock: Clock, revocations: Revocations, keyset: KeySet
) -> None:
    token = _token(keyset)
    for cache in (None, VerifiedTokenCache(max_entries=0)):
        verifier = _verifier(keys, clock, revocations, cache)
        await verifier.verify(token)
        await verifier.verify(token)
    assert keys.verifications == 4


async def test_hit_still_enforces_expiry_with_the_leeway(
    verifier: LocalTokenVerifier,
    keys: CountingKeys,
    keyset: KeySet,
    clock: Clock,
    cache: VerifiedTokenCache,
) -> None:
    token = _token(keyset)
    await verifier.verify(token)
    clock.now = NOW + 600 + LEEWAY - 0.5  # expired, but within the leeway
    await verifier.verify(token)
    clock.now = NOW + 600 + LEEWAY
    assert await _reason(verifier, token) == "token expired"
    assert keys.verifications == 1
    assert len(cache) == 0  # dropped on sight


async def test_hit_honours_a_fractional_exp_exactly(
    verifier: LocalTokenVerifier, keyset: KeySet, clock: Clock
) -> None:
    token = _token(keyset, exp=NOW + 600.75)
    await verifier.verify(token)
    clock.now = NOW + 600.5 + LEEWAY  # past int(exp) + leeway, before exp + leeway
    assert (await verifier.verify(token)).expires_at == int(NOW) + 600


async def test_hit_still_enforces_nbf_when_the_clock_goes_back(
    verifier: LocalTokenVerifier, keyset: KeySet, clock: Clock, keys: CountingKeys
) -> None:
    token = _token(keyset, nbf=int(NOW) + 20)
    await verifier.verify(token)  # nbf is within the leeway
    clock.now = NOW - 20
    assert await _reason(verifier, token) == "iat or nbf in the future"
    assert keys.verifications == 1


async def test_hit_still_checks_revocation_every_time(
    verifier: LocalTokenVerifier,
    keys: CountingKeys,
    keyset: KeySet,
    revocations: Revocations,
) -> None:
    token = _token(keyset, jti="gone-soon")
    await verifier.verify(token)
    await verifier.verify(token)
    assert revocations.lookups == 2
    revocations.revoked.add("gone-soon")
    assert await _reason(verifier, token) == "access token revoked"
    assert revocations.lookups == 3
    assert keys.verifications == 1
    # Introspection asks decode() and revoked() separately: the hit is decoded, the revocation still found.
    access = verifier.decode(token)
    assert await verifier.revoked(access)


async def test_key_set_change_empties_the_cache(
    keys: CountingKeys,
    clock: Clock,
    revocations: Revocations,
    cache: VerifiedTokenCache,
    keyset: KeySet,
) -> None:
    verifier = _verifier(keys, clock, revocations, cache)
    token = _token(keyset)
    await verifier.verify(token)
    # A reload that builds an equal key set keeps the entries.
    keys.keys = KeySet(keyset.signing)
    await verifier.verify(token)
    assert keys.verifications == 1
    # A reload that adds a key (a rotation being published) empties the cache; the token still verifies.
    newer = _keyset()
    keys.keys = KeySet(newer.signing, [keyset.signing.verification_key()])
    await verifier.verify(token)
    assert keys.verifications == 2
    # A reload that removes the token's key: the token stops verifying at once.
    keys.keys = KeySet(newer.signing)
    assert await _reason(verifier, token) == "unknown key id"
    assert keys.verifications == 3
    assert len(cache) == 0


async def test_same_kid_with_other_key_material_is_a_key_set_change(
    keys: CountingKeys,
    clock: Clock,
    revocations: Revocations,
    cache: VerifiedTokenCache,
    keyset: KeySet,
) -> None:
    verifier = _verifier(keys, clock, revocations, cache)
    token = _token(keyset)
    await verifier.verify(token)
    _, pem, public = generate_key("RS256")
    kid = keyset.signing.kid
    impostor = KeySet(
        SigningKey.from_pem(kid, "RS256", pem),
        [VerificationKey.from_jwk("other", "RS256", public)],
    )
    keys.keys = impostor
    assert await _reason(verifier, token) == "bad signature"


async def test_bound_evicts_the_least_recently_used_token(
    keys: CountingKeys, clock: Clock, revocations: Revocations, keyset: KeySet
) -> None:
    cache = VerifiedTokenCache(max_entries=2)
    verifier = _verifier(keys, clock, revocations, cache)
    a, b, c = (_token(keyset, jti=jti) for jti in "abc")
    await verifier.verify(a)
    await verifier.verify(b)
    await verifier.verify(a)  # a is now the most recently used
    await verifier.verify(c)  # evicts b
    assert len(cache) == 2
    assert keys.verifications == 3
    await verifier.verify(a)
    await verifier.verify(c)
    assert keys.verifications == 3
    await verifier.verify(b)
    assert keys.verifications == 4
    assert len(cache) == 2


async def test_insertion_sweeps_expired_tokens_from_the_old_end(
    verifier: LocalTokenVerifier,
    keyset: KeySet,
    clock: Clock,
    cache: VerifiedTokenCache,
) -> None:
    await verifier.verify(_token(keyset, jti="short", exp=int(NOW) + 60))
    await verifier.verify(_token(keyset, jti="long", exp=int(NOW) + 6000))
    clock.now = NOW + 60 + LEEWAY
    await verifier.verify(
        _token(keyset, jti="new", iat=int(clock.now), exp=int(clock.now) + 600)
    )
    assert len(cache) == 2  # "short" is gone without ever being looked up again


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_other_string_with_the_same_claims_is_a_miss_and_fails(
    keys: CountingKeys,
    clock: Clock,
    revocations: Revocations,
    cache: VerifiedTokenCache,
    alg: str,
) -> None:
    keys.keys = signer = _keyset(alg)
    verifier = _verifier(keys, clock, revocations, cache)
    token = _token(signer)
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    # Flip the first character of the signature, and a middle one: other strings, other signatures.
    flipped = "A" if signature[0] != "A" else "B"
    forgeries = [
        f"{header}.{payload}.{flipped}{signature[1:]}",
        f"{header}.{payload}.{signature[:40]}{'x' if signature[40] != 'x' else 'y'}{signature[41:]}",
        f"{header}.{payload}.{signature[:-4]}",
        f"{header}.{payload}",
        token + ".",
        " " + token,
    ]
    for forged in forgeries:
        assert await _reason(verifier, forged) in {"bad signature", "malformed token"}
    assert keys.verifications == 1 + len(forgeries)
    assert len(cache) == 1  # failures are never stored
    await verifier.verify(token)
    assert keys.verifications == 1 + len(forgeries)


async def test_failed_verification_is_never_cached(
    verifier: LocalTokenVerifier,
    keys: CountingKeys,
    keyset: KeySet,
    cache: VerifiedTokenCache,
) -> None:
    token = _token(keyset, aud="http://elsewhere.test")
    for _ in range(2):
        assert await _reason(verifier, token) == "wrong audience"
    assert keys.verifications == 2
    assert len(cache) == 0


async def test_shared_cache_still_applies_each_verifiers_audience(
    keys: CountingKeys,
    clock: Clock,
    revocations: Revocations,
    cache: VerifiedTokenCache,
    keyset: KeySet,
) -> None:
    ours = _verifier(keys, clock, revocations, cache)
    theirs = _verifier(keys, clock, revocations, cache, audience="http://other.test")
    token = _token(keyset)
    await ours.verify(token)
    assert await _reason(theirs, token) == "wrong issuer or audience"


async def test_cached_claims_are_read_only(
    verifier: LocalTokenVerifier, keyset: KeySet
) -> None:
    token = _token(keyset)
    access = await verifier.verify(token)
    with pytest.raises(TypeError):
        access.claims["scope"] = "admin"  # type: ignore[index]
    assert (await verifier.verify(token)).claims["scope"] == "read"
