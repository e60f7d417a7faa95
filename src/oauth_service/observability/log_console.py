"""Short, human-readable log lines for a terminal (``LOG_FORMAT=console``, or unset with standard error a TTY).

A request line reads ``12:04:31.207 INFO  POST /oauth/token 200 3.1ms 127.0.0.1 client=demo-service``; any other
line reads ``time level logger message key=value…``, the logger named without the ``oauth_service.`` prefix
(``audit token.issued grant_type=password …``). The fields are exactly the JSON line's (``JsonFormatter.fields``),
so the same redaction and scrubbing apply: nothing reaches a terminal that the JSON line would not carry.
Control characters are escaped, so a request path or a message cannot forge lines or drive the terminal.
"""

import json
import logging
import re
import time
from typing import Any, TextIO

from oauth_service.observability.logs import JsonFormatter, LogFormat

ACCESS_LOGGER = "oauth_service.access"
_PREFIX = "oauth_service."
# Shown by the line's layout, or not worth a person's attention (the request id is in the JSON lines).
_HIDDEN = frozenset({"ts", "level", "logger", "msg", "request_id", "audit", "exc_info"})
_REQUEST_SHOWN = frozenset(
    {"method", "route", "path", "status", "duration_ms", "client_ip", "client_id"}
)
_CONTEXT = frozenset({"client_id", "client_ip"})
# Five letters at most, so the messages line up.
_LEVELS = {"WARNING": "WARN", "CRITICAL": "CRIT"}
# C0 and C1 controls and DEL: escape sequences or line breaks in logged text would reach the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TRACEBACK_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # keeps its newlines
_PLAIN_VALUE = re.compile(r"[^\s\"'=]+")


def console_wanted(log_format: LogFormat | None, stream: TextIO) -> bool:
    """Console lines when asked for, or when unset and ``stream`` is a terminal (JSON for pipes and files)."""
    if log_format is not None:
        return log_format == "console"
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _escape(text: str, pattern: re.Pattern[str] = _CONTROL) -> str:
    return pattern.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _value(value: Any) -> str:
    """A field value as one token: bare when it can be, else quoted JSON."""
    text = (
        ",".join(map(str, value))
        if isinstance(value, list)
        else value
        if isinstance(value, str)
        else json.dumps(value)
    )
    if _PLAIN_VALUE.fullmatch(text):
        return _escape(text)
    return _escape(json.dumps(text, ensure_ascii=False))


def _clock(created: float) -> str:
    """Local time of day with milliseconds: a person reads the terminal in their own time zone."""
    millis = int((created % 1) * 1000)
    return f"{time.strftime('%H:%M:%S', time.localtime(created))}.{millis:03d}"


def _short_name(logger: str) -> str:
    if logger.startswith(_PREFIX):
        return logger[len(_PREFIX) :]
    return logger.split(".", 1)[0]  # ``uvicorn.error`` → ``uvicorn``


class ConsoleFormatter(JsonFormatter):
    """One short line per record, from the JSON line's (already scrubbed) fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` for a person reading a terminal."""
        fields = self.fields(record)
        level = _LEVELS.get(fields["level"], fields["level"])
        head = f"{_clock(record.created)} {level:<5}"
        if fields["logger"] == ACCESS_LOGGER and "status" in fields:
            line = f"{head} {_request(fields)}"
            shown = _REQUEST_SHOWN
        else:
            name, message = _short_name(fields["logger"]), _escape(fields["msg"])
            line = f"{head} {name} {message}"
            shown = (
                frozenset({"event"})
                if fields.get("event") == fields["msg"]
                else frozenset()
            )
        # The request's context (set first by the JSON line) reads better after what the line is about.
        keys = sorted(
            (key for key in fields if key not in _HIDDEN and key not in shown),
            key=lambda key: key in _CONTEXT,
        )
        extras = [f"{key}={_value(fields[key])}" for key in keys]
        if extras:
            line = f"{line} {' '.join(extras)}"
        if "exc_info" in fields:
            line = f"{line}\n{_escape(fields['exc_info'], _TRACEBACK_CONTROL)}"
        return line


def _request(fields: dict[str, Any]) -> str:
    """``METHOD path status ms ip [client=id]`` from an access line's fields."""
    duration = fields.get("duration_ms")
    ms = f"{duration:.1f}ms" if isinstance(duration, int | float) else "-"
    parts = [
        _value(fields.get("method", "-")),
        _value(fields.get("path", "-")),
        str(fields["status"]),
        ms,
        _value(fields.get("client_ip") or "-"),
    ]
    if fields.get("client_id") is not None:
        parts.append(f"client={_value(fields['client_id'])}")
    return " ".join(parts)
