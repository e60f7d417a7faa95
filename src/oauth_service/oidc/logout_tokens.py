"""Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4).

A logout token is a JWS with ``typ`` ``logout+jwt`` (§2.4, RFC 8725 §3.11), signed by the active key like ID
tokens, so no verifier of ours mistakes it for an ID or access token. Claims: ``iss``, ``aud`` (the client),
``iat``, ``exp`` (two minutes later: it is delivered at once or minted again for the next attempt), a unique
``jti``, the back-channel ``events`` member, ``sub``, and ``sid`` when the session is known. Never ``nonce``
(§2.4 forbids it, so a logout token can never pass for an ID token).
"""

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oidc.id_tokens import IdTokenSigner

LOGOUT_TOKEN_TYP: Final = "logout+jwt"
BACKCHANNEL_LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL: Final = timedelta(seconds=120)


class LogoutTokenMinter:
    """Signs logout tokens; ``keys`` is asked per token, as a rotation swaps the key set."""

    def __init__(
        self,
        keys: Callable[[], IdTokenSigner],
        *,
        issuer: str,
        clock: Clock = utcnow,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock

    def mint(self, client_id: str, *, subject: str, sid: str | None) -> str:
        """Sign a logout token telling ``client_id`` that ``subject``'s session ``sid`` (or all, if None) ended."""
        now = self._clock()
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + LOGOUT_TOKEN_TTL).timestamp()),
            "jti": secrets.token_urlsafe(16),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
            "sub": subject,
        }
        if sid is not None:
            claims["sid"] = sid
        return self._keys().sign(claims, typ=LOGOUT_TOKEN_TYP)
