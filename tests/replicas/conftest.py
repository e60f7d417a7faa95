"""Two real uvicorn server processes on one Postgres database and one Redis (issue 6, multi-replica correctness).

Postgres only: the ``sqlite`` parameter of ``db_url`` skips (CI sets ``TEST_DATABASE_URL``). Each replica is a
separate ``python -m uvicorn --factory`` process configured through the environment, as in production. Every
wait is bounded and the processes are always killed.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ISSUER
from tests.live_server import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Replica:
    """One running server process."""

    name: str
    url: str
    process: "subprocess.Popen[bytes]"
    log: Path


def _start(name: str, env: dict[str, str], logs: Path) -> Replica:
    port = free_port()
    log = logs / f"{name}.log"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "oauth_service.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Replica(name, f"http://127.0.0.1:{port}", process, log)


def _wait_ready(replica: Replica) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise RuntimeError(
                f"{replica.name} exited:\n{replica.log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{replica.name} not ready in {START_TIMEOUT}s")


def _stop(replica: Replica) -> None:
    replica.process.terminate()
    try:
        replica.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait(timeout=10)


@pytest.fixture(scope="module")
def throttle_prefix() -> str:
    """This run's Redis namespace: parallel runs never share counters."""
    return f"replicas-{uuid.uuid4().hex}"


@contextmanager
def running_replicas(
    db_url: str, throttle_prefix: str, logs: Path, **overrides: str
) -> Iterator[tuple[Replica, Replica]]:
    """Start replicas A and B of one deployment (same database, Redis, issuer and secret); ``overrides`` are
    further environment variables."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "OAUTH_ISSUER": ISSUER,
        "OAUTH_SECRET_KEY": uuid.uuid4().hex * 2,
        "OAUTH_THROTTLE_KEY_PREFIX": throttle_prefix,
        "OAUTH_MAX_FAILED_LOGINS": "3",
        "OAUTH_COOKIE_SECURE": "false",
        "OAUTH_REVOCATION_CACHE_TTL": "0",
        "OAUTH_CLIENT_CACHE_TTL": "0",
        "OAUTH_METRICS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            started.append(_start(name, env, logs))
        for replica in started:
            _wait_ready(replica)
        yield started[0], started[1]
    finally:
        for replica in started:
            _stop(replica)


@pytest.fixture(scope="module")
def replicas(
    db_url: str,
    migrated_engine: AsyncEngine,
    throttle_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, Replica]]:
    """Replicas A and B of one deployment, with no cache: every process reads the database."""
    logs = tmp_path_factory.mktemp("replicas")
    with running_replicas(db_url, throttle_prefix, logs) as pair:
        yield pair


@pytest.fixture
async def http_a(replicas: tuple[Replica, Replica]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of replica A (bounded timeouts)."""
    async with httpx.AsyncClient(base_url=replicas[0].url, timeout=15.0) as http:
        yield http


@pytest.fixture
async def http_b(replicas: tuple[Replica, Replica]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of replica B (bounded timeouts)."""
    async with httpx.AsyncClient(base_url=replicas[1].url, timeout=15.0) as http:
        yield http
