"""``/docs``: Swagger UI with every grant of this server in its Authorize dialog, and a valid OpenAPI 3.1 document.

The Swagger UI assets ship with the ``fastapi-offline`` package and are served by the service itself, and the
page runs no inline script (its configuration is a JSON data block read by a static file), so it works offline
under a strict Content-Security-Policy. The OAuth2 security scheme lists the enabled flows (RFC 6749 §4.1 with
RFC 7636 PKCE, §4.2, §4.3, §4.4) against the real endpoints; the built-in public client (``settings.
docs_client_id``, see ``db.docs_client``) is preset for the browser flows.
"""

import json
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from oauth_service.db.docs_client import docs_redirect_uri
from oauth_service.oauth.caching import NO_STORE
from oauth_service.settings import Settings

SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"

SCOPE_DESCRIPTIONS = {
    "openid": "Sign in with OpenID Connect: an ID token, and GET /oauth/userinfo",
    "profile": "Your name, username, picture, locale and time zone (UserInfo)",
    "email": "Your email address and whether it is verified (UserInfo)",
    "read": "Read your data (GET /api/v1/notes)",
    "write": "Change your data (POST/DELETE /api/v1/notes)",
    "admin": "Administer clients, users and scopes (/admin; admin users only)",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    **NO_STORE,
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API docs</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script type="application/json" id="docs-config">{config}</script>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script>
</body>
</html>
"""
_REDIRECT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Signing in to the API docs</title></head>
<body>
<p id="status">Returning to the API docs...</p>
<script src="/static/docs/oauth2-redirect.js"></script>
</body>
</html>
"""


def oauth2_scheme(settings: Settings) -> dict[str, Any]:
    """The OpenAPI OAuth2 security scheme: one flow per enabled grant, at this issuer's endpoints."""
    issuer, grants = settings.issuer, set(settings.enabled_grants)
    authorize, token = f"{issuer}/oauth/authorize", f"{issuer}/oauth/token"
    refresh = {"refreshUrl": token} if "refresh_token" in grants else {}
    scopes = dict(SCOPE_DESCRIPTIONS)
    flows: dict[str, Any] = {}
    if "authorization_code" in grants:
        flows["authorizationCode"] = {
            "authorizationUrl": authorize,
            "tokenUrl": token,
            **refresh,
            "scopes": scopes,
        }
    if "implicit" in grants:
        flows["implicit"] = {"authorizationUrl": authorize, "scopes": scopes}
    if "password" in grants:
        flows["password"] = {"tokenUrl": token, **refresh, "scopes": scopes}
    if "client_credentials" in grants:
        flows["clientCredentials"] = {"tokenUrl": token, "scopes": scopes}
    description = (
        f"Access tokens of this server. Browser flows use the public client `{settings.docs_client_id}` "
        "(authorization code with PKCE, implicit, and password: leave the secret empty). Client "
        "credentials need a confidential "
        "client's id and secret."
    )
    return {"type": "oauth2", "description": description, "flows": flows}


def openid_connect_scheme(settings: Settings) -> dict[str, Any]:
    """The OpenAPI ``openIdConnect`` security scheme: Swagger UI reads the flows from the discovery document."""
    return {
        "type": "openIdConnect",
        "openIdConnectUrl": f"{settings.issuer}/.well-known/openid-configuration",
        "description": "OpenID Connect sign-in with this server (the same tokens as OAuth2).",
    }


def _page_config(settings: Settings) -> str:
    config = {
        "openapiUrl": "/openapi.json",
        "oauth2RedirectUrl": docs_redirect_uri(settings.issuer),
        "initOAuth": {
            "clientId": settings.docs_client_id,
            "appName": "oauth-service API docs",
            "scopes": "read write",
            "usePkceWithAuthorizationCodeGrant": True,
        },
    }
    # A JSON data block inside HTML: "<" is escaped so no value can close the script element.
    return json.dumps(config).replace("<", "\\u003c")


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Generate ``/openapi.json`` (OpenAPI 3.1) with the real OAuth2 flows in ``securitySchemes``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            schemes = components.setdefault("securitySchemes", {})
            schemes["OAuth2"] = oauth2_scheme(settings)
            schemes["OpenIdConnect"] = openid_connect_scheme(settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI, settings: Settings) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect`` and the Swagger UI assets (when docs are enabled)."""
    install_openapi(app, settings)
    if not settings.docs_enabled:
        return
    page = _PAGE.format(title=app.title, config=_page_config(settings))
    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> Response:
        return HTMLResponse(_REDIRECT_PAGE, headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(SWAGGER_ASSETS / "favicon.png", media_type="image/png")
