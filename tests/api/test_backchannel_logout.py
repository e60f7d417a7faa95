"""Back-channel logout delivery (Back-Channel Logout 1.0 §2.4 to §2.8) against real loopback receivers.

The worker runs on runtimes without the app's background loop, so each test decides when a pass happens;
both backends, including two workers (two engines, as two replicas) claiming the same rows.
"""

import asyncio
import base64
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import build_runtime, close_runtime
from oauth_service.db import admin
from oauth_service.observability.metrics import scrape_registry
from oauth_service.outbound import http as outbound_http
from oauth_service.outbound.http import outbound_client
from oauth_service.runtime import Runtime
from oauth_service.runtime.backchannel import DeliveryResult, deliver_due, lease_for
from oauth_service.settings import Settings
from tests.backchannel_receiver import running_receiver, verified_logout_token
from tests.conftest import ISSUER, make_settings
from tests.factories import make_user
from tests.logout_helpers import (
    add_login_session,
    add_session_client,
    make_due,
    make_logout_client,
    outbox,
)

MAX_ATTEMPTS = 3


def _settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "outbound_allow_private_networks": True,
        "backchannel_logout_timeout": 0.5,
        "backchannel_logout_max_attempts": MAX_ATTEMPTS,
    }
    values.update(overrides)
    return make_settings(db_url, **values)


@pytest.fixture
async def worker(db_url: str, database: AsyncEngine) -> AsyncIterator[Runtime]:
    """A runtime with no background loop: passes run only when a test asks."""
    runtime = await build_runtime(_settings(db_url))
    try:
        yield runtime
    finally:
        await close_runtime(runtime)


def _count(outcome: str) -> float:
    value = scrape_registry().get_sample_value(
        "oauth_backchannel_logout_total", {"outcome": outcome}
    )
    return value or 0.0


def _audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        {
            name: getattr(record, name, None)
            for name in ("client_id", "outcome", "attempt", "reason", "error")
        }
        for record in caplog.records
        if getattr(record, "event", None) == "logout.backchannel"
    ]


async def _one_session_logged_out(
    runtime: Runtime, client_ids: list[str], uri: str, *, session_required: bool = False
) -> tuple[str, str]:
    """A user signed in to ``client_ids`` (all receiving at ``uri``), then logged out by an admin: (user, sid)."""
    user, _ = await make_user(runtime)
    sid = await add_login_session(runtime, user.id)
    for client_id in client_ids:
        await make_logout_client(
            runtime,
            client_id,
            backchannel_logout_uri=uri,
            session_required=session_required,
        )
        await add_session_client(runtime, sid, client_id, user.id)
    async with runtime.sessionmaker() as session:
        assert await admin.logout_user(
            session, user_id=user.id, clock=runtime.clock
        ) == len(client_ids)
        await session.commit()
    return user.id, sid


async def _pass(runtime: Runtime, now: datetime | None = None) -> list[DeliveryResult]:
    async with outbound_client() as http:
        return await deliver_due(runtime, http, now=now)


async def test_logout_token_is_posted_signed_with_sub_and_sid(
    worker: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oauth_service.audit")
    delivered = _count("delivered")
    with running_receiver() as receiver:
        user_id, sid = await _one_session_logged_out(
            worker, ["rp"], receiver.url, session_required=True
        )
        results = await _pass(worker)
    assert results == [DeliveryResult("rp", "delivered", 1)]
    assert len(receiver.received) == 1
    request = receiver.received[0]
    assert request["path"] == "/backchannel"
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert set(request["form"]) == {"logout_token"}
    header, claims = verified_logout_token(
        receiver.tokens()[0], worker.keys.jwks(), issuer=ISSUER, client_id="rp"
    )
    assert header["kid"] == worker.keys.signing.kid
    assert (claims["sub"], claims["sid"]) == (user_id, sid)
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "events", "sub", "sid"}
    assert await outbox(worker) == []
    assert _count("delivered") == delivered + 1
    assert _audit_events(caplog) == [
        {
            "client_id": "rp",
            "outcome": "delivered",
            "attempt": 1,
            "reason": "admin_logout",
            "error": None,
        }
    ]
    assert receiver.tokens()[0] not in caplog.text


