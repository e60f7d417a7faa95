"""Response-type handlers of the authorization endpoint (RFC 6749 §4.1.2, §4.2.2; RFC 9207 §2).

A registry ``{"code": CodeResponse, "token": ImplicitResponse, ...}`` keyed by the canonical response type; each
handler turns an approved request into the redirect that carries the result. Codes carry 256 bits, are stored
hashed, live ``code_ttl`` and are bound to client, redirect URI (as sent), scope, user, auth time, PKCE challenge,
and the OpenID Connect ``nonce`` and browser session (``sid``). The implicit response carries an access token in
the fragment and never a refresh token (RFC 6749 §4.2.2). The OpenID Connect response types (``id_token``,
``id_token token``) are handlers of ``oidc.implicit``, registered here by the composition root.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.oauth.authorization import (
    RESPONSE_TYPE_GRANTS,
    AuthorizationRequest,
)
from oauth_service.oauth.clock import Clock
from oauth_service.oauth.issuer import MintedToken
from oauth_service.oauth.models import Authentication, Client, User
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


@dataclass(frozen=True, slots=True)
class SignIn:
    """The browser sign-in a response answers for: who, when, and in which session (OpenID Connect ``sid``)."""

    user: User
    auth_time: datetime
    sid: str | None = None

    def authentication(self, request: AuthorizationRequest) -> Authentication:
        """What an ID token issued for ``request`` asserts: this sign-in and the request's ``nonce``."""
        return Authentication(
            self.user.id, self.auth_time, sid=self.sid, nonce=request.nonce
        )


class ResponseTypeHandler(Protocol):
    """Issue what one ``response_type`` returns."""

    async def __call__(
        self, request: AuthorizationRequest, client: Client, sign_in: SignIn
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


def common_params(request: AuthorizationRequest) -> dict[str, str]:
    """``state`` and ``iss``, which every response carries."""
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
        self, request: AuthorizationRequest, client: Client, sign_in: SignIn
    ) -> AuthorizationResponse:
        """Store a fresh code (hashed) and return it in the query (or the fragment, when asked)."""
        code = new_opaque_token()
        await self._codes.save(
            CodeRecord(
                code_hash=token_hash(code),
                client_id=client.client_id,
                user_id=sign_in.user.id,
                redirect_uri=request.redirect_uri_param,
                scope=request.scope,
                auth_time=sign_in.auth_time,
                expires_at=self._clock() + self._ttl,
                code_challenge=request.code_challenge,
                code_challenge_method=request.code_challenge_method,
                nonce=request.nonce,
                sid=sign_in.sid,
            )
        )
        return AuthorizationResponse(
            request.redirect_uri,
            {"code": code, **common_params(request)},
            fragment=request.uses_fragment,
        )


class ImplicitResponse:
    """``response_type=token`` (RFC 6749 §4.2.2): an access token in the fragment, never a refresh token."""

    def __init__(self, minter: AccessTokenMinter) -> None:
        self._minter = minter

    async def __call__(
        self, request: AuthorizationRequest, client: Client, sign_in: SignIn
    ) -> AuthorizationResponse:
        """Mint an access token and return it in the fragment."""
        token = self._minter.mint_access_token(
            client, sign_in.user.id, request.scope, sign_in.auth_time
        )
        params = {**access_token_params(token, request), **common_params(request)}
        return AuthorizationResponse(request.redirect_uri, params, fragment=True)


def access_token_params(
    token: MintedToken, request: AuthorizationRequest
) -> dict[str, str]:
    """The access token's members of an implicit response (RFC 6749 §4.2.2)."""
    return {
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": str(token.expires_in),
        "scope": format_scope(request.scope),
    }


def enabled_response_types(enabled_grants: Collection[str]) -> frozenset[str]:
    """The response types the enabled grants allow, in canonical spelling (what discovery lists).

    ``code`` ← authorization_code; ``token``, ``id_token`` and ``id_token token`` ← implicit.
    """
    return frozenset(
        name for name, grant in RESPONSE_TYPE_GRANTS.items() if grant in enabled_grants
    )


def build_response_types(
    *,
    codes: AuthorizationCodeStore,
    minter: AccessTokenMinter | None,
    code_ttl: timedelta,
    clock: Clock,
    enabled_grants: Collection[str],
    openid: Mapping[str, ResponseTypeHandler] | None = None,
) -> dict[str, ResponseTypeHandler]:
    """Build the registry of enabled response types.

    ``token`` needs a ``minter``; ``openid`` holds the OpenID Connect handlers (``oidc.implicit``), which the
    core cannot build itself.
    """
    handlers: dict[str, ResponseTypeHandler] = {
        "code": CodeResponse(codes, ttl=code_ttl, clock=clock)
    }
    if minter is not None:
        handlers["token"] = ImplicitResponse(minter)
    handlers.update(openid or {})
    enabled = enabled_response_types(enabled_grants)
    return {name: handler for name, handler in handlers.items() if name in enabled}
