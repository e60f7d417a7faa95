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
    MAX_HEADER_CHARS,
    MAX_TOKEN_CHARS,
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


def test_jwt_public_only_key_set_verifies_and_cannot_sign(
    rsa_material: tuple[str, str, dict[str, str]],
) -> None:
    kid, pem, public = rsa_material
    token = KeySet(SigningKey.from_pem(kid, "RS256", pem)).sign(_claims())
    public_only = KeySet.for_verification(
        [VerificationKey.from_jwk(kid, "RS256", public)]
    )
    assert public_only.verify(token, issuer=ISS, audience=AUD)["jti"] == "j1"
    assert public_only.kids == {kid}
    with pytest.raises(TypeError, match="only verifies"):
        public_only.sign(_claims())


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


# Verification checks signatures with ``cryptography`` directly; these pin it to python-jose's answers, to an
# independent library (joserfc) and to every tampering we can think of, for both algorithms.


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def any_keyset(request: pytest.FixtureRequest) -> KeySet:
    kid, pem, _ = generate_key(request.param)
    return KeySet(SigningKey.from_pem(kid, request.param, pem))


def _flip(segment: str, index: int) -> str:
    """The base64url segment with one decoded byte changed (a different signature, still well-formed)."""
    raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    raw[index] ^= 0x01
    return _b64(bytes(raw))


# The order n of P-256 (SEC 2 §2.4.2): an ECDSA signature (r, s) has a twin (r, n - s) that verifies too.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _s_of(token: str) -> int:
    raw = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    return int.from_bytes(raw[32:], "big")


def _with_s(token: str, *, high: bool) -> str:
    """The ES256 token spelt with the high (s > n/2) or the low twin of its signature's s."""
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    s = int.from_bytes(raw[32:], "big")
    s = max(s, P256_ORDER - s) if high else min(s, P256_ORDER - s)
    return f"{signing_input}.{_b64(raw[:32] + s.to_bytes(32, 'big'))}"


def _signed(keyset: KeySet, header_segment: str, claims_segment: str) -> str:
    """A token whose signature is genuine for whatever segments it is given (as if we had signed them)."""
    signing_input = f"{header_segment}.{claims_segment}"
    signature = keyset.signing.private_key.sign(signing_input.encode())
    token = f"{signing_input}.{_b64(signature)}"
    # python-jose's raw ECDSA signature is high-S half the time; KeySet.sign spells it low-S, as we do here.
    return _with_s(token, high=False) if keyset.signing.alg == "ES256" else token


def _jose_accepts(keyset: KeySet, token: str) -> bool:
    from jose import jws
    from jose.exceptions import JOSEError

    key = keyset.signing.private_key.public_key()
    try:
        jws.verify(token, key, algorithms=[keyset.signing.alg])
    except JOSEError:
        return False
    return True


def test_jwt_verification_agrees_with_python_jose(any_keyset: KeySet) -> None:
    header, payload, signature = any_keyset.sign(_claims()).split(".")
    candidates = {
        "genuine": (f"{header}.{payload}.{signature}", True),
        "first signature byte": (f"{header}.{payload}.{_flip(signature, 0)}", False),
        "last signature byte": (f"{header}.{payload}.{_flip(signature, -1)}", False),
        "payload": (f"{header}.{_segment(_claims(sub='admin'))}.{signature}", False),
        "truncated signature": (f"{header}.{payload}.{signature[:-4]}", False),
    }
    for name, (token, valid) in candidates.items():
        assert _jose_accepts(any_keyset, token) is valid, name
        if valid:
            assert _verify(any_keyset, token)["sub"] == "user-1"
        else:
            with pytest.raises(TokenVerificationError):
                _verify(any_keyset, token)


def test_jwt_signed_by_independent_library_verifies(any_keyset: KeySet) -> None:
    from joserfc import jws as rfc_jws
    from joserfc.jwk import import_key

    alg = any_keyset.signing.alg
    pem = any_keyset.signing.private_key.to_pem().decode()
    key = import_key(pem, "RSA" if alg == "RS256" else "EC")
    header = {"alg": alg, "typ": "at+jwt", "kid": any_keyset.signing.kid}
    token = rfc_jws.serialize_compact(header, json.dumps(_claims()), key)
    if alg == "ES256":
        # joserfc, like python-jose, leaves s high half the time: only its low-S twin is accepted.
        token = _with_s(token, high=False)
    assert _verify(any_keyset, token)["jti"] == "j1"


