"""Housekeeping: expired rows go, live rows stay (both databases), in batches; the CLI and the periodic task."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import pytest
from fastapi import FastAPI
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.db.housekeeping import PurgeReport, purge_expired
from oauth_service.db.key_rotation import retire_after
from oauth_service.db.tables import (
    AuthorizationCodeRow,
    AuthorizationRequestRow,
    LoginSessionClientRow,
    LoginSessionRow,
    RefreshTokenRow,
    RevokedTokenRow,
    SigningKeyRow,
    SubjectCutoffRow,
)
from oauth_service.oauth.clock import utcnow
from oauth_service.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import make_client, make_user
from tests.ops.cli_runner import Cli, cli_runner
from tests.ops.signing_keys import preserved_signing_keys

NOW = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
PAST = NOW - timedelta(seconds=1)
FUTURE = NOW + timedelta(hours=1)
RETIRE = retire_after(600)
# Nothing listens on port 1: connections are refused at once.
REFUSED_URL = "postgresql://postgres@127.0.0.1:1/none"
# For the CLI and the app, which run on the real clock.
EARLIER = utcnow() - timedelta(hours=1)


def _t(model: Any) -> Table:
    table: Table = model.__table__
    return table


CODES = _t(AuthorizationCodeRow)
REFRESH = _t(RefreshTokenRow)
REVOKED = _t(RevokedTokenRow)
SESSIONS = _t(LoginSessionRow)
SESSION_CLIENTS = _t(LoginSessionClientRow)
CUTOFFS = _t(SubjectCutoffRow)
REQUESTS = _t(AuthorizationRequestRow)
KEYS = _t(SigningKeyRow)


async def _owners(runtime: Runtime) -> tuple[str, str]:
    client, _ = await make_client(runtime, client_id="purge-app")
    user, _ = await make_user(runtime, email="purge@example.com")
    return client.client_id, user.id


def _code(name: str, client_id: str, user_id: str, **values: Any) -> dict[str, Any]:
    row = {
        "code_hash": name,
        "client_id": client_id,
        "user_id": user_id,
        "redirect_uri": None,
        "scope": "read",
        "code_challenge": None,
        "code_challenge_method": None,
        "auth_time": NOW - timedelta(hours=1),
        "created_at": NOW - timedelta(hours=1),
        "expires_at": PAST,
        "used_at": None,
        "family_id": None,
        "access_jti": None,
        "access_expires_at": None,
    }
    return row | values


def _refresh(
    name: str, family: uuid.UUID, client_id: str, user_id: str, **values: Any
) -> dict[str, Any]:
    row = {
        "id": uuid.uuid5(uuid.NAMESPACE_URL, name),
        "token_hash": name,
        "family_id": family,
        "parent_id": None,
        "client_id": client_id,
        "user_id": user_id,
        "scope": "read",
        "auth_time": None,
        "issued_at": NOW - timedelta(days=1),
        "expires_at": FUTURE,
        "family_expires_at": FUTURE,
        "rotated_at": None,
        "revoked_at": None,
        "access_jti": None,
        "access_expires_at": None,
    }
    return row | values


def _family(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, name)


async def _seed(engine: AsyncEngine, client_id: str, user_id: str) -> None:
    """Each table gets rows that must go (names starting "dead") and rows that must stay ("live")."""
    c, u = client_id, user_id
    codes = [
        _code("dead-unused", c, u),
        _code("live-unused", c, u, expires_at=FUTURE),
        # A used code stays while the access token it issued lives, so a replay can still revoke it.
        _code(
            "live-used", c, u, used_at=PAST, access_jti="j1", access_expires_at=FUTURE
        ),
        _code("dead-used", c, u, used_at=PAST, access_jti="j2", access_expires_at=PAST),
    ]
    f_over, f_live, f_idle, f_revoked = map(
        _family, ("over", "live", "idle", "revoked")
    )
    refresh = [
        # The family's absolute lifetime is over.
        _refresh("dead-over-1", f_over, c, u, family_expires_at=PAST, rotated_at=PAST),
        _refresh("dead-over-2", f_over, c, u, family_expires_at=PAST),
        # A live family keeps its rotated, expired ancestor: presenting it is how reuse is detected.
        _refresh("live-rotated", f_live, c, u, expires_at=PAST, rotated_at=PAST),
        _refresh("live-current", f_live, c, u),
        # Every token of the family idled out.
        _refresh("dead-idle-1", f_idle, c, u, expires_at=PAST, rotated_at=PAST),
        _refresh("dead-idle-2", f_idle, c, u, expires_at=PAST),
        # Revoked and expired goes; revoked but not yet expired stays.
        _refresh("dead-revoked", f_revoked, c, u, expires_at=PAST, revoked_at=PAST),
        _refresh("live-revoked", f_revoked, c, u, revoked_at=PAST),
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(CODES), codes)
        await conn.execute(insert(REFRESH), refresh)
        await conn.execute(
            insert(REVOKED),
            [
                {"jti": "dead-jti", "expires_at": PAST, "revoked_at": PAST},
                {"jti": "live-jti", "expires_at": FUTURE, "revoked_at": PAST},
            ],
        )
        await conn.execute(
            insert(SESSIONS),
            [
                {"id_hash": name, "user_id": u, "auth_time": PAST, "created_at": PAST, "expires_at": at,
                 "sid": f"{name}-sid"}
                for name, at in (("dead-session", PAST), ("live-session", FUTURE))
            ],
        )  # fmt: skip
        # The clients answered in each session: they go with their session.
        await conn.execute(
            insert(SESSION_CLIENTS),
            [
                {"sid": f"{name}-sid", "client_id": c, "user_id": u, "created_at": PAST}
                for name in ("dead-session", "live-session")
            ],
        )  # fmt: skip
        await conn.execute(
            insert(REQUESTS),
            [
                {"id_hash": name, "client_id": c, "params": {}, "created_at": PAST, "expires_at": at}
                for name, at in (("dead-request", PAST), ("live-request", FUTURE))
            ],
        )  # fmt: skip
        await conn.execute(
            insert(CUTOFFS),
            [
                {"kind": "user", "subject_id": name, "cutoff_at": PAST, "expires_at": at}
                for name, at in (("dead-cutoff", PAST), ("live-cutoff", FUTURE))
            ],
        )  # fmt: skip


async def _names(engine: AsyncEngine) -> dict[str, list[str]]:
    columns = {
        "authorization_codes": CODES.c.code_hash,
        "refresh_tokens": REFRESH.c.token_hash,
        "revoked_tokens": REVOKED.c.jti,
        "login_sessions": SESSIONS.c.id_hash,
        "authorization_requests": REQUESTS.c.id_hash,
        "subject_cutoffs": CUTOFFS.c.subject_id,
        "login_session_clients": SESSION_CLIENTS.c.sid,
    }
    async with engine.connect() as conn:
        return {
            name: sorted((await conn.execute(select(column))).scalars())
            for name, column in columns.items()
        }


async def test_purge_expired_rows_go_live_rows_stay(
    runtime: Runtime, database: AsyncEngine
) -> None:
    await _seed(database, *await _owners(runtime))
    report = await purge_expired(database, retire_after=RETIRE, clock=lambda: NOW)
    assert report.as_dict() == {
        "authorization_codes": 2,
        "refresh_tokens": 5,
        "revoked_tokens": 1,
        "login_sessions": 1,
        "authorization_requests": 1,
        "signing_keys": 0,
        "subject_cutoffs": 1,
        "login_session_clients": 1,
    }
    assert await _names(database) == {
        "authorization_codes": ["live-unused", "live-used"],
        "refresh_tokens": ["live-current", "live-revoked", "live-rotated"],
        "revoked_tokens": ["live-jti"],
        "login_sessions": ["live-session"],
        "authorization_requests": ["live-request"],
        "subject_cutoffs": ["live-cutoff"],
        "login_session_clients": ["live-session-sid"],
    }
    again = await purge_expired(database, retire_after=RETIRE, clock=lambda: NOW)
    assert again.total == 0


async def test_purge_backlog_larger_than_batch_is_deleted_in_batches(
    database: AsyncEngine,
) -> None:
    rows = [
        {"jti": f"old-{i}", "expires_at": PAST, "revoked_at": PAST} for i in range(7)
    ]
    rows.append({"jti": "keep", "expires_at": FUTURE, "revoked_at": PAST})
    async with database.begin() as conn:
        await conn.execute(insert(REVOKED), rows)
    report = await purge_expired(
        database, retire_after=RETIRE, clock=lambda: NOW, batch_size=3
    )
    assert report.revoked_tokens == 7
    assert (await _names(database))["revoked_tokens"] == ["keep"]


async def test_purge_retired_key_past_expiry_is_deleted_and_live_keys_stay(
    database: AsyncEngine,
) -> None:
    async with preserved_signing_keys(database):
        async with database.connect() as conn:
            before = set((await conn.execute(select(KEYS.c.kid))).scalars())
        async with database.begin() as conn:
            await conn.execute(
                insert(KEYS),
                [
                    {
                        "kid": kid,
                        "alg": "RS256",
                        "private_key": "unused",
                        "public_jwk": {},
                        "state": "retired",
                        "created_at": NOW - timedelta(days=2),
                        "activates_at": NOW - timedelta(days=2),
                        "retired_at": NOW - timedelta(days=1),
                        "expires_at": expires,
                    }
                    for kid, expires in (("gone-key", PAST), ("kept-key", FUTURE))
                ],
            )
        report = await purge_expired(database, retire_after=RETIRE, clock=lambda: NOW)
        assert report.signing_keys == 1
        async with database.connect() as conn:
            after = set((await conn.execute(select(KEYS.c.kid))).scalars())
        assert after == before | {"kept-key"}


@pytest.fixture
def cli(
    db_url: str,
    database: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """The CLI against the test database."""
    return cli_runner(db_url, capsys, monkeypatch)


async def test_purge_cli_json_reports_counts_by_table(
    cli: Cli, database: AsyncEngine
) -> None:
    await purge_expired(database, retire_after=RETIRE)  # leftovers of other tests
    async with database.begin() as conn:
        await conn.execute(
            insert(REVOKED),
            [{"jti": "cli-old", "expires_at": EARLIER, "revoked_at": EARLIER}],
        )
    code, out, _ = await cli("purge", "--json")
    assert code == 0
    assert json.loads(out) == {
        "authorization_codes": 0,
        "refresh_tokens": 0,
        "revoked_tokens": 1,
        "login_sessions": 0,
        "authorization_requests": 0,
        "signing_keys": 0,
        "subject_cutoffs": 0,
        "login_session_clients": 0,
    }
    code, out, _ = await cli("purge")
    assert code == 0
    assert out.splitlines()[-1] == "total: 0"


async def test_purge_cli_unreachable_database_is_one_line_exit_1(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", REFUSED_URL)
    code, out, err = await cli("purge", "--json")
    assert (code, out) == (1, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach the database: ")


async def test_purge_loop_runs_periodically_in_the_app(
    db_url: str, database: AsyncEngine
) -> None:
    async with database.begin() as conn:
        await conn.execute(
            insert(REVOKED),
            [{"jti": "loop-old", "expires_at": EARLIER, "revoked_at": EARLIER}],
        )
    application: FastAPI = create_app(make_settings(db_url, purge_interval=1))
    async with application.router.lifespan_context(application):
        listener = application.state.background.listener is not None  # Postgres
        assert application.state.background.running == 3 + listener  # + back-channel

        async def count() -> int:
            async with database.connect() as conn:
                return int(
                    (await conn.scalar(select(func.count()).select_from(REVOKED))) or 0
                )

        remaining = [await count()]
        assert remaining == [1]

        async def poll() -> None:
            remaining.append(await count())

        for _ in range(100):
            await poll()
            if remaining[-1] == 0:
                break
            await anyio.sleep(
                0.05
            )  # waiting for the loop's first pass (1 s), not for an expiry
        assert remaining[-1] == 0
    assert application.state.background.running == 0


def test_purge_report_total_sums_tables() -> None:
    report = PurgeReport(1, 2, 3, 4, 5, 6, 7)
    assert report.total == 28
