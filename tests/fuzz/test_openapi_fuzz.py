"""Schemathesis fuzzing of every documented operation against a live server (issue 6, "bad input never 500").

The server runs ``create_app`` under uvicorn in a thread, on its own migrated SQLite file, so the fuzzer talks
real HTTP. Each operation gets a bounded, deterministic set of examples (``derandomize``); every response must
not be a 5xx and must conform to the OpenAPI document: a documented status code, content type, headers and body
schema. The spec therefore describes the real answers (errors included), which is what this test keeps true.
"""

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from oauth_service.app import create_app
from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.db import admin
from oauth_service.db.engine import make_engine, make_sessionmaker
from oauth_service.db.migrations import upgrade
from tests.conftest import make_settings
from tests.live_server import free_port, serve_in_thread

MAX_EXAMPLES = 25
ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz admin password"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


async def _migrate_and_seed(url: str) -> str:
    """Migrate, add an admin and a confidential client; return the client's secret."""
    settings = make_settings(url)
    engine = make_engine(settings)
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
            await admin.create_user(
                session,
                email=ADMIN_EMAIL,
                password=ADMIN_PASSWORD,
                hasher=hasher,
                is_admin=True,
            )
            _, secret = await admin.create_client(
                session,
                name="fuzz",
                client_id="fuzz",
                grant_types=("password", "client_credentials", "refresh_token"),
                redirect_uris=(),
                scopes=("read", "write", "admin"),
            )
            await session.commit()
    finally:
        await engine.dispose()
    assert secret is not None
    return secret


def _admin_token(url: str, secret: str) -> str:
    form = {
        "grant_type": "password",
        "email": ADMIN_EMAIL,
        "password": ADMIN_PASSWORD,
        "scope": "admin read write",
    }
    response = httpx.post(
        f"{url}/oauth/token", data=form, auth=("fuzz", secret), timeout=10
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass(frozen=True, slots=True)
class Target:
    """The live server and the credentials the fuzzer presents."""

    url: str
    basic: str
    bearer: str

    def headers_for(self, path: str) -> dict[str, str]:
        """Bearer (admin) on resource and admin routes, Basic (the seeded client) on OAuth endpoints."""
        if path.startswith(("/admin", "/api")):
            return {"Authorization": f"Bearer {self.bearer}"}
        if path in {"/oauth/token", "/oauth/revoke", "/oauth/introspect"}:
            return {"Authorization": self.basic}
        return {}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A live server on a fresh, seeded SQLite database."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "oauth.db"
    db_url = f"sqlite+aiosqlite:///{path}"
    secret = asyncio.run(_migrate_and_seed(db_url))
    port = free_port()
    app = create_app(make_settings(db_url, log_level="ERROR", metrics_enabled=False))
    with serve_in_thread(app, port, name="fuzz-server") as url:
        basic = "Basic " + base64.b64encode(f"fuzz:{secret}".encode()).decode()
        yield Target(url, basic, _admin_token(url, secret))


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation, read from the app's own OpenAPI document."""
    document = create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


@pytest.fixture(scope="module")
def api_schema(target: Target) -> schemathesis.BaseSchema:
    """The service's OpenAPI document, as served."""
    return schemathesis.openapi.from_url(f"{target.url}/openapi.json")


OPERATIONS = _operations()


@pytest.mark.parametrize(
    ("method", "path"),
    OPERATIONS,
    ids=[f"{method} {path}" for method, path in OPERATIONS],
)
def test_api_operation_never_5xx_and_matches_its_schema(
    api_schema: schemathesis.BaseSchema, target: Target, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            base_url=target.url,
            headers=target.headers_for(path),
            checks=CHECKS,
            timeout=10,
        )

    fuzz()
