"""/docs (Swagger UI with local assets under a strict CSP), /openapi.json (valid OpenAPI 3.1) and the docs client."""

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.runtime import Runtime
from tests.conftest import ISSUER, make_settings
from tests.factories import make_user

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SCOPES = {
    "openid": "Sign in with OpenID Connect: an ID token, and GET /oauth/userinfo",
    "profile": "Your name, username, picture, locale and time zone (UserInfo)",
    "email": "Your email address and whether it is verified (UserInfo)",
    "read": "Read your data (GET /api/v1/notes)",
    "write": "Change your data (POST/DELETE /api/v1/notes)",
    "admin": "Administer clients, users and scopes (/admin; admin users only)",
}


@asynccontextmanager
async def _serve(
    db_url: str, **overrides: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    app = create_app(make_settings(db_url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http, app.state.runtime


@pytest.fixture
async def docs_app(
    db_url: str, database: AsyncEngine
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The app with /docs on (the shared test settings turn it off)."""
    async with _serve(db_url, docs_enabled=True) as served:
        yield served


@pytest.fixture
def docs_http(docs_app: tuple[httpx.AsyncClient, Runtime]) -> httpx.AsyncClient:
    return docs_app[0]


def _config(page: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="docs-config">(.*?)</script>', page
    )
    assert match is not None
    config: dict[str, Any] = json.loads(match.group(1))
    return config


async def test_docs_page_uses_local_assets_under_strict_csp(
    docs_http: httpx.AsyncClient,
) -> None:
    response = await docs_http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    page = response.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources == [
        "/docs/assets/favicon.png",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/static/docs/swagger-init.js",
    ]
    assert "http://" not in page.replace(ISSUER, "")
    assert "https://" not in page
    # No inline script: every executable <script> has a src; the config is a JSON data block.
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all(
        "src=" in attrs or 'type="application/json"' in attrs for attrs in scripts
    )
    for source in sources:
        asset = await docs_http.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100


async def test_docs_page_presets_the_public_docs_client_with_pkce(
    docs_http: httpx.AsyncClient,
) -> None:
    config = _config((await docs_http.get("/docs")).text)
    assert config == {
        "openapiUrl": "/openapi.json",
        "oauth2RedirectUrl": f"{ISSUER}/docs/oauth2-redirect",
        "initOAuth": {
            "clientId": "docs",
            "appName": "oauth-service API docs",
            "scopes": "read write",
            "usePkceWithAuthorizationCodeGrant": True,
        },
    }


async def test_docs_swagger_bundle_supports_openapi_3_1(
    docs_http: httpx.AsyncClient,
) -> None:
    bundle = (await docs_http.get("/docs/assets/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in bundle
    assert "OpenAPI31" in bundle or "isOAS31" in bundle


async def test_docs_oauth2_redirect_page_is_local_and_scriptless_inline(
    docs_http: httpx.AsyncClient,
) -> None:
    response = await docs_http.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert re.findall(r"<script([^>]*)>", response.text) == [
        ' src="/static/docs/oauth2-redirect.js"'
    ]
    script = await docs_http.get("/static/docs/oauth2-redirect.js")
    assert script.status_code == 200
    assert "swaggerUIRedirectOauth2" in script.text


async def test_openapi_is_valid_3_1_with_every_flow(
    docs_http: httpx.AsyncClient,
) -> None:
    response = await docs_http.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert schema["openapi"] == "3.1.0"
    token, authorize = f"{ISSUER}/oauth/token", f"{ISSUER}/oauth/authorize"
    assert schema["components"]["securitySchemes"]["OAuth2"]["flows"] == {
        "authorizationCode": {
            "authorizationUrl": authorize,
            "tokenUrl": token,
            "refreshUrl": token,
            "scopes": SCOPES,
        },
        "implicit": {"authorizationUrl": authorize, "scopes": SCOPES},
        "password": {"tokenUrl": token, "refreshUrl": token, "scopes": SCOPES},
        "clientCredentials": {"tokenUrl": token, "scopes": SCOPES},
    }


async def test_openapi_marks_protected_operations_with_their_scopes(
    docs_http: httpx.AsyncClient,
) -> None:
    paths = (await docs_http.get("/openapi.json")).json()["paths"]
    assert paths["/api/v1/me"]["get"]["security"] == [{"OAuth2": []}]
    # UserInfo can be tried from /docs after an OpenID Connect sign-in, through either scheme.
    userinfo = [{"OAuth2": ["openid"]}, {"OpenIdConnect": ["openid"]}]
    assert paths["/oauth/userinfo"]["get"]["security"] == userinfo
    assert paths["/oauth/userinfo"]["post"]["security"] == userinfo
    assert paths["/api/v1/notes"]["get"]["security"] == [{"OAuth2": ["read"]}]
    assert paths["/api/v1/notes"]["post"]["security"] == [{"OAuth2": ["write"]}]
    assert paths["/admin/clients"]["get"]["security"] == [{"OAuth2": ["admin"]}]
    assert "security" not in paths["/oauth/token"]["post"]
    form = paths["/oauth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form


async def test_openapi_lists_only_enabled_grants(
    db_url: str, database: AsyncEngine
) -> None:
    async with _serve(db_url, enabled_grants=["client_credentials"]) as (http, _):
        flows = (await http.get("/openapi.json")).json()["components"][
            "securitySchemes"
        ]["OAuth2"]["flows"]
    assert flows == {
        "clientCredentials": {"tokenUrl": f"{ISSUER}/oauth/token", "scopes": SCOPES}
    }


async def test_docs_client_is_registered_at_startup(
    docs_app: tuple[httpx.AsyncClient, Runtime],
) -> None:
    runtime = docs_app[1]
    docs = await runtime.stores.clients.reload("docs")
    assert docs is not None
    assert docs.is_public
    assert docs.secret_hash is None
    assert docs.token_endpoint_auth_method == "none"
    assert docs.redirect_uris == (f"{ISSUER}/docs/oauth2-redirect",)
    assert docs.grant_types == {
        "authorization_code",
        "implicit",
        "password",
        "refresh_token",
    }
    assert docs.scopes == {"openid", "profile", "email", "read", "write", "admin"}


async def test_docs_client_follows_the_issuer_and_startup_is_idempotent(
    db_url: str, database: AsyncEngine
) -> None:
    async with _serve(db_url, docs_enabled=True):
        pass
    async with _serve(db_url, docs_enabled=True, issuer="https://auth.example.com") as (
        _,
        runtime,
    ):
        docs = await runtime.stores.clients.reload("docs")
    assert docs is not None
    assert docs.redirect_uris == ("https://auth.example.com/docs/oauth2-redirect",)


async def test_docs_disabled_serves_no_page_and_registers_no_client(
    db_url: str, database: AsyncEngine
) -> None:
    async with _serve(db_url, docs_enabled=False) as (http, runtime):
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/docs/oauth2-redirect")).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 200
        assert await runtime.stores.clients.reload("docs") is None


async def test_docs_client_password_grant_from_request_body_works(
    docs_http: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, password = await make_user(runtime)
    form = {
        "grant_type": "password",
        "username": user.email,
        "password": password,
        "scope": "read write",
        "client_id": "docs",
    }
    response = await docs_http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    me = await docs_http.get(
        "/api/v1/me",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
    )
    assert me.status_code == 200
    assert me.json()["client_id"] == "docs"


async def test_openapi_offers_openid_connect_through_the_discovery_document(
    docs_http: httpx.AsyncClient,
) -> None:
    schemes = (await docs_http.get("/openapi.json")).json()["components"][
        "securitySchemes"
    ]
    assert schemes["OpenIdConnect"] == {
        "type": "openIdConnect",
        "openIdConnectUrl": f"{ISSUER}/.well-known/openid-configuration",
        "description": "OpenID Connect sign-in with this server (the same tokens as OAuth2).",
    }
    discovery = await docs_http.get("/.well-known/openid-configuration")
    assert discovery.status_code == 200
