"""The ``oauth-service`` CLI, run in-process against the test database (SQLite, and Postgres when configured).

Bad input must print exactly one line on stderr, exit 2 and leave the database unchanged.
"""

import io
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
import uvicorn
from sqlalchemy import column, func, select, table, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from oauth_service.cli import main, server
from oauth_service.cli.demo import cli_program
from oauth_service.cli.server import prepare_metrics, uvicorn_options
from oauth_service.crypto.tokens import token_hash
from oauth_service.db.demo import database_key
from oauth_service.db.tables import ClientRow
from oauth_service.settings import Settings
from tests.conftest import ISSUER, make_settings

Result = tuple[int, str, str]
Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
def cli(
    db_url: str,
    database: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """Run ``main(argv)`` in a worker thread (it calls ``asyncio.run``); return (code, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("OAUTH_ISSUER", ISSUER)

    async def run(*argv: str) -> Result:
        capsys.readouterr()
        code = await anyio.to_thread.run_sync(main, list(argv))
        out, err = capsys.readouterr()
        # Drop JSON log records a root handler left by another test may write; the CLI itself configures none.
        err = "".join(
            line
            for line in err.splitlines(keepends=True)
            if not line.startswith('{"ts"')
        )
        return code, out, err

    return run


async def _count(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(select(func.count()).select_from(table(name)))
        return int(result.scalar_one())


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- users -------------------------------------------------------------------------------------------------


async def test_users_create_json_prints_user_without_hash(cli: Cli) -> None:
    code, out, err = await cli(
        "users",
        "create",
        "--email",
        "Ann@Example.com",
        "--password",
        "s3cret-pass",
        "--json",
    )
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert body == {
        "id": body["id"],
        "email": "Ann@Example.com",
        "is_active": True,
        "is_admin": False,
        **NO_CLAIMS,
        "updated_at": body["updated_at"],
    }


async def test_users_create_admin_text_output(cli: Cli) -> None:
    code, out, _ = await cli(
        "users",
        "create",
        "--email",
        "root@example.com",
        "--password",
        "s3cret-pass",
        "--admin",
    )
    assert code == 0
    assert out.startswith("created user root@example.com (id ")
    assert out.rstrip().endswith(" admin")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        (
            "ANN@example.com",
            "s3cret-pass",
            "error: a user with email 'ann@example.com' already exists",
        ),
        ("bob@example.com", "short", "error: password must be at least 8 characters"),
        ("not-an-email", "s3cret-pass", "error: invalid email address 'not-an-email'"),
    ],
    ids=["duplicate-email", "short-password", "bad-email"],
)
async def test_users_create_bad_input_exits_2_and_writes_nothing(
    cli: Cli, database: AsyncEngine, email: str, password: str, message: str
) -> None:
    await cli(
        "users", "create", "--email", "ann@example.com", "--password", "s3cret-pass"
    )
    code, out, err = await cli(
        "users", "create", "--email", email, "--password", password
    )
    assert (code, out) == (2, "")
    assert _one_error_line(err) == message
    assert await _count(database, "users") == 1


async def test_users_list_json_and_deactivate(cli: Cli) -> None:
    await cli(
        "users", "create", "--email", "b@example.com", "--password", "s3cret-pass"
    )
    await cli(
        "users", "create", "--email", "a@example.com", "--password", "s3cret-pass"
    )
    code, out, _ = await cli("users", "deactivate", "--email", "B@example.com")
    assert code == 0
    assert out.startswith("deactivated user b@example.com")
    code, out, _ = await cli("users", "list", "--json")
    assert code == 0
    assert [(u["email"], u["is_active"]) for u in json.loads(out)] == [
        ("a@example.com", True),
        ("b@example.com", False),
    ]


NO_CLAIMS: dict[str, Any] = {
    "name": None,
    "given_name": None,
    "family_name": None,
    "preferred_username": None,
    "picture": None,
    "locale": None,
    "zoneinfo": None,
    "email_verified": False,
}
CLAIM_OPTIONS = (
    "--name",
    "Ann Smith",
    "--given-name",
    "Ann",
    "--family-name",
    "Smith",
    "--preferred-username",
    "ann",
    "--picture",
    "https://img.example/ann.png",
    "--locale",
    "en-US",
    "--zoneinfo",
    "America/New_York",
    "--email-verified",
)
CLAIMS = {
    "name": "Ann Smith",
    "given_name": "Ann",
    "family_name": "Smith",
    "preferred_username": "ann",
    "picture": "https://img.example/ann.png",
    "locale": "en-US",
    "zoneinfo": "America/New_York",
    "email_verified": True,
}


async def _create_ann(cli: Cli, *options: str) -> dict[str, Any]:
    code, out, err = await cli(
        "users",
        "create",
        "--email",
        "ann@example.com",
        "--password",
        "s3cret-pass",
        *options,
        "--json",
    )
    assert (code, err) == (0, "")
    body: dict[str, Any] = json.loads(out)
    return body


async def test_users_create_with_claims_json_and_text(cli: Cli) -> None:
    body = await _create_ann(cli, *CLAIM_OPTIONS)
    assert body == {
        "id": body["id"],
        "email": "ann@example.com",
        "is_active": True,
        "is_admin": False,
        **CLAIMS,
        "updated_at": body["updated_at"],
    }
    code, out, _ = await cli("users", "list")
    assert (code, out) == (0, f"{body['id']}  ann@example.com  active  Ann Smith\n")
    code, out, _ = await cli(
        "users", "update", "--email", "ann@example.com", "--name", "Ann B. Smith"
    )
    assert code == 0
    assert out == (
        f"updated user ann@example.com (id {body['id']})\n"
        "  name: Ann B. Smith\n  given_name: Ann\n  family_name: Smith\n"
        "  preferred_username: ann\n  picture: https://img.example/ann.png\n"
        "  locale: en-US\n  zoneinfo: America/New_York\n  email_verified: true\n"
    )


async def test_users_update_changes_only_given_claims_and_bumps_updated_at(
    cli: Cli, database: AsyncEngine
) -> None:
    created = await _create_ann(cli, *CLAIM_OPTIONS)
    async with (
        database.begin() as conn
    ):  # an hour ago, so the bump shows within the second
        await conn.execute(
            update(table("users", column("updated_at"))).values(
                updated_at=datetime.now(UTC) - timedelta(hours=1)
            )
        )
    before_update = int(datetime.now(UTC).timestamp())
    code, out, err = await cli(
        "users",
        "update",
        "--email",
        "ANN@example.com",
        "--locale",
        "fr",
        "--picture",
        "",
        "--no-email-verified",
        "--json",
    )
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert body == {
        **created,
        "picture": None,
        "locale": "fr",
        "email_verified": False,
        "updated_at": body["updated_at"],
    }
    assert body["updated_at"] >= before_update  # not the hour-old value
    code, out, _ = await cli("users", "list", "--json")
    assert json.loads(out) == [body]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--picture", "ftp://img.example/a.png"),
            "error: picture must be an http or https URL, not 'ftp://img.example/a.png'",
        ),
        (
            ("--picture", "not a url"),
            "error: picture must be an http or https URL, not 'not a url'",
        ),
        (
            ("--picture", "http://[::1"),
            "error: picture must be an http or https URL, not 'http://[::1'",
        ),
        (
            ("--picture", "https://[zz]/"),
            "error: picture must be an http or https URL, not 'https://[zz]/'",
        ),
        (
            ("--locale", "en_US"),
            "error: locale must be a BCP 47 language tag such as 'en' or 'en-US', "
            "not 'en_US'",
        ),
        (
            ("--zoneinfo", "Mars/Olympus"),
            "error: zoneinfo must be a time zone name such as 'Europe/Paris', "
            "not 'Mars/Olympus'",
        ),
        (("--name", "x" * 256), "error: name must be at most 255 characters"),
        (
            ("--given-name", "a\u0007b"),
            "error: given_name must not contain control characters",
        ),
    ],
    ids=[
        "picture-scheme",
        "picture-not-url",
        "picture-unclosed-ipv6",
        "picture-bad-ipv6",
        "locale",
        "zoneinfo",
        "long-name",
        "control",
    ],
)
@pytest.mark.parametrize("command", ["create", "update"])
async def test_users_bad_claim_is_one_line_exit_2_and_writes_nothing(
    cli: Cli,
    database: AsyncEngine,
    command: str,
    options: tuple[str, ...],
    message: str,
) -> None:
    created = await _create_ann(cli)
    argv: tuple[str, ...]
    if command == "create":
        argv = ("create", "--email", "bob@example.com", "--password", "s3cret-pass")
    else:
        argv = ("update", "--email", "ann@example.com")
    code, out, err = await cli("users", *argv, *options)
    assert (code, out) == (2, "")
    assert _one_error_line(err) == message
    assert await _count(database, "users") == 1
    code, out, _ = await cli("users", "list", "--json")
    assert json.loads(out) == [created]


async def test_users_update_without_claims_or_unknown_user_is_one_line_exit_2(
    cli: Cli,
) -> None:
    code, out, err = await cli("users", "update", "--email", "ann@example.com")
    assert (code, out) == (2, "")
    assert _one_error_line(err) == (
        "error: nothing to update: pass at least one claim option (see --help)"
    )
    code, out, err = await cli(
        "users", "update", "--email", "nobody@example.com", "--name", "X"
    )
    assert (code, out) == (2, "")
    assert _one_error_line(err) == "error: no such user: 'nobody@example.com'"


@pytest.mark.parametrize("command", ["create", "set-password"])
async def test_users_password_without_terminal_or_flag_is_one_line_exit_2(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A script that forgot --password gets one line, not getpass's echo warning and an abort."""
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass\ns3cret-pass\n"))
    code, out, err = await cli("users", command, "--email", "a@example.com")
    assert (code, out) == (2, "")
    assert _one_error_line(err) == (
        "error: no terminal to ask for the password on: pass --password"
    )


async def test_users_set_password_unknown_user_exits_2(cli: Cli) -> None:
    code, _, err = await cli(
        "users",
        "set-password",
        "--email",
        "ghost@example.com",
        "--password",
        "s3cret-pass",
    )
    assert code == 2
    assert _one_error_line(err) == "error: no such user: 'ghost@example.com'"


# --- clients -----------------------------------------------------------------------------------------------


async def test_clients_create_json_shape_and_hashed_secret(
    cli: Cli, database: AsyncEngine
) -> None:
    code, out, err = await cli(
        "clients", "create", "--name", "Web", "--grant-types", "authorization_code refresh_token",
        "--redirect-uris", "https://app.example.com/cb http://127.0.0.1:8765/cb",
        "--scope", "read write", "--client-id", "web", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    body: dict[str, Any] = json.loads(out)
    secret = body.pop("client_secret")
    assert isinstance(body.pop("client_id_issued_at"), int)
    assert body == {
        "client_id": "web",
        "client_name": "Web",
        "first_party": False,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1:8765/cb"],
        "post_logout_redirect_uris": [],
        "backchannel_logout_uri": None,
        "backchannel_logout_session_required": False,
        "scope": "read write",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret_expires_at": 0,
    }
    async with database.connect() as conn:
        stored = await conn.scalar(select(col(ClientRow.secret_hash)))
    assert stored == token_hash(secret)


async def test_clients_create_public_json_has_no_secret_fields(cli: Cli) -> None:
    code, out, _ = await cli(
        "clients", "create", "--name", "SPA", "--grant-types", "authorization_code",
        "--redirect-uris", "com.example.app:/cb", "--public", "--json",
    )  # fmt: skip
    assert code == 0
    body = json.loads(out)
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"


async def test_clients_create_text_shows_secret_once(cli: Cli) -> None:
    code, out, _ = await cli(
        "clients", "create", "--name", "svc", "--grant-types", "client_credentials",
        "--redirect-uris", "", "--client-id", "svc",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "client_id:     svc"
    assert lines[1].startswith("client_secret: ")
    assert lines[2] == "Store the secret now: it is shown only once."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--grant-types", "client_credentials teleport"],
            "error: unknown grant type 'teleport' (known: authorization_code, client_credentials, implicit, password, refresh_token)",
        ),
        (
            ["--grant-types", "client_credentials", "--scope", "read delete_all"],
            "error: unknown scope 'delete_all' (create it with: scopes create)",
        ),
        (
            [
                "--grant-types",
                "authorization_code",
                "--redirect-uris",
                "https://a.example/cb#top",
            ],
            "error: redirect URI 'https://a.example/cb#top' must not contain a fragment",
        ),
        (
            [
                "--grant-types",
                "authorization_code",
                "--redirect-uris",
                "http://a.example/cb",
            ],
            "error: redirect URI 'http://a.example/cb' must use https (http only for 127.0.0.1, [::1] or localhost)",
        ),
        (
            ["--grant-types", "client_credentials", "--public"],
            "error: a public client cannot use client_credentials (it has no secret)",
        ),
        (
            ["--grant-types", "authorization_code", "--redirect-uris", ""],
            "error: grant type 'authorization_code' needs at least one redirect URI",
        ),
        (
            ["--grant-types", "implicit", "--redirect-uris", "myapp:/cb"],
            "error: redirect URI 'myapp:/cb' must be https, loopback http, or a reverse-DNS private-use scheme",
        ),
        (
            ["--grant-types", "client_credentials", "--client-id", "existing"],
            "error: client_id 'existing' already exists",
        ),
        (["--grant-types"], "error: Option '--grant-types' requires an argument."),
    ],
    ids=[
        "unknown-grant",
        "unknown-scope",
        "fragment",
        "http-not-loopback",
        "public-client-credentials",
        "code-without-redirect",
        "custom-scheme",
        "duplicate-client-id",
        "usage",
    ],
)
async def test_clients_create_bad_input_exits_2_and_writes_nothing(
    cli: Cli, database: AsyncEngine, args: list[str], message: str
) -> None:
    await cli(
        "clients",
        "create",
        "--name",
        "x",
        "--grant-types",
        "client_credentials",
        "--client-id",
        "existing",
    )
    code, out, err = await cli("clients", "create", "--name", "new", *args)
    assert (code, out) == (2, "")
    assert _one_error_line(err) == message
    assert await _count(database, "clients") == 1