@pytest.mark.parametrize(
    "alg", ["none", "HS256", "RS384", "RS512", "PS256", "ES384", "EdDSA", ""]
)
def test_jwt_with_an_algorithm_other_than_the_keys_is_rejected(
    any_keyset: KeySet, alg: str
) -> None:
    _, payload, signature = any_keyset.sign(_claims()).split(".")
    forged = {"alg": alg, "typ": "at+jwt", "kid": any_keyset.signing.kid}
    with pytest.raises(TokenVerificationError, match="algorithm"):
        _verify(any_keyset, f"{_segment(forged)}.{payload}.{signature}")


def test_jwt_with_no_signature_is_rejected(any_keyset: KeySet) -> None:
    header, payload, _ = any_keyset.sign(_claims()).split(".")
    with pytest.raises(TokenVerificationError, match="malformed"):
        _verify(any_keyset, f"{header}.{payload}.")


def test_jwt_without_kid_is_rejected(any_keyset: KeySet) -> None:
    _, payload, signature = any_keyset.sign(_claims()).split(".")
    header = {"alg": any_keyset.signing.alg, "typ": "at+jwt"}
    with pytest.raises(TokenVerificationError, match="unknown key id"):
        _verify(any_keyset, f"{_segment(header)}.{payload}.{signature}")


def test_jwt_es256_der_encoded_signature_is_rejected() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    kid, pem, _ = generate_key("ES256")
    keys = KeySet(SigningKey.from_pem(kid, "ES256", pem))
    header, payload, _ = keys.sign(_claims()).split(".")
    private = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    # A valid ECDSA signature, but DER-encoded: RFC 7518 §3.4 demands the 64-byte r || s form.
    der = private.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(TokenVerificationError, match="bad signature"):
        _verify(keys, f"{header}.{payload}.{_b64(der)}")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s + "==",  # padding (RFC 7515 §2: base64url without padding)
        lambda s: s.replace("-", "+").replace("_", "/") + "+",  # base64, not base64url
        lambda s: s[:10] + "~" + s[10:],  # a b64token character that is not base64url
        lambda s: s[:10] + " " + s[10:],
        lambda s: s[:-1],  # one character short
    ],
    ids=["padded", "plus-slash", "tilde", "space", "short"],
)
def test_jwt_with_non_base64url_signature_is_rejected(
    any_keyset: KeySet, mangle: Any
) -> None:
    header, payload, signature = any_keyset.sign(_claims()).split(".")
    with pytest.raises(TokenVerificationError):
        _verify(any_keyset, f"{header}.{payload}.{mangle(signature)}")


def test_jwt_with_malformed_claims_is_rejected(any_keyset: KeySet) -> None:
    header = {
        "alg": any_keyset.signing.alg,
        "typ": "at+jwt",
        "kid": any_keyset.signing.kid,
    }
    token = _signed(any_keyset, _segment(header), _b64(b"[1, 2]"))
    with pytest.raises(TokenVerificationError, match="malformed claims"):
        _verify(any_keyset, token)


def test_verification_key_refuses_a_key_of_the_wrong_type(
    rsa_material: tuple[str, str, dict[str, str]],
) -> None:
    kid, _, public = rsa_material
    with pytest.raises(ValueError, match="cannot verify ES256"):
        VerificationKey.from_jwk(kid, "ES256", public)


# Hostile input (issue 15 item 8): every malformed segment is a TokenVerificationError, never another exception.


HOSTILE_SEGMENTS = {
    # The review's reproduction: nesting deeper than the JSON decoder's recursion limit.
    "deep-array": b"[" * 3000,
    "deep-array-in-object": b'{"a":' + b"[" * 2990,
    "invalid-utf8": b"\xff\xfe{}",
    "not-json": b"{alg: RS256}",
    "array": b"[]",
    "string": b'"at+jwt"',
    "number": b"1",
    "null": b"null",
    # More digits than int() converts (sys.get_int_max_str_digits(): 4300): ValueError.
    "huge-integer": b'{"kid":' + b"9" * 4400 + b"}",
    "empty": b"",
}


@pytest.mark.parametrize(
    "raw", HOSTILE_SEGMENTS.values(), ids=list(HOSTILE_SEGMENTS.keys())
)
def test_jwt_with_hostile_header_is_a_verification_error(
    keyset: KeySet, raw: bytes
) -> None:
    token = _signed(keyset, _b64(raw), _segment(_claims()))
    with pytest.raises(TokenVerificationError, match=r"malformed token|too large"):
        _verify(keyset, token)


