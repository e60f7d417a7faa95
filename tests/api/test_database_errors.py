"""Database errors the client cannot fix and that are not bugs are answered 503 ``temporarily_unavailable``."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from oauth_service.api.errors import install_error_handlers


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def _app(sqlstate: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/oauth/token")
    async def fail() -> None:
        raise DBAPIError("SELECT 1", None, _DriverError(sqlstate))

    return app


@pytest.mark.parametrize(
    ("sqlstate", "status", "error"),
    [
        ("53300", 503, "temporarily_unavailable"),  # too many connections
        ("53200", 503, "temporarily_unavailable"),  # out of memory
        ("57P01", 503, "temporarily_unavailable"),  # admin shutdown
        ("57014", 503, "temporarily_unavailable"),  # statement timeout
        ("08006", 503, "temporarily_unavailable"),  # connection failure
        ("22021", 400, "invalid_request"),  # a value the database cannot store
        ("42P01", 500, "server_error"),  # a bug: undefined table
    ],
)
async def test_database_error_status_by_sqlstate(
    sqlstate: str, status: int, error: str
) -> None:
    transport = httpx.ASGITransport(app=_app(sqlstate), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post("/oauth/token")
    assert response.status_code == status
    assert response.json()["error"] == error
