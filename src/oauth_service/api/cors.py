"""CORS for the endpoints browsers call with ``fetch`` (token, revocation, UserInfo, discovery), and nowhere else.

The authorization endpoint and the login/consent pages are top-level navigations and must send no CORS headers,
so Starlette's ``CORSMiddleware`` is applied per path rather than app-wide. Origins come from
``OAUTH_CORS_ORIGINS``; with none configured the middleware is not installed.
"""

from collections.abc import Collection, Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CORS_PATHS = frozenset(
    {
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/userinfo",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    }
)


class PathScopedCORSMiddleware:
    """Run ``CORSMiddleware`` only for requests to ``paths``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Sequence[str],
        paths: Collection[str] = CORS_PATHS,
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route the request through CORS handling when its path is listed."""
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
