"""Token introspection (RFC 7662 §2.1, §2.2): the state and meta-information of a token, for resource servers.

Who may introspect what (RFC 7662 §2.1 leaves it to the server; §4 asks that it be limited):

* only authenticated **confidential** clients (a public client cannot keep a secret, so anyone could pose as it);
* **access tokens**: any such client, because resource servers must read tokens issued to other clients; every
  access token this server issues has our ``aud``, and a token for another audience does not verify;
* **refresh tokens**: only the client they were issued to (nobody else ever legitimately holds one).

Anything else, and every expired, revoked, malformed, unknown or foreign token, is exactly ``{"active": false}``
(§2.2), so the answer never tells which of those it was. An access token also turns inactive when its user is
deactivated or deleted, or its client deleted.
"""

from datetime import datetime
from typing import Any

from oauth_service.oauth.access_tokens import AccessToken, LocalTokenVerifier
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.models import Client
from oauth_service.oauth.revocation import (
    decode_access_token,
    find_refresh_token,
    lookup_order,
)
from oauth_service.oauth.scopes import format_scope
from oauth_service.oauth.storage import (
    ClientStore,
    RefreshRecord,
    RefreshTokenStore,
    UserStore,
)

INACTIVE: dict[str, Any] = {"active": False}


def _ts(value: datetime) -> int:
    return int(value.timestamp())


class TokenIntrospector:
    """Answers RFC 7662 introspection requests."""

    def __init__(
        self,
        *,
        access_tokens: LocalTokenVerifier,
        refresh_tokens: RefreshTokenStore,
        users: UserStore,
        clients: ClientStore,
        issuer: str,
        clock: Clock = utcnow,
    ) -> None:
        self._access_tokens = access_tokens
        self._refresh_tokens = refresh_tokens
        self._users = users
        self._clients = clients
        self._issuer = issuer
        self._clock = clock

    async def introspect(
        self, token: str, hint: str | None, caller: Client
    ) -> dict[str, Any]:
        """Return the RFC 7662 §2.2 response for ``token`` as seen by ``caller``."""
        for kind in lookup_order(token, hint):
            if kind == "access_token":
                access = decode_access_token(self._access_tokens, token)
                if access is not None:
                    return await self._access_response(access)
            else:
                record = await find_refresh_token(self._refresh_tokens, token)
                if record is not None:
                    return await self._refresh_response(record, caller)
        return dict(INACTIVE)

    async def _username(self, subject: str, client_id: str) -> str | None:
        """The user's email, "" for a client token, None when the user is gone or inactive."""
        if subject == client_id:
            return ""
        user = await self._users.get(subject)
        return user.email if user is not None and user.is_active else None

    async def _access_response(self, access: AccessToken) -> dict[str, Any]:
        if await self._access_tokens.revoked(access):
            return dict(INACTIVE)
        username = await self._username(access.subject, access.client_id)
        if username is None or await self._clients.get(access.client_id) is None:
            return dict(INACTIVE)
        body: dict[str, Any] = {
            "active": True,
            "scope": format_scope(access.scopes),
            "client_id": access.client_id,
            "sub": access.subject,
            "exp": access.expires_at,
            "iat": access.issued_at,
            "iss": access.issuer,
            "aud": access.audience[0]
            if len(access.audience) == 1
            else list(access.audience),
            "token_type": "Bearer",
            "jti": access.jti,
        }
        if username:
            body["username"] = username
        return body

    async def _refresh_response(
        self, record: RefreshRecord, caller: Client
    ) -> dict[str, Any]:
        now = self._clock()
        live = (
            record.client_id == caller.client_id
            and record.revoked_at is None
            and record.rotated_at is None
            and record.expires_at > now
            and record.family_expires_at > now
        )
        if not live:
            return dict(INACTIVE)
        subject = record.user_id or record.client_id
        if record.user is not None:  # read with the token: no second round trip
            username = record.user.email if record.user.is_active else None
        else:
            username = await self._username(subject, record.client_id)
        if username is None:
            return dict(INACTIVE)
        body: dict[str, Any] = {
            "active": True,
            "scope": format_scope(record.scope),
            "client_id": record.client_id,
            "sub": subject,
            "exp": _ts(record.expires_at),
            "iat": _ts(record.issued_at),
            "iss": self._issuer,
            "aud": self._issuer,
            "token_type": "refresh_token",
        }
        if username:
            body["username"] = username
        return body
