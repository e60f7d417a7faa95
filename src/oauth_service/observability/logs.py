"""Structured JSON logs: one object per line, the request's context attached, secrets never written.

``configure_logging(level)`` installs the JSON formatter (or, for a terminal, ``log_console``'s short lines built
from the same scrubbed fields) on the root logger (idempotently) and routes uvicorn's loggers through it; the per-request access line comes from ``api.middleware``. ``audit(event, **fields)`` emits
the security events of RFC 9700 §4 worth keeping (logins, issuance, refresh reuse, code replay, revocation,
throttling) as log lines on the ``oauth_service.audit`` logger, dropping any field whose name looks like a secret.
Secrets are kept out three ways: secret-named ``extra`` fields are redacted, ``key=value`` pairs and
``Basic``/``Bearer`` credentials in message text are masked, and tracebacks are scrubbed the same way.
"""

import functools
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from oauth_service.observability.log_handler import (
    DEFAULT_FLUSH_INTERVAL,
    _StderrHandler,
)

REDACTED = "[redacted]"

# ``LOG_FORMAT``: one JSON object per line (containers, log shippers) or a short line for a person.
LogFormat = Literal["json", "console"]

# Substrings that mark a field name as secret-bearing; matched case-insensitively against the whole name.
_SECRET_MARKERS = (
    "password",
    "secret",
    "token",
    "authorization",
    "cookie",
    "code",
    "verifier",
    "assertion",
    "credential",
    "api_key",
    "private_key",
)
# Names that contain a marker but are safe labels, not secrets.
_SAFE_NAMES = frozenset(
    {"status_code", "error_code", "token_type", "token_type_hint", "grant_type"}
)

