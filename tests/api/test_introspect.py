"""POST /oauth/introspect (RFC 7662) and the resource dependency's introspection mode against the live app."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.db import admin
from oauth_service.resource_server import AccessToken, IntrospectionVerifier
from oauth_service.resource_server.fastapi import ResourceProtector
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings
from tests.bearer import access_token, basic, bearer, password_tokens, refresh
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client

INTROSPECT = "/oauth/introspect"
INACTIVE = {"active": False}
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="oauth-service", charset="UTF-8"'
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Client authentication failed.",
}


async def _introspect(
    http: httpx.AsyncClient, auth: dict[str, str], token: str, hint: str | None = None
) -> dict[str, Any]:
    form = {"token": token} | ({"token_type_hint": hint} if hint else {})
    response = await http.post(INTROSPECT, data=form, headers=auth)
    assert response.status_code == 200, response.text
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE
    body: dict[str, Any] = response.json()
    return body


def _claims(runtime: Runtime, token: str) -> dict[str, Any]:
    return runtime.keys.verify(token, issuer=ISSUER, audience=ISSUER)


@pytest.mark.parametrize(
    "hint", [None, "access_token", "refresh_token", "bogus"], ids=str
)
async def test_introspect_active_user_access_token(
    client: httpx.AsyncClient, runtime: Runtime, hint: str | None
) -> None:
    issued = await password_tokens(client, runtime)
    claims = _claims(runtime, issued.access_token)
    assert await _introspect(client, issued.auth, issued.access_token, hint) == {
        "active": True,
        "scope": "read write",
        "client_id": "app",
        "sub": claims["sub"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": ISSUER,
        "aud": ISSUER,
        "token_type": "Bearer",
        "jti": claims["jti"],
        "username": "alice@example.com",
    }


async def test_introspect_client_credentials_token_has_no_username(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    form = {"grant_type": "client_credentials", "scope": "read"}
    token = (await client.post("/oauth/token", data=form, headers=issued.auth)).json()
    body = await _introspect(client, issued.auth, token["access_token"])
    claims = _claims(runtime, token["access_token"])
    assert body == {
        "active": True,
        "scope": "read",
        "client_id": "app",
        "sub": "app",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": ISSUER,
        "aud": ISSUER,
        "token_type": "Bearer",
        "jti": claims["jti"],
    }


async def test_introspect_access_token_by_another_confidential_client_is_active(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    _, secret = await make_client(runtime, client_id="resource-server")
    assert secret is not None
    body = await _introspect(
        client, basic("resource-server", secret), issued.access_token
    )
    assert body["active"] is True
    assert body["client_id"] == "app"


async def test_introspect_refresh_token_by_its_client(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    assert issued.refresh_token is not None
    body = await _introspect(client, issued.auth, issued.refresh_token, "refresh_token")
    sub = _claims(runtime, issued.access_token)["sub"]
    assert set(body) == {
        "active",
        "scope",
        "client_id",
        "sub",
        "exp",
        "iat",
        "iss",
        "aud",
        "token_type",
        "username",
    }
    assert (body["active"], body["token_type"], body["client_id"], body["sub"]) == (
        True,
        "refresh_token",
        "app",
        sub,
    )
    assert body["exp"] - body["iat"] == runtime.settings.refresh_token_idle_ttl


async def test_introspect_refresh_token_by_another_client_is_inactive(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    _, secret = await make_client(runtime, client_id="other")
    assert secret is not None
    assert issued.refresh_token is not None
    assert (
        await _introspect(client, basic("other", secret), issued.refresh_token)
        == INACTIVE
    )


async def test_introspect_rotated_refresh_token_is_inactive(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    assert issued.refresh_token is not None
    assert (await refresh(client, issued)).status_code == 200
    assert await _introspect(client, issued.auth, issued.refresh_token) == INACTIVE


async def test_introspect_revoked_tokens_are_inactive(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    assert issued.refresh_token is not None
    await client.post(
        "/oauth/revoke", data={"token": issued.refresh_token}, headers=issued.auth
    )
    assert await _introspect(client, issued.auth, issued.refresh_token) == INACTIVE
    assert await _introspect(client, issued.auth, issued.access_token) == INACTIVE


async def test_introspect_expired_tokens_are_inactive(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    assert issued.refresh_token is not None
    real_clock = runtime.clock
    runtime.clock = lambda: real_clock() + timedelta(seconds=600 + 31)
    assert await _introspect(client, issued.auth, issued.access_token) == INACTIVE
    runtime.clock = lambda: (
        real_clock() + timedelta(seconds=runtime.settings.refresh_token_idle_ttl + 1)
    )
    assert await _introspect(client, issued.auth, issued.refresh_token) == INACTIVE


async def test_introspect_tokens_of_deactivated_user_are_inactive(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    async with runtime.sessionmaker() as session:
        await admin.deactivate_user(session, email="alice@example.com")
        await session.commit()
    assert await _introspect(client, issued.auth, issued.access_token) == INACTIVE


@pytest.mark.parametrize(
    "forge",
    ["garbage", "a.b.c", "other-key", "typ-jwt", "wrong-aud", "no-client-id"],
)
async def test_introspect_malformed_or_foreign_tokens_are_inactive(
    client: httpx.AsyncClient, runtime: Runtime, forge: str
) -> None:
    issued = await password_tokens(client, runtime)
    claims = _claims(runtime, issued.access_token)
    kid, pem, _ = generate_key("RS256")
    tokens = {
        "garbage": "garbage",
        "a.b.c": "a.b.c",
        "other-key": KeySet(SigningKey.from_pem(kid, "RS256", pem)).sign(claims),
        "typ-jwt": runtime.keys.sign(claims, typ="JWT"),
        "wrong-aud": runtime.keys.sign(claims | {"aud": "http://elsewhere.test"}),
        "no-client-id": access_token(runtime, subject=claims["sub"], client_id=None),
    }
    assert await _introspect(client, issued.auth, tokens[forge]) == INACTIVE


async def test_introspect_by_public_client_is_401(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    await make_client(
        runtime, client_id="spa", grant_types=("password",), is_public=True
    )
    response = await client.post(
        INTROSPECT, data={"token": issued.access_token, "client_id": "spa"}
    )
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE


@pytest.mark.parametrize(
    "auth",
    [{}, {"client_id": "app", "client_secret": "wrong"}, {"basic": "wrong"}],
    ids=["none", "post-wrong-secret", "basic-wrong-secret"],
)
async def test_introspect_without_valid_client_authentication_is_401(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    issued = await password_tokens(client, runtime)
    form = {"token": issued.access_token}
    headers: dict[str, str] = {}
    if "basic" in auth:
        headers = basic("app", auth["basic"])
    else:
        form |= auth
    response = await client.post(INTROSPECT, data=form, headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE
    assert response.headers["cache-control"] == "no-store"


async def test_introspect_without_token_is_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    response = await client.post(
        INTROSPECT, data={"token_type_hint": "access_token"}, headers=issued.auth
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Missing 'token' parameter.",
    }


class _Checkouts:
    """Counts pooled connections checked out of ``engine`` while installed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.calls = 0
        self._engine = engine.sync_engine
        event.listen(self._engine, "checkout", self._count)

    def _count(self, *_args: object) -> None:
        self.calls += 1

    def remove(self) -> None:
        event.remove(self._engine, "checkout", self._count)