async def test_clients_list_json_never_shows_secrets(cli: Cli) -> None:
    await cli(
        "clients",
        "create",
        "--name",
        "b",
        "--grant-types",
        "client_credentials",
        "--client-id",
        "b",
    )
    await cli(
        "clients",
        "create",
        "--name",
        "a",
        "--grant-types",
        "client_credentials",
        "--client-id",
        "a",
    )
    code, out, _ = await cli("clients", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [c["client_id"] for c in listed] == ["a", "b"]
    assert all("client_secret" not in c for c in listed)


async def test_clients_list_prints_an_aligned_table(cli: Cli) -> None:
    await cli(
        "clients", "create", "--name", "Web app", "--grant-types", "authorization_code refresh_token",
        "--redirect-uris", "https://app.example.com/cb http://127.0.0.1:8765/cb",
        "--scope", "read write", "--client-id", "web", "--first-party",
    )  # fmt: skip
    await cli(
        "clients", "create", "--name", "Billing", "--grant-types", "client_credentials",
        "--redirect-uris", "", "--scope", "", "--client-id", "billing",
    )  # fmt: skip
    await cli(
        "clients", "create", "--name", "SPA", "--grant-types", "authorization_code",
        "--redirect-uris", "com.example.app:/cb", "--public", "--client-id", "spa",
    )  # fmt: skip
    code, out, err = await cli("clients", "list")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "CLIENT ID  NAME     TYPE                       GRANT TYPES         SCOPE       REDIRECT URIS",
        "billing    Billing  confidential               client_credentials  -           -",
        "spa        SPA      public                     authorization_code  read        com.example.app:/cb",
        "web        Web app  confidential, first-party  authorization_code  read write  https://app.example.com/cb",
        "                                               refresh_token                   http://127.0.0.1:8765/cb",
    ]