_SECRET_TEXT = re.compile(
    r"(?i)\b(password|client_secret|secret|code_verifier|code|refresh_token|access_token|id_token_hint"
    r"|id_token|logout_token|token|assertion)=([^&\s\"']+)"
    r"|\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]+"
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Extras that are never written: uvicorn's ANSI-coloured duplicate of the message.
_DROPPED_EXTRAS = _RECORD_ATTRS | {"color_message"}


@dataclass(slots=True)
class RequestContext:
    """What the log formatter attaches to every line written while a request is served.

    Mutable on purpose: code deeper in the stack (the token endpoint, once it has authenticated the client)
    fills ``client_id`` in, and the access log written by the outer middleware sees it even when the inner
    code ran in a copied ``contextvars`` context.
    """

    request_id: str
    client_id: str | None = None
    client_ip: str | None = None


_request: ContextVar[RequestContext | None] = ContextVar(
    "oauth_request_context", default=None
)


def bind_request(context: RequestContext) -> object:
    """Make ``context`` current; returns a token for ``unbind_request``."""
    return _request.set(context)


def unbind_request(token: object) -> None:
    """Restore the context that was current before ``bind_request``."""
    _request.reset(token)  # type: ignore[arg-type]


def bind_client_id(client_id: str) -> None:
    """Record the authenticated client of the current request (for the access log and audit events)."""
    context = _request.get()
    if context is not None:
        context.client_id = client_id


# Field names come from code (a small set) and every record checks ~20 of them.
@functools.lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` could carry a password, secret, code or token."""
    lowered = name.lower()
    if lowered in _SAFE_NAMES:
        return False
    return any(marker in lowered for marker in _SECRET_MARKERS)


def scrub(text: str) -> str:
    """Mask ``secret=value`` pairs and ``Basic``/``Bearer`` credentials in free text."""
    if "=" not in text and "Basic" not in text and "Bearer" not in text:
        return text
    return _SECRET_TEXT.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)}={REDACTED}"
    return f"{match.group(3)} {REDACTED}"


_JSON_SCALARS = frozenset({int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    kind = type(value)  # exact-type checks first: nearly every value is one of these
    if kind is str:
        return scrub(value)
    if kind in _JSON_SCALARS or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return scrub(str(value))


# One encoder for every line: ``json.dumps`` with non-default options builds a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _timestamp(created: float, _memo: list[tuple[int, str]] = [(-1, "")]) -> str:  # noqa: B006 - deliberate memo
    """``created`` as ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second.

    The memo is one ``(second, text)`` pair replaced whole, so threads formatting at once (the handler's
    lock does not cover ``write_info``'s lines) never pair one second with another's text.
    """
    second = int(created)
    micros = round(
        (created - second) * 1_000_000
    )  # rounded as ``datetime.fromtimestamp`` does
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    memo = _memo[0]
    if second != memo[0]:
        memo = (
            second,
            datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        )
        _memo[0] = memo
    return f"{memo[1]}.{micros // 1000:03d}+00:00"


# Records come in few shapes (the attribute names of a record, in order: LogRecord's own, then the ``extra``
# keys of one call site), so which attributes a line writes, and which of them are redacted, is worked out once
# per shape. Bounded: past the limit, new shapes are worked out on every record instead of being kept.
_EXTRAS_BY_SHAPE: dict[tuple[str, ...], tuple[tuple[str, bool], ...]] = {}
_MAX_SHAPES = 512


def _extras_of(shape: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """The extra attributes among ``shape`` as ``(name, is_secret_name)``, in order."""
    extras = _EXTRAS_BY_SHAPE.get(shape)
    if extras is None:
        extras = tuple(
            (name, is_secret_name(name))
            for name in shape
            if name not in _DROPPED_EXTRAS and not name.startswith("_")
        )
        if len(_EXTRAS_BY_SHAPE) < _MAX_SHAPES:
            _EXTRAS_BY_SHAPE[shape] = extras
    return extras


def _base_line(created: float, level: str, name: str, message: str) -> dict[str, Any]:
    """The fields every line starts with: time, level, logger, message, then the request's context."""
    line: dict[str, Any] = {
        "ts": _timestamp(created),
        "level": level,
        "logger": name,
        "msg": scrub(message),
    }
    context = _request.get()
    if context is not None:
        line["request_id"] = context.request_id
        if context.client_id is not None:
            line["client_id"] = context.client_id
    return line


def _put_extras(line: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Add the extra fields among ``values`` to ``line``: secret-named ones redacted, text scrubbed."""
    for key, secret in _extras_of(tuple(values)):
        value = values[key]
        kind = type(value)  # the common cases inline; ``_plain`` does the rest
        if secret:
            line[key] = REDACTED
        elif kind is str:
            line[key] = scrub(value)
        elif kind in _JSON_SCALARS:
            line[key] = value
        else:
            line[key] = _plain(value)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: ``ts``, ``level``, ``logger``, ``msg``, request context, extras."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The line's fields: secret-named extras redacted, message and traceback text scrubbed."""
        line = _base_line(
            record.created, record.levelname, record.name, record.getMessage()
        )
        _put_extras(line, record.__dict__)
        if record.exc_info:
            line["exc_info"] = scrub(self.formatException(record.exc_info))
        return line

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one JSON object."""
        return _ENCODER.encode(self.fields(record))


# What a LogRecord would compute that no line of ours writes (the formatter drops these attributes): the
# public flags of the logging HOWTO's "Optimization" section. The caller lookup has no public switch; the
# per-request lines skip it by building their records themselves (``write_info``).
_RECORD_FIELD_FLAGS = ("logThreads", "logProcesses", "logMultiprocessing")


def _skip_unused_record_fields() -> tuple[bool, ...]:
    saved = tuple(bool(getattr(logging, name)) for name in _RECORD_FIELD_FLAGS)
    for name in _RECORD_FIELD_FLAGS:
        setattr(logging, name, False)
    return saved


def _restore_record_fields(saved: tuple[bool, ...]) -> None:
    for name, value in zip(_RECORD_FIELD_FLAGS, saved, strict=True):
        setattr(logging, name, value)


def configure_logging(
    level: str = "INFO",
    *,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    log_format: LogFormat | None = None,
) -> Callable[[], None]:
    """Install JSON logging on the root logger at ``level``; returns the function that undoes it.

    INFO lines are written in batches at most ``flush_interval`` seconds apart (0: each line at once);
    warnings and errors at once (``_StderrHandler``). ``log_format`` (``LOG_FORMAT``) picks JSON or short
    console lines; unset, console lines when standard error is a terminal (``log_console.console_wanted``).

    Idempotent: a second call adds no second handler, and its undo leaves the first call's setup in place.
    uvicorn's own loggers are routed through the root handler, and its access logger is silenced because
    ``api.middleware`` writes a richer (and scrubbed) access line. The app's lifespan calls this and undoes it
    at shutdown, so building apps (tests, the CLI) leaves no process-wide logging behind; ``oauth-service
    serve`` may call it once for the whole process so the supervisor's lines are JSON too.
    """
    root = logging.getLogger()
    previous_level = root.level
    previous_flags = _skip_unused_record_fields()
    added: _StderrHandler | None = None
    if not any(isinstance(handler, _StderrHandler) for handler in root.handlers):
        added = _StderrHandler(flush_interval)
        added.setFormatter(_formatter(log_format))
        root.addHandler(added)
    root.setLevel(level)
    saved = [
        (logger, list(logger.handlers), logger.propagate, logger.disabled)
        for logger in map(
            logging.getLogger, ("uvicorn", "uvicorn.error", "uvicorn.access")
        )
    ]
    if added is not None:
        for logger, _, _, _ in saved[:2]:
            logger.handlers.clear()
            logger.propagate = True
        saved[2][0].disabled = True

    def undo() -> None:
        _restore_record_fields(previous_flags)
        if added is None:
            root.setLevel(previous_level)
            return
        root.removeHandler(added)
        added.close()
        root.setLevel(previous_level)
        for logger, handlers, propagate, disabled in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.disabled = disabled

    return undo


def _formatter(log_format: LogFormat | None) -> logging.Formatter:
    # Imported here: the console formatter builds on ``JsonFormatter``, so its module imports this one.
    from oauth_service.observability.log_console import ConsoleFormatter, console_wanted

    if console_wanted(log_format, sys.stderr):
        return ConsoleFormatter()
    return JsonFormatter()


def _sole_json_handler(logger: logging.Logger) -> _StderrHandler | None:
    """The service's JSON handler when it is the only place ``logger``'s lines go and nothing filters them."""
    node: logging.Logger | None = logger
    root = logging.root
    while node is not None and node is not root:
        if node.handlers or node.filters or node.disabled or not node.propagate:
            return None
        node = node.parent
    if root.filters or len(root.handlers) != 1:
        return None
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return None  # a custom factory (trace correlation, say) adds attributes the formatter would write
    handler = root.handlers[0]
    if (
        type(handler) is not _StderrHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JsonFormatter
    ):
        return None
    return handler


def write_info(logger: logging.Logger, message: str, fields: Mapping[str, Any]) -> None:
    """Log ``message`` at INFO with ``fields`` as extras: the per-request lines (access, audit).

    A ``LogRecord``, the pass over every logger's handlers and filters and the formatter's walk over the record
    are a large share of a cheap request's time, so when the service's JSON handler is the only destination and
    nothing filters, the same JSON object is built from the fields directly. Any other set-up (a test's capture
    handler, a filter, another handler) gets the ordinary record, made without the caller lookup (a stack walk
    for a file name and line no line of ours writes).
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_json_handler(logger)
    text = _direct_line(logger.name, message, fields) if handler is not None else None
    if handler is None or text is None:
        logger.handle(_info_record(logger, message, fields))
        return
    handler.emit_info_line(text)


# What ``logging`` records when it does not look the caller up.
_UNKNOWN_FILE = "(unknown file)"
_UNKNOWN_FUNCTION = "(unknown function)"


def _info_record(
    logger: logging.Logger, message: str, fields: Mapping[str, Any]
) -> logging.LogRecord:
    """The record ``logger.info(message, extra=fields)`` makes, without its caller lookup."""
    return logger.makeRecord(
        logger.name,
        logging.INFO,
        _UNKNOWN_FILE,
        0,
        message,
        (),
        None,
        _UNKNOWN_FUNCTION,
        dict(fields),
    )


def _direct_line(name: str, message: str, fields: Mapping[str, Any]) -> str | None:
    """The formatter's line for an INFO record of ``fields``, or None when a field cannot be rendered.

    Then logging's own path runs, and reports the failure through ``handleError``.
    """
    try:
        line = _base_line(time.time(), "INFO", name, message)
        _put_extras(line, fields)
        return _ENCODER.encode(line)
    except Exception:
        return None


_audit_logger = logging.getLogger("oauth_service.audit")


def audit(event: str, **fields: Any) -> None:
    """Emit one audit event, e.g. ``audit("token.issued", grant_type="password", client_id=..., subject=...)``.

    Fields whose names look secret (``password``, ``client_secret``, ``code``, ``*token*``…) are dropped and
    their names listed under ``dropped_fields``, so a careless call can never leak a credential. The current
    request's id, client and IP are added when known.
    """
    if not _audit_logger.isEnabledFor(logging.INFO):
        return
    extra: dict[str, Any] = {"event": event, "audit": True}
    dropped = [name for name in fields if is_secret_name(name)]
    context = _request.get()
    if context is not None:
        if context.client_id is not None:
            extra["client_id"] = context.client_id
        if context.client_ip is not None:
            extra["client_ip"] = context.client_ip
    for name, value in fields.items():
        if name not in _RECORD_ATTRS and name not in dropped:
            extra[name] = value
    if dropped:
        extra["dropped_fields"] = sorted(dropped)
    write_info(_audit_logger, event, extra)
