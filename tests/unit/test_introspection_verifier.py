"""``IntrospectionVerifier`` when introspection fails: whose fault it is decides the answer, and one log line says why.

The API's own misconfiguration (its credentials refused, a wrong endpoint URL) is 500 ``server_error``; an
unreachable or failing server, or the API's client locked for a while, is 503 ``temporarily_unavailable``. The
API's callers are never told their token is invalid. Each kind of failure is logged at most once per
``LOG_INTERVAL`` on ``oauth_service.resource``, without the secret or the token.
"""

import logging
from collections.abc import Callable

import httpx
import pytest

from oauth_service.resource_server.verification import (
    LOG_INTERVAL,
    IntrospectionVerifier,
)
from tests.bearer import notes_api

ENDPOINT = "http://auth.test/oauth/introspect"
SECRET = "s3cret-value-never-logged"
TOKEN = "token.value.never-logged"
REFUSED = (
    "the authorization server refused this API's client credentials (client_id=notes-api) "
    f"at {ENDPOINT}: check the client id and secret"
)
SERVER_ERROR = {
    "error": "server_error",
    "error_description": "The server encountered an unexpected condition.",
}
UNAVAILABLE = {
    "error": "temporarily_unavailable",
    "error_description": "The service is temporarily unavailable; retry later.",
}

Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class NotesApi:
    """The README's notes API, verifying through ``handler`` as the introspection endpoint; kept across calls."""

    def __init__(self, handler: Handler, clock: Clock) -> None:
        self.server = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        verifier = IntrospectionVerifier(
            ENDPOINT,
            client_id="notes-api",
            client_secret=SECRET,
            http=self.server,
            clock=clock,
            cache_ttl=0,
        )
        self.app = notes_api(verifier)

    async def get(self, times: int = 1) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://notes.test"
        ) as http:
            return [
                await http.get("/notes", headers={"Authorization": f"Bearer {TOKEN}"})
                for _ in range(times)
            ]


async def _get(handler: Handler, clock: Clock, times: int = 1) -> list[httpx.Response]:
    api = NotesApi(handler, clock)
    async with api.server:
        return await api.get(times)


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "oauth_service.resource"
    ]


def _refuse(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        401,
        json={"error": "invalid_client"},
        headers={"WWW-Authenticate": 'Basic realm="oauth-service"'},
    )


async def test_refused_credentials_are_500_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    api = NotesApi(_refuse, clock)
    async with api.server:
        for response in await api.get(times=3):
            assert (response.status_code, response.json()) == (500, SERVER_ERROR)
            assert "www-authenticate" not in response.headers
        assert _lines(caplog) == [(logging.ERROR, REFUSED)]
        clock.now += LOG_INTERVAL - 1
        await api.get()
        assert _lines(caplog) == [(logging.ERROR, REFUSED)]
        clock.now += 1
        await api.get()
    assert _lines(caplog) == [(logging.ERROR, REFUSED)] * 2
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text


async def test_locked_client_is_503_and_says_so() -> None:
    def locked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"error": "invalid_client"}, headers={"Retry-After": "280"}
        )

    (response,) = await _get(locked, Clock())
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)


async def test_locked_client_logs_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    def locked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"error": "invalid_client"}, headers={"Retry-After": "280"}
        )

    await _get(locked, Clock(), times=2)
    ((level, message),) = _lines(caplog)
    assert level == logging.ERROR
    assert "locked this API's client id (client_id=notes-api)" in message
    assert "retry after 280 s" in message


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_failing_server_is_503_and_logged_once(
    caplog: pytest.LogCaptureFixture, status: int
) -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="upstream trouble")

    responses = await _get(failing, Clock(), times=3)
    assert [(r.status_code, r.json()) for r in responses] == [(503, UNAVAILABLE)] * 3
    assert _lines(caplog) == [
        (
            logging.WARNING,
            f"introspection at {ENDPOINT} failed: HTTP {status}; answering 503",
        )
    ]


async def test_unreachable_server_is_503_and_logs_url_and_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    clock = Clock()
    api = NotesApi(refuse, clock)
    async with api.server:
        responses = await api.get(times=3)
        clock.now += LOG_INTERVAL - 1
        responses += await api.get()
    assert [(r.status_code, r.json()) for r in responses] == [(503, UNAVAILABLE)] * 4
    assert _lines(caplog) == [
        (
            logging.WARNING,
            f"introspection at {ENDPOINT} failed: ConnectError [Errno 111] Connection refused; "
            "answering 503",
        )
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, '{"detail": "Not Found"}'), (200, "<html>sign in</html>"), (302, "")],
)
async def test_wrong_endpoint_url_is_500_and_names_the_url(
    caplog: pytest.LogCaptureFixture, status: int, body: str
) -> None:
    def elsewhere(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=body, headers={"Location": "/login"})

    (response,) = await _get(elsewhere, Clock())
    assert (response.status_code, response.json()) == (500, SERVER_ERROR)
    ((level, message),) = _lines(caplog)
    assert level == logging.ERROR
    assert message.startswith(f"introspection at {ENDPOINT} answered HTTP {status}")
    assert message.endswith("check the endpoint URL (<issuer>/oauth/introspect)")


async def test_active_answer_after_a_failure_is_200() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503)
        return httpx.Response(
            200,
            json={
                "active": True,
                "scope": "read",
                "client_id": "svc",
                "sub": "svc",
                "exp": 2_000_000_000,
                "token_type": "Bearer",
            },
        )

    first, second = await _get(flaky, Clock(), times=2)
    assert first.status_code == 503
    assert (second.status_code, second.json()) == (200, {"owner": "svc"})