async def test_introspect_takes_a_connection_only_when_a_store_reads(
    db_url: str, settings: Settings
) -> None:
    del settings  # requested for the database fixture's clean-up
    app = create_app(
        make_settings(db_url, client_cache_ttl=60, revocation_cache_ttl=60)
    )
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            issued = await password_tokens(http, runtime)
            own = access_token(runtime, subject="app", client_id="app")
            assert (await _introspect(http, issued.auth, own))["active"] is True
            checkouts = _Checkouts(runtime.engine)
            try:
                # A cached client introspecting a client's access token reads nothing.
                assert (await _introspect(http, issued.auth, own))["active"] is True
                assert checkouts.calls == 0
                # A user's token reads the user, a refresh token its row (with its user): one each.
                body = await _introspect(http, issued.auth, issued.access_token)
                assert body["username"] == "alice@example.com"
                assert checkouts.calls == 1
                assert issued.refresh_token is not None
                body = await _introspect(http, issued.auth, issued.refresh_token)
                assert body["active"] is True
                assert checkouts.calls == 2
                assert await _introspect(http, issued.auth, "unknown") == INACTIVE
                assert checkouts.calls == 3
            finally:
                checkouts.remove()
        pool = runtime.engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]


# --- the resource dependency's second mode: verification through this endpoint ------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def remote_api(
    app: FastAPI, runtime: Runtime
) -> AsyncIterator[tuple[httpx.AsyncClient, Clock]]:
    """A separate FastAPI app that verifies tokens by introspecting them at the live server."""
    _, secret = await make_client(runtime, client_id="notes-api")
    assert secret is not None
    clock = Clock(runtime.clock().timestamp())
    server = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    verifier = IntrospectionVerifier(
        f"{ISSUER}/oauth/introspect",
        client_id="notes-api",
        client_secret=secret,
        audience=ISSUER,
        cache_ttl=10,
        http=server,
        clock=clock,
    )
    oauth = ResourceProtector(verifier)
    api = FastAPI()
    oauth.install(api)

    @api.get("/notes")
    async def notes(
        token: Annotated[AccessToken, Depends(oauth.require_scopes("read"))],
    ) -> dict[str, str]:
        return {"sub": token.subject, "client_id": token.client_id}

    transport = httpx.ASGITransport(app=api)
    async with (
        server,
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as http,
    ):
        yield http, clock


