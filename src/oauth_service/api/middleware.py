"""The pure ASGI middleware on the hot path: request context, body-size limit, access log and request metrics.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps it to a few microseconds and runs the app in the caller's task, so
``contextvars`` flow both ways. The body limit answers RFC 6749 §5.2-shaped JSON with HTTP 413 (RFC 9110
§15.5.14), whether the size is announced by ``Content-Length`` or only discovered while a chunked body streams.
"""

import logging
import os
import re
import time
from typing import Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oauth_service.api.client_ip import (
    CLIENT_IP_SCOPE_KEY,
    resolve_client_ip,
    trusted_networks,
)
from oauth_service.observability import metrics
from oauth_service.observability.logs import (
    RequestContext,
    bind_request,
    unbind_request,
    write_info,
)
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


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label set); ``unmatched`` for 404s."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestMiddleware:
    """The one middleware of every request (a single layer: each layer costs a call and closures per request).

    In order: adopt or mint the request id (echoed on the response), resolve the client IP, bind the log
    context, refuse a body over ``max_bytes`` (413) or an invalid ``Content-Length`` (400) before the app runs,
    count the bytes of the body as the app reads it (413 once past the limit, whatever the app made of the
    interrupted read), then write one access line and count the request in the metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        header: str = "X-Request-ID",
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.header = header.lower().encode("latin-1")
        self.proxies = trusted_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its ``RequestContext``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # One pass over the headers; the first occurrence of a single-valued header is the one used.
        incoming: bytes | None = None
        length: bytes | None = None
        forwarded: list[str] = []
        id_header = self.header
        for key, value in scope["headers"]:
            if key == id_header and incoming is None:
                incoming = value
            if key == b"content-length" and length is None:
                length = value
            if key == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
        request_id = incoming.decode("latin-1") if incoming is not None else None
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = os.urandom(16).hex()
        client = scope.get("client")
        ip = resolve_client_ip(client[0] if client else None, forwarded, self.proxies)
        scope[CLIENT_IP_SCOPE_KEY] = ip
        context = RequestContext(request_id=request_id, client_ip=ip)
        echoed = (id_header, request_id.encode("latin-1"))
        max_bytes = self.max_bytes
        status = 500
        started = False
        received = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if exceeded and not started:
                # The app turned the interrupted read into some other answer; the real reason is the size.
                return
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        async def refuse(code: int, body: bytes) -> None:
            nonlocal status, started
            status, started = code, True
            # Both refusals are ``invalid_request`` bodies that never reach the error renderer.
            metrics.record_oauth_error("invalid_request")
            await _send_json(send, code, body, echoed)

        token = bind_request(context)
        try:
            if length is not None and not length.isdigit():
                await refuse(400, BAD_LENGTH_BODY)
            elif length is not None and int(length) > max_bytes:
                await refuse(413, TOO_LARGE_BODY)
            else:
                try:
                    await self.app(scope, limited_receive, send_with_id)
                except Exception:
                    # Whatever the app made of the interrupted read (its own error, a wrapped one), answer 413.
                    if not exceeded or started:
                        raise
                if exceeded and not started:
                    await refuse(413, TOO_LARGE_BODY)
        finally:
            duration = time.perf_counter() - start
            route = _route_template(scope)
            metrics.record_request(scope["method"], route, status, duration)
            if access_logger.isEnabledFor(logging.INFO):
                write_info(
                    access_logger,
                    "request",
                    {
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(duration * 1000, 3),
                        "client_ip": ip,
                    },
                )
            unbind_request(token)


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once a streamed body passes the limit; the middleware turns it into 413."""


async def _send_json(
    send: Send, status: int, body: bytes, echoed: tuple[bytes, bytes]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
                echoed,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Register the request middleware (request id, log context, body limit, access line, metrics)."""
    app.add_middleware(
        RequestMiddleware,
        max_bytes=settings.max_body_bytes,
        header=settings.request_id_header,
        trusted_proxies=tuple(settings.trusted_proxies),
    )
