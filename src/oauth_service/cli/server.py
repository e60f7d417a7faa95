"""``oauth-service serve`` (uvicorn with the app factory) and ``oauth-service migrate`` (Alembic upgrade)."""

import asyncio
import importlib.util
import os
import signal
import tempfile
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn
from alembic.util import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.cli.common import (
    EXIT_FAILURE,
    fail,
    run_with_engine,
    settings_or_exit,
)
from oauth_service.cli.demo import demo, seed_and_report
from oauth_service.cli.keys import check_keys_or_exit
from oauth_service.cli.request_head import MAX_HEAD_BYTES
from oauth_service.db.engine import make_engine
from oauth_service.db.migrations import SchemaState, schema_state, upgrade
from oauth_service.observability.logs import configure_logging
from oauth_service.observability.metrics import (
    MULTIPROC_ENV,
    multiprocess_dir,
    prepare_multiprocess_dir,
    start_metrics_server,
)
from oauth_service.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 25
# An import string, not the class: uvicorn's worker processes load it themselves.
BOUNDED_HTTPTOOLS = "oauth_service.cli.request_head:BoundedHttpToolsProtocol"


def prepare_metrics(settings: Settings, *, host: str, workers: int) -> None:
    """Make /metrics add up every worker, and serve it on its own port when one is configured.

    Several workers need prometheus-client's multiprocess mode; when the operator did not choose a directory a
    private temporary one is used. The variable must be set before the workers start (they inherit it).
    """
    if not settings.metrics_enabled:
        return
    if workers > 1 and multiprocess_dir() is None:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="oauth-service-metrics-")
    prepare_multiprocess_dir()
    if settings.metrics_port is not None:
        # A port taken or not ours to bind ends with one line, like an invalid setting.
        try:
            start_metrics_server(settings.metrics_port, host)
        except OSError as exc:
            fail(
                f"cannot serve metrics on {host}:{settings.metrics_port} "
                f"(OAUTH_METRICS_PORT): {exc.strerror or exc}"
            )


def uvicorn_options(
    settings: Settings, *, host: str, port: int, workers: int
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``.

    Forwarded headers (``X-Forwarded-For``/``-Proto``) are honoured only from ``OAUTH_TRUSTED_PROXIES``; with
    none configured they are ignored, so a client cannot spoof its address or scheme.
    """
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    return {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "loop": "uvloop" if fast_loop else "asyncio",
        # httptools bounds nothing by itself: the subclass refuses a request head over MAX_HEAD_BYTES (431).
        "http": BOUNDED_HTTPTOOLS if fast_http else "h11",
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "log_level": settings.log_level.lower(),
        # Logging is configured once for the process (JSON, scrubbed); the middleware writes the access line.
        "log_config": None,
        "access_log": False,
        "server_header": False,
        # In-flight requests get this long to finish after SIGTERM (compose gives the container 30 s).
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


HASH_THREADS_ENV = "OAUTH_PASSWORD_HASH_THREADS"


def check_database_or_exit(settings: Settings) -> None:
    """Before serving: stop with one line (exit 1) when the database is unreachable or not migrated to head.

    Otherwise the app's start-up fails on its first query, after uvicorn has started, with a traceback.
    """

    async def read(_settings: Settings, engine: AsyncEngine) -> SchemaState:
        return await schema_state(engine)

    problem = run_with_engine(read).problem
    if problem is not None:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        fail(f"database {url} {problem}", EXIT_FAILURE)


def hash_threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """Each worker's share of the CPUs for password hashing (at least one)."""
    return max(1, (cpus or os.cpu_count() or 1) // workers)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the server (settings from the environment; invalid settings or an unmigrated database stop here)."""
    settings = settings_or_exit()
    check_database_or_exit(settings)
    check_keys_or_exit(settings)
    if settings.seed_demo:
        seed_and_report(settings, as_json=False)
    prepare_metrics(settings, host=host, workers=workers)
    # Worker processes start with one glibc malloc arena: per-thread arenas each kept a freed 19 MiB argon2
    # buffer, and workers grew after login bursts (docs/performance.md). Set it to override.
    os.environ.setdefault("MALLOC_ARENA_MAX", "1")
    # The workers share the cores: each hashes at most its share of them at once (OAUTH_PASSWORD_HASH_THREADS).
    os.environ.setdefault(HASH_THREADS_ENV, str(hash_threads_per_worker(workers)))
    # uvicorn finishes in-flight requests and the lifespan on SIGTERM, then re-raises the signal; ending with
    # status 0 tells the supervisor (Docker, Kubernetes, systemd) that this was a clean, requested stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    restore_logging = configure_logging(
        settings.log_level,
        flush_interval=settings.log_flush_interval,
        log_format=settings.log_format,
    )
    try:
        uvicorn.run(
            "oauth_service.app:create_app",
            **uvicorn_options(settings, host=host, port=port, workers=workers),
        )
    finally:
        restore_logging()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (works from a checkout or an installed wheel)."""
    settings = settings_or_exit()

    async def run() -> None:
        engine = make_engine(settings)
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except CommandError as exc:
        fail(f"migration failed: {exc}")
    except (DBAPIError, OSError) as exc:
        fail(f"migration failed: {str(exc).strip().splitlines()[0]}", EXIT_FAILURE)
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    typer.echo(f"database {url} migrated to {revision}")


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``migrate`` and ``demo`` to the root command."""
    app.command("serve")(serve)
    app.command("migrate")(migrate)
    app.command("demo")(demo)
