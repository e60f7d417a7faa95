"""Request ids, access log lines and secret hygiene through the full app (``api.middleware``)."""

import base64
import logging
import re

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.observability.logs import bind_client_id
from tests.conftest import make_settings
from tests.ops.conftest import LogCapture

SECRETS = ("hunter2", "s3cr3t-value", "the-auth-code", "rt-opaque", "cookie-session")


def add_echo_route(app: FastAPI) -> None:
    """A route that reads a form, names its client and logs the raw body (as careless code might)."""

    async def echo(request: Request) -> dict[str, str]:
        raw = (await request.body()).decode()
        form = await request.form()
        bind_client_id(str(form.get("client_id", "")))
        logging.getLogger("oauth_service.test").info("raw body %s", raw)
        return {"ok": "yes"}

    app.add_api_route("/test/echo", echo, methods=["POST"])


async def test_request_without_id_gets_generated_id_echoed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_request_with_sane_id_has_it_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "gw-1234.abc:7"})
    assert response.headers["x-request-id"] == "gw-1234.abc:7"


@pytest.mark.parametrize(
    "incoming",
    ["a" * 129, "has space", "semi;colon", 'quote"d', ""],
    ids=["too-long", "space", "semicolon", "quote", "empty"],
)
async def test_request_with_insane_id_gets_new_id(
    client: httpx.AsyncClient, incoming: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": incoming})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_request_id_header_name_follows_settings(
    db_url: str, database: AsyncEngine
) -> None:
    app = create_app(make_settings(db_url, request_id_header="X-Correlation-ID"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/healthz", headers={"X-Correlation-ID": "c-1"})
    assert response.headers["x-correlation-id"] == "c-1"
    assert "x-request-id" not in response.headers


async def test_access_log_line_has_route_status_duration_and_request_id(
    client: httpx.AsyncClient, json_logs: LogCapture
) -> None:
    response = await client.get("/healthz?probe=1", headers={"X-Request-ID": "rid-42"})
    (line,) = json_logs.by_logger("oauth_service.access")
    assert isinstance(line.pop("duration_ms"), float)
    assert line.pop("ts")
    assert line == {
        "level": "INFO",
        "logger": "oauth_service.access",
        "msg": "request",
        "request_id": "rid-42",
        "method": "GET",
        "route": "/healthz",
        "path": "/healthz",
        "status": 200,
        "client_ip": "127.0.0.1",
    }
    assert response.headers["x-request-id"] == "rid-42"


async def test_access_log_for_unknown_path_uses_unmatched_route(
    client: httpx.AsyncClient, json_logs: LogCapture
) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    (line,) = json_logs.by_logger("oauth_service.access")
    assert (line["route"], line["path"], line["status"]) == (
        "unmatched",
        "/no/such/thing",
        404,
    )


async def test_access_log_carries_client_id_bound_by_endpoint(
    app: FastAPI, client: httpx.AsyncClient, json_logs: LogCapture
) -> None:
    add_echo_route(app)
    response = await client.post("/test/echo", data={"client_id": "web-app"})
    assert response.status_code == 200
    (line,) = json_logs.by_logger("oauth_service.access")
    assert (line["client_id"], line["route"], line["status"]) == (
        "web-app",
        "/test/echo",
        200,
    )


async def test_logs_of_request_carrying_secrets_contain_none(
    app: FastAPI, client: httpx.AsyncClient, json_logs: LogCapture
) -> None:
    add_echo_route(app)
    basic = base64.b64encode(b"web-app:s3cr3t-value").decode()
    response = await client.post(
        "/test/echo?code=the-auth-code&refresh_token=rt-opaque",
        data={
            "grant_type": "password",
            "username": "bob@example.com",
            "password": "hunter2",
            "client_id": "web-app",
            "client_secret": "s3cr3t-value",
        },
        headers={
            "Authorization": f"Basic {basic}",
            "Cookie": "session=cookie-session",
        },
    )
    assert response.status_code == 200
    lines = json_logs.lines()
    assert {line["logger"] for line in lines} == {
        "oauth_service.test",
        "oauth_service.access",
    }
    assert all(line["request_id"] == lines[0]["request_id"] for line in lines)
    for secret in (*SECRETS, basic):
        assert secret not in json_logs.text
