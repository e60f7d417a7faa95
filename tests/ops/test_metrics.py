"""Prometheus metrics: request, error, token and pool series; disabled → 404; separate port; multiprocess."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service import metrics
from oauth_service.app import create_app
from oauth_service.oauth.errors import InvalidGrantError
from tests.conftest import ISSUER, make_settings
from tests.ops.promtext import sample

NOT_FOUND = {"error": "not_found", "error_description": "No such resource."}


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["cache-control"] == "no-store"
    return response.text


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


async def test_metrics_count_oauth_errors_by_code(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def fail() -> None:
        raise InvalidGrantError("The code is invalid.")

    app.add_api_route("/test/fail", fail, methods=["POST"])
    labels = {"error": "invalid_grant"}
    before = sample(await scrape(client), "oauth_errors_total", labels)
    response = await client.post("/test/fail")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The code is invalid.",
    }
    after = sample(await scrape(client), "oauth_errors_total", labels)
    assert after - before == 1


async def test_metrics_count_tokens_issued_by_grant(client: httpx.AsyncClient) -> None:
    labels = {"grant_type": "client_credentials"}
    before = sample(await scrape(client), "oauth_tokens_issued_total", labels)
    metrics.record_token_issued("client_credentials")
    metrics.record_token_issued("client_credentials")
    after = sample(await scrape(client), "oauth_tokens_issued_total", labels)
    assert after - before == 2


async def test_metrics_pool_gauges_follow_checkouts(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    labels = {"database": "primary"}
    idle = await scrape(client)
    engine = app.state.runtime.engine
    async with engine.connect():
        busy = await scrape(client)
    assert (
        sample(busy, "oauth_db_pool_checked_out", labels)
        - sample(idle, "oauth_db_pool_checked_out", labels)
        == 1
    )
    assert sample(idle, "oauth_db_pool_size", labels) >= engine.sync_engine.pool.size()
    await client.get("/readyz")
    assert sample(await scrape(client), "oauth_db_pool_checked_out", labels) == sample(
        idle, "oauth_db_pool_checked_out", labels
    )


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


def test_metrics_server_on_its_own_port_serves_metrics() -> None:
    metrics.record_token_issued("password")
    server, thread = metrics.start_metrics_server(0, "127.0.0.1")
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert response.status_code == 200
    assert (
        sample(response.text, "oauth_tokens_issued_total", {"grant_type": "password"})
        >= 1
    )


_WORKER = """
import sys
from oauth_service import metrics
metrics.record_token_issued("password")
metrics.record_request("GET", "/healthz", 200, 0.01)
metrics.pool_size("primary", 5)
if sys.argv[1] == "dies":
    metrics.mark_process_dead()
"""


def _python(code: str, directory: Path, *args: str) -> str:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_metrics_in_multiprocess_mode_aggregate_every_worker(tmp_path: Path) -> None:
    (tmp_path / "stale.db").write_bytes(b"")
    _python(
        "from oauth_service import metrics; metrics.prepare_multiprocess_dir()",
        tmp_path,
    )
    assert not (tmp_path / "stale.db").exists()
    _python(_WORKER, tmp_path, "lives")
    _python(_WORKER, tmp_path, "lives")
    _python(_WORKER, tmp_path, "dies")
    text = _python(
        "import sys; from oauth_service import metrics; sys.stdout.write(metrics.render().decode())",
        tmp_path,
    )
    assert sample(text, "oauth_tokens_issued_total", {"grant_type": "password"}) == 3
    assert (
        sample(
            text,
            "oauth_http_requests_total",
            {"method": "GET", "route": "/healthz", "status": "200"},
        )
        == 3
    )
    # The gauge sums live workers only: the one that shut down no longer counts.
    assert sample(text, "oauth_db_pool_size", {"database": "primary"}) == 10
