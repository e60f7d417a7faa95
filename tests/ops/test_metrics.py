"""Prometheus metrics, each advertised series moved by the real request path and read back from ``/metrics``.

Requests and latency, OAuth error responses, tokens issued by every grant (implicit included), and the pool
gauges; ``/metrics`` disabled is a 404; with ``OAUTH_METRICS_PORT`` a live ``oauth-service serve`` answers the
metrics on that port only, one worker or several (multiprocess aggregation), and a taken port stops it with one
line.
"""

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import typer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.cli.server import prepare_metrics
from oauth_service.db.engine import make_engine
from oauth_service.observability.metrics import MULTIPROC_ENV
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    fragment_of,
    new_pkce,
    query_of,
)
from tests.conftest import ISSUER, make_settings
from tests.factories import basic_auth, make_client, make_user, queue_pool
from tests.live_server import free_port
from tests.ops.cli_runner import cli_runner
from tests.ops.promtext import sample

NOT_FOUND = {"error": "not_found", "error_description": "No such resource."}
TOKEN = "/oauth/token"
ISSUED = "oauth_tokens_issued_total"
ERRORS = "oauth_errors_total"
CHECKED_OUT = "oauth_db_pool_checked_out"
POOL_SIZE = "oauth_db_pool_size"
PRIMARY = {"database": "primary"}


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["cache-control"] == "no-store"
    return response.text


