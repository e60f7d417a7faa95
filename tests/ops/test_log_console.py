"""Console log lines (``LOG_FORMAT=console``, or a terminal): their shape, their secrecy, and when they are chosen."""

import io
import json
import logging
import os
import re
import select
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread
import httpx
import pytest

from oauth_service.observability.log_console import ConsoleFormatter, console_wanted
from oauth_service.observability.logs import (
    LogFormat,
    RequestContext,
    audit,
    bind_request,
    configure_logging,
    unbind_request,
    write_info,
)
from tests.live_server import free_port
from tests.ops.cli_runner import cli_runner

CLOCK = r"\d\d:\d\d:\d\d\.\d{3}"
access_logger = logging.getLogger("oauth_service.access")


@pytest.fixture
def console_logs() -> Iterator[io.StringIO]:
    """What the service logs, formatted by ``ConsoleFormatter``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter())
    logger = logging.getLogger("oauth_service")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture
def in_request() -> Iterator[RequestContext]:
    """A request being served, its client authenticated."""
    context = RequestContext(
        request_id="req-1", client_id="demo-service", client_ip="127.0.0.1"
    )
    token = bind_request(context)
    yield context
    unbind_request(token)


def _request_line(path: str = "/oauth/token", status: int = 200) -> None:
    fields = {
        "method": "POST",
        "route": "/oauth/token",
        "path": path,
        "status": status,
        "duration_ms": 3.14159,
        "client_ip": "127.0.0.1",
    }
    write_info(access_logger, "request", fields)


def test_console_request_line_is_time_level_method_path_status_ms_client(
    console_logs: io.StringIO, in_request: RequestContext
) -> None:
    _request_line()
    assert re.fullmatch(
        rf"{CLOCK} INFO  POST /oauth/token 200 3\.1ms 127\.0\.0\.1 client=demo-service\n",
        console_logs.getvalue(),
    )


def test_console_audit_line_names_the_event_and_drops_secrets(
    console_logs: io.StringIO, in_request: RequestContext
) -> None:
    audit(
        "token.issued",
        grant_type="password",
        subject="user-1",
        scope="read write",
        with_refresh=True,
        refresh_token="rt-SECRET-value",
    )
    text = console_logs.getvalue()
    assert re.fullmatch(
        rf"{CLOCK} INFO  audit token\.issued grant_type=password subject=user-1 "
        r'scope="read write" with_refresh=true dropped_fields=refresh_token '
        r"client_id=demo-service client_ip=127\.0\.0\.1\n",
        text,
    )


def test_console_line_redacts_secret_extras_and_scrubs_text(
    console_logs: io.StringIO,
) -> None:
    logger = logging.getLogger("oauth_service.background")
    logger.warning(
        "retry with password=hunter2 and Bearer abc.def.ghi",
        extra={"client_secret": "s3cr3t", "attempt": 3},
    )
    try:
        raise ValueError("client_secret=s3cr3t")
    except ValueError:
        logger.exception("failed")
    text = console_logs.getvalue()
    for secret in ("hunter2", "abc.def.ghi", "s3cr3t"):
        assert secret not in text
    first, second = text.split("\n", 1)
    assert re.fullmatch(
        rf"{CLOCK} WARN  background retry with password=\[redacted\] and Bearer \[redacted\] "
        r"client_secret=\[redacted\] attempt=3",
        first,
    )
    assert re.match(rf"{CLOCK} ERROR background failed\nTraceback ", second)
    assert second.endswith("ValueError: client_secret=[redacted]\n")


def test_console_line_escapes_control_characters_of_a_path(
    console_logs: io.StringIO, in_request: RequestContext
) -> None:
    _request_line(path="/x\x1b[2J\nforged line\x9b", status=404)
    text = console_logs.getvalue()
    assert text.count("\n") == 1
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert r'"/x\u001b[2J\nforged line\x9b" 404' in text


def test_console_line_shortens_third_party_logger_names(
    console_logs: io.StringIO,
) -> None:
    # uvicorn's loggers reach the root handler; here the message is passed to the formatter directly.
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        "Started server process [%d]",
        (42,),
        None,
    )
    line = ConsoleFormatter().format(record)
    assert re.fullmatch(rf"{CLOCK} INFO  uvicorn Started server process \[42\]", line)


# --- choosing the format --------------------------------------------------------------------------------


@pytest.fixture
def terminal() -> Iterator[tuple[TextIO, int]]:
    """A pseudo-terminal: (the text stream of its slave side, its master fd to read what was written)."""
    master, slave = os.openpty()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        yield stream, master
    finally:
        stream.close()
        os.close(master)


def _configured_line(
    monkeypatch: pytest.MonkeyPatch, stream: TextIO, log_format: LogFormat | None
) -> None:
    """Configure logging as ``serve`` does, with ``stream`` as standard error, and write one access line."""
    monkeypatch.setattr(sys, "stderr", stream)
    undo = configure_logging("INFO", flush_interval=0, log_format=log_format)
    try:
        token = bind_request(RequestContext(request_id="r", client_ip="127.0.0.1"))
        try:
            _request_line()
        finally:
            unbind_request(token)
    finally:
        undo()
    stream.flush()


def test_unset_log_format_on_a_terminal_writes_console_lines(
    monkeypatch: pytest.MonkeyPatch, terminal: tuple[TextIO, int]
) -> None:
    stream, master = terminal
    _configured_line(monkeypatch, stream, None)
    written = os.read(master, 4096).decode()
    # The terminal's line discipline turns "\n" into "\r\n".
    assert re.fullmatch(
        rf"{CLOCK} INFO  POST /oauth/token 200 3\.1ms 127\.0\.0\.1\r\n", written
    )


def test_log_format_json_on_a_terminal_writes_json(
    monkeypatch: pytest.MonkeyPatch, terminal: tuple[TextIO, int]
) -> None:
    stream, master = terminal
    _configured_line(monkeypatch, stream, "json")
    line = json.loads(os.read(master, 4096).decode())
    assert (line["logger"], line["path"], line["status"]) == (
        "oauth_service.access",
        "/oauth/token",
        200,
    )


@pytest.mark.parametrize(
    ("log_format", "console"),
    [(None, False), ("json", False), ("console", True)],
    ids=["unset", "json", "console"],
)
def test_a_pipe_gets_json_unless_console_is_asked_for(
    monkeypatch: pytest.MonkeyPatch, log_format: LogFormat | None, console: bool
) -> None:
    stream = io.StringIO()  # not a terminal, like a container's log pipe
    _configured_line(monkeypatch, stream, log_format)
    text = stream.getvalue()
    assert text.startswith("{") is not console
    assert ("POST /oauth/token 200" in text) is console


def test_console_wanted_survives_a_closed_stream(tmp_path: Path) -> None:
    stream = (tmp_path / "log").open("w", encoding="utf-8")
    stream.close()
    assert console_wanted(None, stream) is False


def _read_until(master: int, pattern: str, timeout: float = 30.0) -> str:
    """What the terminal received until ``pattern`` matched a line (bounded wait)."""
    received = ""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, received, re.MULTILINE):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line matching {pattern!r} in:\n{received}")
        ready, _, _ = select.select([master], [], [], remaining)
        if ready:
            received += os.read(master, 65536).decode(errors="replace")
    return received


@pytest.mark.slow
async def test_serve_on_a_terminal_prints_console_lines(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    terminal: tuple[TextIO, int],
) -> None:
    """What ``make run`` shows: ``oauth-service serve`` with standard error on a terminal, LOG_FORMAT unset."""
    stream, master = terminal
    port = free_port()
    cli = cli_runner(f"sqlite+aiosqlite:///{tmp_path / 'tty.db'}", capsys, monkeypatch)
    assert (await cli("migrate"))[0] == 0
    env = {**os.environ, "OAUTH_ISSUER": f"http://127.0.0.1:{port}"}
    env.pop("LOG_FORMAT", None)
    command = [sys.executable, "-m", "oauth_service", "serve", "--port", str(port)]
    with (tmp_path / "stdout.log").open("wb") as out:
        server = await anyio.open_process(command, env=env, stdout=out, stderr=stream)
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        try:
            await anyio.to_thread.run_sync(
                _read_until, master, r"uvicorn Uvicorn running"
            )
            assert (await http.get("/healthz")).status_code == 200
            seen = await anyio.to_thread.run_sync(
                _read_until, master, r"GET /healthz 200 "
            )
        finally:
            server.terminate()
            with anyio.fail_after(30):
                await server.wait()
    assert re.search(
        rf"^{CLOCK} INFO  GET /healthz 200 \d+\.\dms 127\.0\.0\.1\r$",
        seen,
        re.MULTILINE,
    )
    assert '{"ts"' not in seen
