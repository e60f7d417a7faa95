"""Request body size limit: 413 with an RFC 6749 §5.2-shaped body, on Content-Length and on streamed bodies."""

import json
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Receive, Scope, Send

from oauth_service.api.middleware import RequestMiddleware
from oauth_service.app import create_app
from tests.conftest import ISSUER, make_settings
from tests.ops.conftest import LogCapture

LIMIT = 1024
TOO_LARGE = {
    "error": "invalid_request",
    "error_description": "The request body is too large.",
}


async def chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    """A body with no Content-Length, sent chunk by chunk (Transfer-Encoding: chunked)."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"a" * piece


def with_form_route(app: FastAPI) -> FastAPI:
    async def form(request: Request) -> dict[str, int]:
        return {"fields": len(await request.form())}

    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.add_api_route("/test/form", form, methods=["POST"])
    app.add_api_route("/test/raw", raw, methods=["POST"])
    return app


async def test_body_over_limit_by_content_length_is_413(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    with_form_route(app)
    limit = app.state.settings.max_body_bytes
    response = await client.post("/test/form", content=b"a=" + b"x" * limit)
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


async def test_chunked_body_over_limit_is_413(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    with_form_route(app)
    limit = app.state.settings.max_body_bytes
    for route in ("/test/form", "/test/raw"):
        response = await client.post(
            route,
            content=chunks(limit + 1),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413, route
        assert response.json() == TOO_LARGE


async def test_chunked_body_within_limit_is_served(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    with_form_route(app)
    limit = app.state.settings.max_body_bytes
    response = await client.post("/test/raw", content=chunks(limit))
    assert response.status_code == 200
    assert response.json() == {"bytes": limit}


async def test_body_limit_follows_settings(
    db_url: str, database: AsyncEngine, json_logs: LogCapture
) -> None:
    app = with_form_route(create_app(make_settings(db_url, max_body_bytes=LIMIT)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            ok = await http.post("/test/raw", content=b"x" * LIMIT)
            refused = await http.post("/test/raw", content=b"x" * (LIMIT + 1))
    assert (ok.status_code, refused.status_code) == (200, 413)
    statuses = [line["status"] for line in json_logs.by_logger("oauth_service.access")]
    assert statuses == [200, 413]


class ReadingApp:
    """An inner ASGI app that reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, _scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})


async def drive(
    inner: ReadingApp, headers: list[tuple[bytes, bytes]], bodies: list[bytes]
) -> tuple[int, bytes]:
    """Run the middleware (limit ``LIMIT``) on one request; returns status and body."""
    pending: list[Message] = [
        {"type": "http.request", "body": body, "more_body": i < len(bodies) - 1}
        for i, body in enumerate(bodies)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await RequestMiddleware(inner, max_bytes=LIMIT)(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], sent[1]["body"]


async def test_body_limit_with_large_content_length_refuses_before_app() -> None:
    inner = ReadingApp()
    status, body = await drive(inner, [(b"content-length", b"1025")], [b""])
    assert (status, json.loads(body), inner.called) == (413, TOO_LARGE, False)


async def test_body_limit_with_bad_content_length_is_400() -> None:
    inner = ReadingApp()
    status, body = await drive(inner, [(b"content-length", b"12x")], [b""])
    assert (status, inner.called) == (400, False)
    assert json.loads(body) == {
        "error": "invalid_request",
        "error_description": "Invalid Content-Length header.",
    }


async def test_body_limit_with_streamed_body_past_limit_is_413() -> None:
    inner = ReadingApp()
    status, body = await drive(inner, [], [b"a" * 1000, b"a" * 25])
    assert (status, json.loads(body), inner.called) == (413, TOO_LARGE, True)


async def test_body_limit_with_understated_content_length_is_413() -> None:
    inner = ReadingApp()
    status, body = await drive(inner, [(b"content-length", b"10")], [b"a" * 2000])
    assert (status, json.loads(body)) == (413, TOO_LARGE)


async def test_body_limit_with_body_at_limit_passes() -> None:
    inner = ReadingApp()
    status, body = await drive(inner, [], [b"a" * 1000, b"a" * 24])
    assert (status, body) == (200, b"1024")
