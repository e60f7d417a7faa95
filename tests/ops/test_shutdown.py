"""Graceful shutdown: on SIGTERM an in-flight request completes, background loops stop, the pool closes, exit 0.

The server is a real ``oauth-service serve`` subprocess (uvicorn), as in the container image. The in-flight
request is a password grant whose argon2 hash was made deliberately expensive (about 1.5 seconds to verify).
"""

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import anyio
import argon2
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from oauth_service.app import create_app
from oauth_service.cli import main
from oauth_service.runtime import Runtime
from oauth_service.runtime.background import BackgroundTasks
from tests.conftest import make_settings
from tests.live_server import free_port

# About 1.5 s per verification: long enough to be surely in flight when SIGTERM arrives.
SLOW_ARGON2_TIME_COST = 100


def _make_password_slow(database: Path, password: str) -> None:
    """Replace the user's hash with an expensive one (verification uses the parameters stored in the hash)."""
    slow = argon2.PasswordHasher(
        time_cost=SLOW_ARGON2_TIME_COST, memory_cost=19_456, parallelism=1
    )
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE users SET password_hash = ?", (slow.hash(password),))
    conn.close()


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a setup command in-process (faster than a subprocess per command)."""
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(main, list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


async def _wait_ready(http: httpx.AsyncClient) -> None:
    with anyio.fail_after(30):
        for _ in range(1000):
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.1)  # waiting for the process to bind, not for an expiry


@pytest.mark.slow
async def test_sigterm_during_slow_request_completes_it_and_exits_zero(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    database = tmp_path / "shutdown.db"
    settings = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "OAUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OAUTH_METRICS_ENABLED": "false",
        "OAUTH_DOCS_ENABLED": "false",
        "OAUTH_KEY_RELOAD_INTERVAL": "0.2",  # the reload loop is busy when the signal arrives
        "OAUTH_PURGE_INTERVAL": "1",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    await _cli(capsys, "migrate")
    await _cli(capsys, "users", "create", "--email", "slow@example.com", "--password", "slow password 1")  # fmt: skip
    await anyio.to_thread.run_sync(_make_password_slow, database, "slow password 1")
    created = json.loads(
        await _cli(capsys, "clients", "create", "--name", "slow", "--grant-types", "password", "--client-id", "slow", "--json")
    )  # fmt: skip
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = await anyio.open_process(
            [sys.executable, "-m", "oauth_service", "serve", "--port", str(port)],
            env=dict(os.environ), stdout=sink, stderr=sink,
        )  # fmt: skip
        async with (
            server,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):
            try:
                await _wait_ready(http)
                finished: dict[str, float] = {}
                result: list[httpx.Response] = []

                async def slow_grant() -> None:
                    result.append(
                        await http.post(
                            "/oauth/token",
                            data={"grant_type": "password", "email": "slow@example.com", "password": "slow password 1"},
                            auth=("slow", created["client_secret"]),
                        )
                    )  # fmt: skip
                    finished["response"] = time.monotonic()

                async with anyio.create_task_group() as group:
                    group.start_soon(slow_grant)
                    # Let the request reach the argon2 verification (it then runs ~1.5 s more).
                    await anyio.sleep(0.5)
                    finished["sigterm"] = time.monotonic()
                    server.send_signal(signal.SIGTERM)
                with anyio.fail_after(20):
                    await server.wait()
                finished["exit"] = time.monotonic()
            finally:
                if server.returncode is None:
                    server.kill()
    output = log.read_text()
    assert server.returncode == 0, output
    assert finished["sigterm"] < finished["response"] <= finished["exit"]
    assert finished["exit"] - finished["sigterm"] < 20
    [response] = result
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["scope"]) == ("Bearer", "read")
    assert "Waiting for application shutdown." in output
    assert "Application shutdown complete." in output
    assert "Traceback" not in output
    assert "CancelledError" not in output


async def test_lifespan_exit_cancels_background_loops_before_disposing_the_pool(
    db_url: str, database: AsyncEngine
) -> None:
    application = create_app(
        make_settings(db_url, key_reload_interval=0.01, purge_interval=1)
    )
    async with application.router.lifespan_context(application):
        runtime: Runtime = application.state.runtime
        background: BackgroundTasks = application.state.background
        listener = background.listener is not None  # Postgres: the change listener
        assert background.running == 3 + listener  # + back-channel logout
        await anyio.sleep(0.05)  # let the reload loop run a few passes
    assert background.running == 0
    pool = runtime.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0


async def test_background_stop_cancels_a_pass_that_outlives_the_grace() -> None:
    stop = asyncio.Event()
    stuck = asyncio.create_task(
        asyncio.sleep(3600)
    )  # a pass that never yields to the stop flag
    tasks = BackgroundTasks([stuck], stop)
    with anyio.fail_after(5):
        await tasks.stop(grace=0.05)
    assert stop.is_set()
    assert stuck.cancelled()
    assert tasks.running == 0
