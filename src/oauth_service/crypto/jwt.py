"""JWT signing and verification: the only module that imports python-jose.

Implements the JOSE side of RFC 9068 (JWT access tokens: ``typ: at+jwt``, §2.1; validation, §4), RFC 7515
(JWS compact serialization), RFC 7517 (JWK Sets) and RFC 7638 (thumbprint key ids). Keys are parsed once into
key objects (parsing a private PEM costs tens of milliseconds) and reused for every call. Verification pins the
algorithm to the key named by ``kid``, so ``alg: none``, HMAC keyed with a public key and algorithm
substitution are all refused. Nothing here knows about OAuth; failures raise ``TokenVerificationError``.

Signing goes through python-jose. Verification checks the RS256 (RSASSA-PKCS1-v1_5, RFC 7518 §3.3) or ES256
(ECDSA P-256 with the 64-byte ``r || s`` signature, RFC 7518 §3.4) signature with the ``cryptography`` public
key object built once per key, and decodes each segment once: ``jws.verify`` parsed the header a second time,
decoded it through three layers of helpers and looked the key up again, about a third of a verification's
cost besides the signature itself. It is at least as strict: segments must be unpadded base64url
(RFC 7515 §2), and nothing but the key's own algorithm is ever tried.

Hostile input gets a ``TokenVerificationError`` and nothing else: tokens over ``MAX_TOKEN_CHARS`` or with a
header over ``MAX_HEADER_CHARS`` are refused before decoding, and JSON nested past the recursion limit is
"malformed". A token has one spelling, since caches and the revocation list key on the exact string: each
segment must be the canonical base64url of its bytes (unused bits zero) and ES256 signatures must be low-S
(``s <= n/2``; ``sign`` normalises python-jose's). The JSON takes no ``NaN``/``Infinity`` and no name twice.
"""

import base64
import binascii
import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jose import jwk, jws
from jose.backends.base import Key

Algorithm = Literal["RS256", "ES256"]
SUPPORTED_ALGS: frozenset[str] = frozenset({"RS256", "ES256"})
_PUBLIC_PARAMS = {"RSA": ("e", "n"), "EC": ("crv", "x", "y")}
DEFAULT_LEEWAY = 30
# JWS compact serialization (RFC 7515 §7.1): three unpadded base64url segments (§2), none of them empty here.
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_ES256_SIGNATURE_BYTES = 64  # r || s, 32 bytes each (RFC 7518 §3.4)
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(_SHA256)
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# The order n of P-256 (SEC 2 §2.4.2). ECDSA's (r, s) and (r, n - s) both verify; only s <= n/2 is accepted
# (and produced), so a token has one spelling.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF_ORDER = _P256_ORDER // 2
# Hostile input is refused by its size before any decoding: our own tokens are well under 2 KB (a header of
# ~100 characters, a few hundred of claims, a 342-character RS256 signature), so these leave ample room.
MAX_TOKEN_CHARS = 8192
MAX_HEADER_CHARS = 4096
# What decoding hostile bytes can raise: bad base64 or UTF-8 or JSON (ValueError), nesting deeper than the
# JSON decoder's recursion limit (RecursionError), a number that does not fit (OverflowError).
_DECODE_ERRORS = (ValueError, RecursionError, OverflowError)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class TokenVerificationError(Exception):
    """The token is malformed, forged, expired or not meant for us (the message is safe to log)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_params(public_jwk: Mapping[str, Any]) -> dict[str, str]:
    """Return only the public members of a JWK (RFC 7517 §4, RFC 7518 §6)."""
    kty = str(public_jwk["kty"])
    return {"kty": kty} | {name: str(public_jwk[name]) for name in _PUBLIC_PARAMS[kty]}


def thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint, used as the ``kid``."""
    members = public_params(public_jwk)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def generate_key(alg: Algorithm) -> tuple[str, str, dict[str, str]]:
    """Generate a key pair (RSA 2048 or P-256): ``(kid, private_pem, public_jwk)``.

    CPU-bound (RSA takes ~20-100 ms): async callers run it in a worker thread.
    """
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = public_params(jwk.construct(pem, alg).public_key().to_dict())
    kid = thumbprint(public)
    return kid, pem, {**public, "kid": kid, "alg": alg, "use": "sig"}


