"""The curl commands ``oauth-service demo`` prints really work (client credentials, password, refresh, API call)."""

import shlex
from typing import Any

import httpx

from oauth_service.cli.demo import demo_commands
from oauth_service.db.demo import DemoCredentials, seed_demo
from oauth_service.runtime import Runtime
from tests.conftest import ISSUER


async def _seed(runtime: Runtime) -> DemoCredentials:
    async with runtime.sessionmaker() as session:
        creds = await seed_demo(
            session, hasher=runtime.passwords, known=DemoCredentials()
        )
        await session.commit()
    return creds


async def _curl(
    client: httpx.AsyncClient, command: str, **replace: str
) -> httpx.Response:
    """Execute a printed ``curl [-u ID:SECRET] [-d DATA] [-H HEADER] URL`` through the in-process client."""
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
    assert url.startswith(ISSUER)
    return await client.request(method, url, **kwargs)


async def test_demo_client_credentials_command_returns_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    commands = demo_commands(ISSUER, await _seed(runtime))
    response = await _curl(client, commands["client_credentials"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["scope"], body["expires_in"]) == (
        "Bearer",
        "read",
        600,
    )
    assert "refresh_token" not in body
    assert response.headers["cache-control"] == "no-store"


async def test_demo_password_refresh_and_api_commands_chain(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    commands = demo_commands(ISSUER, await _seed(runtime))
    issued = await _curl(client, commands["password"])
    assert issued.status_code == 200, issued.text
    first = issued.json()
    assert first["scope"] == "read write"
    refreshed = await _curl(
        client, commands["refresh_token"], REFRESH_TOKEN=first["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await _curl(client, commands["call_api"], ACCESS_TOKEN=second["access_token"])
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["type"], body["email"], body["client_id"], body["scope"]) == (
        "user",
        "demo@example.com",
        "demo-password",
        "read write",
    )
