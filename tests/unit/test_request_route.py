"""``RequestRoute``: the endpoint is called with the request and nothing else; misuse fails at start-up."""

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from oauth_service.api.request_route import RequestRoute


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "q": request.query_params.get("q")})


def _app(*paths: str) -> FastAPI:
    app = FastAPI()
    for path in paths:
        app.router.add_api_route(path, echo, route_class_override=RequestRoute)
    return app


async def test_the_endpoint_gets_the_request_without_dependency_solving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_solving(*args: object, **kwargs: object) -> None:
        raise AssertionError("FastAPI's dependency solving ran")

    monkeypatch.setattr("fastapi.routing.solve_dependencies", no_solving)
    app = _app("/echo")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/echo", params={"q": "x"})
        wrong_method = await client.post("/echo")
    assert answer.json() == {"path": "/echo", "q": "x"}
    assert wrong_method.status_code == 405  # matching is FastAPI's, unchanged


async def test_exceptions_reach_the_apps_handlers() -> None:
    class BoomError(Exception):
        pass

    async def fails(request: Request) -> Response:
        raise BoomError

    app = FastAPI()

    async def handler(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": type(error).__name__}, 409)

    app.add_exception_handler(BoomError, handler)
    app.router.add_api_route("/fails", fails, route_class_override=RequestRoute)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/fails")
    assert (answer.status_code, answer.json()) == (409, {"error": "BoomError"})


def test_the_route_is_documented_like_any_other() -> None:
    schema = _app("/echo").openapi()
    assert "get" in schema["paths"]["/echo"]


async def _with_parameter(request: Request, q: str) -> Response:
    return Response()


def _sync(request: Request) -> Response:
    return Response()


async def _untyped(request) -> Response:  # type: ignore[no-untyped-def]
    return Response()


@pytest.mark.parametrize("endpoint", [_with_parameter, _sync, _untyped])
def test_an_endpoint_that_needs_fastapis_work_is_refused(endpoint: object) -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match="RequestRoute endpoint"):
        app.router.add_api_route("/x", endpoint, route_class_override=RequestRoute)  # type: ignore[arg-type]


def test_a_route_with_dependencies_is_refused() -> None:
    def guard() -> None:
        return None

    app = FastAPI()
    with pytest.raises(TypeError, match="runs no dependencies"):
        app.router.add_api_route(
            "/x",
            echo,
            dependencies=[Depends(guard)],
            route_class_override=RequestRoute,
        )


def test_annotated_request_is_not_a_plain_request() -> None:
    async def annotated(request: Annotated[Request, "x"]) -> Response:
        return Response()

    with pytest.raises(TypeError):
        FastAPI().router.add_api_route(
            "/x", annotated, route_class_override=RequestRoute
        )


def _guard() -> None:
    return None


@pytest.mark.parametrize(
    "dependencies", [[Depends(_guard)], []], ids=["with-dependency", "plain"]
)
async def test_include_router_is_refused_not_skipped(
    dependencies: list[Any],
) -> None:
    """An including router builds the route's handler again, with its own options: refused, never skipped."""
    router = APIRouter(route_class=RequestRoute)
    router.add_api_route("/x", echo)
    app = FastAPI()
    app.include_router(router, dependencies=dependencies)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(TypeError, match="not through include_router"):
            await client.get("/x")