async def test_remote_mode_accepts_active_token_and_sees_revocation_within_ttl(
    client: httpx.AsyncClient,
    runtime: Runtime,
    remote_api: tuple[httpx.AsyncClient, Clock],
) -> None:
    api, clock = remote_api
    issued = await password_tokens(client, runtime)
    sub = _claims(runtime, issued.access_token)["sub"]
    response = await api.get("/notes", headers=bearer(issued.access_token))
    assert (response.status_code, response.json()) == (
        200,
        {"sub": sub, "client_id": "app"},
    )
    await client.post(
        "/oauth/revoke", data={"token": issued.access_token}, headers=issued.auth
    )
    clock.now += 9  # cached answer: accepted at most cache_ttl seconds after revocation
    assert (
        await api.get("/notes", headers=bearer(issued.access_token))
    ).status_code == 200
    clock.now += 2
    response = await api.get("/notes", headers=bearer(issued.access_token))
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token is invalid.",
    }


async def test_remote_mode_rejects_missing_forged_and_underscoped_tokens(
    client: httpx.AsyncClient,
    runtime: Runtime,
    remote_api: tuple[httpx.AsyncClient, Clock],
) -> None:
    api, _ = remote_api
    response = await api.get("/notes")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="oauth-service"'
    forged = access_token(runtime, subject="x", client_id="app", iss="http://evil.test")
    assert (await api.get("/notes", headers=bearer(forged))).status_code == 401
    issued = await password_tokens(client, runtime, scope="write")
    response = await api.get("/notes", headers=bearer(issued.access_token))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="oauth-service", error="insufficient_scope", '
        'error_description="The access token lacks a required scope.", scope="read"'
    )


async def test_remote_mode_with_unreachable_server_is_503(runtime: Runtime) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    verifier = IntrospectionVerifier(
        f"{ISSUER}/oauth/introspect", client_id="a", client_secret="b", http=http
    )
    oauth = ResourceProtector(verifier)
    api = FastAPI()
    oauth.install(api)

    @api.get("/x")
    async def x(token: Annotated[AccessToken, Depends(oauth.require_scopes())]) -> str:
        return token.subject

    async with (
        http,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://api.test"
        ) as caller,
    ):
        response = await caller.get("/x", headers=bearer("some.token.value"))
    assert response.status_code == 503
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "The service is temporarily unavailable; retry later.",
    }
