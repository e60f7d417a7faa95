"""The refresh-token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2).

Each use rotates: the store's one step (``RefreshClaim``) checks that the presented token is live and bound to
the client, marks it rotated and stores its successor in the same family, so only one of concurrent requests
wins. The token expires at the family's absolute end or after the idle lifetime. The access token may be
narrowed (``scope`` ⊆ the original, else ``invalid_scope``); the new refresh token keeps the original scope
(§6). What the client lost since, and ``admin`` once the user is no longer an administrator, is left out of
every access token the family mints.

When the step finds nothing to rotate, the token is read to say why. Presenting a rotated token is reuse: the
whole family, and the access tokens issued from it, are revoked (committed before the error). Optional grace
window (off by default, as RFC 9700 advises): within ``grace`` of a rotation, a client that lost the response
may present the rotated token again as long as its successor is unused; the unused successor is revoked and
replaced, so there is never more than one live branch.
"""

from datetime import datetime, timedelta
from typing import ClassVar
from uuid import UUID

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import (
    Authentication,
    Client,
    TokenRequest,
    TokenSet,
)
from oauth_service.oauth.outcomes import RefreshRotation
from oauth_service.oauth.scopes import ADMIN_SCOPE, narrow_scope
from oauth_service.oauth.storage import (
    RefreshClaim,
    RefreshRecord,
    RefreshTokenStore,
    UserStore,
)
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

    async def validate(self, request: TokenRequest, client: Client) -> RefreshRotation:
        """Name the rotation; the token itself is checked by the store's step in ``issue``."""
        raw = request.require("refresh_token")
        # Before the token and its user are read (``Grant.as_of``).
        return RefreshRotation(client, token_hash(raw), request.scope, self._clock())

    async def issue(self, rotation: RefreshRotation) -> TokenSet:
        """Rotate in one step and mint; when nothing was rotated, find out why (reuse revokes the family)."""
        client = rotation.client
        requested = rotation.scope or frozenset()
        access = self._issuer.access_record(rotation.as_of)
        plan = self._issuer.refresh_plan()
        record: RefreshRecord | None = None
        # A scope beyond the client's can never be granted: no rotation, the refusal below says why.
        if requested <= client.scopes:
            claim = RefreshClaim(
                rotation.token_hash,
                client.client_id,
                self._clock(),
                requested,
                ADMIN_SCOPE in requested,
                plan.successor,
                access,
            )
            record = await self._tokens.rotate(claim)
        if record is None:
            return await self._after_refusal(rotation)
        is_admin = record.user is not None and record.user.is_admin
        scope = narrow_scope(rotation.scope, _allowed(record, client, is_admin))
        minted = self._issuer.sign(
            client, record.user_id, scope, record.auth_time, access
        )
        return self._issuer.token_set(minted, scope, plan.raw, _signed_in(record))

    async def _after_refusal(self, rotation: RefreshRotation) -> TokenSet:
        """Why the token was not rotated: raise the error, revoking the family on reuse; or a grace retry."""
        client = rotation.client
        record = await self._tokens.get(rotation.token_hash)
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
        is_admin = False
        if record.user_id is not None:
            user = record.user or await self._users.get(record.user_id)
            if user is None or not user.is_active:
                raise InvalidGrantError(INVALID)
            is_admin = user.is_admin
        scope = narrow_scope(rotation.scope, _allowed(record, client, is_admin))
        if superseded is None:
            # Live and within scope, yet not rotated: a concurrent request changed it between the two reads.
            raise InvalidGrantError(INVALID)
        return await self._replace(record, client, superseded, scope, rotation.as_of)

    async def _replace(
        self,
        record: RefreshRecord,
        client: Client,
        superseded: UUID,
        scope: frozenset[str],
        as_of: datetime,
    ) -> TokenSet:
        """Grace-window retry: revoke the unused successor and issue a new one in its place."""
        access = self._issuer.access_record(as_of)
        minted = self._issuer.sign(
            client, record.user_id, scope, record.auth_time, access
        )
        now = self._clock()
        raw, new = self._issuer.new_refresh_token(
            client,
            record.user_id,
            record.scope,
            record.auth_time,
            minted,
            family=(record.family_id, record.family_expires_at),
            parent_id=record.id,
        )
        if not await self._tokens.replace_successor(superseded, new, now):
            # Another request used or replaced the successor first: that is reuse too (RFC 9700 §4.14.2).
            await self._tokens.revoke_family(record.family_id, now)
            _audit_reuse(record.family_id, record.user_id, "concurrent_rotation")
            raise InvalidGrantError(
                INVALID, detail="refresh token rotated concurrently: family revoked"
            )
        return self._issuer.token_set(minted, scope, raw, _signed_in(record))

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


def _signed_in(record: RefreshRecord) -> Authentication | None:
    """The family's original sign-in: same ``auth_time`` and session, never a ``nonce`` (OIDC Core §12.2)."""
    if record.user_id is None:
        return None
    return Authentication(record.user_id, record.auth_time, sid=record.sid)


def _allowed(record: RefreshRecord, client: Client, is_admin: bool) -> frozenset[str]:
    """What the token may still grant: its scope, less what the client lost and ``admin`` from a non-admin."""
    allowed = record.scope & client.scopes
    if record.user_id is not None and not is_admin:
        allowed -= {ADMIN_SCOPE}
    return allowed


def _audit_reuse(family_id: UUID, subject: str | None, reason: str) -> None:
    """RFC 9700 §4.14.2: a reused refresh token is an attack signal worth an audit line."""
    audit(
        "refresh.reuse_detected",
        family_id=str(family_id),
        subject=subject,
        reason=reason,
        family_revoked=True,
    )
