"""The grant registry: one stateless strategy per ``grant_type`` (RFC 6749 §4, §6).

A strategy's ``validate`` checks the request and returns what ``issue`` needs, typed per strategy
(``oauth.outcomes``): a decided ``Grant``, or the store's step that spends a code or refresh token. ``issue``
performs the state change and mints through the shared ``TokenIssuer``. Adding a grant is one module and one
line in ``build_strategies``; RFC 8414 metadata reads the registry's keys.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Protocol, TypeVar

from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.grants.authorization_code import AuthorizationCodeGrant
from oauth_service.oauth.grants.client_credentials import ClientCredentialsGrant
from oauth_service.oauth.grants.password import PasswordGrant, PasswordVerifier
from oauth_service.oauth.grants.refresh_token import RefreshTokenGrant
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, TokenRequest, TokenSet
from oauth_service.oauth.storage import Stores
from oauth_service.oauth.throttling import Throttle

Outcome = TypeVar("Outcome")


class GrantStrategy(Protocol[Outcome]):
    """One grant type: ``validate`` checks the request, ``issue`` changes state and mints."""

    grant_type: ClassVar[str]
    allows_public_clients: ClassVar[bool]

    async def validate(self, request: TokenRequest, client: Client) -> Outcome:
        """Check the request; raise an ``OAuthError`` or return what ``issue`` needs."""
        ...

    async def issue(self, outcome: Outcome) -> TokenSet:
        """Perform the outcome's state change and mint its tokens."""
        ...


@dataclass(frozen=True, slots=True)
class GrantConfig:
    """The few settings strategies need (narrow config, not ``Settings``)."""

    refresh_grace: timedelta = timedelta(0)
    allow_plain_pkce: bool = False


def build_strategies(
    *,
    stores: Stores,
    issuer: TokenIssuer,
    passwords: PasswordVerifier,
    enabled: Collection[str],
    config: GrantConfig = GrantConfig(),
    clock: Clock = utcnow,
    throttle: Throttle | None = None,
) -> dict[str, GrantStrategy[Any]]:
    """Build the strategies of the enabled grant types, keyed by ``grant_type``."""
    refresh_enabled = "refresh_token" in enabled
    strategies: list[GrantStrategy[Any]] = [
        ClientCredentialsGrant(issuer),
        PasswordGrant(
            stores.users,
            passwords,
            issuer,
            refresh_enabled=refresh_enabled,
            clock=clock,
            throttle=throttle,
        ),
        RefreshTokenGrant(
            stores.refresh_tokens,
            stores.users,
            issuer,
            grace=config.refresh_grace,
            clock=clock,
        ),
        AuthorizationCodeGrant(
            stores.codes,
            stores.refresh_tokens,
            stores.users,
            issuer,
            allow_plain_pkce=config.allow_plain_pkce,
            refresh_enabled=refresh_enabled,
            clock=clock,
        ),
    ]
    return {s.grant_type: s for s in strategies if s.grant_type in enabled}


__all__ = [
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "GrantConfig",
    "GrantStrategy",
    "PasswordGrant",
    "PasswordVerifier",
    "RefreshTokenGrant",
    "build_strategies",
]