def issued(text: str) -> dict[str, float]:
    """Tokens issued so far, by grant type."""
    grants = (
        "authorization_code",
        "client_credentials",
        "implicit",
        "password",
        "refresh_token",
    )
    return {grant: sample(text, ISSUED, {"grant_type": grant}) for grant in grants}


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The series that changed, with their change."""
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


async def test_metrics_after_requests_count_them_by_route_and_status(
    client: httpx.AsyncClient,
) -> None:
    ok = {"method": "GET", "route": "/healthz", "status": "200"}
    missing = {"method": "GET", "route": "unmatched", "status": "404"}
    before = await scrape(client)
    for _ in range(3):
        await client.get("/healthz")
    await client.get("/nowhere/1")
    await client.get("/nowhere/2")
    after = await scrape(client)
    name = "oauth_http_requests_total"
    assert sample(after, name, ok) - sample(before, name, ok) == 3
    assert sample(after, name, missing) - sample(before, name, missing) == 2
    count = "oauth_http_request_duration_seconds_count"
    assert (
        sample(after, count, {"route": "/healthz"})
        - sample(before, count, {"route": "/healthz"})
        == 3
    )
    assert "/nowhere" not in after


async def test_metrics_count_oauth_errors_of_real_requests_by_code(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await make_client(
        runtime, grant_types=("client_credentials", "refresh_token", "password")
    )
    assert secret is not None
    auth = basic_auth(app_client.client_id, secret)
    codes = (
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_token",
        "invalid_request",
    )
    before = {
        code: sample(await scrape(client), ERRORS, {"error": code}) for code in codes
    }
    answers = [
        await client.post(
            TOKEN,
            data={"grant_type": "client_credentials"},
            headers=basic_auth(app_client.client_id, "wrong"),
        ),
        await client.post(
            TOKEN,
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            headers=auth,
        ),
        await client.post(TOKEN, data={"grant_type": "bogus"}, headers=auth),
        await client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-jwt"}),
        # Refused by the body limit in the middleware, before any route runs.
        await client.post(TOKEN, content=b"x" * 70_000, headers=auth),
    ]
    assert [r.status_code for r in answers] == [401, 400, 400, 401, 413]
    text = await scrape(client)
    after = {code: sample(text, ERRORS, {"error": code}) for code in codes}
    assert {code: after[code] - before[code] for code in codes} == dict.fromkeys(
        codes, 1
    )


async def test_metrics_count_tokens_issued_by_each_token_endpoint_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, password = await make_user(runtime)
    grants = ("client_credentials", "password", "refresh_token", "authorization_code")
    app_client, secret = await make_client(
        runtime, grant_types=grants, redirect_uris=(CALLBACK,), is_first_party=True
    )
    assert secret is not None
    auth = basic_auth(app_client.client_id, secret)

    async def grant(**form: str) -> dict[str, Any]:
        response = await client.post(TOKEN, data=form, headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    start = issued(await scrape(client))
    await grant(grant_type="client_credentials")
    assert moved(start, issued(await scrape(client))) == {"client_credentials": 1}
    start = issued(await scrape(client))
    body = await grant(grant_type="password", email=user.email, password=password)
    assert moved(start, issued(await scrape(client))) == {"password": 1}
    start = issued(await scrape(client))
    await grant(grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert moved(start, issued(await scrape(client))) == {"refresh_token": 1}
    verifier, challenge = new_pkce()
    url = authorize_url(
        response_type="code",
        client_id=app_client.client_id,
        redirect_uri=CALLBACK,
        scope="read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    redirect = await authorize_through_pages(
        client, url, email=user.email, password=password
    )
    code = query_of(redirect.headers["location"])["code"]
    start = issued(await scrape(client))
    await grant(
        grant_type="authorization_code",
        code=code,
        redirect_uri=CALLBACK,
        code_verifier=verifier,
    )
    assert moved(start, issued(await scrape(client))) == {"authorization_code": 1}


async def test_metrics_count_tokens_of_the_implicit_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, password = await make_user(runtime)
    await make_client(
        runtime,
        grant_types=("implicit",),
        redirect_uris=(CALLBACK,),
        is_public=True,
        client_id="spa",
    )
    url = authorize_url(
        response_type="token", client_id="spa", redirect_uri=CALLBACK, scope="read"
    )
    start = issued(await scrape(client))
    response = await authorize_through_pages(
        client, url, email=user.email, password=password
    )
    assert response.status_code == 303
    assert "access_token" in fragment_of(response.headers["location"])
    assert moved(start, issued(await scrape(client))) == {"implicit": 1}


async def test_metrics_failed_grants_and_denied_implicit_count_no_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, password = await make_user(runtime)
    app_client, secret = await make_client(
        runtime,
        grant_types=("password", "implicit"),
        redirect_uris=(CALLBACK,),
        is_public=False,
    )
    assert secret is not None
    start = issued(await scrape(client))
    failed = await client.post(
        TOKEN,
        data={"grant_type": "password", "email": user.email, "password": "wrong"},
        headers=basic_auth(app_client.client_id, secret),
    )
    assert failed.status_code == 400
    url = authorize_url(
        response_type="token",
        client_id=app_client.client_id,
        redirect_uri=CALLBACK,
        scope="read",
    )
    denied = await authorize_through_pages(
        client, url, email=user.email, password=password, decision="deny"
    )
    assert fragment_of(denied.headers["location"])["error"] == "access_denied"
    assert moved(start, issued(await scrape(client))) == {}


async def test_metrics_pool_checked_out_counts_a_request_holding_a_connection(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    user, password = await make_user(runtime)
    app_client, secret = await make_client(
        runtime, grant_types=("password", "refresh_token")
    )
    assert secret is not None
    auth = basic_auth(app_client.client_id, secret)
    first = await client.post(
        TOKEN,
        data={"grant_type": "password", "email": user.email, "password": password},
        headers=auth,
    )
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": first.json()["refresh_token"],
    }
    idle = sample(await scrape(client), CHECKED_OUT, PRIMARY)
    # The test's own engine is not instrumented. Its open write holds the refresh token's row (Postgres) or
    # the database's write lock (SQLite), so the refresh below waits with its connection checked out.
    async with database.begin() as conn:
        await conn.execute(text("UPDATE refresh_tokens SET scope = scope"))
        pending = asyncio.create_task(client.post(TOKEN, data=refresh, headers=auth))
        busy = idle
        for _ in range(
            400
        ):  # polling for the request to block, at most 4 s (under the 5 s lock timeouts)
            busy = sample(await scrape(client), CHECKED_OUT, PRIMARY)
            if busy != idle:
                break
            await asyncio.sleep(0.01)
        assert busy - idle == 1
    assert (await pending).status_code == 200
    assert sample(await scrape(client), CHECKED_OUT, PRIMARY) == idle


async def test_metrics_pool_size_follows_an_app_starting_and_stopping(
    client: httpx.AsyncClient, db_url: str
) -> None:
    before = sample(await scrape(client), POOL_SIZE, PRIMARY)
    other = create_app(make_settings(db_url, db_pool_size=7))
    async with other.router.lifespan_context(other):
        running = sample(await scrape(client), POOL_SIZE, PRIMARY)
        size = queue_pool(
            other.state.runtime
        ).size()  # 7 on Postgres; SQLite keeps its default
    stopped = sample(await scrape(client), POOL_SIZE, PRIMARY)
    assert (running - before, stopped) == (size, before)


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            return await http.get(path)


async def test_metrics_disabled_is_404(db_url: str, database: AsyncEngine) -> None:
    response = await _get(
        create_app(make_settings(db_url, metrics_enabled=False)), "/metrics"
    )
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


async def test_metrics_on_separate_port_is_404_on_main_app(
    db_url: str, database: AsyncEngine
) -> None:
    app = create_app(make_settings(db_url, metrics_port=9464))
    response = await _get(app, "/metrics")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- a live ``oauth-service serve`` with OAUTH_METRICS_PORT -----------------------------------------------


@asynccontextmanager
async def _serve(
    env: dict[str, str], port: int, workers: int, log: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``oauth-service serve`` until the block ends; yield a client of its public listener, once ready."""
    command = [sys.executable, "-m", "oauth_service", "serve", "--port", str(port), "--workers", str(workers)]  # fmt: skip
    with log.open("wb") as sink:
        server = await anyio.open_process(command, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    async with server, httpx.AsyncClient(base_url=base, timeout=10) as http:
        try:
            with anyio.fail_after(60):
                while server.returncode is None:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)  # waiting for the first worker to bind
            if server.returncode is not None:
                raise RuntimeError((await anyio.Path(log).read_text())[-4000:])
            yield http
        finally:
            if server.returncode is None:
                server.terminate()
            with anyio.fail_after(30):
                await server.wait()


