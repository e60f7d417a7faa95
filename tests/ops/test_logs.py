"""JSON log formatter, secret scrubbing and audit events (no HTTP)."""

import json
import logging
import sys
import time
from datetime import UTC, datetime

import pytest

from oauth_service.app import create_app
from oauth_service.observability.logs import (
    REDACTED,
    JsonFormatter,
    RequestContext,
    _timestamp,
    audit,
    bind_client_id,
    bind_request,
    configure_logging,
    is_secret_name,
    scrub,
    unbind_request,
)
from oauth_service.settings import Settings
from tests.ops.conftest import LogCapture

logger = logging.getLogger("oauth_service.test")


def test_log_line_outside_request_has_base_fields_only(json_logs: LogCapture) -> None:
    logger.info("hello %s", "world")
    (line,) = json_logs.by_logger("oauth_service.test")
    assert set(line) == {"ts", "level", "logger", "msg"}
    assert line["level"] == "INFO"
    assert line["msg"] == "hello world"
    assert line["ts"].endswith("+00:00")


def test_log_line_inside_request_carries_request_and_client_ids(
    json_logs: LogCapture,
) -> None:
    token = bind_request(RequestContext(request_id="req-1"))
    try:
        bind_client_id("client-a")
        logger.warning("something", extra={"route": "/oauth/token", "status": 400})
    finally:
        unbind_request(token)
    (line,) = json_logs.by_logger("oauth_service.test")
    del line["ts"]
    assert line == {
        "level": "WARNING",
        "logger": "oauth_service.test",
        "msg": "something",
        "request_id": "req-1",
        "client_id": "client-a",
        "route": "/oauth/token",
        "status": 400,
    }


def test_log_line_drops_uvicorn_color_message(json_logs: LogCapture) -> None:
    logger.info("Started %d", 7, extra={"color_message": "Started \x1b[36m%d\x1b[0m"})
    (line,) = json_logs.by_logger("oauth_service.test")
    assert "color_message" not in line
    assert line["msg"] == "Started 7"


def test_log_extra_with_secret_name_is_redacted(json_logs: LogCapture) -> None:
    logger.info(
        "x",
        extra={
            "password": "hunter2",
            "client_secret": "s3cr3t",
            "refresh_token": "rt-value",
            "code_verifier": "pkce-verifier-value",
            "grant_type": "password",
        },
    )
    (line,) = json_logs.by_logger("oauth_service.test")
    assert line["password"] == REDACTED
    assert line["client_secret"] == REDACTED
    assert line["refresh_token"] == REDACTED
    assert line["code_verifier"] == REDACTED
    assert line["grant_type"] == "password"
    for secret in ("hunter2", "s3cr3t", "rt-value", "pkce-verifier-value"):
        assert secret not in json_logs.text


def test_log_message_with_secret_pairs_is_scrubbed(json_logs: LogCapture) -> None:
    logger.info(
        "body grant_type=password&username=bob&password=hunter2&client_secret=s3cr3t "
        "header Authorization: Basic Ym9iOnMzY3IzdA== and Bearer eyJhbGciOi.x.y"
    )
    (line,) = json_logs.by_logger("oauth_service.test")
    assert line["msg"] == (
        f"body grant_type=password&username=bob&password={REDACTED}&client_secret={REDACTED} "
        f"header Authorization: Basic {REDACTED} and Bearer {REDACTED}"
    )


def test_log_message_with_oidc_token_pairs_is_scrubbed(json_logs: LogCapture) -> None:
    logger.info(
        "GET /oauth/logout?id_token_hint=eyJhint.a.b&state=s1 "
        "POST body logout_token=eyJlogout.c.d id_token=eyJid.e.f"
    )
    (line,) = json_logs.by_logger("oauth_service.test")
    assert line["msg"] == (
        f"GET /oauth/logout?id_token_hint={REDACTED}&state=s1 "
        f"POST body logout_token={REDACTED} id_token={REDACTED}"
    )


def test_log_traceback_with_secret_is_scrubbed(json_logs: LogCapture) -> None:
    try:
        raise ValueError("bad request code=abc123")
    except ValueError:
        logger.exception("failed")
    (line,) = json_logs.by_logger("oauth_service.test")
    assert "ValueError: bad request code=[redacted]" in line["exc_info"]
    assert "abc123" not in json_logs.text


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("client_secret", True),
        ("access_token", True),
        ("code", True),
        ("Authorization", True),
        ("grant_type", False),
        ("token_type_hint", False),
        ("status_code", False),
        ("client_id", False),
        ("subject", False),
    ],
)
def test_is_secret_name_classifies_field_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_scrub_leaves_plain_text_unchanged() -> None:
    text = "GET /oauth/authorize?response_type=code&client_id=a"
    assert scrub(text) == text


