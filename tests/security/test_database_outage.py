"""Database outage (Postgres only): 503 ``temporarily_unavailable`` within a bounded time, recovery on its own.

The app reaches Postgres through a TCP proxy the test controls (``tcp_proxy.TcpProxy``): it can refuse new
connections, black-hole them (packets vanish: the hardest case, only timeouts end it), or cut a connection at the
moment a given write is sent. A token response is only sent after its rows are committed, so a write that never
reached the server yields a 503 and leaves the old refresh token working.
"""

import base64
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings
from tests.conftest import make_settings
from tests.factories import make_client, make_user
from tests.security.conftest import http_client
from tests.security.tcp_proxy import Mode, TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

UNAVAILABLE = {
    "error": "temporarily_unavailable",
    "error_description": "The service is temporarily unavailable; retry later.",
}
READY_DOWN = {
    "status": "unavailable",
    "error": "temporarily_unavailable",
    "error_description": "Database unreachable.",
}
BOUND_SECONDS = 5.0
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
async def proxied(
    db_url: str, database: AsyncEngine
) -> AsyncIterator[tuple[FastAPI, TcpProxy]]:
    """An app whose only way to Postgres is a proxy the test controls (tight timeouts)."""
    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied_url = url.set(port=proxy.port).render_as_string(hide_password=False)
    # Client registrations cached as in production: a token request then reaches the database first
    # through a store operation's own pooled connection (``db.stores.units``), not through a session.
    settings = make_settings(
        proxied_url,
        db_pool_timeout=1.0,
        db_statement_timeout_ms=1000,
        client_cache_ttl=60,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            yield app, proxy
    finally:
        await proxy.stop()


def settings_pool_bound(app: FastAPI) -> int:
    """Connections one process may have had open when the cut came: its pool and overflow, plus the first try."""
    settings: Settings = app.state.runtime.settings
    return settings.db_pool_size + settings.db_max_overflow + 1


async def _setup(runtime: Runtime) -> dict[str, str]:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    client, secret = await make_client(
        runtime, grant_types=("password", "refresh_token"), scopes=("read",)
    )
    raw = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _password(auth: dict[str, str]) -> dict[str, object]:
    return {
        "data": {"grant_type": "password", "email": EMAIL, "password": PASSWORD},
        "headers": auth,
    }


async def _timed(
    http: httpx.AsyncClient, method: str, url: str, **kwargs: object
) -> httpx.Response:
    start = time.monotonic()
    response = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - start < BOUND_SECONDS, f"{method} {url} hung"
    return response


async def _assert_unavailable(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    token = await _timed(http, "POST", "/oauth/token", **_password(auth))
    assert (token.status_code, token.json()) == (503, UNAVAILABLE)
    assert token.headers["cache-control"] == "no-store"
    introspect = await _timed(
        http, "POST", "/oauth/introspect", data={"token": "x"}, headers=auth
    )
    assert (introspect.status_code, introspect.json()) == (503, UNAVAILABLE)
    revoke = await _timed(
        http, "POST", "/oauth/revoke", data={"token": "x"}, headers=auth
    )
    assert (revoke.status_code, revoke.json()) == (503, UNAVAILABLE)
    ready = await _timed(http, "GET", "/readyz")
    assert (ready.status_code, ready.json()) == (503, READY_DOWN)
    assert (await _timed(http, "GET", "/healthz")).status_code == 200


async def _assert_recovers(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    deadline = time.monotonic() + 15
    while (await http.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
    response = await http.post("/oauth/token", **_password(auth))  # type: ignore[arg-type]
    assert response.status_code == 200, response.text


# "full": Postgres answers, but every slot is taken (FATAL 53300, "too many clients"), as when replicas'
# pools together outgrow max_connections. With the pool emptied each request needs a new connection, as
# when a pool grows under load. Once, the token endpoint's statements took it from the pool itself, where
# SQLAlchemy does not wrap the driver's error as the engine does: that was a 500.
@pytest.mark.parametrize(
    ("mode", "empty_pool"),
    [("refuse", False), ("blackhole", False), ("full", True)],
)
async def test_database_unreachable_gives_503_within_bound_then_recovers(
    proxied: tuple[FastAPI, TcpProxy], mode: Mode, empty_pool: bool
) -> None:
    app, proxy = proxied
    auth = await _setup(app.state.runtime)
    async with http_client(app) as http:
        assert (await http.post("/oauth/token", **_password(auth))).status_code == 200  # type: ignore[arg-type]
        proxy.mode = mode
        proxy.sever()
        if empty_pool:
            await app.state.runtime.engine.dispose()
        await _assert_unavailable(http, auth)
        proxy.mode = "forward"
        await _assert_recovers(http, auth)


async def test_refresh_cut_at_its_write_is_503_and_old_token_still_works(
    proxied: tuple[FastAPI, TcpProxy],
) -> None:
    app, proxy = proxied
    auth = await _setup(app.state.runtime)
    async with http_client(app) as http:
        first = (await http.post("/oauth/token", **_password(auth))).json()  # type: ignore[arg-type]
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
        }
        # The rotation is the refresh's only write: one statement, committed on its own (autocommit).
        proxy.cut_on = b"UPDATE refresh_tokens"
        response = await _timed(
            http, "POST", "/oauth/token", data=refresh, headers=auth
        )
        assert proxy.cuts == 1
        assert (response.status_code, response.json()) == (503, UNAVAILABLE)
        # Nothing was committed: the presented token was not rotated, so it still works (once). The cut
        # killed every pooled connection (the background loops' too), and the store's own statements renew
        # only the connection they were on: a client retrying after 503 meets at most one more per idle one.
        for _ in range(settings_pool_bound(app)):
            again = await http.post("/oauth/token", data=refresh, headers=auth)
            if again.status_code != 503:
                break
        assert again.status_code == 200, again.text
        assert again.json()["refresh_token"] != first["refresh_token"]
