"""The refresh-token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2).

Each use rotates: the presented token is marked rotated and a successor is issued in the same family, by a
conditional update so only one concurrent request wins. The token is bound to its client; it expires at the
family's absolute end or after the idle lifetime. The access token may be narrowed (``scope`` ⊆ the original,
else ``invalid_scope``) while the new refresh token keeps the original scope (§6). Presenting a rotated token is
reuse: the whole family, and the access tokens issued from it, are revoked (committed before the error).

Optional grace window (off by default, as RFC 9700 advises): within ``grace`` of a rotation, a client that lost
the response may present the rotated token again as long as its successor is unused; the unused successor is
revoked and replaced, so there is never more than one live branch. Any other reuse revokes the family.
"""

from datetime import datetime, timedelta
from typing import ClassVar
from uuid import UUID

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, Grant, TokenRequest, TokenResponse
from oauth_service.oauth.scopes import ADMIN_SCOPE, narrow_scope
from oauth_service.oauth.storage import RefreshRecord, RefreshTokenStore, UserStore
from oauth_service.observability.logs import audit

INVALID = "The refresh token is invalid, expired or revoked."


class RefreshTokenGrant:
    """``grant_type=refresh_token``."""

    grant_type: ClassVar[str] = "refresh_token"
    allows_public_clients: ClassVar[bool] = True

    def __init__(
        self,
        tokens: RefreshTokenStore,
        users: UserStore,
        issuer: TokenIssuer,
        *,
        grace: timedelta = timedelta(0),
        clock: Clock = utcnow,
    ) -> None:
        self._tokens = tokens
        self._users = users
        self._issuer = issuer
        self._grace = grace
        self._clock = clock

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        """Check binding, liveness, reuse and scope; reuse revokes the family before raising."""
        raw = request.require("refresh_token")
        as_of = (
            self._clock()
        )  # before the token and its user are read (``Grant.as_of``)
        record = await self._tokens.get(token_hash(raw))
        now = self._clock()
        if record is None or record.client_id != client.client_id or record.revoked_at:
            raise InvalidGrantError(INVALID)
        if now >= record.expires_at or now >= record.family_expires_at:
            raise InvalidGrantError(INVALID)
        superseded: UUID | None = None
        if record.rotated_at is not None:
            superseded = await self._unused_successor(record, record.rotated_at, now)
            if superseded is None:
                await self._tokens.revoke_family(record.family_id, now)
                _audit_reuse(record.family_id, record.user_id, "reuse")
                raise InvalidGrantError(
                    INVALID, detail="refresh token reuse: family revoked"
                )
        # What may still be granted: the original scope, less what the client lost since, and ``admin`` only
        # while the user is an administrator (a demoted admin's refresh tokens must not keep minting it).
        allowed = record.scope & client.scopes
        if record.user_id is not None:
            user = record.user or await self._users.get(record.user_id)
            if user is None or not user.is_active:
                raise InvalidGrantError(INVALID)
            if not user.is_admin:
                allowed -= {ADMIN_SCOPE}
        scope = narrow_scope(request.scope, allowed)
        return Grant(
            client=client,
            subject=record.user_id,
            scope=scope,
            with_refresh=True,
            auth_time=record.auth_time,
            family_id=record.family_id,
            family_expires_at=record.family_expires_at,
            refresh_id=record.id,
            superseded_id=superseded,
            refresh_scope=allowed,
            as_of=as_of,
        )

    async def _unused_successor(
        self, record: RefreshRecord, rotated_at: datetime, now: datetime
    ) -> UUID | None:
        """The successor a grace-window retry may replace, or None when this is plain reuse."""
        if self._grace <= timedelta(0) or now - rotated_at > self._grace:
            return None
        successor = await self._tokens.get_successor(record.id)
        if successor is None or successor.rotated_at or successor.revoked_at:
            return None
        return successor.id

    async def issue(self, grant: Grant) -> TokenResponse:
        """Rotate (or, in the grace window, replace the unused successor) and mint the new pair."""
        assert grant.refresh_id is not None  # noqa: S101 - set by validate
        assert grant.family_id is not None  # noqa: S101 - set by validate
        now = self._clock()
        access = self._issuer.mint_access_token(
            grant.client, grant.subject, grant.scope, grant.auth_time, grant.as_of
        )
        raw, new = self._issuer.new_refresh_token(
            grant, access, parent_id=grant.refresh_id
        )
        if grant.superseded_id is not None:
            won = await self._tokens.replace_successor(grant.superseded_id, new, now)
        else:
            won = await self._tokens.rotate(grant.refresh_id, new, now)
        if not won:
            # Another request rotated this token first: that is reuse too (RFC 9700 §4.14.2).
            await self._tokens.revoke_family(grant.family_id, now)
            _audit_reuse(grant.family_id, grant.subject, "concurrent_rotation")
            raise InvalidGrantError(
                INVALID, detail="refresh token rotated concurrently: family revoked"
            )
        return self._issuer.response(access, grant.scope, raw)


def _audit_reuse(family_id: UUID, subject: str | None, reason: str) -> None:
    """RFC 9700 §4.14.2: a reused refresh token is an attack signal worth an audit line."""
    audit(
        "refresh.reuse_detected",
        family_id=str(family_id),
        subject=subject,
        reason=reason,
        family_revoked=True,
    )
