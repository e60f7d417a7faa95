"""The grant registry: one stateless strategy per ``grant_type`` (RFC 6749 §4, §6).

A strategy validates (reads only) and returns a ``Grant``; ``issue`` performs every state change and mints
through the shared ``TokenIssuer``. Adding a grant is one module and one line in ``strategy_factories``; RFC
8414 metadata reads the registry's keys.
"""

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Protocol

from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.grants.authorization_code import AuthorizationCodeGrant
from oauth_service.oauth.grants.client_credentials import ClientCredentialsGrant
from oauth_service.oauth.grants.password import PasswordGrant, PasswordVerifier
from oauth_service.oauth.grants.refresh_token import RefreshTokenGrant
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, Grant, TokenRequest, TokenResponse
from oauth_service.oauth.storage import Stores
from oauth_service.oauth.throttling import Throttle


class GrantStrategy(Protocol):
    """One grant type: ``validate`` reads and decides, ``issue`` writes and mints."""

    grant_type: ClassVar[str]
    allows_public_clients: ClassVar[bool]

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        """Check the request against stored state; raise an ``OAuthError`` or return the grant."""
        ...

    async def issue(self, grant: Grant) -> TokenResponse:
        """Perform the grant's state changes and mint its tokens."""
        ...


@dataclass(frozen=True, slots=True)
class GrantConfig:
    """The few settings strategies need (narrow config, not ``Settings``)."""

    refresh_grace: timedelta = timedelta(0)
    allow_plain_pkce: bool = False


StrategyFactory = Callable[[], GrantStrategy]


def strategy_factories(
    *,
    stores: Stores,
    issuer: TokenIssuer,
    passwords: PasswordVerifier,
    enabled: Collection[str],
    config: GrantConfig = GrantConfig(),
    clock: Clock = utcnow,
    throttle: Throttle | None = None,
) -> dict[str, StrategyFactory]:
    """For each enabled grant type, the function that builds its strategy, keyed by ``grant_type``."""
    refresh_enabled = "refresh_token" in enabled
    factories: dict[str, StrategyFactory] = {
        "client_credentials": lambda: ClientCredentialsGrant(issuer),
        "password": lambda: PasswordGrant(
            stores.users,
            passwords,
            issuer,
            refresh_enabled=refresh_enabled,
            clock=clock,
            throttle=throttle,
        ),
        "refresh_token": lambda: RefreshTokenGrant(
            stores.refresh_tokens,
            stores.users,
            issuer,
            grace=config.refresh_grace,
            clock=clock,
        ),
    }
    codes = stores.codes
    if codes is not None:
        factories["authorization_code"] = lambda: AuthorizationCodeGrant(
            codes,
            stores.refresh_tokens,
            stores.users,
            issuer,
            allow_plain_pkce=config.allow_plain_pkce,
            refresh_enabled=refresh_enabled,
            clock=clock,
        )
    return {name: make for name, make in factories.items() if name in enabled}


def build_strategies(
    *,
    stores: Stores,
    issuer: TokenIssuer,
    passwords: PasswordVerifier,
    enabled: Collection[str],
    config: GrantConfig = GrantConfig(),
    clock: Clock = utcnow,
    throttle: Throttle | None = None,
) -> dict[str, GrantStrategy]:
    """Build the strategies of the enabled grant types, keyed by ``grant_type``."""
    factories = strategy_factories(
        stores=stores,
        issuer=issuer,
        passwords=passwords,
        enabled=enabled,
        config=config,
        clock=clock,
        throttle=throttle,
    )
    return {name: make() for name, make in factories.items()}


class LazyStrategies(Mapping[str, GrantStrategy]):
    """The registry of ``factories`` with each strategy built on its first lookup, then kept.

    A token request uses one grant type: the token endpoint builds only that strategy, not all of them.
    """

    __slots__ = ("_built", "_factories")

    def __init__(self, factories: Mapping[str, StrategyFactory]) -> None:
        self._factories = factories
        self._built: dict[str, GrantStrategy] = {}

    def __getitem__(self, grant_type: str) -> GrantStrategy:
        strategy = self._built.get(grant_type)
        if strategy is None:
            strategy = self._built[grant_type] = self._factories[grant_type]()
        return strategy

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


__all__ = [
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "GrantConfig",
    "GrantStrategy",
    "LazyStrategies",
    "PasswordGrant",
    "PasswordVerifier",
    "RefreshTokenGrant",
    "build_strategies",
    "strategy_factories",
]
