"""``RouteTable``: routes declared like an ``APIRouter``'s, added to a router by the public ``add_api_route``."""

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from oauth_service.api.request_route import RequestRoute
from oauth_service.api.route_table import RouteTable


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


def _guard() -> str:
    return "guarded"


async def guarded(value: Annotated[str, Depends(_guard)]) -> dict[str, str]:
    return {"value": value}


def _table() -> RouteTable:
    table = RouteTable(prefix="/v1", tags=["sample"], route_class=RequestRoute)
    table.post("/echo", summary="Echo", tags=["extra"])(echo)
    table.add_api_route(
        "/guarded", guarded, methods=["GET"], route_class_override=APIRoute
    )
    return table


def test_routes_get_the_tables_prefix_tags_and_route_class_in_order() -> None:
    app = FastAPI()
    _table().add_to(app.router)
    added = [route for route in app.router.routes if isinstance(route, APIRoute)]
    assert [
        (route.path, route.methods, route.tags, type(route)) for route in added
    ] == [
        ("/v1/echo", {"POST"}, ["sample", "extra"], RequestRoute),
        ("/v1/guarded", {"GET"}, ["sample"], APIRoute),
    ]
    assert added[0].summary == "Echo"


async def test_routes_added_to_the_app_are_served_and_overridable() -> None:
    app = FastAPI()
    _table().add_to(app.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/v1/echo")).json() == {"path": "/v1/echo"}
        assert (await client.get("/v1/guarded")).json() == {"value": "guarded"}

        def refuse() -> str:
            raise HTTPException(status_code=418)

        app.dependency_overrides[_guard] = refuse
        assert (await client.get("/v1/guarded")).status_code == 418


def test_the_same_table_builds_several_apps() -> None:
    table = _table()
    first, second = FastAPI(), FastAPI()
    table.add_to(first.router)
    table.add_to(second.router)
    assert first.openapi()["paths"] == second.openapi()["paths"]


def test_a_misspelt_option_fails_when_declared() -> None:
    with pytest.raises(TypeError):
        RouteTable().get("/x", sumary="typo")(echo)


@pytest.mark.parametrize("prefix", ["v1", "/v1/"])
def test_a_malformed_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        RouteTable(prefix=prefix)
