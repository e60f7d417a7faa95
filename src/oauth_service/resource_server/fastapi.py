"""Protect a FastAPI API with this server's access tokens: the dependency and its RFC 6750 §3 challenges.

The only module of ``resource_server`` that imports FastAPI. A token is read from the ``Authorization: Bearer``
header (``verification.bearer_token_of``), verified by any ``TokenVerifier``, and must carry the route's scopes;
failures are answered with ``WWW-Authenticate: Bearer`` challenges: a bare one when no token was sent,
``invalid_token`` 401, ``insufficient_scope`` 403 with the needed ``scope``.

Usage::

    oauth = ResourceProtector(IntrospectionVerifier(url, client_id="api", client_secret=secret))
    oauth.install(app)

    @app.get("/notes")
    async def notes(token: Annotated[AccessToken, Depends(oauth.require_scopes("read"))]) -> ...: ...
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.security.base import SecurityBase

from oauth_service.oauth.access_tokens import AccessToken
from oauth_service.oauth.caching import NO_STORE
from oauth_service.oauth.errors import InsufficientScopeError, OAuthError
from oauth_service.oauth.scopes import format_scope
from oauth_service.resource_server.verification import TokenVerifier, bearer_token_of

__all__ = ["Dependency", "ResourceProtector", "bearer_token", "require_scopes"]

Dependency = Callable[..., Awaitable[AccessToken]]


def bearer_token(request: Request) -> str:
    """Return the bearer token of the request's ``Authorization`` header (``verification.bearer_token_of``)."""
    return bearer_token_of(request.headers.getlist("authorization"))


class ResourceProtector:
    """Builds FastAPI dependencies that demand a valid bearer token carrying given scopes."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        scheme: SecurityBase | None = None,
    ) -> None:
        self.verifier = verifier
        # Only documents the requirement in OpenAPI; the token itself is read by ``bearer_token``.
        self.scheme = scheme or HTTPBearer(auto_error=False, bearerFormat="JWT")

    async def authenticate(
        self, request: Request, required: frozenset[str]
    ) -> AccessToken:
        """Verify the request's bearer token and check it carries every ``required`` scope."""
        access = await self.verifier.verify(bearer_token(request))
        if not required <= access.scopes:
            raise InsufficientScopeError(scope=format_scope(required))
        return access

    def require_scopes(self, *scopes: str) -> Dependency:
        """Return a dependency yielding the ``AccessToken`` when it carries every one of ``scopes``."""
        required = frozenset(scopes)

        async def dependency(
            request: Request,
            _documented: Annotated[Any, Security(self.scheme, scopes=list(scopes))],
        ) -> AccessToken:
            return await self.authenticate(request, required)

        return dependency

    def install(self, app: FastAPI) -> None:
        """Render the verifiers' errors (401/403 with ``WWW-Authenticate``, 500, 503) in an app of your own."""
        app.add_exception_handler(OAuthError, _render_error)


async def _render_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)  # noqa: S101 - registered for OAuthError only
    headers = {**NO_STORE, **exc.headers()}
    return JSONResponse(exc.body(), status_code=exc.http_status, headers=headers)


def require_scopes(*scopes: str, scheme: SecurityBase | None = None) -> Dependency:
    """Like ``ResourceProtector.require_scopes``, for the protector stored at ``app.state.resource_protector``.

    Lets routers be declared at import time while the protector is built by the app's lifespan.
    """
    required = frozenset(scopes)
    documented = scheme or HTTPBearer(auto_error=False, bearerFormat="JWT")

    async def dependency(
        request: Request,
        _documented: Annotated[Any, Security(documented, scopes=list(scopes))],
    ) -> AccessToken:
        protector: ResourceProtector = request.app.state.resource_protector
        return await protector.authenticate(request, required)

    return dependency
