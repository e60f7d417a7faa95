"""Remote-mode resource servers must not accept a refresh token as a bearer access token (RFC 6749 §1.5, §7).

The introspection endpoint answers ``active: true`` for a refresh token asked about by the client it was issued
to (``token_type: refresh_token``). When the API's introspection client is also the client holding refresh
tokens (a backend-for-frontend, say), ``IntrospectionVerifier`` must still refuse a refresh token as a bearer.
"""

import base64

import httpx
from fastapi import FastAPI

from oauth_service.resource_server import IntrospectionVerifier
from oauth_service.runtime import Runtime
from tests.bearer import bearer, notes_api, password_tokens
from tests.conftest import ISSUER


async def test_remote_mode_refresh_token_of_the_introspecting_client_is_401(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime, client_id="bff", scope="read")
    assert issued.refresh_token is not None
    raw = base64.b64decode(issued.auth["Authorization"].removeprefix("Basic "))
    secret = raw.decode().split(":", 1)[1]
    server = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    verifier = IntrospectionVerifier(
        f"{ISSUER}/oauth/introspect",
        client_id="bff",
        client_secret=secret,
        audience=ISSUER,
        cache_ttl=0,
        http=server,
    )
    transport = httpx.ASGITransport(app=notes_api(verifier))
    async with (
        server,
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as api,
    ):
        as_access = await api.get("/notes", headers=bearer(issued.access_token))
        as_refresh = await api.get("/notes", headers=bearer(issued.refresh_token))
    assert as_access.status_code == 200
    assert as_refresh.status_code == 401
    assert as_refresh.json() == {
        "error": "invalid_token",
        "error_description": "The access token is invalid.",
    }
    assert as_refresh.headers["www-authenticate"] == (
        'Bearer realm="oauth-service", error="invalid_token", '
        'error_description="The access token is invalid."'
    )