@pytest.mark.parametrize(
    "raw", HOSTILE_SEGMENTS.values(), ids=list(HOSTILE_SEGMENTS.keys())
)
def test_jwt_with_hostile_signed_claims_is_a_verification_error(
    keyset: KeySet, raw: bytes
) -> None:
    header = {"alg": "RS256", "typ": "at+jwt", "kid": keyset.signing.kid}
    token = _signed(keyset, _segment(header), _b64(raw))
    with pytest.raises(TokenVerificationError, match="malformed"):
        _verify(keyset, token)


@pytest.mark.parametrize(
    ("name", "value"),
    [("typ", ["at+jwt"]), ("typ", [[["at+jwt"]]]), ("kid", {"k": 1}), ("kid", 7)],
    ids=["typ-list", "typ-nested", "kid-object", "kid-number"],
)
def test_jwt_header_member_of_the_wrong_type_is_rejected(
    keyset: KeySet, name: str, value: Any
) -> None:
    header = {"alg": "RS256", "typ": "at+jwt", "kid": keyset.signing.kid, name: value}
    with pytest.raises(TokenVerificationError):
        _verify(keyset, _signed(keyset, _segment(header), _segment(_claims())))


def test_jwt_header_over_the_cap_is_rejected_before_decoding(keyset: KeySet) -> None:
    header = {
        "alg": "RS256",
        "typ": "at+jwt",
        "kid": keyset.signing.kid,
        "x": "y" * MAX_HEADER_CHARS,
    }
    token = _signed(keyset, _segment(header), _segment(_claims()))
    assert len(token) < MAX_TOKEN_CHARS
    with pytest.raises(TokenVerificationError, match="token too large"):
        _verify(keyset, token)


