"""``logs.write_info``: the per-request lines skip ``logging``'s record machinery only when nothing else listens.

The direct line must be exactly the line the JSON formatter writes for the same record (redaction and
scrubbing included); a capture handler, a filter or any other set-up gets the ordinary ``LogRecord``.
"""

import json
import logging
from collections.abc import Iterator

import pytest

from oauth_service.observability.logs import (
    JsonFormatter,
    RequestContext,
    bind_request,
    configure_logging,
    unbind_request,
    write_info,
)

access = logging.getLogger("oauth_service.access")
FIELDS = {
    "method": "POST",
    "route": "/oauth/token",
    "path": "/oauth/token",
    "status": 200,
    "duration_ms": 1.25,
    "client_ip": None,
    "refresh_token": "must-not-appear",  # secret-named: redacted
    "note": "sent code=abc123 and Bearer eyJabc",  # secrets in text: scrubbed
    "scopes": ["read", "write"],
}


@pytest.fixture
def sole_handler() -> Iterator[logging.Handler]:
    """The service's JSON handler, installed as in production, inside a request's context."""
    undo = configure_logging("INFO", flush_interval=0)
    try:
        (ours,) = [
            h for h in logging.root.handlers if type(h).__name__ == "_StderrHandler"
        ]
        token = bind_request(RequestContext(request_id="req-9", client_id="app-1"))
        try:
            yield ours
        finally:
            unbind_request(token)
    finally:
        undo()


def _alone(handler: logging.Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``handler`` the root's only handler, as in production (pytest adds its own per test phase)."""
    monkeypatch.setattr(logging.root, "handlers", [handler])


def _formatter_line(message: str) -> dict[str, object]:
    record = access.makeRecord(
        access.name, logging.INFO, __file__, 1, message, (), None, extra=FIELDS
    )
    return dict(json.loads(JsonFormatter().format(record)))


def test_the_direct_line_is_the_formatters_line(
    sole_handler: logging.Handler,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = _formatter_line("request")
    _alone(sole_handler, monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(logging.Logger, "makeRecord", _no_record)
        write_info(access, "request", FIELDS)
    (text,) = capsys.readouterr().err.splitlines()
    line = json.loads(text)
    assert line.pop("ts").endswith("+00:00")
    expected.pop("ts")
    assert line == expected
    assert line["refresh_token"] == "[redacted]"
    assert "abc123" not in text
    assert "must-not-appear" not in text
    assert (line["request_id"], line["client_id"]) == ("req-9", "app-1")


def _no_record(*args: object, **kwargs: object) -> logging.LogRecord:
    raise AssertionError("went through logging's record machinery")


def test_another_handler_gets_the_ordinary_record(
    sole_handler: logging.Handler,
) -> None:
    seen: list[logging.LogRecord] = []

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    listener = Listener()
    logging.root.handlers.append(listener)
    write_info(access, "request", FIELDS)
    (record,) = seen
    assert record.getMessage() == "request"
    assert record.status == 200  # type: ignore[attr-defined]


def test_the_ordinary_record_skips_the_caller_lookup(
    sole_handler: logging.Handler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No stack walk for a file name and line that no line of ours writes."""
    seen: list[logging.LogRecord] = []

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    def no_lookup(*args: object, **kwargs: object) -> tuple[str, int, str, None]:
        raise AssertionError("looked the caller up")

    monkeypatch.setattr(logging.Logger, "findCaller", no_lookup)
    monkeypatch.setattr(logging.root, "handlers", [sole_handler, Listener()])
    write_info(access, "request", FIELDS)
    (record,) = seen
    assert (record.name, record.levelno, record.getMessage()) == (
        access.name,
        logging.INFO,
        "request",
    )
    assert (record.pathname, record.lineno) == ("(unknown file)", 0)
    assert record.status == 200  # type: ignore[attr-defined]


def test_a_filter_still_decides(
    sole_handler: logging.Handler,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _alone(sole_handler, monkeypatch)

    class DropAll(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.name != access.name

    access.addFilter(drop := DropAll())
    try:
        write_info(access, "request", FIELDS)
    finally:
        access.removeFilter(drop)
    assert capsys.readouterr().err == ""


def test_nothing_is_written_below_the_level(
    sole_handler: logging.Handler,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _alone(sole_handler, monkeypatch)
    previous = logging.root.level
    logging.root.setLevel(
        logging.WARNING
    )  # setLevel also empties logging's per-logger level cache
    try:
        write_info(access, "request", FIELDS)
    finally:
        logging.root.setLevel(previous)
    assert capsys.readouterr().err == ""


def test_a_custom_record_factory_gets_the_ordinary_record(
    sole_handler: logging.Handler,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A factory adding attributes (trace ids, say) would have them written: the record path keeps them."""
    _alone(sole_handler, monkeypatch)
    plain = logging.getLogRecordFactory()

    def with_trace(*args: object, **kwargs: object) -> logging.LogRecord:
        record = plain(*args, **kwargs)
        record.trace_id = "4bf92f35"
        return record

    monkeypatch.setattr(logging, "_logRecordFactory", with_trace)
    write_info(access, "request", FIELDS)
    (text,) = capsys.readouterr().err.splitlines()
    assert json.loads(text)["trace_id"] == "4bf92f35"


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot render")


def test_a_field_that_cannot_be_rendered_never_fails_the_caller(
    sole_handler: logging.Handler,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As through logging: the failure is reported on stderr (handleError), the request goes on."""
    _alone(sole_handler, monkeypatch)
    write_info(access, "request", {**FIELDS, "odd": _Unprintable()})
    assert "Logging error" in capsys.readouterr().err