async def test_clients_list_without_clients_says_how_to_add_one(cli: Cli) -> None:
    assert await cli("clients", "list") == (
        0,
        "no clients (register one with: oauth-service clients create)\n",
        "",
    )


async def test_clients_delete_then_unknown_exits_2(
    cli: Cli, database: AsyncEngine
) -> None:
    await cli(
        "clients",
        "create",
        "--name",
        "a",
        "--grant-types",
        "client_credentials",
        "--client-id",
        "a",
    )
    assert await cli("clients", "delete", "a", "--json") == (
        0,
        '{\n  "client_id": "a",\n  "deleted": true\n}\n',
        "",
    )
    assert await _count(database, "clients") == 0
    code, _, err = await cli("clients", "delete", "a")
    assert code == 2
    assert _one_error_line(err) == "error: no such client: 'a'"


async def test_clients_rotate_secret_prints_new_secret(cli: Cli) -> None:
    _, out, _ = await cli(
        "clients",
        "create",
        "--name",
        "a",
        "--grant-types",
        "client_credentials",
        "--client-id",
        "a",
        "--json",
    )
    old = json.loads(out)["client_secret"]
    code, out, _ = await cli("clients", "rotate-secret", "a", "--json")
    assert code == 0
    assert json.loads(out)["client_secret"] not in {old, None}


