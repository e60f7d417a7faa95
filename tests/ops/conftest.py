"""Fixtures of the operations tests: captured JSON log lines and a metrics reader."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from oauth_service.observability.logs import JsonFormatter


class LogCapture:
    """The JSON lines written through ``JsonFormatter`` while a test runs."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        """Everything written, raw."""
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed (a line that is not one JSON object fails the test)."""
        return [json.loads(line) for line in self.text.splitlines()]

    def by_logger(self, name: str) -> list[dict[str, Any]]:
        """The lines of logger ``name``."""
        return [line for line in self.lines() if line["logger"] == name]


@pytest.fixture
def json_logs() -> Iterator[LogCapture]:
    """Capture what the service logs (``oauth_service.*``), formatted exactly as in production."""
    capture = LogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("oauth_service")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield capture
    logger.removeHandler(handler)
    logger.setLevel(previous)
