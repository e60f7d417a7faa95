"""``RequestRoute``: an ``APIRoute`` whose endpoint takes the ``Request`` and returns a ``Response``, called directly.

For each request FastAPI's own handler reads the context of the endpoint for its error messages, sets up its
telemetry record, solves the dependency graph (even when the only parameter is the ``Request``), then looks
at the returned value to serialize it. The hot endpoints (token, introspection, ``/api/v1/me``, ``/healthz``)
need none of it: they take the ``Request``, parse their own form and build their own response.

``get_route_handler`` is FastAPI's documented extension point for a custom route class. Everything else is
unchanged: the path, methods and OpenAPI entry come from ``APIRoute``, exceptions raised by the endpoint
reach the app's handlers as before, and the route is matched like any other. A route whose endpoint would
need FastAPI's work (another parameter, a dependency) is refused instead of silently skipped. These routes are
added with ``add_api_route`` (``api.route_table``), never through ``include_router``: an including router
builds the route's handler again with its own options, dependencies included, so that second build is refused
too. With ``OAUTH_OPENTELEMETRY`` on, these routes still get FastAPI's request spans and metrics, not its
spans for dependency solving and the endpoint call (there are none to solve).
"""

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

Endpoint = Callable[[Request], Awaitable[Response]]


class RequestRoute(APIRoute):
    """A route for ``async def endpoint(request: Request) -> Response`` with no dependencies."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        _check_endpoint(path, endpoint)
        self._handler_built = False
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Call the endpoint itself with the request (FastAPI's handler would solve dependencies).

        ``APIRoute.__init__`` builds the handler once; only ``include_router`` asks again, for the route with
        the including router's options (dependencies it would add included), which a ``RequestRoute`` cannot
        honour: refused, loudly, rather than skipped.
        """
        if self._handler_built:
            raise TypeError(
                f"{self.path}: a RequestRoute is added with add_api_route, not through include_router"
            )
        if self.dependant.dependencies:
            raise TypeError(
                f"{self.path}: a RequestRoute runs no dependencies; use an ordinary route"
            )
        self._handler_built = True
        endpoint: Endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request)

        return handle


def _check_endpoint(path: str, endpoint: Callable[..., Any]) -> None:
    """The endpoint must be a coroutine function of exactly one ``Request`` parameter."""
    parameters = list(inspect.signature(endpoint, eval_str=True).parameters.values())
    takes_request = len(parameters) == 1 and parameters[0].annotation is Request
    if not (inspect.iscoroutinefunction(endpoint) and takes_request):
        raise TypeError(
            f"{path}: a RequestRoute endpoint is `async def f(request: Request) -> Response`"
        )
