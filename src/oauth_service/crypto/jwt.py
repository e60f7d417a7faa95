"""JWT signing and verification: the only module that imports python-jose.

Implements the JOSE side of RFC 9068 (JWT access tokens: ``typ: at+jwt``, §2.1; validation, §4), RFC 7515
(JWS compact serialization), RFC 7517 (JWK Sets) and RFC 7638 (thumbprint key ids). Keys are parsed once into
key objects (parsing a private PEM costs tens of milliseconds) and reused for every call. Verification pins the
algorithm to the key named by ``kid``, so ``alg: none``, HMAC keyed with a public key and algorithm
substitution are all refused. Nothing here knows about OAuth; failures raise ``TokenVerificationError``.
"""

import base64
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jws
from jose.backends.base import Key
from jose.exceptions import JOSEError

Algorithm = Literal["RS256", "ES256"]
SUPPORTED_ALGS: frozenset[str] = frozenset({"RS256", "ES256"})
_PUBLIC_PARAMS = {"RSA": ("e", "n"), "EC": ("crv", "x", "y")}
DEFAULT_LEEWAY = 30


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


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A published public key: verifies tokens and appears in the JWKS."""

    kid: str
    alg: str
    key: Key = field(repr=False)
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
            kid=kid, alg=alg, key=jwk.construct(public, alg), public_jwk=published
        )


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


def _decode_segment(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenVerificationError("malformed token") from exc
    if not isinstance(value, dict):
        raise TokenVerificationError("malformed token")
    return value


def _check_typ(header: Mapping[str, Any], typ: str) -> None:
    # RFC 9068 §4: "at+jwt" or "application/at+jwt", compared case-insensitively (RFC 7515 §4.1.9).
    actual = str(header.get("typ", "")).lower().removeprefix("application/")
    if actual != typ.lower().removeprefix("application/"):
        raise TokenVerificationError("unexpected token type")


def _check_claims(
    claims: Mapping[str, Any], *, issuer: str, audience: str, now: float, leeway: int
) -> None:
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenVerificationError("missing exp")
    if now >= exp + leeway:
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
    if audience not in audiences:
        raise TokenVerificationError("wrong audience")


class KeySet:
    """The active signing key plus every key whose tokens may still be presented.

    Immutable once built; a rotation builds a new ``KeySet`` and the runtime swaps the reference.
    """

    def __init__(
        self, signing: SigningKey, others: Iterable[VerificationKey] = ()
    ) -> None:
        self.signing = signing
        keys = [signing.verification_key(), *others]
        self._keys: dict[str, VerificationKey] = {key.kid: key for key in keys}

    @property
    def kids(self) -> frozenset[str]:
        """Every kid that verifies."""
        return frozenset(self._keys)

    def sign(self, claims: Mapping[str, Any], *, typ: str = "at+jwt") -> str:
        """Sign ``claims`` with the active key (header: ``typ``, ``alg``, ``kid``)."""
        payload = json.dumps(dict(claims), separators=(",", ":")).encode("utf-8")
        headers = {"typ": typ, "kid": self.signing.kid}
        token: str = jws.sign(
            payload,
            self.signing.private_key,
            headers=headers,
            algorithm=self.signing.alg,
        )
        return token

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str,
        typ: str = "at+jwt",
        leeway: int = DEFAULT_LEEWAY,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Verify signature, header and registered claims; return the claims.

        Raises:
            TokenVerificationError: on any failure (the reason is for logs, not for clients).
        """
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenVerificationError("malformed token")
        header = _decode_segment(parts[0])
        if "crit" in header:
            raise TokenVerificationError("unsupported critical header")
        _check_typ(header, typ)
        key = self._keys.get(str(header.get("kid", "")))
        if key is None:
            raise TokenVerificationError("unknown key id")
        if header.get("alg") != key.alg:
            raise TokenVerificationError("algorithm does not match the key")
        try:
            payload = jws.verify(token, key.key, algorithms=[key.alg])
        except JOSEError as exc:
            raise TokenVerificationError("bad signature") from exc
        try:
            claims = json.loads(payload)
        except ValueError as exc:
            raise TokenVerificationError("malformed claims") from exc
        if not isinstance(claims, dict):
            raise TokenVerificationError("malformed claims")
        current = time.time() if now is None else now
        _check_claims(
            claims, issuer=issuer, audience=audience, now=current, leeway=leeway
        )
        return claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the RFC 7517 JWK Set (public members only)."""
        return {"keys": [dict(key.public_jwk) for key in self._keys.values()]}
