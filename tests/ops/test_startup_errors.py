"""Start-up mistakes answer with one line naming the problem and the fix, and a non-zero exit status.

``oauth-service serve`` checks the database (reachable, migrated to head) and the settings before uvicorn
starts. The app's own start-up, as plain ``uvicorn --factory`` runs it, has uvicorn log one line instead of the
traceback.
"""

import os
import sys
from pathlib import Path

import anyio
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from starlette.types import Message

from oauth_service.api.startup_failure import startup_problem
from oauth_service.app import create_app
from oauth_service.db.engine import make_engine
from oauth_service.db.migrations import script_location
from oauth_service.settings import load_settings
from tests.conftest import make_settings
from tests.live_server import free_port
from tests.ops.cli_runner import Cli, cli_runner

HEAD = ScriptDirectory(str(script_location())).get_current_head()
CONVENTIONAL = {"DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "LOG_FORMAT"}


def _environment(**values: str) -> dict[str, str]:
    """The machine's environment without any of the service's settings, plus ``values``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("OAUTH_") and name not in CONVENTIONAL
    }
    return {**env, **values}


async def test_serve_before_migrate_prints_one_line_and_exits_1(
    tmp_path: Path,
) -> None:
    # The URL as a newcomer types it, relative to the working directory.
    command = [sys.executable, "-m", "oauth_service", "serve", "--port", str(free_port())]  # fmt: skip
    done = await anyio.run_process(
        command,
        env=_environment(DATABASE_URL="sqlite:///fresh.db"),
        cwd=tmp_path,
        check=False,
    )
    assert (done.returncode, done.stdout.decode()) == (1, "")
    assert done.stderr.decode() == (
        "error: database sqlite+aiosqlite:///fresh.db is not migrated; run: oauth-service migrate\n"
    )


async def test_plain_uvicorn_on_unmigrated_database_logs_one_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "uvicorn", "--factory", "oauth_service.app:create_app", "--port", str(free_port())]  # fmt: skip
    done = await anyio.run_process(
        command,
        env=_environment(DATABASE_URL="sqlite:///fresh.db"),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 3  # uvicorn's status for a failed start-up
    assert done.stderr.decode().splitlines()[2:] == [
        "ERROR:    cannot start: database error: no such table: signing_keys "
        "(is it up and migrated? run: oauth-service migrate)",
        "ERROR:    Application startup failed. Exiting.",
    ]


@pytest.fixture
def fresh_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """The CLI on a database file of this test's own, not yet created."""
    for name in CONVENTIONAL:
        monkeypatch.delenv(name, raising=False)
    return cli_runner(
        f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", capsys, monkeypatch
    )


async def test_serve_on_database_behind_head_names_both_revisions(
    fresh_cli: Cli, tmp_path: Path
) -> None:
    assert (await fresh_cli("migrate", "--revision", "0001"))[0] == 0
    code, out, err = await fresh_cli("serve", "--port", str(free_port()))
    assert (code, out) == (1, "")
    assert err == (
        f"error: database sqlite+aiosqlite:///{tmp_path / 'fresh.db'} is at revision 0001, not {HEAD}; "
        "run: oauth-service migrate\n"
    )


async def test_serve_on_database_migrated_by_a_newer_version_says_so(
    fresh_cli: Cli, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert (await fresh_cli("migrate"))[0] == 0
    engine = make_engine(make_settings(url))
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    code, out, err = await fresh_cli("serve", "--port", str(free_port()))
    assert (code, out) == (1, "")
    assert err == (
        f"error: database {url} is at revision 9999, which this version of oauth-service does not know "
        f"(its newest is {HEAD}); run the version that migrated it, or a newer one\n"
    )


async def test_serve_with_unreachable_database_exits_1_with_one_line(
    fresh_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, out, err = await fresh_cli("serve", "--port", str(free_port()))
    assert (code, out) == (1, "")
    assert err == (
        "error: cannot reach the database: [Errno 111] Connect call failed ('127.0.0.1', 1)\n"
    )


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "REDIS_URL",
            "notaurl",
            "error: invalid setting REDIS_URL: must be redis://[:password@]host[:port][/db], "
            "rediss://... (TLS) or unix:///path/to/socket",
        ),
        (
            "REDIS_URL",
            "redis://:99999",
            "error: invalid setting REDIS_URL: the port must be a number from 1 to 65535",
        ),
        (
            "OAUTH_KEY_ENCRYPTION_KEY",
            "not-a-key",
            "error: invalid setting OAUTH_KEY_ENCRYPTION_KEY: not a Fernet key (32 url-safe "
            "base64-encoded bytes; several are comma-separated); generate one with: python -c "
            '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
        ),
    ],
    ids=["redis-not-a-url", "redis-port", "key-encryption-key"],
)
async def test_serve_with_invalid_setting_exits_2_before_touching_the_database(
    fresh_cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = await fresh_cli("serve", "--port", str(free_port()))
    assert (code, out, err) == (2, "", line + "\n")
    assert not (tmp_path / "fresh.db").exists()


async def test_app_startup_failure_message_is_the_one_line(tmp_path: Path) -> None:
    """What uvicorn receives with ``lifespan.startup.failed`` (and logs): the line, not the traceback."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"))
    incoming: list[Message] = [{"type": "lifespan.startup"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}, "app": app}
    with pytest.raises(Exception, match="no such table: signing_keys"):
        await app(scope, receive, send)
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "cannot start: database error: no such table: signing_keys "
            "(is it up and migrated? run: oauth-service migrate)",
        }
    ]


def test_unexpected_startup_failure_keeps_its_traceback() -> None:
    """A bug is not an operator's mistake: no line is made up for it."""
    assert startup_problem(RuntimeError("bug"), load_settings()) is None
