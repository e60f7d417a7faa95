"""The token endpoint's dispatcher (RFC 6749 §3.2, §5.2): strategy lookup, client authentication, then the grant.

The order is fixed: an unknown ``grant_type`` is refused before any database work; the client is authenticated
with the strategy's public-client allowance; a client may only use grants it is registered for
(``unauthorized_client``); the strategy validates the request, then issues.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from oauth_service.oauth.client_auth import authenticate_client
from oauth_service.oauth.errors import (
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from oauth_service.oauth.grants import GrantStrategy
from oauth_service.oauth.models import Client, TokenRequest, TokenSet
from oauth_service.oauth.storage import ClientStore
from oauth_service.oauth.throttling import NoThrottle, Throttle
from oauth_service.observability.logs import bind_client_id


class TokenSetExtension(Protocol):
    """Adds to what a grant issued (an ID token, ...) without the grant knowing: one registered step each."""

    def __call__(self, tokens: TokenSet, client: Client) -> TokenSet:
        """Return ``tokens`` with this extension's members added."""
        ...


class TokenDispatcher:
    """Looks a grant up by ``grant_type`` and runs it; nothing else."""

    def __init__(
        self,
        strategies: Mapping[str, GrantStrategy[Any]],
        clients: ClientStore,
        *,
        throttle: Throttle | None = None,
        extensions: Sequence[TokenSetExtension] = (),
    ) -> None:
        self._strategies = dict(strategies)
        self._clients = clients
        self._throttle = throttle or NoThrottle()
        self._extensions = tuple(extensions)

    @property
    def grant_types(self) -> frozenset[str]:
        """The grant types this server supports (feeds RFC 8414 ``grant_types_supported``)."""
        return frozenset(self._strategies)

    async def dispatch(self, request: TokenRequest) -> TokenSet:
        """Run one token request to its response, or raise an ``OAuthError``."""
        strategy = self._strategies.get(request.grant_type)
        if strategy is None:
            raise UnsupportedGrantTypeError("The grant type is not supported.")
        client = await authenticate_client(
            request.credentials,
            self._clients,
            allow_public=strategy.allows_public_clients,
            throttle=self._throttle,
            client_ip=request.client_ip,
        )
        # Audit events raised while the grant runs (reuse, replay) name the authenticated client.
        bind_client_id(client.client_id)
        if request.grant_type not in client.grant_types:
            raise UnauthorizedClientError(
                "The client is not allowed to use this grant type."
            )
        outcome = await strategy.validate(request, client)
        tokens = await strategy.issue(outcome)
        for extend in self._extensions:
            tokens = extend(tokens, client)
        return tokens
