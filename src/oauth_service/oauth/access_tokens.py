"""Validation of this server's JWT access tokens, shared by resource servers, introspection and revocation.

RFC 9068 §4 (validating JWT access tokens: ``typ`` ``at+jwt``, ``iss``, ``aud``, ``exp``, signature with the
algorithm pinned per key), RFC 9068 §2.2 (required claims ``sub``, ``client_id``, ``jti``, ``iat``) and
RFC 7009 §2.1 (a revoked access token stays on the revocation list until it expires). The revocation list is
read through a small TTL cache: a token revoked elsewhere may still be accepted for at most
``revocation_cache_ttl`` seconds (0 disables the cache). A "revoked" answer is kept until the token expires.
"""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from oauth_service.crypto.jwt import TokenVerificationError
from oauth_service.oauth.errors import InvalidTokenError

K = TypeVar("K")
V = TypeVar("V")

# Seconds of clock skew tolerated on exp/iat/nbf between the token's issuer and this verifier.
DEFAULT_LEEWAY = 30

RevocationCheck = Callable[[str], Awaitable[bool]]
"""``async (jti) -> bool``: whether the access token with this ``jti`` was revoked."""


class TokenKeys(Protocol):
    """What verifies a JWT (``crypto.jwt.KeySet`` satisfies it)."""

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str,
        typ: str = ...,
        leeway: int = ...,
        now: float | None = ...,
    ) -> dict[str, Any]:
        """Verify signature, header and registered claims; raise ``TokenVerificationError``."""
        ...


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token: who it speaks for, which client holds it and what it allows."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    expires_at: int
    issued_at: int | None = None
    audience: tuple[str, ...] = ()
    issuer: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_client_token(self) -> bool:
        """Whether the token stands for the client itself (client credentials: ``sub == client_id``)."""
        return self.subject == self.client_id


class TtlCache(Generic[K, V]):
    """A bounded, clock-injected cache whose entries expire at a per-entry deadline."""

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: K) -> V | None:
        """Return the live value, or None (expired entries are dropped)."""
        item = self._items.get(key)
        if item is None:
            return None
        deadline, value = item
        if self._clock() >= deadline:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V, *, until: float) -> None:
        """Store ``value`` until the ``until`` timestamp; the least recently used entry goes first."""
        if until <= self._clock():
            return
        self._items[key] = (until, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_entries:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget ``key`` (no error when absent)."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def _as_str(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidTokenError(detail=f"access token lacks a '{name}' claim")
    return value


def access_token_from_claims(claims: Mapping[str, Any]) -> AccessToken:
    """Check the RFC 9068 §2.2 claims an access token must carry and build an ``AccessToken``.

    An ID token or any other JWT signed by us lacks ``client_id``/``jti`` and is refused here.
    """
    raw_scope = claims.get("scope", "")
    if not isinstance(raw_scope, str):
        raise InvalidTokenError(detail="access token scope is not a string")
    aud = claims.get("aud")
    audience = tuple(str(a) for a in aud) if isinstance(aud, list) else (str(aud),)
    iat = claims.get("iat")
    return AccessToken(
        subject=_as_str(claims, "sub"),
        client_id=_as_str(claims, "client_id"),
        scopes=frozenset(s for s in raw_scope.split(" ") if s),
        jti=_as_str(claims, "jti"),
        expires_at=int(claims["exp"]),
        issued_at=int(iat) if isinstance(iat, int | float) else None,
        audience=audience,
        issuer=str(claims.get("iss", "")),
        claims=dict(claims),
    )


class LocalTokenVerifier:
    """Verifies access tokens with the server's own keys and its revocation list."""

    def __init__(
        self,
        keys: Callable[[], TokenKeys],
        *,
        issuer: str,
        audience: str,
        is_revoked: RevocationCheck | None,
        revocation_cache_ttl: float = 0.0,
        leeway: int = DEFAULT_LEEWAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._is_revoked = is_revoked
        self._ttl = revocation_cache_ttl
        self._leeway = leeway
        self._clock = clock
        self._revoked_cache: TtlCache[str, bool] = TtlCache(clock=clock)

    def decode(self, token: str) -> AccessToken:
        """Verify signature and claims, without consulting the revocation list.

        Raises:
            InvalidTokenError: with a private ``detail`` naming the reason.
        """
        try:
            claims = self._keys().verify(
                token,
                issuer=self._issuer,
                audience=self._audience,
                typ="at+jwt",
                leeway=self._leeway,
                now=self._clock(),
            )
        except TokenVerificationError as exc:
            raise InvalidTokenError(detail=str(exc)) from None
        return access_token_from_claims(claims)

    async def revoked(self, access: AccessToken) -> bool:
        """Whether the token's ``jti`` is on the revocation list (read through the TTL cache)."""
        if self._is_revoked is None:
            return False
        cached = self._revoked_cache.get(access.jti)
        if cached is not None:
            return cached
        revoked = await self._is_revoked(access.jti)
        # Revocation is permanent: remember it until the token dies. "Not revoked" is kept ttl seconds at most.
        until = (
            access.expires_at + self._leeway
            if revoked
            else min(self._clock() + self._ttl, access.expires_at + self._leeway)
        )
        self._revoked_cache.put(access.jti, revoked, until=until)
        return revoked

    async def verify(self, token: str) -> AccessToken:
        """Verify a bearer token completely (signature, claims, revocation).

        Raises:
            InvalidTokenError: the token must not be accepted.
        """
        access = self.decode(token)
        if await self.revoked(access):
            raise InvalidTokenError(detail="access token revoked")
        return access
