"""Fixtures for real-browser tests: a live uvicorn server on a loopback port and Chromium via Playwright.

The browser is Debian's Chromium (``/usr/bin/chromium``, or ``OAUTH_TEST_CHROMIUM``), else the one Playwright
manages. ``make test`` provisions one (``scripts/provision-tools``); without any, the browser tests fail with one
line that says what to run, never a skip.
"""

import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from tests.conftest import make_settings
from tests.live_server import free_port, serve_in_thread

CHROMIUM = Path(os.environ.get("OAUTH_TEST_CHROMIUM", "/usr/bin/chromium"))
NO_CHROMIUM = (
    f"no Chromium at {CHROMIUM} nor from Playwright: run `make tools` "
    "(as root: apt-get install chromium) or `.venv/bin/python -m playwright install chromium`"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000


def chromium_executable(managed: Path, preferred: Path = CHROMIUM) -> Path:
    """``preferred`` (Debian's) if installed, else Playwright's ``managed`` build; neither fails with one line."""
    for candidate in (preferred, managed):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(NO_CHROMIUM, pytrace=False)


@dataclass(frozen=True, slots=True)
class LiveServer:
    """The running service: its issuer URL is its own address."""

    url: str


@pytest.fixture
def live_server(db_url: str, database: AsyncEngine) -> Iterator[LiveServer]:
    """Serve ``create_app`` with uvicorn in a thread (its own event loop) on a free loopback port."""
    port = free_port()
    app = create_app(make_settings(db_url, issuer=f"http://127.0.0.1:{port}"))
    with serve_in_thread(app, port) as url:
        yield LiveServer(url)


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>App</title><p>Signed in.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def callback_server() -> Iterator[str]:
    """A loopback "native app" answering its redirect URI; yields ``http://127.0.0.1:<port>/callback``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=httpd.serve_forever, name="callback", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/callback"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's, else Playwright's); none at all fails the test with what to run."""
    async with async_playwright() as playwright:
        executable = chromium_executable(Path(playwright.chromium.executable_path))
        instance = await playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies) per test, with bounded timeouts."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are kept (``test-artifacts/``, git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
