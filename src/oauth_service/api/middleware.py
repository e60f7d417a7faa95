"""Pure ASGI middlewares on the hot path: request context + access log + request metrics, and a body-size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps each one to a few microseconds and runs the app in the caller's task,
so ``contextvars`` flow both ways. The body limit answers RFC 6749 §5.2-shaped JSON with HTTP 413 (RFC 9110
§15.5.14), whether the size is announced by ``Content-Length`` or only discovered while a chunked body streams.
"""

import logging
import os
import re
import time
from typing import Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oauth_service import metrics
from oauth_service.api.client_ip import resolve_client_ip, trusted_networks
from oauth_service.logs import RequestContext, bind_request, unbind_request
from oauth_service.settings import Settings

access_logger = logging.getLogger("oauth_service.access")

# A sane incoming request id: short and made of characters that are safe in logs and headers.
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

TOO_LARGE_BODY: Final = (
    b'{"error":"invalid_request","error_description":"The request body is too large."}'
)
BAD_LENGTH_BODY: Final = (
    b'{"error":"invalid_request","error_description":"Invalid Content-Length header."}'
)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label set); ``unmatched`` for 404s."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestContextMiddleware:
    """Per request: adopt or mint a request id, echo it, bind the log context, write one access line, count it."""

    def __init__(
        self,
        app: ASGIApp,
        header: str = "X-Request-ID",
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.proxies = trusted_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its ``RequestContext``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = _header(scope, self.header)
        request_id = (
            incoming.decode("latin-1")
            if incoming is not None
            and _REQUEST_ID.fullmatch(incoming.decode("latin-1"))
            else os.urandom(16).hex()
        )
        client = scope.get("client")
        forwarded = [
            value.decode("latin-1")
            for key, value in scope["headers"]
            if key == b"x-forwarded-for"
        ]
        context = RequestContext(
            request_id=request_id,
            client_ip=resolve_client_ip(
                client[0] if client else None, forwarded, self.proxies
            ),
        )
        echoed = (self.header, request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = bind_request(context)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - start
            route = _route_template(scope)
            metrics.record_request(scope["method"], route, status, duration)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(duration * 1000, 3),
                        "client_ip": context.client_ip,
                    },
                )
            unbind_request(token)


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, on ``Content-Length`` or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the announced length up front, then count streamed bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_json(send, 400, BAD_LENGTH_BODY)
                return
            if int(length) > self.max_bytes:
                await _send_json(send, 413, TOO_LARGE_BODY)
                return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                # The app turned the interrupted read into some other answer; the real reason is the size.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # Whatever the app made of the interrupted read (its own error, a wrapped one), answer 413.
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _send_json(send, 413, TOO_LARGE_BODY)


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once a streamed body passes the limit; the middleware turns it into 413."""


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Register the middlewares; the request context is outermost so even a 413 is logged with its id."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RequestContextMiddleware,
        header=settings.request_id_header,
        trusted_proxies=tuple(settings.trusted_proxies),
    )
