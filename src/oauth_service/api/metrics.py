"""``GET /metrics`` (Prometheus text format) and the database pool instrumentation behind its pool gauges.

The route is mounted on the main app when ``OAUTH_METRICS_ENABLED`` is true and no separate
``OAUTH_METRICS_PORT`` is configured (then the CLI serves the metrics there, off the public listener).
"""

from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service import metrics
from oauth_service.oauth.caching import NO_STORE
from oauth_service.settings import Settings

router = APIRouter(tags=["operations"])

POOL_LABEL = "primary"


@router.get("/metrics", include_in_schema=False)
async def get_metrics() -> Response:
    """Expose every metric; multiprocess aggregation reads files, so it runs in a worker thread."""
    body = await anyio.to_thread.run_sync(metrics.render)
    return Response(
        body,
        media_type=metrics.CONTENT_TYPE,
        headers=NO_STORE,
    )


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """Mount ``/metrics`` unless metrics are disabled or served on their own port."""
    if settings.metrics_enabled and settings.metrics_port is None:
        app.include_router(router)


def instrument_pool(engine: AsyncEngine) -> Callable[[], None]:
    """Track checked-out connections and pool size; returns the function that undoes it at shutdown.

    Checkout/checkin events keep the gauge exact in every worker, which a scrape-time read of one worker's
    pool could not do when several workers share a scrape.
    """
    sync_engine = engine.sync_engine
    size_of = getattr(sync_engine.pool, "size", None)
    size = size_of() if callable(size_of) else 0

    def on_checkout(*_args: Any) -> None:
        metrics.pool_checked_out(POOL_LABEL, 1)

    def on_checkin(*_args: Any) -> None:
        metrics.pool_checked_out(POOL_LABEL, -1)

    event.listen(sync_engine, "checkout", on_checkout)
    event.listen(sync_engine, "checkin", on_checkin)
    metrics.pool_size(POOL_LABEL, size)
    metrics.pool_checked_out(
        POOL_LABEL, 0
    )  # the series exists before the first checkout

    def stop() -> None:
        event.remove(sync_engine, "checkout", on_checkout)
        event.remove(sync_engine, "checkin", on_checkin)
        metrics.pool_size(POOL_LABEL, -size)
        metrics.mark_process_dead()

    return stop
