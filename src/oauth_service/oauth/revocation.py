"""Token revocation (RFC 7009 §2.1, §2.2): a refresh token takes its family down, an access token is listed.

Revoking a refresh token revokes its whole rotation family and the access tokens issued from it; revoking an
access token puts its ``jti`` on the revocation list until it expires.

``token_type_hint`` only decides which kind is looked up first (§2.1: the server may ignore it, and must still
search the other kinds when the hint is wrong); an unknown hint value is ignored rather than refused. A token
that is unknown, malformed, expired or issued to another client is answered exactly like a revoked one (§2.2),
so revocation tells a caller nothing about tokens it does not hold.
"""

from datetime import UTC, datetime
from typing import Literal

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.access_tokens import AccessToken, LocalTokenVerifier
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.errors import InvalidTokenError
from oauth_service.oauth.models import Client
from oauth_service.oauth.storage import (
    RefreshRecord,
    RefreshTokenStore,
    RevokedTokenStore,
)

TokenKind = Literal["access_token", "refresh_token"]


def lookup_order(token: str, hint: str | None) -> tuple[TokenKind, TokenKind]:
    """Which kind to try first: the hint when it names one we know, else the token's shape (a JWT has 2 dots)."""
    if hint == "refresh_token":
        return ("refresh_token", "access_token")
    if hint == "access_token" or token.count(".") == 2:
        return ("access_token", "refresh_token")
    return ("refresh_token", "access_token")


def decode_access_token(verifier: LocalTokenVerifier, token: str) -> AccessToken | None:
    """Return the access token when it is ours and unexpired (signature and claims checked), else None."""
    if token.count(".") != 2:
        return None
    try:
        return verifier.decode(token)
    except InvalidTokenError:
        return None


async def find_refresh_token(
    store: RefreshTokenStore, token: str
) -> RefreshRecord | None:
    """Return the stored refresh token matching ``token`` (by hash), whatever its state."""
    if len(token) > 512:
        return None
    return await store.get(token_hash(token))


class TokenRevoker:
    """Revokes tokens on behalf of the client they were issued to."""

    def __init__(
        self,
        *,
        access_tokens: LocalTokenVerifier,
        refresh_tokens: RefreshTokenStore,
        revoked: RevokedTokenStore,
        clock: Clock = utcnow,
    ) -> None:
        self._access_tokens = access_tokens
        self._refresh_tokens = refresh_tokens
        self._revoked = revoked
        self._clock = clock

    async def revoke(self, token: str, hint: str | None, client: Client) -> None:
        """Revoke ``token`` if it exists and belongs to ``client``; otherwise do nothing (RFC 7009 §2.2)."""
        for kind in lookup_order(token, hint):
            if kind == "access_token":
                done = await self._revoke_access_token(token, client)
            else:
                done = await self._revoke_refresh_token(token, client)
            if done:
                return

    async def _revoke_access_token(self, token: str, client: Client) -> bool:
        access = decode_access_token(self._access_tokens, token)
        if access is None:
            return False
        if access.client_id == client.client_id:
            expires_at = datetime.fromtimestamp(access.expires_at, UTC)
            await self._revoked.add(access.jti, expires_at)
        return True

    async def _revoke_refresh_token(self, token: str, client: Client) -> bool:
        record = await find_refresh_token(self._refresh_tokens, token)
        if record is None:
            return False
        if record.client_id == client.client_id and record.revoked_at is None:
            # Also puts the family's unexpired access tokens on the revocation list (RFC 7009 §2.1).
            await self._refresh_tokens.revoke_family(record.family_id, self._clock())
        return True
