"""Liveness and readiness endpoints."""

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.runtime import Runtime


async def test_healthz_answers_without_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_with_database_up_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_readyz_with_database_down_is_503(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    broken = runtime.settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    )
    from oauth_service.db.engine import make_engine

    # Swap the engine for one that cannot connect, then put the real one back so the lifespan (and any
    # background task still holding the sessionmaker) closes its connections cleanly.
    original, runtime.engine = runtime.engine, make_engine(broken)
    try:
        response = await client.get("/readyz")
    finally:
        await runtime.engine.dispose()
        runtime.engine = original
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "error": "temporarily_unavailable",
        "error_description": "Database unreachable.",
    }
    assert response.headers["cache-control"] == "no-store"
