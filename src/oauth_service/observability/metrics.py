"""Prometheus metrics of the service, safe with several worker processes.

Metrics: HTTP requests by method, route template and status; request latency by route template; OAuth error
responses by ``error`` code (RFC 6749 §5.2); tokens issued by grant type; back-channel logouts by outcome; database pool connections checked out
and pool size. When ``PROMETHEUS_MULTIPROC_DIR`` is set (required with more than one worker), every process writes
its samples to files there and a scrape aggregates them (prometheus-client's multiprocess mode); the directory
must be emptied before the workers start (``prepare_multiprocess_dir()``).

The metric objects are built on first use, not at import time, so importing this module never touches the disk.
Callers use the ``record_*`` functions; nothing else needs the objects.
"""

import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds; spans a cached JWKS read (~1 ms) to an argon2 verification under load (~0.5 s) and a slow DB.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class _Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    oauth_errors: Counter
    tokens_issued: Counter
    backchannel_logouts: Counter
    pool_checked_out: Gauge
    pool_size: Gauge


@cache
def _metrics() -> _Metrics:
    registry = CollectorRegistry(auto_describe=True)
    return _Metrics(
        registry=registry,
        requests=Counter(
            "oauth_http_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "oauth_http_request_duration_seconds",
            "Time to serve a request, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        oauth_errors=Counter(
            "oauth_errors",
            "OAuth error responses, by error code.",
            ["error"],
            registry=registry,
        ),
        tokens_issued=Counter(
            "oauth_tokens_issued",
            "Access tokens issued, by grant type.",
            ["grant_type"],
            registry=registry,
        ),
        backchannel_logouts=Counter(
            "oauth_backchannel_logout",
            "Back-channel logout attempts, by outcome: delivered, retry (will be tried again), failed (given up).",
            ["outcome"],
            registry=registry,
        ),
        pool_checked_out=Gauge(
            "oauth_db_pool_checked_out",
            "Database connections currently checked out of the pool (summed over live workers).",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        ),
        pool_size=Gauge(
            "oauth_db_pool_size",
            "Configured size of the database pool (summed over live workers).",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        ),
    )


# The labelled series of a request, looked up once per label set (``labels()`` takes a lock and builds
# tuples on every call). Label sets are bounded: route templates (``unmatched`` for 404s), methods, statuses.
@cache
def _request_series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    m = _metrics()
    return m.requests.labels(method, route, str(status)), m.latency.labels(route)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one served request and observe its latency (called by the request middleware)."""
    count, latency = _request_series(method, route, status)
    count.inc()
    latency.observe(seconds)


# Bounded: error codes come from the ``OAuthError`` classes, never from the request.
@cache
def _oauth_error_series(error: str) -> Counter:
    return _metrics().oauth_errors.labels(error)


def record_oauth_error(error: str) -> None:
    """Count one OAuth error response with code ``error`` (the error renderer, the body-size refusals)."""
    _oauth_error_series(error).inc()


# Bounded: only grant types that succeeded reach it (an unknown one is ``unsupported_grant_type`` first).
@cache
def _tokens_issued_series(grant_type: str) -> Counter:
    return _metrics().tokens_issued.labels(grant_type)


def record_token_issued(grant_type: str) -> None:
    """Count one access token issued through ``grant_type``, once it is committed.

    Called by the token endpoint (the four token grants) and by the authorization endpoint's implicit response
    (``grant_type="implicit"``). The token endpoint is a hot path, so the labelled series is looked up once
    per grant type, as the request series are.
    """
    _tokens_issued_series(grant_type).inc()


def record_backchannel_logout(outcome: str) -> None:
    """Count one back-channel logout attempt: ``delivered``, ``retry`` or ``failed`` (given up)."""
    _metrics().backchannel_logouts.labels(outcome).inc()


def pool_checked_out(database: str, delta: int) -> None:
    """Move the checked-out connections gauge by ``delta`` (pool checkout: +1, checkin: -1)."""
    _metrics().pool_checked_out.labels(database).inc(delta)


def pool_size(database: str, delta: int) -> None:
    """Move the pool size gauge by ``delta`` (a pool opening: +size, closing: -size)."""
    _metrics().pool_size.labels(database).inc(delta)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multi-worker mode is on."""
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry() -> CollectorRegistry:
    """The registry a scrape reads: every worker's files in multiprocess mode, else this process's metrics."""
    if multiprocess_dir() is None:
        return _metrics().registry
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render() -> bytes:
    """The metrics in Prometheus text format (blocking file reads in multiprocess mode: call off the loop)."""
    return generate_latest(scrape_registry())


def prepare_multiprocess_dir() -> None:
    """Create the multiprocess directory and delete stale samples; call once before workers start."""
    directory = multiprocess_dir()
    if directory is None:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def mark_process_dead() -> None:
    """Drop this process's live gauges from the aggregate (called when a worker shuts down)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def start_metrics_server(port: int, host: str) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on a separate port from a daemon thread (``OAUTH_METRICS_PORT``).

    With several workers, call it in the supervising process with ``PROMETHEUS_MULTIPROC_DIR`` set: it reads
    every worker's files at each scrape.
    """
    if multiprocess_dir() is None:
        return start_http_server(port, addr=host, registry=_metrics().registry)
    return start_http_server(port, addr=host, registry=scrape_registry())
