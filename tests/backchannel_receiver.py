"""A loopback back-channel logout receiver (a relying party's endpoint) and a logout-token check that uses joserfc.

The receiver is a real HTTP server on 127.0.0.1 in a thread; each POST is recorded, then answered with the next
scripted status (200 once the script is used up), or after a pause (a hanging relying party).
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class Receiver:
    """The running receiver: its URL, what it got, and what it answers."""

    url: str
    statuses: list[int] = field(default_factory=list)
    hang_seconds: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tokens(self) -> list[str]:
        """The ``logout_token`` of every POST received, in order."""
        with self.lock:
            return [request["form"]["logout_token"][0] for request in self.received]


@contextmanager
def running_receiver(path: str = "/backchannel") -> Iterator[Receiver]:
    """Serve a receiver on a free loopback port; yields it with ``url`` set to ``http://127.0.0.1:<port><path>``."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = state["receiver"]
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            with receiver.lock:
                receiver.received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "host": self.headers.get("Host"),
                        "form": parse_qs(body),
                    }
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                hang = receiver.hang_seconds
            if hang:
                time.sleep(hang)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
            except OSError:
                pass  # the server gave up waiting and closed the connection

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{httpd.server_address[1]}{path}")
    state["receiver"] = receiver
    thread = threading.Thread(target=httpd.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def verified_logout_token(
    token: str, jwks: dict[str, Any], *, issuer: str, client_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a logout token as a relying party would (Back-Channel Logout 1.0 §2.6); return (header, claims).

    joserfc verifies the signature against the server's published JWKS; the claim rules are checked here.
    """
    decoded = jwt.decode(token, KeySet.import_key_set(jwks))  # type: ignore[arg-type]
    claims = dict(decoded.claims)
    now = time.time()
    assert decoded.header["typ"] == "logout+jwt"
    assert claims["iss"] == issuer
    assert claims["aud"] == client_id
    assert claims["iat"] <= now + 5
    assert claims["exp"] - claims["iat"] == 120
    assert claims["exp"] > now
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert "nonce" not in claims
    return dict(decoded.header), claims
