"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: the database answers)."""

import asyncio
from typing import Literal

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from oauth_service.api.deps import RuntimeDep
from oauth_service.api.json_body import JsonBody
from oauth_service.api.request_route import RequestRoute
from oauth_service.api.route_table import RouteTable
from oauth_service.oauth.caching import NO_STORE

routes = RouteTable(tags=["health"])

READY_TIMEOUT_SECONDS = 2.0


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"]


async def healthz(_request: Request) -> Response:
    """Answer without touching the database."""
    return JsonBody({"status": "ok"})


# Probed often, by every gateway and orchestrator, also while logins saturate the CPUs: called without
# FastAPI's dependency solving (``RequestRoute``), like the token endpoint; ``Liveness`` documents the body.
routes.add_api_route(
    "/healthz",
    healthz,
    methods=["GET"],
    summary="Liveness: the process is up",
    response_model=Liveness,
    route_class_override=RequestRoute,
)


@routes.get(
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
            headers=NO_STORE,
        )
    return JSONResponse({"status": "ok", "database": "ok"}, headers=NO_STORE)
