"""The CLI's logout parts: clients' logout registration, ``users logout``, and the back-channel logouts that
``users deactivate``, ``users set-password`` and ``users logout`` enqueue for the servers to deliver.
"""

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import build_runtime, close_runtime
from oauth_service.db.tables import LoginSessionRow
from oauth_service.outbound.http import outbound_client
from oauth_service.runtime.backchannel import DeliveryResult, deliver_due
from tests.backchannel_receiver import running_receiver
from tests.conftest import make_settings
from tests.factories import make_user
from tests.logout_helpers import (
    add_login_session,
    add_session_client,
    make_logout_client,
    outbox,
)
from tests.ops.cli_runner import Cli, cli_runner


@pytest.fixture
def cli(
    db_url: str,
    database: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """The CLI in-process against the test database (``tests.ops.cli_runner``)."""
    return cli_runner(db_url, capsys, monkeypatch)


async def test_clients_create_registers_the_logout_settings(cli: Cli) -> None:
    code, out, err = await cli(
        "clients", "create", "--name", "RP", "--grant-types", "authorization_code",
        "--redirect-uris", "https://rp.example/cb", "--scope", "openid", "--client-id", "rp",
        "--post-logout-redirect-uris", "https://rp.example/bye http://127.0.0.1:9000/bye",
        "--backchannel-logout-uri", "https://rp.example/backchannel",
        "--backchannel-logout-session-required", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert (
        body["post_logout_redirect_uris"],
        body["backchannel_logout_uri"],
        body["backchannel_logout_session_required"],
    ) == (
        ["https://rp.example/bye", "http://127.0.0.1:9000/bye"],
        "https://rp.example/backchannel",
        True,
    )
    code, out, _ = await cli("clients", "list", "--json")
    assert (
        json.loads(out)[0]["backchannel_logout_uri"] == "https://rp.example/backchannel"
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--backchannel-logout-uri",
            "http://rp.example/bc",
            "error: backchannel_logout_uri 'http://rp.example/bc' must use https "
            "(http only for 127.0.0.1, [::1] or localhost)\n",
        ),
        (
            "--post-logout-redirect-uris",
            "https://rp.example/bye#top",
            "error: post_logout_redirect_uri 'https://rp.example/bye#top' must not contain a fragment\n",
        ),
    ],
    ids=["backchannel-http", "logout-fragment"],
)
async def test_clients_create_refuses_bad_logout_uris(
    cli: Cli, option: str, value: str, message: str
) -> None:
    code, out, err = await cli(
        "clients", "create", "--name", "RP", "--grant-types", "authorization_code",
        "--redirect-uris", "https://rp.example/cb", option, value,
    )  # fmt: skip
    assert (code, out, err) == (2, "", message)


async def _session_with_client(db_url: str, uri: str) -> tuple[str, str]:
    """Carol, signed in once, with ``rp`` (receiving at ``uri``) answered in that session: (user id, sid)."""
    runtime = await build_runtime(make_settings(db_url))
    try:
        await make_logout_client(runtime, "rp", backchannel_logout_uri=uri)
        user, _ = await make_user(runtime, email="carol@example.com")
        sid = await add_login_session(runtime, user.id)
        await add_session_client(runtime, sid, "rp", user.id)
        return user.id, sid
    finally:
        await close_runtime(runtime)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("users", "deactivate", "--email", "carol@example.com"), "user_deactivated"),
        (
            (
                "users",
                "set-password",
                "--email",
                "carol@example.com",
                "--password",
                "a new passphrase",
            ),
            "password_changed",
        ),
        (("users", "logout", "--email", "carol@example.com"), "admin_logout"),
    ],
    ids=["deactivate", "set-password", "logout"],
)
async def test_cli_user_changes_enqueue_backchannel_logouts_that_a_server_delivers(
    cli: Cli, db_url: str, database: AsyncEngine, argv: tuple[str, ...], reason: str
) -> None:
    with running_receiver() as receiver:
        user_id, sid = await _session_with_client(db_url, receiver.url)
        code, _, err = await cli(*argv)
        assert (code, err) == (0, "")
        runtime = await build_runtime(
            make_settings(db_url, outbound_allow_private_networks=True)
        )
        try:
            rows = await outbox(runtime)
            assert [(r.client_id, r.subject, r.sid, r.reason) for r in rows] == [
                ("rp", user_id, sid, reason)
            ]
            async with outbound_client() as http:
                results = await deliver_due(runtime, http)
        finally:
            await close_runtime(runtime)
    assert results == [DeliveryResult("rp", "delivered", 1)]
    assert len(receiver.received) == 1
    async with database.connect() as conn:
        sessions = await conn.scalar(select(func.count()).select_from(LoginSessionRow))
    assert sessions == 0


async def test_users_logout_reports_what_it_queued(cli: Cli, db_url: str) -> None:
    user_id, _ = await _session_with_client(db_url, "https://rp.example/backchannel")
    code, out, err = await cli(
        "users", "logout", "--email", "carol@example.com", "--json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {"user_id": user_id, "backchannel_logouts": 1}
    code, out, err = await cli("users", "logout", "--email", "carol@example.com")
    assert (code, out, err) == (
        0,
        "logged out user carol@example.com: 0 back-channel logout(s) queued\n",
        "",
    )


async def test_users_logout_of_an_unknown_email_fails(cli: Cli) -> None:
    code, out, err = await cli("users", "logout", "--email", "nobody@example.com")
    assert (code, out, err) == (2, "", "error: no such user: 'nobody@example.com'\n")
