"""Validation of this server's JWT access tokens, shared by resource servers, introspection and revocation.

RFC 9068 §4 (validating JWT access tokens: ``typ`` ``at+jwt``, ``iss``, ``aud``, ``exp``, signature with the
algorithm pinned per key), RFC 9068 §2.2 (required claims ``sub``, ``client_id``, ``jti``, ``iat``) and
RFC 7009 §2.1 (a revoked access token stays on the revocation list until it expires). Revocation is asked of
``revocations`` (the server's in-memory list, which also knows the user and client cut-offs of
``oauth.cutoffs``) when given; otherwise of ``is_revoked``, read through a small TTL cache: a token revoked
elsewhere may then still be accepted for at most ``revocation_cache_ttl`` seconds (0 disables the cache). A
"revoked" answer is kept until the token expires.

A ``VerifiedTokenCache`` lets a token presented again skip its signature and claims checks; it changes no
answer (see the class).
"""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

from oauth_service.crypto.jwt import TokenVerificationError
from oauth_service.oauth.errors import InvalidTokenError

K = TypeVar("K")
V = TypeVar("V")

# Seconds of clock skew tolerated on exp/iat/nbf between the token's issuer and this verifier.
DEFAULT_LEEWAY = 30

RevocationCheck = Callable[[str], Awaitable[bool]]
"""``async (jti) -> bool``: whether the access token with this ``jti`` was revoked."""


class Revocations(Protocol):
    """What refuses revoked tokens as a whole (``oauth.revocation_list.RevocationList`` satisfies it)."""

    async def refuses(self, access: "AccessToken") -> bool:
        """Whether ``access`` is revoked, by its ``jti`` or by a cut-off of its user or client."""
        ...


class TokenKeys(Protocol):
    """What verifies a JWT (``crypto.jwt.KeySet`` satisfies it)."""

    @property
    def fingerprint(self) -> Hashable:
        """An immutable value, equal for two key sets exactly when the same keys verify."""
        ...

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

    def clear(self) -> None:
        """Forget every entry."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A ``VerifiedTokenCache`` entry: the token and the claims its time checks need, as signed."""

    access: AccessToken
    expires_at: float  # ``exp`` (``AccessToken.expires_at`` is truncated to an int)
    not_before: float | None  # the later of ``iat`` and ``nbf``, when either is present
    issuer: object  # ``iss``
    audiences: tuple[object, ...]  # ``aud``, as a tuple even when it is one string

    @classmethod
    def of(cls, access: AccessToken, claims: Mapping[str, Any]) -> "VerifiedToken":
        """The entry for ``access``, built from the verified ``claims`` it came from."""
        times = [
            claims[name] for name in ("iat", "nbf") if claims.get(name) is not None
        ]
        aud = claims.get("aud")
        return cls(
            access=access,
            expires_at=claims["exp"],
            not_before=max(times) if times else None,
            issuer=claims.get("iss"),
            audiences=tuple(aud) if isinstance(aud, list) else (aud,),
        )


