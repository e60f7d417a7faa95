"""Route registration: the hot routes sit first on the app itself, documented and overridable as before.

``app.add_routes_first`` adds the routes the token, introspection, UserInfo, /api/v1 and health (/healthz, /readyz)
modules declare in a ``RouteTable`` to the app's own router with ``add_api_route``, ahead of everything else,
instead of including routers (see its docstring).
"""

from pathlib import Path
from typing import Any, get_args

import httpx
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.routing import APIRoute

from oauth_service.api import health, introspect, resources
from oauth_service.api.bearer import ReadTokenDep
from oauth_service.api.request_route import RequestRoute
from oauth_service.api.token import routes as token_routes
from oauth_service.api.userinfo import routes as userinfo_routes
from oauth_service.app import create_app
from tests.conftest import make_settings

HOT_TABLES = (
    token_routes,
    introspect.routes,
    userinfo_routes,
    resources.routes,
    health.routes,
)
HOT_SPECS = [spec for table in HOT_TABLES for spec in table.specs]


def _app(tmp_path: Path) -> FastAPI:
    return create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))


def test_hot_routes_are_the_apps_first_routes(tmp_path: Path) -> None:
    expected = [(spec.path, set(spec.options["methods"])) for spec in HOT_SPECS]
    first = _app(tmp_path).router.routes[: len(expected)]
    assert all(isinstance(route, APIRoute) for route in first)
    assert [(route.path, route.methods) for route in first] == expected  # type: ignore[attr-defined]


def test_the_busiest_endpoints_skip_fastapis_request_handler(tmp_path: Path) -> None:
    kinds = {
        route.path: type(route)
        for route in _app(tmp_path).router.routes
        if isinstance(route, APIRoute)
    }
    # /healthz too: gateways probe it often, also while logins saturate the CPUs.
    for path in (
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/userinfo",
        "/api/v1/me",
        "/healthz",
    ):
        assert kinds[path] is RequestRoute, path
    assert (
        kinds["/api/v1/notes"] is APIRoute
    )  # routes with dependencies keep FastAPI's handler


def test_hot_routes_are_documented_as_ordinary_included_routes(tmp_path: Path) -> None:
    """The same declarations on an included router of ordinary routes give the same OpenAPI entries."""
    router = APIRouter()
    for spec in HOT_SPECS:
        options = {**spec.options, "route_class_override": APIRoute}
        router.add_api_route(spec.path, spec.endpoint, **options)
    reference = FastAPI()
    reference.include_router(router)
    expected: dict[str, Any] = reference.openapi()
    schema = _app(tmp_path).openapi()
    paths = list(expected["paths"])
    assert list(schema["paths"])[: len(paths)] == paths
    assert {path: schema["paths"][path] for path in paths} == expected["paths"]
    for name, component in expected["components"]["schemas"].items():
        assert schema["components"]["schemas"][name] == component


async def test_dependency_overrides_reach_the_hot_routes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    def refuse() -> None:
        raise HTTPException(status_code=418)

    app.dependency_overrides[get_args(ReadTokenDep)[1].dependency] = refuse
    try:
        assert (await client.get("/api/v1/notes")).status_code == 418
    finally:
        app.dependency_overrides.clear()


async def test_liveness_answer_is_documented_and_served(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    answer = await client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["content-type"] == "application/json"
    documented = _app(tmp_path).openapi()["paths"]["/healthz"]["get"]
    content = documented["responses"]["200"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/Liveness"}
