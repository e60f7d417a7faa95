"""Minting of access and refresh tokens: RFC 9068 JWT access tokens and opaque rotating refresh tokens.

Access-token claims follow RFC 9068 §2.2: ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``jti``, ``client_id``,
``scope`` and ``auth_time`` when a user authenticated. Refresh tokens (RFC 6749 §1.5, §6) are 256-bit opaque
values stored only as SHA-256, grouped in a family with an absolute lifetime and an idle lifetime that each
rotation renews, never past the family's end (RFC 9700 §4.14.2). The response is RFC 6749 §5.1.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.ids import millis_of, time_ordered_uuid
from oauth_service.oauth.models import Authentication, Client, TokenSet
from oauth_service.oauth.outcomes import Grant
from oauth_service.oauth.scopes import format_scope
from oauth_service.oauth.storage import (
    AccessRecord,
    NewRefreshToken,
    RefreshTokenStore,
    Successor,
)


class JwtSigner(Protocol):
    """What signs access tokens (``crypto.jwt.KeySet`` satisfies it)."""

    def sign(self, claims: dict[str, Any], *, typ: str = ...) -> str:
        """Return a signed compact JWS."""
        ...


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A freshly signed access token and what the issuer records about it."""

    token: str = field(repr=False)
    jti: str
    expires_at: datetime
    expires_in: int
    # Who the token is for; carried to the response for the audit event (never serialized).
    subject: str = ""
    client_id: str = ""


@dataclass(frozen=True, slots=True)
class FamilyPlan:
    """A refresh token to store, created before the store's step that spends what it replaces."""

    raw: str = field(repr=False)
    successor: Successor


class TokenIssuer:
    """Signs access tokens and creates refresh tokens; the one place a ``TokenSet`` is built.

    ``keys`` is asked at each signature: a key reload swaps the key set while the issuer lives on.
    """

    def __init__(
        self,
        keys: Callable[[], JwtSigner],
        refresh_tokens: RefreshTokenStore,
        *,
        issuer: str,
        audience: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        refresh_idle_ttl: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self._keys = keys
        self._refresh_tokens = refresh_tokens
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._refresh_idle_ttl = refresh_idle_ttl
        self._clock = clock

    def access_record(self, as_of: datetime | None = None) -> AccessRecord:
        """The id and expiry of an access token about to be minted, known before it is signed.

        UUIDv7: the jti carries the moment the grant read its state (``as_of``), to the millisecond, which the
        subject cut-offs compare (``oauth.cutoffs``); ``iat`` (whole seconds) stays the minting time.
        """
        now = self._clock()
        stamp = now if as_of is None else min(as_of, now)
        return AccessRecord(
            time_ordered_uuid(millis_of(stamp)).hex, now + self._access_ttl
        )

    def sign(
        self,
        client: Client,
        subject: str | None,
        scope: frozenset[str],
        auth_time: datetime | None,
        access: AccessRecord,
    ) -> MintedToken:
        """Sign the RFC 9068 access token ``access`` names; ``subject=None`` means the client itself."""
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject if subject is not None else client.client_id,
            "aud": self._audience,
            "exp": int(access.expires_at.timestamp()),
            "iat": int(self._clock().timestamp()),
            "jti": access.jti,
            "client_id": client.client_id,
            "scope": format_scope(scope),
        }
        if auth_time is not None:
            claims["auth_time"] = int(auth_time.timestamp())
        return MintedToken(
            self._keys().sign(claims),
            access.jti,
            access.expires_at,
            int(self._access_ttl.total_seconds()),
            subject=claims["sub"],
            client_id=client.client_id,
        )

    def mint_access_token(
        self,
        client: Client,
        subject: str | None,
        scope: frozenset[str],
        auth_time: datetime | None = None,
        as_of: datetime | None = None,
    ) -> MintedToken:
        """Sign an access token now (``as_of``: when the grant read what it relies on)."""
        return self.sign(client, subject, scope, auth_time, self.access_record(as_of))

    def refresh_plan(self) -> FamilyPlan:
        """A new refresh token's value and identity; the store copies the rest from what it replaces."""
        raw = new_opaque_token()
        successor = Successor(
            time_ordered_uuid(), token_hash(raw), self._clock() + self._refresh_idle_ttl
        )
        return FamilyPlan(raw, successor)

    def family_end(self) -> datetime:
        """When a family started now ends, however often it rotates (RFC 9700 §4.14.2)."""
        return self._clock() + self._refresh_ttl

    def new_refresh_token(
        self,
        client: Client,
        subject: str | None,
        scope: frozenset[str],
        auth_time: datetime | None,
        access: MintedToken,
        *,
        family: tuple[uuid.UUID, datetime] | None = None,
        parent_id: uuid.UUID | None = None,
    ) -> tuple[str, NewRefreshToken]:
        """Create (not store) a refresh token: a new family, or the next link of ``family`` (id, end)."""
        now = self._clock()
        family_id, family_expires_at = family or (
            time_ordered_uuid(),
            now + self._refresh_ttl,
        )
        raw = new_opaque_token()
        record = NewRefreshToken(
            id=time_ordered_uuid(),
            token_hash=token_hash(raw),
            family_id=family_id,
            parent_id=parent_id,
            client_id=client.client_id,
            user_id=subject,
            scope=scope,
            issued_at=now,
            expires_at=min(now + self._refresh_idle_ttl, family_expires_at),
            family_expires_at=family_expires_at,
            auth_time=auth_time,
            access_jti=access.jti,
            access_expires_at=access.expires_at,
        )
        return raw, record

    @staticmethod
    def token_set(
        access: MintedToken,
        scope: frozenset[str],
        refresh_token: str | None = None,
        authentication: Authentication | None = None,
    ) -> TokenSet:
        """Build the RFC 6749 §5.1 response; ``authentication`` is the user's sign-in behind it, if any."""
        return TokenSet(
            access_token=access.token,
            expires_in=access.expires_in,
            scope=format_scope(scope),
            refresh_token=refresh_token,
            jti=access.jti,
            subject=access.subject,
            client_id=access.client_id,
            authentication=authentication,
        )

    async def issue(self, grant: Grant) -> TokenSet:
        """Mint the grant's access token and, when it asks, a refresh token starting a new family."""
        access = self.mint_access_token(
            grant.client, grant.subject, grant.scope, grant.auth_time, grant.as_of
        )
        authentication = (
            Authentication(grant.subject, grant.auth_time)
            if grant.subject is not None
            else None
        )
        if not grant.with_refresh:
            return self.token_set(access, grant.scope, None, authentication)
        raw, record = self.new_refresh_token(
            grant.client, grant.subject, grant.scope, grant.auth_time, access
        )
        await self._refresh_tokens.save(record)
        return self.token_set(access, grant.scope, raw, authentication)
