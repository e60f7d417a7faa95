"""ID tokens (OpenID Connect Core §2, §3.1.3.6, §3.2.2.10) and ``id_token_hint`` checking (§3.1.2.1).

An ID token is a JWS with ``typ`` ``JWT``, signed by the active key like access tokens, whose ``typ`` is
``at+jwt``: each verifier demands its own ``typ``, so neither is ever accepted as the other (RFC 9068 §4,
RFC 8725 §3.11). Its ``aud`` is the client, never the API audience.
"""

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from oauth_service.crypto.jwt import TokenVerificationError
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.models import Authentication

ID_TOKEN_TYP = "JWT"
# A nonce longer than this is refused at the authorization endpoint (it is stored with the code).
MAX_NONCE_LENGTH = 512
# §3.1.3.6: a left-half hash with the hash function of the JWS algorithm.
_HASHES: Mapping[str, Callable[[bytes], Any]] = {
    "RS256": hashlib.sha256,
    "ES256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "RS384": hashlib.sha384,
    "ES384": hashlib.sha384,
    "RS512": hashlib.sha512,
    "ES512": hashlib.sha512,
}


class IdTokenSigner(Protocol):
    """What signs ID tokens (``crypto.jwt.KeySet`` satisfies it)."""

    @property
    def alg(self) -> str:
        """The signing algorithm."""
        ...

    def sign(self, claims: dict[str, Any], *, typ: str = ...) -> str:
        """Return a signed compact JWS."""
        ...


class HintVerifier(Protocol):
    """What checks an ``id_token_hint`` (``crypto.jwt.KeySet`` satisfies it)."""

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str | None,
        typ: str = ...,
        expiry: bool = ...,
    ) -> dict[str, Any]:
        """Verify signature, header and registered claims; return the claims."""
        ...


def left_half_hash(value: str, alg: str) -> str:
    """``at_hash`` / ``c_hash``: base64url of the left half of the hash of ``value``'s ASCII octets."""
    digest = _HASHES[alg](value.encode("ascii")).digest()
    half = digest[: len(digest) // 2]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode("ascii")


class IdTokenMinter:
    """Signs ID tokens with the active key; ``keys`` is asked per token, as a rotation swaps the key set."""

    def __init__(
        self,
        keys: Callable[[], IdTokenSigner],
        *,
        issuer: str,
        ttl: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._ttl = ttl
        self._clock = clock

    def mint(
        self,
        client_id: str,
        authentication: Authentication,
        *,
        access_token: str | None = None,
        code: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign an ID token for ``client_id``.

        ``access_token`` and ``code`` add ``at_hash`` and ``c_hash``; ``claims`` are the scope's standard
        claims, given only when no access token is issued with the ID token (§5.4).
        """
        keys = self._keys()
        now = self._clock()
        body: dict[str, Any] = dict(claims or {})
        body.update(
            iss=self._issuer,
            sub=authentication.subject,
            aud=client_id,
            exp=int((now + self._ttl).timestamp()),
            iat=int(now.timestamp()),
            amr=list(authentication.amr),
        )
        if authentication.auth_time is not None:
            body["auth_time"] = int(authentication.auth_time.timestamp())
        if authentication.nonce is not None:
            body["nonce"] = authentication.nonce
        if authentication.sid is not None:
            body["sid"] = authentication.sid
        if access_token is not None:
            body["at_hash"] = left_half_hash(access_token, keys.alg)
        if code is not None:
            body["c_hash"] = left_half_hash(code, keys.alg)
        return keys.sign(body, typ=ID_TOKEN_TYP)


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    """A verified ``id_token_hint``: whom it names, for which clients, in which session."""

    subject: str
    audiences: tuple[str, ...]
    sid: str | None


def verify_hint(token: str, keys: HintVerifier, *, issuer: str) -> IdTokenHint | None:
    """Check an ``id_token_hint``: our signature and issuer, ``typ`` ``JWT``; expiry is not checked (§3.1.2.1).

    Returns None when it is not an ID token we issued (an access token, a forgery, another issuer's).
    """
    try:
        claims = keys.verify(
            token, issuer=issuer, audience=None, typ=ID_TOKEN_TYP, expiry=False
        )
    except TokenVerificationError:
        return None
    subject = claims.get("sub")
    aud = claims.get("aud")
    audiences = tuple(aud) if isinstance(aud, list) else (aud,)
    sid = claims.get("sid")
    if not isinstance(subject, str) or not subject:
        return None
    return IdTokenHint(subject, audiences, sid if isinstance(sid, str) else None)
