"""Fixtures of the attack-resistance tests: apps with custom settings, clients with a chosen peer IP, captured logs."""

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.observability.logs import JsonFormatter
from tests.conftest import ISSUER, make_settings

REDIS_URL = "redis://127.0.0.1:6379/0"

AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture
async def make_app(db_url: str, database: AsyncEngine) -> AsyncIterator[AppFactory]:
    """Build apps (lifespan running) on the test database with settings overrides; all closed at the end."""
    async with AsyncExitStack() as stack:

        async def build(**overrides: object) -> FastAPI:
            application = create_app(make_settings(db_url, **overrides))
            await stack.enter_async_context(
                application.router.lifespan_context(application)
            )
            return application

        yield build


@pytest.fixture
def redis_prefix() -> str:
    """A throttle key namespace of its own, so parallel test runs never share counters."""
    return f"test-{uuid.uuid4().hex}"


def http_client(app: FastAPI, ip: str = "203.0.113.7") -> httpx.AsyncClient:
    """An in-process client whose TCP peer address is ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER)


class LogCapture:
    """Every line the service logs while a test runs, formatted exactly as in production."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        """Everything written, raw."""
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed."""
        return [json.loads(line) for line in self.text.splitlines()]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The audit events called ``name``."""
        return [
            line
            for line in self.lines()
            if line.get("event") == name and line.get("audit")
        ]


@pytest.fixture
def captured_logs() -> Iterator[LogCapture]:
    """Capture the root logger at DEBUG (the service, uvicorn, SQLAlchemy, anything) as JSON lines."""
    capture = LogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    service = logging.getLogger("oauth_service")
    previous = (root.level, service.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    service.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(handler)
    root.setLevel(previous[0])
    service.setLevel(previous[1])