async def _all_workers_started(url: str, expected_pool_size: int) -> None:
    """Wait until every worker counts in the pool gauge (``/readyz`` answers as soon as one is up)."""
    async with httpx.AsyncClient(timeout=10) as http:
        live = 0.0
        for _ in range(300):
            live = sample((await http.get(url)).text, POOL_SIZE, PRIMARY)
            if live == expected_pool_size:
                return
            await anyio.sleep(0.1)  # polling for the other workers' start-up
    raise AssertionError(f"pool size {live}, expected {expected_pool_size}")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
async def test_serve_with_metrics_port_serves_metrics_there_and_not_on_the_public_port(
    workers: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, metrics_port = free_port(), free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    cli = cli_runner(url, capsys, monkeypatch)
    engine = make_engine(make_settings(url))
    pool_size = engine.sync_engine.pool.size()  # type: ignore[attr-defined]
    await engine.dispose()
    # The first key made here: the workers do not race to create it.
    for argv in (("migrate",), ("keys", "ensure")):
        assert (await cli(*argv))[0] == 0
    code, out, err = await cli(
        "clients", "create", "--name", "m", "--grant-types", "client_credentials",
        "--client-id", "m", "--json",
    )  # fmt: skip
    assert code == 0, err
    secret = json.loads(out)["client_secret"]
    env = {
        **os.environ,
        "OAUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OAUTH_METRICS_PORT": str(metrics_port),
        "OAUTH_DOCS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop(MULTIPROC_ENV, None)
    # Samples left by an earlier run: serve must clear them before the workers start.
    stale = tmp_path / "multiproc" / "counter_1.db"
    if workers > 1:
        stale.parent.mkdir()
        stale.write_bytes(b"")
        env[MULTIPROC_ENV] = str(stale.parent)
    scrape_url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with _serve(env, port, workers, tmp_path / "server.log") as http:
        await _all_workers_started(scrape_url, pool_size * workers)
        public = await http.get("/metrics")
        assert (public.status_code, public.json()) == (404, NOT_FOUND)
        for _ in range(6):
            token = await http.post(
                TOKEN,
                data={"grant_type": "client_credentials"},
                auth=("m", secret),
                headers={"Connection": "close"},  # spread over the workers
            )
            assert token.status_code == 200, token.text
        scraped = await http.get(scrape_url)
    assert scraped.status_code == 200
    assert sample(scraped.text, ISSUED, {"grant_type": "client_credentials"}) == 6
    ok = {"method": "POST", "route": TOKEN, "status": "200"}
    assert sample(scraped.text, "oauth_http_requests_total", ok) == 6
    assert not stale.exists()


def test_serve_with_metrics_port_taken_stops_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings("sqlite+aiosqlite:///unused.db", metrics_port=port)
        with pytest.raises(typer.Exit) as exited:
            prepare_metrics(settings, host="127.0.0.1", workers=1)
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == (
        f"error: cannot serve metrics on 127.0.0.1:{port} (OAUTH_METRICS_PORT): "
        "Address already in use\n"
    )


def test_serve_with_metrics_disabled_opens_no_metrics_listener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(
            "sqlite+aiosqlite:///unused.db", metrics_enabled=False, metrics_port=port
        )
        # Binding would fail on the taken port: returning shows that nothing tried.
        prepare_metrics(settings, host="127.0.0.1", workers=2)
    assert MULTIPROC_ENV not in os.environ