async def test_only_clients_with_a_backchannel_uri_are_enqueued(
    worker: Runtime,
) -> None:
    user, _ = await make_user(worker)
    sid = await add_login_session(worker, user.id)
    await make_logout_client(
        worker, "with", backchannel_logout_uri="https://rp.example/bc"
    )
    await make_logout_client(worker, "without")
    await add_session_client(worker, sid, "with", user.id)
    await add_session_client(worker, sid, "without", user.id)
    async with worker.sessionmaker() as session:
        assert (
            await admin.logout_user(session, user_id=user.id, clock=worker.clock) == 1
        )
        await session.commit()
    rows = await outbox(worker)
    assert [(r.client_id, r.subject, r.sid, r.reason, r.attempts) for r in rows] == [
        ("with", user.id, sid, "admin_logout", 0)
    ]


async def test_an_error_answer_is_retried_with_backoff_then_delivered(
    worker: Runtime,
) -> None:
    retries = _count("retry")
    with running_receiver() as receiver:
        receiver.statuses = [500]
        await _one_session_logged_out(worker, ["rp"], receiver.url)
        first = await _pass(worker)
        assert first == [DeliveryResult("rp", "retry", 1, "answered HTTP 500")]
        [row] = await outbox(worker)
        assert (row.attempts, row.last_error) == (1, "answered HTTP 500")
        assert row.next_attempt_at - worker.clock() > timedelta(seconds=1)
        assert await _pass(worker) == []  # not due before the backoff ends
        second = await _pass(worker, now=worker.clock() + timedelta(seconds=3))
    assert second == [DeliveryResult("rp", "delivered", 2)]
    tokens = receiver.tokens()
    assert len(tokens) == 2
    jtis = [
        verified_logout_token(t, worker.keys.jwks(), issuer=ISSUER, client_id="rp")[1][
            "jti"
        ]
        for t in tokens
    ]
    assert jtis[0] != jtis[1]
    assert await outbox(worker) == []
    assert _count("retry") == retries + 1


