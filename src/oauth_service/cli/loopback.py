"""The loopback redirect listener of ``perform authorization-code``: a native app's callback (RFC 8252 §7.3).

It binds an IP literal (``127.0.0.1`` or ``[::1]``; the name ``localhost`` is NOT RECOMMENDED, RFC 8252 §8.3) on
the chosen port or a free one, answers the first request to the redirect path with a small page, and hands that
request's query parameters to the caller. Requests to other paths (a browser's favicon) get 404 and are ignored.
What the page says comes from the caller's ``check``, so a refused redirect says why in the tab as well.
"""

import html
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

# Answers a redirect's parameters with None (accepted) or the reason it is refused.
Check = Callable[[Mapping[str, str]], str | None]
# Whether a request to the callback belongs to this sign-in (its ``state``): others are answered and ignored.
Belongs = Callable[[Mapping[str, str]], bool]

_HOSTS = {"127.0.0.1": "127.0.0.1", "[::1]": "::1"}
_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>oauth-service</title>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body></html>"
)


class RedirectUriError(ValueError):
    """A ``--redirect-uri`` this listener cannot serve."""


@dataclass(frozen=True, slots=True)
class LoopbackAddress:
    """Where to listen: an IP literal as written in URIs, a port (0: any free one), and the callback path."""

    host: str
    port: int
    path: str
    query: str = ""


@dataclass(frozen=True, slots=True)
class Redirect:
    """The authorization response the browser brought back, and why it was refused (None: accepted)."""

    params: Mapping[str, str]
    problem: str | None


def parse_redirect_uri(uri: str, port: int | None) -> LoopbackAddress:
    """Read ``--redirect-uri`` (with ``--port``) into where to listen.

    Raises:
        RedirectUriError: not ``http`` on a loopback IP literal, a fragment, or a port that contradicts ``port``.
    """
    parts = urlsplit(uri)
    try:
        given = parts.port
    except ValueError:
        given = -1
    host = parts.netloc.rsplit(":", 1)[0] if given is not None else parts.netloc
    if parts.scheme != "http" or host not in _HOSTS or parts.fragment or given == -1:
        raise RedirectUriError(
            f"--redirect-uri must be http://127.0.0.1[:PORT]/PATH or http://[::1][:PORT]/PATH, got {uri!r}"
            " (RFC 8252 §7.3: a loopback IP literal, so the server lets the port vary)"
        )
    if given is not None and port is not None and given != port:
        raise RedirectUriError(
            f"--port {port} contradicts the port of --redirect-uri {uri!r}"
        )
    chosen = given if given is not None else (port or 0)
    return LoopbackAddress(host, chosen, parts.path or "/", parts.query)


class _Page(NamedTuple):
    status: int
    title: str
    text: str
    first: bool = False  # the answer to the redirect itself, not to a repeat


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: LoopbackAddress, check: Check, belongs: Belongs
    ) -> None:
        self.address_family = (
            socket.AF_INET6 if address.host.startswith("[") else socket.AF_INET
        )
        self.callback_path = address.path
        self.check = check
        self.belongs = belongs
        self.done = threading.Event()
        self.redirect: Redirect | None = None
        self.lock = threading.Lock()
        super().__init__((_HOSTS[address.host], address.port), _Handler)

    def accept(self, query: str) -> "_Page":
        """Record the first redirect; return the status, title and text of the page that answers it.

        ``done`` is set by the handler once the page is written, so the command cannot exit before the tab
        has its answer.
        """
        with self.lock:
            if self.redirect is not None:
                return _Page(409, "Already done", "This sign-in has already finished.")
            grouped = parse_qs(query, keep_blank_values=True)
            params = {name: values[0] for name, values in grouped.items()}
            if not self.belongs(params):
                # Any local process or web page can request this port: only our redirect ends the wait.
                return _Page(
                    400, "Not this sign-in", "This is not the sign-in being awaited."
                )
            repeated = sorted(
                name for name, values in grouped.items() if len(values) > 1
            )
            problem = (
                f"the redirect repeats {', '.join(repeated)}"
                if repeated
                else self.check(params)
            )
            self.redirect = Redirect(params, problem)
        if problem is None:
            return _Page(
                200,
                "Signed in",
                "You can close this tab and return to the terminal.",
                True,
            )
        text = f"{problem.rstrip('.')}. You can close this tab."
        return _Page(400, "Sign-in failed", text, True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # An idle connection (a browser's speculative preconnect) must not hold a handler thread forever.
    timeout = 10

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != self.server.callback_path:
            self._answer(404, "Not found", "Nothing here.")
            return
        page = self.server.accept(parts.query)
        try:
            self._answer(page.status, page.title, page.text)
        finally:
            if page.first:
                self.server.done.set()

    def _answer(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        # The address bar holds the code: keep it out of caches and Referer headers.
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'none'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request line carries the authorization code."""


class LoopbackListener:
    """Serve the callback in a background thread while the user signs in; use as a context manager."""

    def __init__(
        self,
        address: LoopbackAddress,
        check: Check,
        belongs: Belongs = lambda _params: True,
    ) -> None:
        self._address = address
        self._server = _Server(address, check, belongs)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="loopback-callback",
            daemon=True,
        )

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to send: the listener's real port filled in."""
        port = self._server.server_address[1]
        query = f"?{self._address.query}" if self._address.query else ""
        return f"http://{self._address.host}:{port}{self._address.path}{query}"

    def wait(self, timeout: float) -> Redirect | None:
        """Block until the redirect arrives (its page already answered); None after ``timeout`` seconds."""
        if not self._server.done.wait(timeout):
            return None
        return self._server.redirect

    def __enter__(self) -> "LoopbackListener":
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
