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
    await runtime.engine.dispose()
    broken = runtime.settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    )
    from oauth_service.db.engine import make_engine

    runtime.engine = make_engine(broken)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "error": "temporarily_unavailable",
        "error_description": "Database unreachable.",
    }
    await runtime.engine.dispose()