def test_audit_drops_secret_fields_and_adds_request_context(
    json_logs: LogCapture,
) -> None:
    token = bind_request(
        RequestContext(request_id="r-9", client_id="cli", client_ip="10.0.0.7")
    )
    try:
        audit(
            "login.failure",
            subject="user-1",
            password="hunter2",
            code="the-code",
            reason="bad password",
        )
    finally:
        unbind_request(token)
    (line,) = json_logs.by_logger("oauth_service.audit")
    del line["ts"]
    assert line == {
        "level": "INFO",
        "logger": "oauth_service.audit",
        "msg": "login.failure",
        "request_id": "r-9",
        "client_id": "cli",
        "event": "login.failure",
        "audit": True,
        "client_ip": "10.0.0.7",
        "subject": "user-1",
        "reason": "bad password",
        "dropped_fields": ["code", "password"],
    }
    assert "hunter2" not in json_logs.text
    assert "the-code" not in json_logs.text


def test_audit_outside_request_has_no_request_fields(json_logs: LogCapture) -> None:
    audit("keys.rotated", kid="k2")
    (line,) = json_logs.by_logger("oauth_service.audit")
    assert "request_id" not in line
    assert (line["event"], line["kid"], line["audit"]) == ("keys.rotated", "k2", True)


def test_configure_logging_twice_installs_one_json_handler_and_undoes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    undo_first = configure_logging("WARNING")
    undo_second = configure_logging("INFO")
    try:
        json_handlers = [
            h for h in root.handlers if isinstance(h.formatter, JsonFormatter)
        ]
        assert len(json_handlers) == 1
        assert json_handlers[0].stream is sys.stderr  # type: ignore[attr-defined]
        assert logging.getLogger("uvicorn.access").disabled
        assert logging.getLogger("uvicorn.error").propagate
        logging.getLogger("oauth_service.test").info("to stderr")
        json_handlers[0].flush()
        assert '"msg":"to stderr"' in capsys.readouterr().err
    finally:
        undo_second()
        assert root.level == logging.WARNING
        undo_first()
    assert (root.handlers, root.level) == (before, level)
    assert not logging.getLogger("uvicorn.access").disabled


async def test_app_lifespan_leaves_no_logging_behind(settings: Settings) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert len(root.handlers) == len(before) + 1
    assert root.handlers == before


@pytest.mark.parametrize(
    "created",
    [
        0.0,
        1_800_000_000.0,
        1_800_000_000.5,
        1_800_000_000.123,
        1_800_000_059.999,
        1_800_000_059.9999996,
    ],
)
def test_timestamp_is_iso_utc_with_milliseconds(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert _timestamp(created) == expected
    assert _timestamp(created + 1) == datetime.fromtimestamp(
        created + 1, UTC
    ).isoformat(timespec="milliseconds")


def _record_field_flags() -> tuple[bool, bool, bool]:
    return (logging.logThreads, logging.logProcesses, logging.logMultiprocessing)


def test_configure_logging_skips_unused_record_fields_and_restores_them() -> None:
    before = _record_field_flags()
    undo = configure_logging("INFO")
    try:
        assert _record_field_flags() == (False, False, False)
    finally:
        undo()
    assert _record_field_flags() == before


def test_info_lines_are_written_in_batches_warnings_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """INFO waits for the flusher (or a warning, or shutdown); a warning takes what is pending with it."""
    test_logger = logging.getLogger("oauth_service.test")
    undo = configure_logging("INFO", flush_interval=60)
    try:
        test_logger.info("first")
        test_logger.info("second")
        assert capsys.readouterr().err == ""
        test_logger.warning("third")
        written = [
            json.loads(line)["msg"] for line in capsys.readouterr().err.splitlines()
        ]
        assert written == ["first", "second", "third"]
        test_logger.info("pending at shutdown")
    finally:
        undo()
    assert '"msg":"pending at shutdown"' in capsys.readouterr().err


def test_buffered_info_lines_reach_the_stream_within_the_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    undo = configure_logging("INFO", flush_interval=0.02)
    try:
        logging.getLogger("oauth_service.test").info("soon")
        deadline = time.monotonic() + 5
        seen = ""
        while '"msg":"soon"' not in seen:
            assert time.monotonic() < deadline, "the flusher never wrote the line"
            time.sleep(0.01)  # polling for the flusher thread, not for expiry
            seen += capsys.readouterr().err
    finally:
        undo()


def test_flush_interval_zero_writes_each_line_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    undo = configure_logging("INFO", flush_interval=0)
    try:
        logging.getLogger("oauth_service.test").info("now")
        assert '"msg":"now"' in capsys.readouterr().err
    finally:
        undo()
