"""ID-token minting and ``id_token_hint`` checking (OpenID Connect Core §2, §3.1.2.1, §3.1.3.6), in isolation."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.oauth.models import Authentication
from oauth_service.oidc.id_tokens import (
    ID_TOKEN_TYP,
    IdTokenMinter,
    left_half_hash,
    verify_hint,
)

ISSUER = "https://as.example"
NOW = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)


def _keys(alg: str = "RS256") -> KeySet:
    kid, pem, _public = generate_key(alg)  # type: ignore[arg-type]
    return KeySet(SigningKey.from_pem(kid, alg, pem))


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return _keys()


def _minter(keys: KeySet, *, at: datetime = NOW) -> IdTokenMinter:
    return IdTokenMinter(
        lambda: keys, issuer=ISSUER, ttl=timedelta(hours=1), clock=lambda: at
    )


def test_at_hash_is_the_left_half_of_the_sha256_of_the_access_token() -> None:
    # OIDC Core §3.1.3.6; the example value is computed independently here.
    digest = hashlib.sha256(b"an-access-token").digest()[:16]
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert left_half_hash("an-access-token", "RS256") == expected
    assert left_half_hash("an-access-token", "ES256") == expected


def test_minted_token_has_exactly_the_claims_of_the_sign_in(keys: KeySet) -> None:
    signed_in = Authentication(
        "user-1", NOW - timedelta(minutes=5), sid="s1", nonce="n-0"
    )
    token = _minter(keys).mint("app", signed_in, access_token="at")
    claims = keys.verify(
        token, issuer=ISSUER, audience="app", typ=ID_TOKEN_TYP, now=NOW.timestamp()
    )
    assert claims == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "app",
        "exp": int(NOW.timestamp()) + 3600,
        "iat": int(NOW.timestamp()),
        "auth_time": int((NOW - timedelta(minutes=5)).timestamp()),
        "nonce": "n-0",
        "sid": "s1",
        "amr": ["pwd"],
        "at_hash": left_half_hash("at", "RS256"),
    }


def test_profile_claims_never_replace_the_registered_ones(keys: KeySet) -> None:
    token = _minter(keys).mint(
        "app",
        Authentication("user-1", None),
        claims={"sub": "someone-else", "iss": "https://evil.example", "name": "Ann"},
    )
    claims = keys.verify(
        token, issuer=ISSUER, audience="app", typ=ID_TOKEN_TYP, now=NOW.timestamp()
    )
    assert (claims["sub"], claims["iss"], claims["name"]) == ("user-1", ISSUER, "Ann")
    assert "auth_time" not in claims
    assert "nonce" not in claims


def test_an_expired_id_token_is_still_a_valid_hint(keys: KeySet) -> None:
    old = _minter(keys, at=datetime.now(UTC) - timedelta(days=3)).mint(
        "app", Authentication("user-1", None, sid="s1")
    )
    hint = verify_hint(old, keys, issuer=ISSUER)
    assert hint is not None
    assert (hint.subject, hint.audiences, hint.sid) == ("user-1", ("app",), "s1")


@pytest.mark.parametrize(
    "describe",
    ["access token", "other issuer", "other key", "garbage", "unsigned"],
)
def test_what_is_not_our_id_token_is_no_hint(keys: KeySet, describe: str) -> None:
    signed_in = Authentication("user-1", None)
    tokens = {
        "access token": keys.sign(
            {"iss": ISSUER, "sub": "user-1", "aud": "app", "exp": 2_000_000_000}
        ),
        "other issuer": IdTokenMinter(
            lambda: keys, issuer="https://other.example", ttl=timedelta(hours=1)
        ).mint("app", signed_in),
        "other key": _minter(_keys()).mint("app", signed_in),
        "garbage": "not.a.jwt",
        "unsigned": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1c2VyLTEifQ.",
    }
    assert verify_hint(tokens[describe], keys, issuer=ISSUER) is None


def test_es256_id_tokens_verify_and_hash_with_sha256() -> None:
    keys = _keys("ES256")
    token = _minter(keys).mint("app", Authentication("u", NOW), access_token="at")
    claims = keys.verify(
        token, issuer=ISSUER, audience="app", typ=ID_TOKEN_TYP, now=NOW.timestamp()
    )
    assert claims["at_hash"] == left_half_hash("at", "ES256")
