"""Minting of access and refresh tokens: RFC 9068 JWT access tokens and opaque rotating refresh tokens.

Access-token claims follow RFC 9068 §2.2: ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``jti``, ``client_id``,
``scope`` and ``auth_time`` when a user authenticated. Refresh tokens (RFC 6749 §1.5, §6) are 256-bit opaque
values stored only as SHA-256, grouped in a family with an absolute lifetime and an idle lifetime that each
rotation renews, never past the family's end (RFC 9700 §4.14.2). The response is RFC 6749 §5.1.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.ids import millis_of, time_ordered_uuid
from oauth_service.oauth.models import Client, Grant, TokenResponse
from oauth_service.oauth.scopes import format_scope
from oauth_service.oauth.storage import NewRefreshToken, RefreshTokenStore


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


class TokenIssuer:
    """Signs access tokens and creates refresh tokens; stateless apart from its collaborators."""

    def __init__(
        self,
        keys: JwtSigner,
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

    def mint_access_token(
        self,
        client: Client,
        subject: str | None,
        scope: frozenset[str],
        auth_time: datetime | None = None,
        as_of: datetime | None = None,
    ) -> MintedToken:
        """Sign an RFC 9068 access token; ``subject=None`` means the client itself (client_credentials).

        ``as_of`` is when the grant read what it relies on (``Grant.as_of``); the jti carries it.
        """
        now = self._clock()
        expires_at = now + self._access_ttl
        # UUIDv7: the jti carries the moment the grant read its state, to the millisecond, which the subject
        # cut-offs compare (``oauth.cutoffs``): a cut-off committed after that read refuses the token, however
        # long the grant took to mint it. ``iat`` (whole seconds) stays the minting time.
        stamp = now if as_of is None else min(as_of, now)
        jti = time_ordered_uuid(millis_of(stamp)).hex
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject if subject is not None else client.client_id,
            "aud": self._audience,
            "exp": int(expires_at.timestamp()),
            "iat": int(now.timestamp()),
            "jti": jti,
            "client_id": client.client_id,
            "scope": format_scope(scope),
        }
        if auth_time is not None:
            claims["auth_time"] = int(auth_time.timestamp())
        expires_in = int(self._access_ttl.total_seconds())
        return MintedToken(
            self._keys.sign(claims),
            jti,
            expires_at,
            expires_in,
            subject=claims["sub"],
            client_id=client.client_id,
        )

    def new_refresh_token(
        self, grant: Grant, access: MintedToken, *, parent_id: uuid.UUID | None = None
    ) -> tuple[str, NewRefreshToken]:
        """Create (not store) a refresh token: a new family, or the next link of ``grant.family_id``."""
        now = self._clock()
        family_id = grant.family_id or time_ordered_uuid()
        family_expires_at = grant.family_expires_at or now + self._refresh_ttl
        raw = new_opaque_token()
        record = NewRefreshToken(
            id=time_ordered_uuid(),
            token_hash=token_hash(raw),
            family_id=family_id,
            parent_id=parent_id,
            client_id=grant.client.client_id,
            user_id=grant.subject,
            scope=grant.refresh_scope
            if grant.refresh_scope is not None
            else grant.scope,
            issued_at=now,
            expires_at=min(now + self._refresh_idle_ttl, family_expires_at),
            family_expires_at=family_expires_at,
            auth_time=grant.auth_time,
            access_jti=access.jti,
            access_expires_at=access.expires_at,
        )
        return raw, record

    @staticmethod
    def response(
        access: MintedToken, scope: frozenset[str], refresh_token: str | None = None
    ) -> TokenResponse:
        """Build the RFC 6749 §5.1 response."""
        return TokenResponse(
            access_token=access.token,
            expires_in=access.expires_in,
            scope=format_scope(scope),
            refresh_token=refresh_token,
            jti=access.jti,
            subject=access.subject,
            client_id=access.client_id,
        )

    async def issue(self, grant: Grant) -> TokenResponse:
        """Mint an access token and, when the grant asks, a refresh token starting a new family."""
        access = self.mint_access_token(
            grant.client, grant.subject, grant.scope, grant.auth_time, grant.as_of
        )
        if not grant.with_refresh:
            return self.response(access, grant.scope)
        raw, record = self.new_refresh_token(grant, access)
        await self._refresh_tokens.save(record)
        return self.response(access, grant.scope, raw)