# --- scopes ------------------------------------------------------------------------------------------------


async def test_scopes_create_and_list_json(cli: Cli) -> None:
    code, out, _ = await cli(
        "scopes", "create", "notes:read", "--description", "Read notes", "--json"
    )
    assert code == 0
    assert json.loads(out) == {"name": "notes:read", "description": "Read notes"}
    code, out, _ = await cli("scopes", "list", "--json")
    # With the OpenID Connect scopes migration 0004 seeds.
    assert [s["name"] for s in json.loads(out)] == [
        "admin",
        "email",
        "notes:read",
        "offline_access",
        "openid",
        "profile",
        "read",
        "write",
    ]


async def test_scopes_create_invalid_token_exits_2(
    cli: Cli, database: AsyncEngine
) -> None:
    code, _, err = await cli("scopes", "create", 'bad"scope')
    assert code == 2
    assert _one_error_line(err).startswith(
        "error: scope 'bad\"scope' is not a valid scope token"
    )
    # The seeded scopes, OpenID Connect's included; nothing added.
    assert await _count(database, "scopes") == 7


# --- settings, usage, database errors ----------------------------------------------------------------------


async def test_invalid_settings_exit_2_with_one_line(
    cli: Cli, database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTH_SIGNING_ALG", "HS256")
    code, out, err = await cli(
        "users", "create", "--email", "a@example.com", "--password", "s3cret-pass"
    )
    assert (code, out) == (2, "")
    assert (
        _one_error_line(err)
        == "error: invalid setting OAUTH_SIGNING_ALG: Input should be 'RS256' or 'ES256'"
    )
    assert await _count(database, "users") == 0


async def test_missing_option_exits_2_with_one_line(cli: Cli) -> None:
    code, _, err = await cli("clients", "create", "--grant-types", "client_credentials")
    assert code == 2
    assert _one_error_line(err) == "error: Missing option '--name'."


async def test_unreachable_database_exits_1_with_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = await cli("users", "list")
    assert code == 1
    assert _one_error_line(err).startswith("error: cannot reach the database: ")


async def test_unmigrated_database_exits_1_naming_migrate(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    code, _, err = await cli("clients", "list")
    assert code == 1
    assert _one_error_line(err) == (
        "error: database error: no such table: clients (is it up and migrated? run: oauth-service migrate)"
    )


# --- migrate, serve ----------------------------------------------------------------------------------------


async def test_migrate_fresh_sqlite_then_bad_revision_exits_2(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    monkeypatch.setenv("DATABASE_URL", url)
    assert await cli("migrate") == (0, f"database {url} migrated to head\n", "")
    assert (await cli("scopes", "list"))[0] == 0
    code, _, err = await cli("migrate", "--revision", "nope")
    assert code == 2
    assert (
        _one_error_line(err)
        == "error: migration failed: Can't locate revision identified by 'nope'"
    )


def test_uvicorn_options_trust_forwarded_headers_only_from_configured_proxies() -> None:
    base = make_settings("sqlite+aiosqlite:///x.db")
    options = uvicorn_options(base, host="192.0.2.1", port=9000, workers=4)
    assert options["factory"] is True
    assert (options["host"], options["port"], options["workers"]) == (
        "192.0.2.1",
        9000,
        4,
    )
    assert (options["loop"], options["http"]) == (
        "uvloop",
        "oauth_service.cli.request_head:BoundedHttpToolsProtocol",
    )
    assert options["h11_max_incomplete_event_size"] == 32 * 1024
    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (False, None)
    proxied: Settings = make_settings(
        "sqlite+aiosqlite:///x.db", trusted_proxies="10.0.0.1, 10.0.0.2"
    )
    options = uvicorn_options(proxied, host="127.0.0.1", port=8000, workers=1)
    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (
        True,
        "10.0.0.1,10.0.0.2",
    )


def test_uvicorn_options_log_once_as_json_and_drain_on_shutdown() -> None:
    options = uvicorn_options(
        make_settings("sqlite+aiosqlite:///x.db"),
        host="127.0.0.1",
        port=8000,
        workers=2,
    )
    assert options["log_config"] is None
    assert options["access_log"] is False
    assert options["timeout_graceful_shutdown"] == 25


def test_prepare_metrics_with_several_workers_turns_on_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    prepare_metrics(
        make_settings("sqlite+aiosqlite:///x.db"), host="127.0.0.1", workers=2
    )
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert Path(directory).is_dir()
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    Path(directory).rmdir()


def test_prepare_metrics_with_one_worker_keeps_single_process_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    prepare_metrics(
        make_settings("sqlite+aiosqlite:///x.db"), host="127.0.0.1", workers=1
    )
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


# --- demo --------------------------------------------------------------------------------------------------


async def test_demo_json_seeds_user_and_one_client_per_grant(
    cli: Cli, database: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "demo.json"
    code, out, err = await cli("demo", "--json", "--file", str(path))
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert body["docs_url"] == f"{ISSUER}/docs"
    assert body["user"]["email"] == "demo@example.com"
    clients = {c["client_id"]: c for c in body["clients"]}
    assert {
        k: (c["grant_types"], c["token_endpoint_auth_method"])
        for k, c in clients.items()
    } == {
        "demo-service": (["client_credentials"], "client_secret_basic"),
        "demo-password": (["password", "refresh_token"], "client_secret_basic"),
        "demo-web": (["authorization_code", "refresh_token"], "client_secret_basic"),
        "demo-spa": (["authorization_code", "refresh_token"], "none"),
        "demo-implicit": (["implicit"], "none"),
    }
    assert clients["demo-spa"]["client_secret"] is None
    service_secret = clients["demo-service"]["client_secret"]
    assert body["commands"]["client_credentials"] == (
        f"{cli_program()} perform client-credentials --endpoint={ISSUER}"
        f" --client-id=demo-service --client-secret={service_secret} --scope read"
    )
    assert body["commands"]["client_credentials_curl"] == (
        f"curl -u demo-service:{service_secret} -d 'grant_type=client_credentials&scope=read' {ISSUER}/oauth/token"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (kept,) = json.loads(path.read_text())["databases"].values()
    assert kept["secrets"]["demo-service"] == service_secret
    assert clients["demo-web"]["redirect_uris"] == [
        f"{ISSUER}/docs/oauth2-redirect",
        "http://127.0.0.1/callback",
    ]
    assert body["changes"] == []
    assert (await _count(database, "clients"), await _count(database, "users")) == (
        5,
        1,
    )


async def test_demo_second_run_reuses_credentials(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    first = json.loads((await cli("demo", "--json", "--file", str(path)))[1])
    second = json.loads((await cli("demo", "--json", "--file", str(path)))[1])
    assert second["user"] == first["user"]
    assert second["clients"] == first["clients"]


async def _client_scopes(database: AsyncEngine) -> dict[str, str]:
    async with database.connect() as conn:
        rows = await conn.execute(
            select(col(ClientRow.client_id), col(ClientRow.scopes))
        )
        return {str(client_id): str(scopes) for client_id, scopes in rows.all()}


DEMO_CLAIMS = {
    "name": "Demo User",
    "given_name": "Demo",
    "family_name": "User",
    "preferred_username": "demo",
    "picture": None,
    "locale": "en",
    "zoneinfo": "UTC",
    "email_verified": True,
}
OIDC_CLIENT_SCOPES = "email offline_access openid profile read write"


async def test_demo_user_has_claims_and_browser_clients_openid_scopes(
    cli: Cli, database: AsyncEngine, tmp_path: Path
) -> None:
    await cli("demo", "--json", "--file", str(tmp_path / "demo.json"))
    (user,) = json.loads((await cli("users", "list", "--json"))[1])
    assert {name: user[name] for name in DEMO_CLAIMS} == DEMO_CLAIMS
    assert await _client_scopes(database) == {
        "demo-service": "read write",
        "demo-password": "read write",
        "demo-web": OIDC_CLIENT_SCOPES,
        "demo-spa": OIDC_CLIENT_SCOPES,
        "demo-implicit": OIDC_CLIENT_SCOPES,
    }


async def test_demo_fills_in_claims_and_scopes_of_an_older_seed(
    cli: Cli, database: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "demo.json"
    first = json.loads((await cli("demo", "--json", "--file", str(path)))[1])
    async with database.begin() as conn:  # as seeded before OpenID Connect
        await conn.execute(update(table("users", column("name"))).values(name=None))
        await conn.execute(
            update(table("clients", column("scopes"))).values(scopes="read write")
        )
    code, out, err = await cli("demo", "--json", "--file", str(path))
    assert code == 0
    assert json.loads(out)["user"] == first["user"]  # the kept password still works
    assert err.splitlines() == [
        "note: the demo filled in the OpenID Connect claims of demo@example.com",
        "note: the demo added the scopes email offline_access openid profile to demo-web",
        "note: the demo added the scopes email offline_access openid profile to demo-spa",
        "note: the demo added the scopes email offline_access openid profile to "
        "demo-implicit",
    ]
    (user,) = json.loads((await cli("users", "list", "--json"))[1])
    assert {name: user[name] for name in DEMO_CLAIMS} == DEMO_CLAIMS
    assert (await _client_scopes(database))["demo-web"] == OIDC_CLIENT_SCOPES


async def test_demo_with_lost_file_heals_credentials(
    cli: Cli, database: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "demo.json"
    first = json.loads((await cli("demo", "--json", "--file", str(path)))[1])
    path.unlink()
    code, out, err = await cli("demo", "--json", "--file", str(path))
    healed = json.loads(out)
    assert code == 0
    assert healed["user"]["password"] != first["user"]["password"]
    # Loud: whoever copied the old secrets learns which ones stopped working.
    assert err.splitlines() == [
        "note: the demo reset the password of demo@example.com (not the one kept)",
        "note: the demo issued a new secret for demo-service (not the one kept)",
        "note: the demo issued a new secret for demo-password (not the one kept)",
        "note: the demo issued a new secret for demo-web (not the one kept)",
    ]
    secret = {c["client_id"]: c["client_secret"] for c in healed["clients"]}["demo-web"]
    async with database.connect() as conn:
        stored = await conn.scalar(
            select(col(ClientRow.secret_hash)).where(
                col(ClientRow.client_id) == "demo-web"
            )
        )
    assert stored == token_hash(secret)
    assert (await _count(database, "clients"), await _count(database, "users")) == (
        5,
        1,
    )


async def test_demo_on_another_port_moves_redirect_uris_and_says_so(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "demo.json"
    first = json.loads((await cli("demo", "--json", "--file", str(path)))[1])
    monkeypatch.setenv("OAUTH_ISSUER", "http://127.0.0.1:7700")
    code, out, err = await cli("demo", "--json", "--file", str(path))
    moved = json.loads(out)
    assert code == 0
    docs = "http://127.0.0.1:7700/docs/oauth2-redirect"
    uris = {c["client_id"]: c["redirect_uris"] for c in moved["clients"]}
    assert uris["demo-implicit"] == [docs]
    assert uris["demo-spa"] == [docs, "http://127.0.0.1/callback"]
    assert moved["commands"]["implicit_open"].startswith(
        "http://127.0.0.1:7700/oauth/authorize?"
    )
    assert (
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A7700%2Fdocs"
        in moved["commands"]["implicit_open"]
    )
    # Credentials stay; only the redirect URIs follow the server, and the demo says which.
    assert moved["user"] == first["user"]
    assert err.splitlines() == [
        f"note: the demo set the redirect URIs of {client} to {' '.join(uris[client])}"
        for client in ("demo-web", "demo-spa", "demo-implicit")
    ]
    registered = json.loads((await cli("clients", "list", "--json"))[1])
    stored = {c["client_id"]: c["redirect_uris"] for c in registered}
    assert stored["demo-implicit"] == [docs]


async def test_demo_keeps_credentials_per_database(
    cli: Cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "demo.json"
    first = json.loads((await cli("demo", "--json", "--file", str(path)))[1])
    other = f"sqlite+aiosqlite:///{tmp_path}/other.db"
    monkeypatch.setenv("DATABASE_URL", other)
    assert (await cli("migrate"))[0] == 0
    code, out, err = await cli("demo", "--json", "--file", str(path))
    assert (code, err) == (0, "")  # a new database: created, nothing reset
    second = json.loads(out)
    assert second["user"]["password"] != first["user"]["password"]
    assert len(json.loads(path.read_text())["databases"]) == 2
    monkeypatch.setenv("DATABASE_URL", db_url)
    code, out, err = await cli("demo", "--json", "--file", str(path))
    # Back on the first database: its own credentials still work, nothing is reset.
    assert (code, err) == (0, "")
    assert json.loads(out)["user"] == first["user"]


def test_demo_file_keys_databases_without_their_password() -> None:
    assert database_key("postgresql+asyncpg://app:s3cret@db:5432/oauth") == (
        "postgresql+asyncpg://app@db:5432/oauth"
    )
    assert (
        database_key("sqlite+aiosqlite:///./oauth.db")
        == "sqlite+aiosqlite:///./oauth.db"
    )


async def test_demo_text_prints_docs_url_and_one_perform_line_per_grant(
    cli: Cli, tmp_path: Path
) -> None:
    code, out, _ = await cli("demo", "--file", str(tmp_path / "demo.json"))
    assert code == 0
    assert f"  API docs:  {ISSUER}/docs" in out
    performs = [line for line in out.splitlines() if " perform " in line]
    assert [line.split()[:3] for line in performs] == [
        [cli_program(), "perform", grant]
        for grant in (
            "client-credentials",
            "password",
            "refresh",
            "authorization-code",
            "authorization-code",
            "authorization-code",
        )
    ]
    assert " --email=demo@example.com --password=" in performs[1]
    assert performs[5].endswith("--scope 'openid profile email'")
    assert out.count("curl ") == 3


@pytest.mark.slow
async def test_serve_starts_uvicorn_that_answers_readyz(
    cli: Cli, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/served.db",
        "OAUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OAUTH_METRICS_ENABLED": "false",
    }
    migrated = await anyio.run_process(
        [sys.executable, "-m", "oauth_service", "migrate"], env=env, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = await anyio.open_process(
            [sys.executable, "-m", "oauth_service", "serve", "--port", str(port)],
            env=env, stdout=sink, stderr=sink,
        )  # fmt: skip
        async with server:
            try:
                response = None
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}"
                ) as http:
                    for _ in range(100):
                        try:
                            response = await http.get("/readyz")
                            break
                        except httpx.TransportError:
                            await anyio.sleep(
                                0.1
                            )  # waiting for the process to bind, not for expiry
                assert response is not None, "server did not start"
                assert response.status_code == 200
                assert response.json() == {"status": "ok", "database": "ok"}
                assert "server" not in response.headers
            finally:
                server.terminate()
                with anyio.fail_after(30):
                    await server.wait()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert server.returncode in {0, -signal.SIGTERM}
    assert "Application shutdown complete" in log.read_text()


@pytest.mark.parametrize(
    ("workers", "cpus", "expected"), [(1, 2, 2), (2, 2, 1), (4, 2, 1), (3, 8, 2)]
)
def test_hash_threads_share_the_cpus_among_workers(
    workers: int, cpus: int, expected: int
) -> None:
    assert server.hash_threads_per_worker(workers, cpus) == expected


@pytest.mark.parametrize(("preset", "expected"), [(None, "2"), ("3", "3")])
def test_serve_gives_each_worker_its_share_of_hash_threads(
    monkeypatch: pytest.MonkeyPatch, preset: str | None, expected: str
) -> None:
    """Never more concurrent argon2 hashes than cores across the workers, unless the operator says so."""
    if preset is None:
        monkeypatch.delenv(server.HASH_THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(server.HASH_THREADS_ENV, preset)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    seen: dict[str, str | None] = {}
    monkeypatch.setattr(
        server,
        "settings_or_exit",
        lambda: make_settings("sqlite+aiosqlite:///unused.db"),
    )
    monkeypatch.setattr(server, "check_database_or_exit", lambda _settings: None)
    monkeypatch.setattr(server, "check_keys_or_exit", lambda _settings: None)
    monkeypatch.setattr(server, "prepare_metrics", lambda *_a, **_k: None)
    monkeypatch.setattr(server, "configure_logging", lambda *_a, **_k: lambda: None)
    monkeypatch.setattr(signal, "signal", lambda *_a: None)
    monkeypatch.setattr(
        uvicorn,
        "run",
        lambda *_a, **_k: seen.update(threads=os.environ.get(server.HASH_THREADS_ENV)),
    )
    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")
    server.serve(host="127.0.0.1", port=8000, workers=2)
    assert seen == {"threads": expected}


async def test_password_hash_threads_setting_bounds_the_hasher(
    db_url: str, settings: Settings
) -> None:
    del settings  # requested for the database fixture (migrated, cleaned up)
    from oauth_service.app import create_app

    app = create_app(make_settings(db_url, password_hash_threads=3))
    async with app.router.lifespan_context(app):
        assert app.state.runtime.passwords._max_threads == 3
