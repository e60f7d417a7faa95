"""``RouteTable``: a module's routes, declared with ``APIRouter``'s decorators, added to the app's own router.

``include_router`` makes a router one entry of the app that every request walks into; the app's own routes
are matched first and directly. The busiest modules (token, introspection, ``/api/v1``, health) declare their
routes in a ``RouteTable``, and ``create_app`` adds them with FastAPI's public ``APIRouter.add_api_route``:
nothing is copied from an existing route, so the path, OpenAPI entry and dependency overrides are those of any
route added that way.
"""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])

_ADD_API_ROUTE = inspect.signature(APIRouter.add_api_route)


@dataclass(frozen=True)
class RouteSpec:
    """One ``router.add_api_route(path, endpoint, **options)`` call, to make later."""

    path: str
    endpoint: Callable[..., Any]
    options: dict[str, Any]

    def add_to(self, router: APIRouter) -> None:
        """Make the call on ``router``."""
        router.add_api_route(self.path, self.endpoint, **self.options)


class RouteTable:
    """Routes declared like an ``APIRouter``'s, in order; ``add_to(router)`` adds them.

    ``prefix``, ``tags`` and ``route_class`` apply to every route, as on an ``APIRouter``; the other options
    are ``APIRouter.add_api_route``'s, checked against its signature when a route is declared (a misspelt
    option fails at import, not when the app is built).
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        tags: Sequence[str | Enum] = (),
        route_class: type[APIRoute] | None = None,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"{prefix!r}: a prefix starts with '/' and ends without")
        self.prefix = prefix
        self.tags: list[str | Enum] = list(tags)
        self.route_class = route_class
        self.specs: list[RouteSpec] = []

    def add_api_route(
        self, path: str, endpoint: Callable[..., Any], **options: Any
    ) -> None:
        """Declare a route; ``options`` are ``APIRouter.add_api_route``'s keyword arguments."""
        options["tags"] = [*self.tags, *(options.get("tags") or ())]
        if options.get("route_class_override") is None:
            options["route_class_override"] = self.route_class
        # A misspelt or unknown option: TypeError now, while the module is imported.
        _ADD_API_ROUTE.bind(None, path, endpoint, **options)
        self.specs.append(RouteSpec(self.prefix + path, endpoint, options))

    def api_route(
        self, path: str, *, methods: Sequence[str], **options: Any
    ) -> Callable[[EndpointT], EndpointT]:
        """Decorator: declare the decorated endpoint for ``path`` and ``methods``."""

        def declare(endpoint: EndpointT) -> EndpointT:
            self.add_api_route(path, endpoint, methods=list(methods), **options)
            return endpoint

        return declare

    def get(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        """Decorator: declare a ``GET`` route."""
        return self.api_route(path, methods=["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        """Decorator: declare a ``POST`` route."""
        return self.api_route(path, methods=["POST"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        """Decorator: declare a ``DELETE`` route."""
        return self.api_route(path, methods=["DELETE"], **options)

    def add_to(self, router: APIRouter) -> None:
        """Add every declared route to ``router``, in declaration order."""
        for spec in self.specs:
            spec.add_to(router)
