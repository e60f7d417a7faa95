"""RFC 8414 metadata, the JWK Set, and CORS limited to the fetch-facing endpoints."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from tests.conftest import ISSUER, make_settings

EXPECTED = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
    "revocation_endpoint": f"{ISSUER}/oauth/revoke",
    "introspection_endpoint": f"{ISSUER}/oauth/introspect",
    "scopes_supported": [
        "admin",
        "email",
        "offline_access",
        "openid",
        "profile",
        "read",
        "write",
    ],
    "response_types_supported": ["code", "id_token", "token", "id_token token"],
    "response_modes_supported": ["query", "fragment"],
    "grant_types_supported": [
        "authorization_code",
        "client_credentials",
        "implicit",
        "password",
        "refresh_token",
    ],
    "token_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ],
    "revocation_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ],
    "introspection_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
    ],
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
    "userinfo_endpoint": f"{ISSUER}/oauth/userinfo",
    "end_session_endpoint": f"{ISSUER}/oauth/logout",
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "claims_supported": [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "amr",
        "sid",
        "name",
        "family_name",
        "given_name",
        "preferred_username",
        "picture",
        "zoneinfo",
        "locale",
        "updated_at",
        "email",
        "email_verified",
    ],
    "claim_types_supported": ["normal"],
    "claims_parameter_supported": False,
    "request_parameter_supported": False,
    "request_uri_parameter_supported": False,
    "prompt_values_supported": ["none", "login", "consent", "select_account"],
    "ui_locales_supported": ["en"],
    "backchannel_logout_supported": True,
    "backchannel_logout_session_supported": True,
    "frontchannel_logout_supported": False,
}
ORIGIN = "https://spa.example"


@asynccontextmanager
async def _client_for(
    db_url: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(db_url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http


@pytest.mark.parametrize(
    "path",
    ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"],
)
async def test_discovery_metadata_is_exact(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == EXPECTED
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["content-type"] == "application/json"


async def test_discovery_issuer_is_byte_identical_to_setting(
    client: httpx.AsyncClient,
) -> None:
    raw = (await client.get("/.well-known/oauth-authorization-server")).content
    assert b'"issuer":"http://oauth.test"' in raw


async def test_discovery_follows_settings(db_url: str, database: AsyncEngine) -> None:
    async with _client_for(
        db_url,
        enabled_grants=["authorization_code", "refresh_token"],
        allow_plain_pkce=True,
    ) as http:
        body = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert body["response_types_supported"] == ["code"]
    assert body["response_modes_supported"] == ["query", "fragment"]
    assert body["code_challenge_methods_supported"] == ["S256", "plain"]


async def test_discovery_names_the_configured_id_token_algorithm(
    db_url: str, database: AsyncEngine, es256_keys: None
) -> None:
    async with _client_for(db_url, signing_alg="ES256") as http:
        body = (await http.get("/.well-known/openid-configuration")).json()
    assert body["id_token_signing_alg_values_supported"] == ["ES256"]


async def test_discovery_scopes_come_from_the_scopes_table(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    async with database.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO scopes (name, description, created_at) VALUES ('notes', '', CURRENT_TIMESTAMP)"
            )
        )
    body = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert body["scopes_supported"] == [
        "admin",
        "email",
        "notes",
        "offline_access",
        "openid",
        "profile",
        "read",
        "write",
    ]


async def test_jwks_publishes_public_members_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert len(keys) >= 1
    for key in keys:
        assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
        assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")


async def test_cors_preflight_on_token_endpoint_allows_configured_origin(
    db_url: str, database: AsyncEngine
) -> None:
    async with _client_for(db_url, cors_origins=[ORIGIN]) as http:
        response = await http.options(
            "/oauth/token",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        jwks = await http.get("/.well-known/jwks.json", headers={"Origin": ORIGIN})
        assert jwks.headers["access-control-allow-origin"] == ORIGIN
        other = await http.get(
            "/.well-known/jwks.json", headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


async def test_cors_headers_never_on_authorize_endpoint(
    db_url: str, database: AsyncEngine
) -> None:
    async with _client_for(db_url, cors_origins=[ORIGIN]) as http:
        response = await http.get("/oauth/authorize", headers={"Origin": ORIGIN})
        assert not [h for h in response.headers if h.startswith("access-control-")]
        preflight = await http.options(
            "/oauth/authorize",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        assert not [h for h in preflight.headers if h.startswith("access-control-")]


async def test_cors_not_installed_without_origins(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers
