"""``GET /metrics``: the Prometheus text format of ``observability.metrics``.

The route is mounted on the main app when ``OAUTH_METRICS_ENABLED`` is true and no separate
``OAUTH_METRICS_PORT`` is configured (then the CLI serves the metrics there, off the public listener).
"""

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from oauth_service.oauth.caching import NO_STORE
from oauth_service.observability import metrics
from oauth_service.settings import Settings

router = APIRouter(tags=["operations"])


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
