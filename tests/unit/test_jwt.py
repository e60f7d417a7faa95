"""Signing and verification of JWT access tokens, including every forgery we know of (RFC 9068 §4)."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from oauth_service.crypto.jwt import (
    KeySet,
    SigningKey,
    TokenVerificationError,
    VerificationKey,
    generate_key,
    thumbprint,
)

ISS = "http://oauth.test"
AUD = "http://api.test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


@pytest.fixture(scope="module")
def rsa_material() -> tuple[str, str, dict[str, str]]:
    return generate_key("RS256")


@pytest.fixture(scope="module")
def keyset(rsa_material: tuple[str, str, dict[str, str]]) -> KeySet:
    kid, pem, _ = rsa_material
    return KeySet(SigningKey.from_pem(kid, "RS256", pem))


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
    }
    claims.update(overrides)
    return claims


def _verify(keyset: KeySet, token: str, **kwargs: Any) -> dict[str, Any]:
    return keyset.verify(token, issuer=ISS, audience=AUD, **kwargs)


def test_jwt_round_trip_returns_claims_and_header(keyset: KeySet) -> None:
    claims = _claims()
    token = keyset.sign(claims)
    assert _verify(keyset, token) == claims
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": keyset.signing.kid}


def test_jwt_es256_round_trip_verifies() -> None:
    kid, pem, public = generate_key("ES256")
    keys = KeySet(SigningKey.from_pem(kid, "ES256", pem))
    assert (
        keys.verify(keys.sign(_claims()), issuer=ISS, audience=AUD)["sub"] == "user-1"
    )
    assert public["kty"] == "EC"
    assert public["crv"] == "P-256"


def test_jwt_kid_is_rfc7638_thumbprint(
    rsa_material: tuple[str, str, dict[str, str]],
) -> None:
    kid, _, public = rsa_material
    assert kid == thumbprint(public)
    assert public["kid"] == kid


def test_jwt_jwks_has_public_members_only(keyset: KeySet) -> None:
    (key,) = keyset.jwks()["keys"]
    assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
    assert key["use"] == "sig"
    assert key["alg"] == "RS256"


def test_jwt_signing_key_repr_hides_private_key(keyset: KeySet) -> None:
    assert "private_key" not in repr(keyset.signing)


def test_jwt_with_alg_none_is_rejected(keyset: KeySet) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": keyset.signing.kid}
    token = f"{_segment(header)}.{_segment(_claims())}."
    with pytest.raises(TokenVerificationError):
        _verify(keyset, token)


def test_jwt_hs256_keyed_with_public_pem_is_rejected(
    keyset: KeySet, rsa_material: tuple[str, str, dict[str, str]]
) -> None:
    _, pem, _ = rsa_material
    private = serialization.load_pem_private_key(pem.encode(), None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keyset.signing.kid}
    signing_input = f"{_segment(header)}.{_segment(_claims())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenVerificationError):
        _verify(keyset, f"{signing_input}.{_b64(mac)}")


def test_jwt_with_unknown_kid_is_rejected(keyset: KeySet) -> None:
    kid, pem, _ = generate_key("RS256")
    other = KeySet(SigningKey.from_pem(kid, "RS256", pem))
    with pytest.raises(TokenVerificationError, match="unknown key id"):
        _verify(keyset, other.sign(_claims()))


def test_jwt_signed_by_other_key_with_same_kid_is_rejected(keyset: KeySet) -> None:
    _, pem, _ = generate_key("RS256")
    impostor = KeySet(SigningKey.from_pem(keyset.signing.kid, "RS256", pem))
    with pytest.raises(TokenVerificationError, match="bad signature"):
        _verify(keyset, impostor.sign(_claims()))


def test_jwt_with_tampered_payload_is_rejected(keyset: KeySet) -> None:
    header, _, signature = keyset.sign(_claims()).split(".")
    forged = f"{header}.{_segment(_claims(sub='admin'))}.{signature}"
    with pytest.raises(TokenVerificationError, match="bad signature"):
        _verify(keyset, forged)


@pytest.mark.parametrize(
    "typ", ["JWT", "id_token", ""], ids=["jwt", "id-token", "empty"]
)
def test_jwt_with_wrong_typ_is_rejected(keyset: KeySet, typ: str) -> None:
    with pytest.raises(TokenVerificationError, match="unexpected token type"):
        _verify(keyset, keyset.sign(_claims(), typ=typ))


def test_jwt_with_media_type_typ_is_accepted(keyset: KeySet) -> None:
    assert (
        _verify(keyset, keyset.sign(_claims(), typ="application/at+jwt"))["jti"] == "j1"
    )


def test_jwt_expired_is_rejected(keyset: KeySet) -> None:
    now = int(time.time())
    token = keyset.sign(_claims(iat=now - 700, exp=now - 100))
    with pytest.raises(TokenVerificationError, match="expired"):
        _verify(keyset, token, leeway=30)


def test_jwt_within_leeway_is_accepted(keyset: KeySet) -> None:
    now = int(time.time())
    token = keyset.sign(_claims(iat=now - 700, exp=now))
    assert _verify(keyset, token, leeway=30, now=now + 10)["jti"] == "j1"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "http://evil.test"}, "wrong issuer"),
        ({"aud": "http://other.test"}, "wrong audience"),
        ({"aud": ["http://other.test"]}, "wrong audience"),
        ({"iat": int(time.time()) + 3600}, "iat in the future"),
        ({"nbf": int(time.time()) + 3600}, "nbf in the future"),
        ({"exp": "never"}, "missing exp"),
    ],
    ids=["issuer", "audience", "audience-list", "iat", "nbf", "exp"],
)
def test_jwt_with_bad_registered_claim_is_rejected(
    keyset: KeySet, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(TokenVerificationError, match=reason):
        _verify(keyset, keyset.sign(_claims(**claims)))


def test_jwt_audience_list_containing_ours_is_accepted(keyset: KeySet) -> None:
    token = keyset.sign(_claims(aud=[AUD, "http://other.test"]))
    assert _verify(keyset, token)["aud"] == [AUD, "http://other.test"]


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c", "!!.!!.!!"],
    ids=["empty", "one", "two", "junk", "bad-b64"],
)
def test_jwt_malformed_is_rejected(keyset: KeySet, token: str) -> None:
    with pytest.raises(TokenVerificationError):
        _verify(keyset, token)


def test_jwt_with_crit_header_is_rejected(keyset: KeySet) -> None:
    header = {
        "alg": "RS256",
        "typ": "at+jwt",
        "kid": keyset.signing.kid,
        "crit": ["exp"],
    }
    signing_input = f"{_segment(header)}.{_segment(_claims())}"
    signature = keyset.signing.private_key.sign(signing_input.encode())
    with pytest.raises(TokenVerificationError, match="critical"):
        _verify(keyset, f"{signing_input}.{_b64(signature)}")


def test_jwt_alg_substitution_is_rejected(keyset: KeySet) -> None:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": keyset.signing.kid}
    token = f"{_segment(header)}.{_segment(_claims())}.{_b64(b'x' * 64)}"
    with pytest.raises(TokenVerificationError, match="algorithm"):
        _verify(keyset, token)


def test_jwt_retired_key_still_verifies(
    rsa_material: tuple[str, str, dict[str, str]],
) -> None:
    old_kid, old_pem, old_public = rsa_material
    old = KeySet(SigningKey.from_pem(old_kid, "RS256", old_pem))
    token = old.sign(_claims())
    kid, pem, _ = generate_key("RS256")
    rotated = KeySet(
        SigningKey.from_pem(kid, "RS256", pem),
        [VerificationKey.from_jwk(old_kid, "RS256", old_public)],
    )
    assert rotated.verify(token, issuer=ISS, audience=AUD)["jti"] == "j1"
    assert rotated.kids == {kid, old_kid}
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {kid, old_kid}


def test_jwt_verifies_with_independent_library(keyset: KeySet) -> None:
    from joserfc import jwt as rfc_jwt
    from joserfc.jwk import KeySet as RfcKeySet

    token = keyset.sign(_claims())
    decoded = rfc_jwt.decode(token, RfcKeySet.import_key_set(keyset.jwks()))  # type: ignore[arg-type]
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["sub"] == "user-1"


def test_generate_key_with_unknown_alg_raises() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        generate_key("HS256")  # type: ignore[arg-type]
