"""Response-type handlers of the authorization endpoint (RFC 6749 §4.1.2, §4.2.2; RFC 9207 §2).

A registry ``{"code": CodeResponse, "token": ImplicitResponse}``; each handler turns an approved request into the
redirect that carries the result. Codes carry 256 bits, are stored hashed, live ``code_ttl`` and are bound to
client, redirect URI (as sent), scope, user, auth time and PKCE challenge. The implicit response carries an access
token in the fragment and never a refresh token (RFC 6749 §4.2.2).
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.clock import Clock
from oauth_service.oauth.issuer import MintedToken
from oauth_service.oauth.models import Client, User
from oauth_service.oauth.scopes import format_scope
from oauth_service.oauth.storage import AuthorizationCodeStore, CodeRecord


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """A successful authorization response: the client's redirect URI plus parameters."""

    redirect_uri: str
    params: dict[str, str] = field(repr=False)
    fragment: bool = False

    def location(self) -> str:
        """Return the ``Location`` URL: parameters in the fragment, or appended to the query."""
        encoded = urlencode(self.params)
        parts = urlsplit(self.redirect_uri)
        if self.fragment:
            return urlunsplit(
                (parts.scheme, parts.netloc, parts.path, parts.query, encoded)
            )
        query = f"{parts.query}&{encoded}" if parts.query else encoded
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class ResponseTypeHandler(Protocol):
    """Issue what one ``response_type`` returns."""

    async def __call__(
        self,
        request: AuthorizationRequest,
        client: Client,
        user: User,
        auth_time: datetime,
    ) -> AuthorizationResponse:
        """Issue the result for an approved ``request``."""
        ...


class AccessTokenMinter(Protocol):
    """Mints an access token alone (``oauth.issuer.TokenIssuer`` satisfies it)."""

    def mint_access_token(
        self,
        client: Client,
        subject: str | None,
        scope: frozenset[str],
        auth_time: datetime | None = None,
    ) -> MintedToken:
        """Sign an access token for ``subject``."""
        ...


def _common(request: AuthorizationRequest) -> dict[str, str]:
    params: dict[str, str] = {}
    if request.state is not None:
        params["state"] = request.state
    params["iss"] = request.issuer  # RFC 9207: lets the client detect mix-up attacks
    return params


class CodeResponse:
    """``response_type=code`` (RFC 6749 §4.1.2)."""

    def __init__(
        self, codes: AuthorizationCodeStore, *, ttl: timedelta, clock: Clock
    ) -> None:
        self._codes = codes
        self._ttl = ttl
        self._clock = clock

    async def __call__(
        self,
        request: AuthorizationRequest,
        client: Client,
        user: User,
        auth_time: datetime,
    ) -> AuthorizationResponse:
        """Store a fresh code (hashed) and return it in the query."""
        code = new_opaque_token()
        await self._codes.save(
            CodeRecord(
                code_hash=token_hash(code),
                client_id=client.client_id,
                user_id=user.id,
                redirect_uri=request.redirect_uri_param,
                scope=request.scope,
                auth_time=auth_time,
                expires_at=self._clock() + self._ttl,
                code_challenge=request.code_challenge,
                code_challenge_method=request.code_challenge_method,
            )
        )
        return AuthorizationResponse(
            request.redirect_uri, {"code": code, **_common(request)}, fragment=False
        )


class ImplicitResponse:
    """``response_type=token`` (RFC 6749 §4.2.2): an access token in the fragment, never a refresh token."""

    def __init__(self, minter: AccessTokenMinter) -> None:
        self._minter = minter

    async def __call__(
        self,
        request: AuthorizationRequest,
        client: Client,
        user: User,
        auth_time: datetime,
    ) -> AuthorizationResponse:
        """Mint an access token and return it in the fragment."""
        token = self._minter.mint_access_token(
            client, user.id, request.scope, auth_time
        )
        params = {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": str(token.expires_in),
            "scope": format_scope(request.scope),
            **_common(request),
        }
        return AuthorizationResponse(request.redirect_uri, params, fragment=True)


def enabled_response_types(enabled_grants: Collection[str]) -> frozenset[str]:
    """The response types the enabled grants allow (``code`` ← authorization_code, ``token`` ← implicit)."""
    types = set()
    if "authorization_code" in enabled_grants:
        types.add("code")
    if "implicit" in enabled_grants:
        types.add("token")
    return frozenset(types)


def build_response_types(
    *,
    codes: AuthorizationCodeStore,
    minter: AccessTokenMinter | None,
    code_ttl: timedelta,
    clock: Clock,
    enabled_grants: Collection[str],
) -> dict[str, ResponseTypeHandler]:
    """Build the registry of enabled response types (``token`` needs a ``minter``)."""
    handlers: dict[str, ResponseTypeHandler] = {
        "code": CodeResponse(codes, ttl=code_ttl, clock=clock)
    }
    if minter is not None:
        handlers["token"] = ImplicitResponse(minter)
    enabled = enabled_response_types(enabled_grants)
    return {name: handler for name, handler in handlers.items() if name in enabled}
