"""The commands ``oauth-service demo`` prints really work, run as printed against a live server.

Client credentials (``perform`` and curl), password, refresh and the API call here; the two
``perform authorization-code`` lines need a browser and run in ``tests/browser/test_perform.py``.
"""

import shlex
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.cli.demo import cli_program, demo_commands
from oauth_service.runtime import Runtime
from tests.cli_runs import (
    Result,
    live_service,
    me,
    report_fields,
    run_cli,
    seed_demo_data,
)


@pytest.fixture
def server(db_url: str, database: AsyncEngine) -> Iterator[str]:
    """The service on a free loopback port; yields its URL (also its issuer)."""
    with live_service(db_url) as url:
        yield url


async def _run(
    capsys: pytest.CaptureFixture[str], command: str, **replace: str
) -> Result:
    """Execute a printed ``oauth-service perform ...`` line in-process."""
    for placeholder, value in replace.items():
        command = command.replace(placeholder, value)
    program, *argv = shlex.split(command)
    assert program == cli_program()
    assert argv[0] == "perform"
    return await run_cli(capsys, argv)


async def _curl(server: str, command: str, **replace: str) -> httpx.Response:
    """Execute a printed ``curl [-u ID:SECRET] [-d DATA] [-H HEADER] URL`` with httpx."""
    for placeholder, value in replace.items():
        command = command.replace(placeholder, value)
    args = shlex.split(command)
    assert args[0] == "curl"
    kwargs: dict[str, Any] = {"headers": {}}
    method, rest = "GET", args[1:]
    while len(rest) > 1:
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "-u":
            user, _, secret = value.partition(":")
            kwargs["auth"] = (user, secret)
        elif flag == "-d":
            method = "POST"
            kwargs["content"] = value
            kwargs["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
        elif flag == "-H":
            name, _, header = value.partition(": ")
            kwargs["headers"][name] = header
    (url,) = rest
    assert url.startswith(server)
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.request(method, url, **kwargs)


async def test_demo_client_credentials_commands_return_tokens(
    server: str, runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = demo_commands(server, await seed_demo_data(runtime), cli_program())
    code, out, err = await _run(capsys, commands["client_credentials"])
    assert (code, err) == (0, "")
    fields = report_fields(out)
    assert (fields["token_type"], fields["scope"], fields["expires_in"]) == (
        "Bearer",
        "read",
        "600",
    )
    assert "refresh_token" not in fields
    assert (await me(server, fields["access_token"]))["client_id"] == "demo-service"

    response = await _curl(server, commands["client_credentials_curl"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["scope"], body["expires_in"]) == (
        "Bearer",
        "read",
        600,
    )
    assert response.headers["cache-control"] == "no-store"


async def test_demo_password_refresh_and_api_commands_chain(
    server: str, runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = demo_commands(server, await seed_demo_data(runtime), cli_program())
    code, out, err = await _run(capsys, commands["password"])
    assert (code, err) == (0, "")
    first = report_fields(out)
    assert first["scope"] == "read write"
    code, out, err = await _run(
        capsys, commands["refresh_token"], REFRESH_TOKEN=first["refresh_token"]
    )
    assert (code, err) == (0, "")
    second = report_fields(out)
    assert second["refresh_token"] != first["refresh_token"]
    response = await _curl(
        server, commands["call_api"], ACCESS_TOKEN=second["access_token"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["type"], body["email"], body["client_id"], body["scope"]) == (
        "user",
        "demo@example.com",
        "demo-password",
        "read write",
    )
