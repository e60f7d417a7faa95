"""Staged signing-key rotation: end to end over HTTP, state resolution, race-safe automatic rotation, reload loop."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.crypto.key_encryption import PrivateKeyCipher
from oauth_service.db.engine import make_engine
from oauth_service.db.housekeeping import purge_expired
from oauth_service.db.key_rotation import (
    list_keys,
    next_key_event,
    resolve_states,
    retire_after,
    rotate_if_due,
    rotate_key,
    settle_keys,
)
from oauth_service.db.keys import ensure_signing_key
from oauth_service.oauth.clock import utcnow
from oauth_service.runtime import Runtime
from oauth_service.runtime.background import refresh_keys, reload_delay
from tests.bearer import basic, bearer
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client
from tests.fakes import FixedClock
from tests.ops.cli_runner import Cli, cli_runner
from tests.ops.conftest import LogCapture
from tests.ops.signing_keys import (
    eventually,
    jwt_header,
    preserved_signing_keys,
    wipe_signing_keys,
)

T0 = datetime(2031, 1, 1, tzinfo=UTC)
TTL = 600
DELAY = 300
RETIRE = retire_after(TTL)  # the signed tokens' lifetime plus 60 s of leeway
PLAIN = PrivateKeyCipher(None)


@dataclass
class Stack:
    """A running app whose clock the test moves, with a registered client."""

    http: httpx.AsyncClient
    app: FastAPI
    runtime: Runtime
    clock: FixedClock
    engine: AsyncEngine
    auth: dict[str, str]


@asynccontextmanager
async def running_app(
    db_url: str, engine: AsyncEngine, **overrides: object
) -> AsyncIterator[Stack]:
    """A fresh key set (restored afterwards), an app on it, and a clock starting now."""
    values: dict[str, object] = {
        "access_token_ttl": TTL,
        "id_token_ttl": TTL,
        "key_publish_delay": DELAY,
        "key_reload_interval": 3600,  # the test drives reloads itself
        "purge_interval": 0,
    }
    values.update(overrides)
    settings = make_settings(db_url, **values)
    async with preserved_signing_keys(engine):
        await wipe_signing_keys(engine)
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            runtime: Runtime = application.state.runtime
            clock = FixedClock(utcnow())
            runtime.clock = clock
            client, secret = await make_client(runtime, client_id="svc")
            assert secret is not None
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
                yield Stack(
                    http,
                    application,
                    runtime,
                    clock,
                    engine,
                    basic(client.client_id, secret),
                )


async def _token(stack: Stack) -> str:
    response = await stack.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        headers=stack.auth,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _jwks_kids(stack: Stack) -> set[str]:
    response = await stack.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


async def _states(stack: Stack) -> dict[str, str]:
    views = await list_keys(stack.engine, retire_after=RETIRE, clock=stack.clock)
    return {view.kid: view.state for view in views}


async def _me(stack: Stack, token: str) -> httpx.Response:
    return await stack.http.get("/api/v1/me", headers=bearer(token))


ME = {"type": "client", "sub": "svc", "client_id": "svc", "scope": "read"}


async def test_rotation_end_to_end_old_tokens_verify_until_expiry_new_tokens_carry_new_kid(
    db_url: str, database: AsyncEngine
) -> None:
    async with running_app(db_url, database) as stack:
        start = stack.clock()
        old_kid = stack.runtime.keys.signing.kid
        before = await _token(stack)
        assert jwt_header(before)["kid"] == old_kid

        # Stage 1: published, not yet signing.
        new = await rotate_key(
            database,
            "RS256",
            publish_delay=timedelta(seconds=DELAY),
            retire_after=RETIRE,
            cipher=PLAIN,
            clock=stack.clock,
        )
        assert (new.state, new.activates_at) == (
            "pending",
            start + timedelta(seconds=DELAY),
        )
        assert await refresh_keys(stack.runtime, PLAIN) == new.activates_at
        assert await _jwks_kids(stack) == {old_kid, new.kid}
        assert await _states(stack) == {old_kid: "active", new.kid: "pending"}
        during = await _token(stack)
        assert jwt_header(during)["kid"] == old_kid

        # Stage 2: the new key signs; the old one is retired but still published and still verifies.
        stack.clock.advance(seconds=DELAY + 1)
        await refresh_keys(stack.runtime, PLAIN)
        assert stack.runtime.keys.signing.kid == new.kid
        after = await _token(stack)
        assert jwt_header(after)["kid"] == new.kid
        assert await _jwks_kids(stack) == {old_kid, new.kid}
        assert await _states(stack) == {old_kid: "retired", new.kid: "active"}
        old_view = next(
            v
            for v in await list_keys(database, retire_after=RETIRE, clock=stack.clock)
            if v.kid == old_kid
        )
        assert old_view.retired_at == new.activates_at
        assert old_view.expires_at == new.activates_at + RETIRE
        for token in (before, during, after):
            response = await _me(stack, token)
            assert (response.status_code, response.json()) == (200, ME)

        # Just before the first token expires it still verifies against the retired key.
        stack.clock.now = start + timedelta(seconds=TTL - 10)
        await refresh_keys(stack.runtime, PLAIN)
        assert (await _me(stack, before)).status_code == 200

        # Stage 3: every token of the old key has expired; the key leaves the JWKS and purge deletes it.
        stack.clock.now = new.activates_at + RETIRE + timedelta(seconds=1)
        await refresh_keys(stack.runtime, PLAIN)
        assert await _jwks_kids(stack) == {new.kid}
        assert await _states(stack) == {old_kid: "expired", new.kid: "active"}
        stale = await _me(stack, before)
        assert stale.status_code == 401
        assert stale.headers["www-authenticate"] == (
            'Bearer realm="oauth-service", error="invalid_token", '
            'error_description="The access token is invalid."'
        )
        assert stale.json() == {
            "error": "invalid_token",
            "error_description": "The access token is invalid.",
        }
        fresh = await _token(stack)
        assert (await _me(stack, fresh)).json() == ME
        report = await purge_expired(database, retire_after=RETIRE, clock=stack.clock)
        assert report.signing_keys == 1
        assert await _states(stack) == {new.kid: "active"}


async def test_rotation_automatic_interval_adds_pending_key_once(
    db_url: str, database: AsyncEngine
) -> None:
    async with running_app(
        db_url, database, key_rotation_interval=3600, key_publish_delay=DELAY
    ) as stack:
        old_kid = stack.runtime.keys.signing.kid
        await refresh_keys(stack.runtime, PLAIN)
        assert await _states(stack) == {old_kid: "active"}  # not due yet
        stack.clock.advance(seconds=3601)
        await refresh_keys(stack.runtime, PLAIN)
        await refresh_keys(stack.runtime, PLAIN)  # a second pass does not rotate again
        states = await _states(stack)
        assert sorted(states.values()) == ["active", "pending"]
        assert states[old_kid] == "active"
        assert len(await _jwks_kids(stack)) == 2


async def test_rotate_if_due_concurrent_replicas_add_exactly_one_key(
    database: AsyncEngine,
) -> None:
    async with preserved_signing_keys(database):
        await wipe_signing_keys(database)
        await ensure_signing_key(
            database, "RS256", retire_after=RETIRE, clock=lambda: T0
        )
        later = T0 + timedelta(hours=2)
        results = await asyncio.gather(
            *(
                rotate_if_due(
                    database,
                    "RS256",
                    interval=timedelta(hours=1),
                    publish_delay=timedelta(minutes=10),
                    retire_after=RETIRE,
                    cipher=PLAIN,
                    clock=lambda: later,
                )
                for _ in range(4)
            )
        )
        added = [view for view in results if view is not None]
        assert len(added) == 1
        assert added[0].activates_at == later + timedelta(minutes=10)
        views = await list_keys(database, retire_after=RETIRE, clock=lambda: later)
        assert sorted(view.state for view in views) == ["active", "pending"]


async def test_settle_keys_concurrent_calls_write_identical_states(
    database: AsyncEngine,
) -> None:
    async with preserved_signing_keys(database):
        await wipe_signing_keys(database)
        first = await ensure_signing_key(
            database, "RS256", retire_after=RETIRE, clock=lambda: T0
        )
        second = await rotate_key(
            database,
            "RS256",
            publish_delay=timedelta(minutes=5),
            retire_after=RETIRE,
            cipher=PLAIN,
            clock=lambda: T0,
        )
        at = T0 + timedelta(minutes=6)
        results = await asyncio.gather(
            *(
                settle_keys(database, retire_after=RETIRE, clock=lambda: at)
                for _ in range(3)
            )
        )
        assert results[0] == results[1] == results[2]
        stored = await list_keys(database, retire_after=RETIRE, clock=lambda: at)
        assert {(v.kid, v.state, v.retired_at) for v in stored} == {
            (first, "retired", second.activates_at),
            (second.kid, "active", None),
        }


def _row(kid: str, state: str, activates: int, **times: datetime | None) -> Any:
    return SimpleNamespace(
        kid=kid,
        alg="RS256",
        state=state,
        created_at=T0,
        activates_at=T0 + timedelta(minutes=activates),
        retired_at=times.get("retired_at"),
        expires_at=times.get("expires_at"),
    )


@pytest.mark.parametrize(
    ("minute", "expected"),
    [
        (0, {"a": "active", "b": "pending", "c": "pending"}),
        (10, {"a": "retired", "b": "active", "c": "pending"}),
        (20, {"a": "retired", "b": "retired", "c": "active"}),
        (10 + 11, {"a": "expired", "b": "retired", "c": "active"}),
        (20 + 11, {"a": "expired", "b": "expired", "c": "active"}),
    ],
    ids=["before", "first-switch", "second-switch", "a-expired", "both-expired"],
)
def test_resolve_states_at_each_stage_matches_timeline(
    minute: int, expected: dict[str, str]
) -> None:
    rows = [_row("a", "active", 0), _row("b", "pending", 10), _row("c", "pending", 20)]
    views = resolve_states(rows, T0 + timedelta(minutes=minute), timedelta(minutes=11))
    assert {view.kid: view.state for view in views} == expected


def test_resolve_states_stored_retired_key_keeps_its_times() -> None:
    retired = _row(
        "old", "retired", -60, retired_at=T0, expires_at=T0 + timedelta(minutes=5)
    )
    views = resolve_states([retired, _row("new", "active", 0)], T0, RETIRE)
    assert [(v.kid, v.state, v.expires_at) for v in views] == [
        ("old", "retired", T0 + timedelta(minutes=5)),
        ("new", "active", None),
    ]


def test_next_key_event_is_earliest_activation_or_expiry() -> None:
    rows = [
        _row("a", "retired", -60, retired_at=T0, expires_at=T0 + timedelta(minutes=7)),
        _row("b", "active", 0),
        _row("c", "pending", 5),
    ]
    views = resolve_states(rows, T0, RETIRE)
    assert next_key_event(views, T0) == T0 + timedelta(minutes=5)
    assert next_key_event(views[:2], T0) == T0 + timedelta(minutes=7)
    assert next_key_event(views[1:2], T0) is None


@pytest.mark.parametrize(
    ("event_in", "expected"),
    [(None, 30.0), (10.0, 10.05), (100.0, 30.0), (-5.0, 0.0)],
    ids=["no-event", "event-first", "interval-first", "overdue"],
)
def test_reload_delay_wakes_for_the_next_key_event(
    event_in: float | None, expected: float
) -> None:
    event = None if event_in is None else T0 + timedelta(seconds=event_in)
    assert reload_delay(event, T0, 30.0) == pytest.approx(expected)


async def test_key_reload_loop_picks_up_rotation_made_by_another_replica(
    db_url: str, database: AsyncEngine
) -> None:
    async with running_app(
        db_url, database, key_reload_interval=0.05, key_publish_delay=0
    ) as stack:
        stack.runtime.clock = utcnow
        other = await rotate_key(
            database,
            "RS256",
            publish_delay=timedelta(0),
            retire_after=RETIRE,
            cipher=PLAIN,
        )
        await eventually(lambda: stack.runtime.keys.signing.kid == other.kid)
        assert jwt_header(await _token(stack))["kid"] == other.kid


async def test_key_reload_loop_database_outage_is_logged_and_loop_recovers(
    db_url: str, database: AsyncEngine, json_logs: LogCapture
) -> None:
    async with running_app(db_url, database, key_reload_interval=0.02) as stack:
        stack.runtime.clock = utcnow
        healthy = stack.runtime.engine
        # Nothing listens on port 1: every connection attempt is refused.
        broken = make_engine(make_settings("postgresql://postgres@127.0.0.1:1/none"))
        stack.runtime.engine = broken
        try:
            await eventually(
                lambda: len(json_logs.by_logger("oauth_service.background")) >= 2
            )
            listener = stack.app.state.background.listener is not None  # Postgres
            assert stack.app.state.background.running == 2 + listener  # + back-channel
        finally:
            stack.runtime.engine = healthy
            await broken.dispose()
        line = json_logs.by_logger("oauth_service.background")[0]
        assert line["level"] == "WARNING"
        assert line["msg"].startswith("key reload failed: ConnectionRefusedError: ")
        assert "PRIVATE KEY" not in json_logs.text
        other = await rotate_key(
            database,
            "RS256",
            publish_delay=timedelta(0),
            retire_after=RETIRE,
            cipher=PLAIN,
        )
        await eventually(lambda: stack.runtime.keys.signing.kid == other.kid)


@pytest.fixture
def cli(
    db_url: str,
    database: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """The CLI against the test database."""
    return cli_runner(db_url, capsys, monkeypatch)


async def test_keys_cli_rotate_then_list_shows_pending_key_with_times(
    cli: Cli, database: AsyncEngine
) -> None:
    async with preserved_signing_keys(database):
        await wipe_signing_keys(database)
        first = await ensure_signing_key(database, "RS256", retire_after=RETIRE)
        code, out, err = await cli("keys", "rotate", "--delay", "120", "--json")
        assert (code, err) == (0, "")
        rotated = json.loads(out)
        assert set(rotated) == {
            "kid", "alg", "state", "created_at", "activates_at", "retired_at", "expires_at",
        }  # fmt: skip
        assert (rotated["alg"], rotated["state"]) == ("RS256", "pending")
        assert (rotated["retired_at"], rotated["expires_at"]) == (None, None)
        created = datetime.fromisoformat(rotated["created_at"])
        activates = datetime.fromisoformat(rotated["activates_at"])
        assert activates - created == timedelta(seconds=120)

        code, out, _ = await cli("keys", "list", "--json")
        assert code == 0
        listed = json.loads(out)
        assert [(k["kid"], k["state"]) for k in listed] == [
            (first, "active"),
            (rotated["kid"], "pending"),
        ]
        assert listed[1] == rotated

        code, out, _ = await cli("keys", "list")
        assert code == 0
        lines = out.splitlines()
        assert len(lines) == 2
        assert lines[1].startswith(f"{rotated['kid']}  RS256  pending  created=")
        assert "retired=-  expires=-" in lines[1]


async def test_a_superseded_key_stays_published_as_long_as_the_id_tokens_it_signed(
    cli: Cli, database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ID tokens (an hour by default) outlive access tokens: a relying party checks one, or sends it back as
    # id_token_hint, until it expires, so the key that signed it stays in the JWKS that long.
    monkeypatch.setenv("OAUTH_ACCESS_TOKEN_TTL", "600")
    monkeypatch.setenv("OAUTH_ID_TOKEN_TTL", "3600")
    async with preserved_signing_keys(database):
        await wipe_signing_keys(database)
        first = await ensure_signing_key(database, "RS256", retire_after=RETIRE)
        code, _, err = await cli("keys", "rotate", "--delay", "0", "--json")
        assert (code, err) == (0, "")
        code, out, _ = await cli("keys", "list", "--json")
        assert code == 0
        old = next(key for key in json.loads(out) if key["kid"] == first)
        retired = datetime.fromisoformat(old["retired_at"])
        expires = datetime.fromisoformat(old["expires_at"])
        assert expires - retired == timedelta(seconds=3600 + 60)
