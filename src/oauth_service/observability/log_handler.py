"""The JSON log lines' destination: standard error, INFO lines written in batches (``_StderrHandler``)."""

import logging
import sys
import threading
from typing import TextIO

# Lines below WARNING wait at most this long (or until 64 KiB are pending) before they are written together.
DEFAULT_FLUSH_INTERVAL = 0.05
_MAX_PENDING_CHARS = 64 * 1024


# What ``handleError`` is told about when a direct line (``write_info``) could not be written.
_UNWRITTEN = logging.LogRecord(
    "oauth_service.observability.logs",
    logging.INFO,
    __file__,
    0,
    "an INFO line",
    None,
    None,
)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time (survives test capture swapping the stream).

    With ``flush_interval`` > 0, INFO and DEBUG lines are buffered and written together by a daemon thread at
    most ``flush_interval`` seconds later (or at once when 64 KiB are pending); a WARNING or worse writes
    everything pending with it at once, and so do ``flush()`` and ``close()`` (the app's shutdown, and
    ``logging.shutdown`` at exit). Batched because two lines per request, each its own write and flush to a
    pipe or a file, cost the token endpoint throughput and latency under load. A process killed outright
    (SIGKILL) loses at most the last ``flush_interval`` of INFO lines.
    """

    def __init__(self, flush_interval: float = 0.0) -> None:
        super().__init__()
        self._interval = flush_interval
        self._pending: list[str] = []
        self._pending_chars = 0
        self._stopped = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval > 0:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="log-flusher", daemon=True
            )
            self._flusher.start()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignore: the stream is always the current ``sys.stderr``."""

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the line (INFO and below, when buffering) or write it with everything pending."""
        try:
            self._take(
                self.format(record) + self.terminator,
                urgent=record.levelno >= logging.WARNING,
            )
        except RecursionError:
            raise
        except Exception:  # logging's contract: report through handleError, never raise
            self.handleError(record)

    def emit_info_line(self, line: str) -> None:
        """Take an INFO line formatted elsewhere (``write_info``), as ``emit`` takes a record's."""
        self.acquire()
        try:
            self._take(line + self.terminator, urgent=False)
        except (OSError, ValueError):  # stderr closed or gone: like ``emit``
            self.handleError(_UNWRITTEN)
        finally:
            self.release()

    def _take(self, line: str, *, urgent: bool) -> None:
        """Queue ``line``; write everything pending when urgent, unbuffered or past the size limit."""
        self._pending.append(line)
        self._pending_chars += len(line)
        if urgent or self._flusher is None or self._pending_chars >= _MAX_PENDING_CHARS:
            self._write_pending()

    def _write_pending(self) -> None:
        """Write what is pending in one call (the caller holds ``self.lock``)."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_chars = 0
        stream = sys.stderr
        stream.write(text)
        stream.flush()

    def flush(self) -> None:
        """Write everything pending now (a closed or vanished stream at exit drops it)."""
        self.acquire()
        try:
            self._write_pending()
        except (OSError, ValueError):
            self._pending.clear()
            self._pending_chars = 0
        finally:
            self.release()

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(self._interval):
            self.flush()

    def close(self) -> None:
        """Stop the flushing thread and write what is pending."""
        self._stopped.set()
        if (
            self._flusher is not None
            and self._flusher is not threading.current_thread()
        ):
            self._flusher.join(timeout=1)
        self.flush()
        super().close()
