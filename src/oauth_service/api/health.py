"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: the database answers)."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from oauth_service.api.deps import RuntimeDep

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    """Answer without touching the database."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers",
    responses={503: {"description": "Database unreachable"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Run ``SELECT 1`` within a bounded time."""
    try:
        async with (
            asyncio.timeout(READY_TIMEOUT_SECONDS),
            runtime.engine.connect() as conn,
        ):
            await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {
                "status": "unavailable",
                "error": "temporarily_unavailable",
                "error_description": "Database unreachable.",
            },
            status_code=503,
            headers={"Cache-Control": "no-store"},
        )
    return JSONResponse(
        {"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"}
    )