class VerifiedTokenCache:
    """Access tokens whose signature and claims were verified, by their exact string, in LRU order.

    Envoy's ``jwt_authn`` filter keeps the same kind of cache (``JwtProvider.jwt_cache_config``): a client
    sends the same token on every request until it expires, and verifying its signature is the costly part
    of accepting it. A hit changes no answer:

    * The key is the whole token string, so any other string (a different signature included) is a miss
      and is verified in full. Failed verifications are never stored.
    * On a hit the verifier still applies the expiry rule (``exp``, ``nbf``/``iat`` with its leeway) and
      its own issuer and audience, and it still consults the revocation list every time.
    * An entry is never used past its token's ``exp`` plus the leeway; it is dropped when a lookup finds it
      expired, by the sweep of the least recently used end at each insertion, or by the size bound.
    * Any change of the key set (a reload that adds, retires or removes a key) empties the cache, so a
      token signed by a removed key stops verifying at once.

    One cache serves one key set: verifiers sharing it must read the same keys. ``max_entries=0`` disables it.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._fingerprint: Hashable = None

    def _bind(self, keys: TokenKeys) -> None:
        """Empty the cache when ``keys`` verify differently from the key set its entries were verified with."""
        fingerprint = keys.fingerprint
        # The same object is the same key set (a KeySet is immutable); a reload compares once by value.
        if fingerprint is not self._fingerprint:
            if fingerprint != self._fingerprint:
                self._entries.clear()
            self._fingerprint = fingerprint

    def get(self, token: str, keys: TokenKeys) -> VerifiedToken | None:
        """The entry verified with ``keys`` for exactly this ``token``, or None."""
        self._bind(keys)
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
        return entry

    def put(
        self, token: str, keys: TokenKeys, entry: VerifiedToken, *, expired: float
    ) -> None:
        """Store ``entry``; first drop, from the least recently used end, entries whose ``exp`` <= ``expired``."""
        if self.max_entries <= 0:
            return
        self._bind(keys)
        entries = self._entries
        while entries and next(iter(entries.values())).expires_at <= expired:
            entries.popitem(last=False)
        entries[token] = entry
        entries.move_to_end(token)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def pop(self, token: str) -> None:
        """Forget ``token`` (no error when absent)."""
        self._entries.pop(token, None)

    def __len__(self) -> int:
        return len(self._entries)


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
        # Read-only: with a ``VerifiedTokenCache`` one AccessToken answers every request carrying the token.
        claims=MappingProxyType(dict(claims)),
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
        cache: VerifiedTokenCache | None = None,
        revocations: Revocations | None = None,
    ) -> None:
        self._keys = keys
        self._revocations = revocations
        self._issuer = issuer
        self._audience = audience
        self._is_revoked = is_revoked
        self._ttl = revocation_cache_ttl
        self._leeway = leeway
        self._clock = clock
        self._revoked_cache: TtlCache[str, bool] = TtlCache(clock=clock)
        self._verified = cache if cache is not None and cache.max_entries > 0 else None

    def decode(self, token: str) -> AccessToken:
        """Verify signature and claims (or find them verified in the cache), without the revocation list.

        Raises:
            InvalidTokenError: with a private ``detail`` naming the reason.
        """
        keys = self._keys()
        now = self._clock()
        cache = self._verified
        if cache is not None:
            hit = cache.get(token, keys)
            if hit is not None:
                return self._still_valid(cache, token, hit, now)
        try:
            claims = keys.verify(
                token,
                issuer=self._issuer,
                audience=self._audience,
                typ="at+jwt",
                leeway=self._leeway,
                now=now,
            )
        except TokenVerificationError as exc:
            raise InvalidTokenError(detail=str(exc)) from None
        access = access_token_from_claims(claims)
        if cache is not None:
            entry = VerifiedToken.of(access, claims)
            cache.put(token, keys, entry, expired=now - self._leeway)
        return access

    def _still_valid(
        self, cache: VerifiedTokenCache, token: str, hit: VerifiedToken, now: float
    ) -> AccessToken:
        """The checks of ``crypto.jwt`` that depend on the time or on this verifier, applied to a cached token."""
        if now >= hit.expires_at + self._leeway:
            cache.pop(token)
            raise InvalidTokenError(detail="token expired")
        if hit.not_before is not None and hit.not_before > now + self._leeway:
            raise InvalidTokenError(detail="iat or nbf in the future")
        if hit.issuer != self._issuer or self._audience not in hit.audiences:
            raise InvalidTokenError(detail="wrong issuer or audience")
        return hit.access

    async def revoked(self, access: AccessToken) -> bool:
        """Whether the token is revoked: by ``revocations``, else by its ``jti`` (read through the TTL cache)."""
        if self._revocations is not None:
            # In memory and kept current by the process itself: nothing to cache.
            return await self._revocations.refuses(access)
        if self._is_revoked is None:
            return False
        cached = self._revoked_cache.get(access.jti)
        if cached is not None:
            return cached
        revoked = await self._is_revoked(access.jti)
        if not revoked and self._ttl <= 0:
            return (
                False  # nothing to remember (and two clock reads saved on the hot path)
            )
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