def _public_key(alg: str, public: Mapping[str, str]) -> PublicKey:
    """The ``cryptography`` public key of a JWK, checked against the algorithm it is pinned to."""
    if alg == "RS256" and public["kty"] == "RSA":
        numbers = rsa.RSAPublicNumbers(
            e=int.from_bytes(_b64url_decode(public["e"]), "big"),
            n=int.from_bytes(_b64url_decode(public["n"]), "big"),
        )
        return numbers.public_key()
    if alg == "ES256" and public["kty"] == "EC" and public["crv"] == "P-256":
        point = ec.EllipticCurvePublicNumbers(
            x=int.from_bytes(_b64url_decode(public["x"]), "big"),
            y=int.from_bytes(_b64url_decode(public["y"]), "big"),
            curve=ec.SECP256R1(),
        )
        return point.public_key()
    raise ValueError(f"a {public['kty']} key cannot verify {alg}")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A published public key: verifies tokens and appears in the JWKS."""

    kid: str
    alg: str
    public_key: PublicKey = field(repr=False)
    public_jwk: dict[str, str]

    @classmethod
    def from_jwk(
        cls, kid: str, alg: str, public_jwk: Mapping[str, Any]
    ) -> "VerificationKey":
        """Build from a stored public JWK (cheap: no private key parsing)."""
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported signing algorithm {alg!r}")
        public = public_params(public_jwk)
        published = {**public, "kid": kid, "alg": alg, "use": "sig"}
        return cls(
            kid=kid,
            alg=alg,
            public_key=_public_key(alg, public),
            public_jwk=published,
        )

    def signature_matches(self, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's ``alg`` signature of ``signing_input`` (RFC 7518 §3.3, §3.4)."""
        try:
            if isinstance(self.public_key, rsa.RSAPublicKey):
                self.public_key.verify(signature, signing_input, _PKCS1V15, _SHA256)
                return True
            if len(signature) != _ES256_SIGNATURE_BYTES:
                return False
            s = int.from_bytes(signature[32:], "big")
            if s > _P256_HALF_ORDER:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), s)
            self.public_key.verify(der, signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The key that signs: kid, algorithm, the parsed private key and its public JWK."""

    kid: str
    alg: str
    private_key: Key = field(repr=False)
    public_jwk: dict[str, str]

    @classmethod
    def from_pem(cls, kid: str, alg: str, private_pem: str) -> "SigningKey":
        """Parse a PKCS#8 PEM once (CPU-bound: run off the event loop)."""
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported signing algorithm {alg!r}")
        private = jwk.construct(private_pem, alg)
        public = public_params(private.public_key().to_dict())
        published = {**public, "kid": kid, "alg": alg, "use": "sig"}
        return cls(kid=kid, alg=alg, private_key=private, public_jwk=published)

    def verification_key(self) -> VerificationKey:
        """Return the public half."""
        return VerificationKey.from_jwk(self.kid, self.alg, self.public_jwk)


def _b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url; raise ``ValueError`` (``binascii.Error``) on anything else."""
    data = segment.encode("ascii").translate(_FROM_URLSAFE)
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)


def _decode_token_segment(segment: str) -> bytes:
    """Decode a token segment; only its canonical spelling (zero unused bits in the last character) is accepted.

    One token, one string: the verified-token cache and the revocation list key on the exact token.
    """
    encoded = segment.encode("ascii")
    raw = binascii.a2b_base64(
        encoded.translate(_FROM_URLSAFE) + b"=" * (-len(encoded) % 4), strict_mode=True
    )
    canonical = binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE)
    if canonical.rstrip(b"=") != encoded:
        raise ValueError("not the canonical base64url spelling")
    return raw


def _low_s(signature: bytes) -> bytes:
    """The low-S twin of a raw ES256 signature ``r || s`` (``s`` replaced by ``n - s`` when over ``n/2``)."""
    s = int.from_bytes(signature[32:], "big")
    if s <= _P256_HALF_ORDER:
        return signature
    return signature[:32] + (_P256_ORDER - s).to_bytes(32, "big")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §4, RFC 7519 §4: reject a name given twice, which first-wins and last-wins parsers read apart.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("member named twice")
    return members


def _refuse_constant(name: str) -> NoReturn:
    # json.loads takes NaN, Infinity and -Infinity by default; RFC 8259 has no such numbers.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    # 1e400 is Infinity by another name (an exp that never comes).
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


_JSON = json.JSONDecoder(
    object_pairs_hook=_unique_members,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)


def _decode_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        value = _JSON.decode(_decode_token_segment(segment).decode("utf-8"))
    except _DECODE_ERRORS:
        # No chained exception: a RecursionError's context would be a thousand-frame traceback in a log.
        raise TokenVerificationError(f"malformed {what}") from None
    if not isinstance(value, dict):
        raise TokenVerificationError(f"malformed {what}")
    return value


def _check_typ(header: Mapping[str, Any], typ: str) -> None:
    # RFC 9068 §4: "at+jwt" or "application/at+jwt", compared case-insensitively (RFC 7515 §4.1.9).
    actual = header.get("typ", "")
    if not isinstance(actual, str):
        raise TokenVerificationError("unexpected token type")
    actual = actual.lower().removeprefix("application/")
    if actual != typ.lower().removeprefix("application/"):
        raise TokenVerificationError("unexpected token type")


def _check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audience: str | None,
    now: float,
    leeway: int,
    expiry: bool = True,
) -> None:
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenVerificationError("missing exp")
    if expiry and now >= exp + leeway:
        raise TokenVerificationError("token expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (
            not isinstance(value, int | float) or value > now + leeway
        ):
            raise TokenVerificationError(f"{name} in the future")
    if claims.get("iss") != issuer:
        raise TokenVerificationError("wrong issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience is None:
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise TokenVerificationError("wrong audience")
    elif audience not in audiences:
        raise TokenVerificationError("wrong audience")


class KeySet:
    """The active signing key plus every key whose tokens may still be presented.

    Immutable once built; a rotation builds a new ``KeySet`` and the runtime swaps the reference.
    """

    def __init__(
        self, signing: SigningKey, others: Iterable[VerificationKey] = ()
    ) -> None:
        self._signing: SigningKey | None = signing
        self._index([signing.verification_key(), *others])

    @classmethod
    def for_verification(cls, keys: Iterable[VerificationKey]) -> "KeySet":
        """A key set that only verifies, for a resource server that has the public keys and no signing key."""
        keyset = cls.__new__(cls)
        keyset._signing = None
        keyset._index(list(keys))
        return keyset

    @property
    def signing(self) -> SigningKey:
        """The active signing key (``for_verification`` key sets have none)."""
        if self._signing is None:
            raise TypeError("this key set only verifies")
        return self._signing

    def _index(self, keys: list[VerificationKey]) -> None:
        self._keys: dict[str, VerificationKey] = {key.kid: key for key in keys}
        self.fingerprint: frozenset[tuple[str, str, tuple[tuple[str, str], ...]]] = (
            frozenset(
                (key.kid, key.alg, tuple(sorted(key.public_jwk.items())))
                for key in self._keys.values()
            )
        )
        """Equal for two key sets exactly when the same keys (kid, algorithm, public key) verify."""

    @property
    def alg(self) -> str:
        """The active signing key's algorithm (an ID token's ``at_hash`` uses its hash)."""
        return self.signing.alg

    @property
    def kids(self) -> frozenset[str]:
        """Every kid that verifies."""
        return frozenset(self._keys)

    def sign(self, claims: Mapping[str, Any], *, typ: str = "at+jwt") -> str:
        """Sign ``claims`` with the active key (header: ``typ``, ``alg``, ``kid``)."""
        signing = self.signing
        payload = json.dumps(dict(claims), separators=(",", ":")).encode("utf-8")
        headers = {"typ": typ, "kid": signing.kid}
        token: str = jws.sign(
            payload,
            signing.private_key,
            headers=headers,
            algorithm=signing.alg,
        )
        if signing.alg == "ES256":
            # OpenSSL's s is high half the time, and verify() accepts only low-S.
            signing_input, _, signature = token.rpartition(".")
            token = f"{signing_input}.{_b64url(_low_s(_b64url_decode(signature)))}"
        return token

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str | None,
        typ: str = "at+jwt",
        leeway: int = DEFAULT_LEEWAY,
        now: float | None = None,
        expiry: bool = True,
    ) -> dict[str, Any]:
        """Verify signature, header and registered claims; return the claims.

        ``expiry=False`` accepts an expired token and ``audience=None`` any audience (an ``id_token_hint``,
        OpenID Connect Core §3.1.2.1, whose caller then checks ``aud`` itself).

        Raises:
            TokenVerificationError: on any failure (the reason is for logs, not for clients).
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenVerificationError("token too large")
        parts = _COMPACT.fullmatch(token)
        if parts is None:
            raise TokenVerificationError("malformed token")
        header_segment, claims_segment, signature_segment = parts.groups()
        if len(header_segment) > MAX_HEADER_CHARS:
            raise TokenVerificationError("token too large")
        header = _decode_segment(header_segment, "token")
        if "crit" in header:
            raise TokenVerificationError("unsupported critical header")
        _check_typ(header, typ)
        kid = header.get("kid")
        # A kid is a string (RFC 7515 §4.1.4); anything else names no key, and is not worth a str() call.
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenVerificationError("unknown key id")
        if header.get("alg") != key.alg:
            raise TokenVerificationError("algorithm does not match the key")
        try:
            signature = _decode_token_segment(signature_segment)
        except ValueError:
            raise TokenVerificationError("malformed token") from None
        signing_input = token[: len(header_segment) + 1 + len(claims_segment)]
        if not key.signature_matches(signing_input.encode("ascii"), signature):
            raise TokenVerificationError("bad signature")
        claims = _decode_segment(claims_segment, "claims")
        current = time.time() if now is None else now
        _check_claims(
            claims,
            issuer=issuer,
            audience=audience,
            now=current,
            leeway=leeway,
            expiry=expiry,
        )
        return claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the RFC 7517 JWK Set (public members only)."""
        return {"keys": [dict(key.public_jwk) for key in self._keys.values()]}
