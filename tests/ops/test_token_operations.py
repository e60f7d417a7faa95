"""Operations behaviour on the real token endpoint: body limit, secret-free logs across a password flow."""

from collections.abc import AsyncIterator

import httpx

from oauth_service.runtime import Runtime
from tests.factories import make_client, make_user
from tests.ops.conftest import LogCapture

TOO_LARGE = {
    "error": "invalid_request",
    "error_description": "The request body is too large.",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def streamed(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    """Send ``body`` chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_token_with_body_over_limit_is_413(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = (
        b"grant_type=client_credentials&scope=" + b"a" * runtime.settings.max_body_bytes
    )
    announced = await client.post("/oauth/token", content=body, headers=FORM)
    chunked = await client.post("/oauth/token", content=streamed(body), headers=FORM)
    for response in (announced, chunked):
        assert response.status_code == 413
        assert response.json() == TOO_LARGE
        assert response.headers["cache-control"] == "no-store"


async def test_password_flow_logs_carry_no_secrets(
    client: httpx.AsyncClient, runtime: Runtime, json_logs: LogCapture
) -> None:
    user, password = await make_user(runtime, email="ops@example.com")
    app_client, secret = await make_client(
        runtime, grant_types=("password", "refresh_token")
    )
    assert secret is not None
    auth = (app_client.client_id, secret)
    wrong = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": user.email,
            "password": "wrong-pass-123",
        },
        auth=auth,
    )
    assert wrong.status_code == 400
    issued = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": user.email, "password": password},
        auth=auth,
    )
    assert issued.status_code == 200
    tokens = issued.json()
    refreshed = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=auth,
    )
    assert refreshed.status_code == 200
    access = json_logs.by_logger("oauth_service.access")
    assert [(line["route"], line["status"]) for line in access] == [
        ("/oauth/token", 400),
        ("/oauth/token", 200),
        ("/oauth/token", 200),
    ]
    leaked = [
        value
        for value in (
            password,
            "wrong-pass-123",
            secret,
            tokens["access_token"],
            tokens["refresh_token"],
            refreshed.json()["access_token"],
            refreshed.json()["refresh_token"],
        )
        if value in json_logs.text
    ]
    assert leaked == []
