"""A client library nobody here wrote (Authlib's requests client) against a live uvicorn server.

Done-when of issue 3: client_credentials, password (through ``username``) and refresh_token from a real server
on a loopback port; the RFC 8414 metadata passes Authlib's validator; the JWT access tokens verify with joserfc
against the published JWKS.
"""

from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jwt as rfc_jwt
from joserfc.jwk import KeySet as RfcKeySet
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import make_client, make_user
from tests.live_server import free_port, serve_in_thread

pytestmark = pytest.mark.slow


@pytest.fixture
def live_server(db_url: str, database: AsyncEngine) -> Iterator[str]:
    """Serve the app with uvicorn in a background thread; yield its base URL (also the issuer)."""
    port = free_port()
    app = create_app(make_settings(db_url, issuer=f"http://127.0.0.1:{port}"))
    with serve_in_thread(app, port) as base:
        yield base


def _verify(base: str, access_token: str) -> dict[str, Any]:
    jwks = requests.get(f"{base}/.well-known/jwks.json", timeout=5).json()
    decoded = rfc_jwt.decode(access_token, RfcKeySet.import_key_set(jwks))
    assert decoded.header["typ"] == "at+jwt"
    rfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": base},
        aud={"essential": True, "value": base},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


def _journey(base: str, client_id: str, secret: str, email: str, password: str) -> None:
    metadata = AuthorizationServerMetadata(
        requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=5).json()
    )
    metadata.validate()
    token_url = metadata["token_endpoint"]
    assert token_url == f"{base}/oauth/token"

    with OAuth2Session(client_id, secret, scope="read") as machine:
        token = machine.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert "refresh_token" not in token
        assert _verify(base, token["access_token"])["sub"] == client_id

    with OAuth2Session(
        client_id, secret, token_endpoint_auth_method="client_secret_post"
    ) as app:
        token = app.fetch_token(token_url, username=email, password=password)
        claims = _verify(base, token["access_token"])
        assert claims["client_id"] == client_id
        assert claims["scope"] == "read write"
        refreshed = app.refresh_token(token_url, refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert _verify(base, refreshed["access_token"])["sub"] == claims["sub"]


async def test_third_party_client_gets_tokens_from_live_server(
    live_server: str, runtime: Runtime
) -> None:
    client, secret = await make_client(
        runtime, grant_types=("client_credentials", "password", "refresh_token")
    )
    assert secret is not None
    user, password = await make_user(runtime)
    await anyio.to_thread.run_sync(
        _journey, live_server, client.client_id, secret, user.email, password
    )
