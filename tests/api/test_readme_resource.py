"""The README's "Protecting your API" example, run as written against a live server.

The registration and ``perform`` lines are taken from the README's shell blocks and run through the CLI (the
secret and the token are pulled out of ``--json`` by the README's own ``python3 -c`` one-liners); the Python
block is the API, served by uvicorn as ``uvicorn notes_api:app`` would. Only the server's port differs, and
``<secret>`` becomes the stand-in ``demo-service`` client's secret.
"""

import logging
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.runtime import Runtime
from tests.cli_runs import live_service, run_cli
from tests.factories import make_client
from tests.live_server import free_port, serve_in_thread

README = Path(__file__).resolve().parents[2] / "README.md"
README_SERVER = "http://127.0.0.1:8000"
README_API = "http://127.0.0.1:8001"
BARE = 'Bearer realm="oauth-service"'
REFUSED = (
    "the authorization server refused this API's client credentials (client_id=notes-api) at "
    "{server}/oauth/introspect: check the client id and secret"
)


def _section() -> str:
    """The README's "Protecting your API" text, up to its first subsection."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Protecting your API\n")
    return text[start : text.index("\n### ", start)]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), flags=re.DOTALL)


def _piped(line: str) -> tuple[list[str], str]:
    """``VAR="$(.venv/bin/oauth-service ARGS | python3 -c 'CODE')"``: the CLI's argv and the one-liner."""
    match = re.search(r'"\$\((\S*oauth-service .*?) \| python3 -c (\'.*?\')\)"', line)
    assert match is not None, line
    argv = shlex.split(match.group(1))
    (code,) = shlex.split(match.group(2))
    return argv[1:], code


def _command(needle: str) -> tuple[list[str], str]:
    (line,) = [
        line for block in _blocks("sh") for line in block.splitlines() if needle in line
    ]
    return _piped(line)


def _pipe(code: str, output: str) -> str:
    """Run the README's one-liner on a command's output, as the shell pipe does."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=output,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def server(
    db_url: str, database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The authorization server on a free loopback port; the CLI's admin commands use its database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    with live_service(db_url) as url:
        monkeypatch.setenv("OAUTH_ISSUER", url)
        yield url


async def _register(capsys: pytest.CaptureFixture[str]) -> str:
    """Step 1 as written: the API's registration; returns what lands in ``NOTES_API_SECRET``."""
    argv, code = _command("clients create")
    assert argv[:2] == ["clients", "create"]
    assert "--client-id" in argv
    assert argv[argv.index("--client-id") + 1] == "notes-api"
    status, out, err = await run_cli(capsys, argv)
    assert (status, err) == (0, ""), err
    return _pipe(code, out)


def _serve_api(server: str, monkeypatch: pytest.MonkeyPatch, secret: str) -> FastAPI:
    """Step 3: the README's ``notes_api.py``, pointed at the live server's port."""
    (source,) = _blocks("python")
    monkeypatch.setenv("NOTES_API_SECRET", secret)
    namespace: dict[str, Any] = {}
    code = compile(source.replace(README_SERVER, server), str(README), "exec")
    exec(code, namespace)  # noqa: S102 - the README's code, as written
    api: FastAPI = namespace["app"]
    return api


async def _token(
    capsys: pytest.CaptureFixture[str], server: str, secret: str, scope: str
) -> str:
    """Step 4: the README's ``perform client-credentials`` line, through its one-liner."""
    argv, code = _command("perform client-credentials")
    argv = [
        arg.replace(README_SERVER, server).replace("<secret>", secret) for arg in argv
    ]
    argv[argv.index("--scope") + 1] = scope
    status, out, err = await run_cli(capsys, argv)
    assert (status, err) == (0, ""), err
    return _pipe(code, out)


def _curl_url() -> str:
    urls: set[str] = set(re.findall(rf"{README_API}/\S+", _blocks("sh")[-1]))
    (url,) = urls
    return url


@pytest.mark.slow
async def test_readme_introspection_example_answers_200_401_403(
    server: str,
    runtime: Runtime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ".venv/bin/uvicorn notes_api:app --port 8001" in _blocks("sh")[2]
    notes_secret = await _register(capsys)
    api = _serve_api(server, monkeypatch, notes_secret)
    _, demo_secret = await make_client(runtime, client_id="demo-service")
    assert demo_secret is not None
    read = await _token(capsys, server, demo_secret, "read")
    write = await _token(capsys, server, demo_secret, "write")
    port = free_port()
    url = _curl_url().replace(README_API, f"http://127.0.0.1:{port}")
    with serve_in_thread(api, port, name="notes-api"):
        async with httpx.AsyncClient(timeout=10) as http:
            ok = await http.get(url, headers={"Authorization": f"Bearer {read}"})
            assert (ok.status_code, ok.json()) == (200, {"owner": "demo-service"})
            missing = await http.get(url)
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == BARE
            scope = await http.get(url, headers={"Authorization": f"Bearer {write}"})
            assert (scope.status_code, scope.json()["error"]) == (
                403,
                "insufficient_scope",
            )


@pytest.mark.slow
async def test_readme_example_with_a_wrong_secret_is_500_logged_and_locks_only_itself(
    server: str,
    runtime: Runtime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="oauth_service.resource")
    notes_secret = await _register(capsys)
    api = _serve_api(server, monkeypatch, "not-the-secret")
    _, demo_secret = await make_client(runtime, client_id="demo-service")
    assert demo_secret is not None
    read = await _token(capsys, server, demo_secret, "read")
    port = free_port()
    with serve_in_thread(api, port, name="notes-api"):
        async with httpx.AsyncClient(timeout=10) as http:
            statuses = [
                (
                    await http.get(
                        f"http://127.0.0.1:{port}/notes",
                        headers={"Authorization": f"Bearer {read}"},
                    )
                ).status_code
                for _ in range(6)
            ]
    # Five refusals (500: the API's own fault), then its address is locked at introspection (503).
    assert statuses == [500] * 5 + [503]
    lines = [
        r.getMessage() for r in caplog.records if r.name == "oauth_service.resource"
    ]
    assert lines[0] == REFUSED.format(server=server)
    assert len(lines) == 2
    assert "locked this API's client id" in lines[1]
    assert notes_secret not in caplog.text
    assert read not in caplog.text
    # The client is not locked at the token endpoint.
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("notes-api", notes_secret),
        )
    assert response.status_code == 200, response.text
