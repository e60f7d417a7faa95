"""The database pool gauges of the metrics (``oauth_db_pool_checked_out``, ``oauth_db_pool_size``).

SQLAlchemy's pool events keep them up to date; the app's lifespan instruments its engine at start-up and
undoes it at shutdown.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.observability import metrics

POOL_LABEL = "primary"


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