def test_jwt_token_over_the_cap_is_rejected_and_one_under_it_verifies(
    keyset: KeySet,
) -> None:
    def token_with(padding: int) -> str:
        return keyset.sign(_claims(pad="p" * padding))

    base = len(token_with(0))
    # Base64url: 4 characters per 3 bytes of claims.
    fits = token_with((MAX_TOKEN_CHARS - base) * 3 // 4 - 3)
    assert len(fits) <= MAX_TOKEN_CHARS
    assert _verify(keyset, fits)["jti"] == "j1"
    too_large = token_with((MAX_TOKEN_CHARS - base) * 3 // 4 + 3)
    assert len(too_large) > MAX_TOKEN_CHARS
    with pytest.raises(TokenVerificationError, match="token too large"):
        _verify(keyset, too_large)


def test_jwt_megabyte_token_is_rejected_by_its_size(keyset: KeySet) -> None:
    token = f"{'A' * 1_000_000}.{'A' * 1_000_000}.{'A' * 1_000_000}"
    with pytest.raises(TokenVerificationError, match="token too large"):
        _verify(keyset, token)


# One token, one spelling: the verified-token cache and the revocation list key on the exact string and jti.

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _with_padding_bits(segment: str) -> str:
    """The same bytes spelt with non-zero unused bits in the last character (lenient decoders ignore them)."""
    unused = {2: 4, 3: 2}[len(segment) % 4]
    index = _ALPHABET.index(segment[-1])
    assert index % (1 << unused) == 0  # the canonical spelling leaves them zero
    spelt = segment[:-1] + _ALPHABET[index | 1]
    assert base64.urlsafe_b64decode(spelt + "==") == base64.urlsafe_b64decode(
        segment + "=="
    )
    return spelt


def test_jwt_signature_with_padding_bits_set_is_rejected(any_keyset: KeySet) -> None:
    token = any_keyset.sign(_claims())
    signing_input, _, signature = token.rpartition(".")
    assert _verify(any_keyset, token)["jti"] == "j1"
    with pytest.raises(TokenVerificationError, match="malformed token"):
        _verify(any_keyset, f"{signing_input}.{_with_padding_bits(signature)}")


def _header_with_unused_bits(keyset: KeySet) -> dict[str, Any]:
    header = {"alg": keyset.signing.alg, "typ": "at+jwt", "kid": keyset.signing.kid}
    while len(_segment(header)) % 4 == 0:
        header["x"] = header.get("x", "") + "x"
    return header


def test_jwt_header_or_claims_with_padding_bits_set_are_rejected(
    keyset: KeySet,
) -> None:
    header = _segment(_header_with_unused_bits(keyset))
    claims = _claims()
    while len(_segment(claims)) % 4 == 0:
        claims["x"] = claims.get("x", "") + "x"
    payload = _segment(claims)
    assert _verify(keyset, _signed(keyset, header, payload))["jti"] == "j1"
    # Genuinely signed as spelt, so only the spelling is wrong.
    with pytest.raises(TokenVerificationError, match="malformed token"):
        _verify(keyset, _signed(keyset, _with_padding_bits(header), payload))
    with pytest.raises(TokenVerificationError, match="malformed claims"):
        _verify(keyset, _signed(keyset, header, _with_padding_bits(payload)))


@pytest.fixture(scope="module")
def es256_keyset() -> KeySet:
    kid, pem, _ = generate_key("ES256")
    return KeySet(SigningKey.from_pem(kid, "ES256", pem))


def test_jwt_es256_high_s_twin_is_rejected(es256_keyset: KeySet) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    token = es256_keyset.sign(_claims())
    low, high = _with_s(token, high=False), _with_s(token, high=True)
    assert _verify(es256_keyset, low)["jti"] == "j1"
    # The twin is a valid ECDSA signature of the same input...
    signing_input, _, signature = high.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    der = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    public = es256_keyset.signing.verification_key().public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    # ...but a second spelling of the token.
    with pytest.raises(TokenVerificationError, match="bad signature"):
        _verify(es256_keyset, high)


def test_jwt_es256_signer_only_produces_low_s(es256_keyset: KeySet) -> None:
    # OpenSSL's s is high half the time: 64 tokens all low-S is no accident (2**-64).
    for n in range(64):
        token = es256_keyset.sign(_claims(jti=f"j{n}"))
        assert _s_of(token) <= P256_ORDER // 2
        assert _verify(es256_keyset, token)["jti"] == f"j{n}"


# Strict JSON: no NaN or Infinity, which json.loads takes by default (RFC 8259 §6 has no such numbers), and no
# member named twice (RFC 7515 §4, RFC 7519 §4: reject, or keep the last; parsers that keep the first disagree).


def _raw_header(keyset: KeySet, extra: str = "") -> bytes:
    return (
        f'{{"alg":"RS256","typ":"at+jwt","kid":"{keyset.signing.kid}"{extra}}}'.encode()
    )


@pytest.mark.parametrize(
    "extra",
    [',"x":NaN', ',"x":Infinity', ',"x":-Infinity', ',"x":[1e400]'],
    ids=["nan", "infinity", "minus-infinity", "overflowing-float"],
)
def test_jwt_header_with_non_finite_number_is_rejected(
    keyset: KeySet, extra: str
) -> None:
    token = _signed(keyset, _b64(_raw_header(keyset, extra)), _segment(_claims()))
    with pytest.raises(TokenVerificationError, match="malformed token"):
        _verify(keyset, token)


@pytest.mark.parametrize(
    "extra",
    [',"kid":"other"', ',"alg":"none"', ',"typ":"JWT"'],
    ids=["kid", "alg", "typ"],
)
def test_jwt_header_with_a_member_named_twice_is_rejected(
    keyset: KeySet, extra: str
) -> None:
    # The repeated member first, so the genuine value is the one a last-wins parser keeps.
    raw = _raw_header(keyset).replace(b"{", b"{" + extra[1:].encode() + b",", 1)
    token = _signed(keyset, _b64(raw), _segment(_claims()))
    with pytest.raises(TokenVerificationError, match="malformed token"):
        _verify(keyset, token)


@pytest.mark.parametrize(
    "claims",
    [
        '{"sub":"admin","sub":"user-1"}',
        '{"cnf":{"jkt":"a","jkt":"b"}}',
        '{"exp":NaN}',
        '{"exp":Infinity}',
        '{"exp":1e400}',
        '{"sub":"user-1","x":-Infinity}',
    ],
    ids=[
        "sub-twice",
        "nested-twice",
        "nan-exp",
        "infinite-exp",
        "1e400-exp",
        "minus-inf",
    ],
)
def test_jwt_claims_with_duplicates_or_non_finite_numbers_are_rejected(
    keyset: KeySet, claims: str
) -> None:
    # Every other claim valid: each token would verify without the bad member (NaN or Infinity exp never expires).
    members = json.dumps(_claims(sub="user-1"))[1:-1]
    if '"exp"' in claims:
        members = json.dumps({k: v for k, v in _claims().items() if k != "exp"})[1:-1]
    raw = claims[:-1] + "," + members + "}"
    header = _b64(_raw_header(keyset))
    with pytest.raises(TokenVerificationError, match="malformed claims"):
        _verify(keyset, _signed(keyset, header, _b64(raw.encode())))
