"""The hot-path caches in the running app: no SQL for a cached client, revocations honoured within the TTL.

A change the change feed does not announce (plain SQL, or a notification lost) is the case the TTLs bound;
those tests write it with plain SQL on a connection of their own.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text

from oauth_service.app import create_app
from oauth_service.db import admin
from oauth_service.db.engine import make_sessionmaker
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings
from tests.bearer import access_token, basic, bearer
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client

TTL = 30.0
TOKEN = "/oauth/token"
CC = {"grant_type": "client_credentials", "scope": "read"}
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}
INVALID_CHALLENGE = (
    'Bearer realm="oauth-service", error="invalid_token", '
    'error_description="The access token is invalid."'
)


class MovableClock:
    """The real time, plus an offset a test can advance."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
async def cached_app(db_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    del settings  # requested for the database fixture's clean-up
    application = create_app(
        make_settings(db_url, client_cache_ttl=TTL, revocation_cache_ttl=TTL)
    )
    async with application.router.lifespan_context(application):
        application.state.runtime.clock = MovableClock()
        listener = application.state.background.listener
        if (
            listener is not None
        ):  # Postgres: its first catch-up marks the snapshot stale; let it be done
            await asyncio.wait_for(listener.listening.wait(), timeout=10)
        yield application


@pytest.fixture
def cached_runtime(cached_app: FastAPI) -> Runtime:
    value: Runtime = cached_app.state.runtime
    return value


@pytest.fixture
async def http(cached_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cached_app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


@contextmanager
def sql_statements(runtime: Runtime) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)


async def test_token_client_credentials_with_cached_client_runs_no_sql(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    app_client, secret = await make_client(cached_runtime)
    assert secret is not None
    auth = basic(app_client.client_id, secret)
    assert (await http.post(TOKEN, data=CC, headers=auth)).status_code == 200
    with sql_statements(cached_runtime) as statements:
        response = await http.post(TOKEN, data=CC, headers=auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "scope"}
    assert statements == []


async def test_token_client_credentials_with_cached_client_takes_no_connection(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    """No pooled connection is checked out for it; a grant that needs the database takes one per store
    operation and gives it back when the operation returns (``db.stores.units``)."""
    app_client, secret = await make_client(
        cached_runtime, grant_types=("client_credentials", "password", "refresh_token")
    )
    assert secret is not None
    auth = basic(app_client.client_id, secret)
    assert (await http.post(TOKEN, data=CC, headers=auth)).status_code == 200
    checkouts: list[object] = []
    pool_engine = cached_runtime.engine.sync_engine

    def counted(*_args: object) -> None:
        checkouts.append(_args[0])

    event.listen(pool_engine, "checkout", counted)
    try:
        assert (await http.post(TOKEN, data=CC, headers=auth)).status_code == 200
        assert checkouts == []
        refused = await http.post(
            TOKEN,
            data={"grant_type": "refresh_token", "refresh_token": "not-a-token"},
            headers=auth,
        )
    finally:
        event.remove(pool_engine, "checkout", counted)
    assert refused.status_code == 400
    # The rotation step found nothing, then the read that says why: one connection each, in turn.
    assert len(checkouts) == 2
    assert cached_runtime.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_token_after_remote_secret_rotation_new_secret_works_at_once(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    app_client, old = await make_client(cached_runtime)
    assert old is not None
    cid = app_client.client_id
    assert (await http.post(TOKEN, data=CC, headers=basic(cid, old))).status_code == 200
    # As another process would: a session of its own, which this runtime does not apply.
    async with make_sessionmaker(cached_runtime.engine)() as session:
        _, new = await admin.rotate_client_secret(session, client_id=cid)
        await session.commit()
    response = await http.post(TOKEN, data=CC, headers=basic(cid, new))
    assert response.status_code == 200
    stale = await http.post(TOKEN, data=CC, headers=basic(cid, old))
    assert stale.status_code == 401
    assert stale.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed.",
    }


async def test_token_after_unannounced_client_deletion_refused_once_ttl_passed(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    app_client, secret = await make_client(cached_runtime)
    assert secret is not None
    auth = basic(app_client.client_id, secret)
    assert (await http.post(TOKEN, data=CC, headers=auth)).status_code == 200
    async with cached_runtime.engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM clients WHERE client_id = :id"),
            {"id": app_client.client_id},
        )
    within = await http.post(TOKEN, data=CC, headers=auth)
    assert within.status_code == 200  # the stated bound: up to OAUTH_CLIENT_CACHE_TTL
    clock: MovableClock = cached_runtime.clock  # type: ignore[assignment]
    clock.offset += timedelta(seconds=TTL)
    after = await http.post(TOKEN, data=CC, headers=auth)
    assert after.status_code == 401
    assert after.headers["www-authenticate"].startswith("Basic ")


async def test_me_with_unannounced_revocation_accepted_until_ttl_then_invalid_token(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    token = access_token(cached_runtime, subject="app", client_id="app", jti="j-remote")
    assert (await http.get("/api/v1/me", headers=bearer(token))).status_code == 200
    async with cached_runtime.engine.begin() as conn:
        expires = datetime.now(UTC) + timedelta(hours=1)
        await conn.execute(
            text(
                "INSERT INTO revoked_tokens (jti, expires_at, revoked_at)"
                " VALUES ('j-remote', :at, :at)"
            ),
            {"at": expires},
        )
    with sql_statements(cached_runtime) as statements:
        within = await http.get("/api/v1/me", headers=bearer(token))
    assert (
        within.status_code == 200
    )  # the stated bound: up to OAUTH_REVOCATION_CACHE_TTL
    assert statements == []
    clock: MovableClock = cached_runtime.clock  # type: ignore[assignment]
    clock.offset += timedelta(seconds=TTL)
    after = await http.get("/api/v1/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.json() == INVALID_TOKEN
    assert after.headers["www-authenticate"] == INVALID_CHALLENGE


async def test_introspect_after_local_revocation_is_inactive_at_once(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    app_client, secret = await make_client(cached_runtime)
    assert secret is not None
    auth = basic(app_client.client_id, secret)
    issued = await http.post(TOKEN, data=CC, headers=auth)
    token = issued.json()["access_token"]
    active = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert active.json()["active"] is True
    revoked = await http.post("/oauth/revoke", data={"token": token}, headers=auth)
    assert revoked.status_code == 200
    after = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert after.status_code == 200
    assert after.json() == {"active": False}


async def test_introspect_client_token_with_cached_client_runs_no_sql(
    http: httpx.AsyncClient, cached_runtime: Runtime
) -> None:
    app_client, secret = await make_client(cached_runtime)
    assert secret is not None
    auth = basic(app_client.client_id, secret)
    cid = app_client.client_id
    token = access_token(cached_runtime, subject=cid, client_id=cid, jti="j-intro")
    form = {"token": token, "token_type_hint": "access_token"}
    assert (await http.post("/oauth/introspect", data=form, headers=auth)).json()[
        "active"
    ]
    with sql_statements(cached_runtime) as statements:
        response = await http.post("/oauth/introspect", data=form, headers=auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body == {
        "active": True,
        "scope": "read write",
        "client_id": cid,
        "sub": cid,
        "exp": body["exp"],
        "iat": body["exp"] - 600,
        "iss": ISSUER,
        "aud": cached_runtime.settings.resource_audience,
        "token_type": "Bearer",
        "jti": "j-intro",
    }
    assert statements == []