async def test_delivery_is_given_up_after_max_attempts(
    worker: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oauth_service.audit")
    failed = _count("failed")
    with running_receiver() as receiver:
        receiver.statuses = [503] * MAX_ATTEMPTS
        await _one_session_logged_out(worker, ["rp"], receiver.url)
        outcomes = []
        for _ in range(MAX_ATTEMPTS):
            outcomes += await _pass(worker)
            await make_due(worker)
    assert [(r.outcome, r.attempt) for r in outcomes] == [
        ("retry", 1),
        ("retry", 2),
        ("failed", 3),
    ]
    assert len(receiver.received) == MAX_ATTEMPTS
    assert await outbox(worker) == []
    assert _count("failed") == failed + 1
    assert _audit_events(caplog)[-1] == {
        "client_id": "rp",
        "outcome": "failed",
        "attempt": 3,
        "reason": "admin_logout",
        "error": "answered HTTP 503",
    }


async def test_a_hanging_receiver_times_out_and_is_retried(worker: Runtime) -> None:
    with running_receiver() as receiver:
        receiver.hang_seconds = 3
        await _one_session_logged_out(worker, ["rp"], receiver.url)
        started = time.monotonic()
        results = await _pass(worker)
        elapsed = time.monotonic() - started
    assert results == [DeliveryResult("rp", "retry", 1, "no answer within 0.5 s")]
    assert elapsed < 2
    [row] = await outbox(worker)
    assert row.last_error == "no answer within 0.5 s"


async def test_a_loopback_uri_without_private_networks_is_never_contacted(
    db_url: str, database: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oauth_service.audit")
    runtime = await build_runtime(
        _settings(db_url, outbound_allow_private_networks=False)
    )
    try:
        failed = _count("failed")
        with running_receiver() as receiver:
            port = receiver.url.split(":")[2].split("/")[0]
            # https on a name that resolves to loopback: registration allows it (loopback), the guard does not.
            await _one_session_logged_out(
                runtime, ["rp"], f"https://127.0.0.1:{port}/backchannel"
            )
            results = await _pass(runtime)
        assert receiver.received == []
    finally:
        await close_runtime(runtime)
    reason = "refused: 127.0.0.1 resolves to 127.0.0.1 is a loopback address"
    assert results == [DeliveryResult("rp", "failed", 1, reason)]
    assert _count("failed") == failed + 1
    assert _audit_events(caplog)[-1]["error"] == reason


async def test_a_client_that_dropped_its_uri_is_given_up(worker: Runtime) -> None:
    await _one_session_logged_out(worker, ["rp"], "https://rp.example/bc")
    async with worker.sessionmaker() as session:
        await admin.update_client(session, client_id="rp", backchannel_logout_uri="")
        await session.commit()
    results = await _pass(worker)
    assert results == [
        DeliveryResult(
            "rp", "failed", 1, "the client has no backchannel_logout_uri any more"
        )
    ]
    assert await outbox(worker) == []


async def test_two_workers_deliver_each_row_once(worker: Runtime, db_url: str) -> None:
    other = await build_runtime(_settings(db_url))
    clients = [f"rp{i}" for i in range(8)]
    try:
        with running_receiver() as receiver:
            await _one_session_logged_out(worker, clients, receiver.url)
            first, second = await asyncio.gather(_pass(worker), _pass(other))
    finally:
        await close_runtime(other)
    delivered = sorted(r.client_id for r in first + second)
    assert delivered == sorted(clients)
    assert len(receiver.received) == len(clients)
    audiences = []
    for token in receiver.tokens():
        claims = verified_logout_token(
            token, worker.keys.jwks(), issuer=ISSUER, client_id=_unverified_aud(token)
        )[1]
        audiences.append(claims["aud"])
    assert sorted(audiences) == sorted(clients)
    assert await outbox(worker) == []


def _unverified_aud(token: str) -> str:
    """The ``aud`` a token claims, read before its check (which then verifies it)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    aud: str = claims["aud"]
    return aud


async def test_an_internationalized_host_is_delivered_with_its_idna_name(
    worker: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def resolve(
        self: Any, host: str, port: int, **kwargs: Any
    ) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr("asyncio.base_events.BaseEventLoop.getaddrinfo", resolve)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    await _one_session_logged_out(worker, ["rp"], "https://bücher.example/bc")
    async with outbound_client(transport=httpx.MockTransport(answer)) as http:
        results = await deliver_due(worker, http)
    assert results == [DeliveryResult("rp", "delivered", 1)]
    assert asked == ["xn--bcher-kva.example"]
    (request,) = seen
    assert str(request.url) == "https://93.184.215.14/bc"
    assert request.headers["host"] == "xn--bcher-kva.example"
    assert request.extensions["sni_hostname"] == "xn--bcher-kva.example"
    assert await outbox(worker) == []


async def test_an_unexpected_error_gives_its_row_up_and_the_pass_goes_on(
    worker: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    failed = _count("failed")

    async def post_form(
        http: httpx.AsyncClient, url: str, form: Mapping[str, str], **kwargs: Any
    ) -> int:
        if "broken" in url:
            raise RuntimeError(f"bug while sending {form['logout_token']}")
        return await outbound_http.post_form(http, url, form, **kwargs)

    monkeypatch.setattr("oauth_service.runtime.backchannel.post_form", post_form)
    with running_receiver() as receiver:
        await _one_session_logged_out(worker, ["good", "bad"], receiver.url)
        async with worker.sessionmaker() as session:
            await admin.update_client(
                session,
                client_id="bad",
                backchannel_logout_uri=receiver.url + "?broken",
            )
            await session.commit()
        results = await _pass(worker)
    assert sorted(results, key=lambda r: r.client_id) == [
        DeliveryResult("bad", "failed", 1, "unexpected error (RuntimeError)"),
        DeliveryResult("good", "delivered", 1),
    ]
    assert len(receiver.received) == 1
    assert await outbox(worker) == []
    assert _count("failed") == failed + 1
    assert {
        "client_id": "bad",
        "outcome": "failed",
        "attempt": 1,
        "reason": "admin_logout",
        "error": "unexpected error (RuntimeError)",
    } in _audit_events(caplog)
    logged = [r for r in caplog.records if r.name == "oauth_service.backchannel"]
    assert [(r.levelname, r.getMessage().split(" at ")[0]) for r in logged] == [
        (
            "ERROR",
            "back-channel logout to bad failed unexpectedly: RuntimeError",
        )
    ]
    assert "bug while sending" not in caplog.text


def test_the_lease_covers_every_wave_of_a_batch() -> None:
    # 50 rows, 10 at a time: the fifth wave may start after four full timeouts, then takes one itself.
    assert lease_for(60) == timedelta(seconds=5 * 60 + 30)
    assert lease_for(0.5) == timedelta(seconds=32.5)


async def test_claimed_rows_are_leased_for_the_whole_batch(
    db_url: str, database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = await build_runtime(_settings(db_url, backchannel_logout_timeout=60))
    leased: list[datetime] = []

    async def post_form(*args: Any, **kwargs: Any) -> int:
        leased.extend(row.next_attempt_at for row in await outbox(runtime))
        return 204

    monkeypatch.setattr("oauth_service.runtime.backchannel.post_form", post_form)
    try:
        await _one_session_logged_out(runtime, ["rp"], "https://rp.example/bc")
        now = runtime.clock()
        results = await _pass(runtime, now=now)
    finally:
        await close_runtime(runtime)
    assert results == [DeliveryResult("rp", "delivered", 1)]
    assert leased == [now + timedelta(seconds=330)]
