"""A real uvicorn server in a background thread, for tests that need a socket (browsers, third-party clients).

The server runs the app's lifespan on its own event loop. Leaving the context stops it and *waits* for the
thread: a server still shutting down when the test moves on would dispose its pool under live connections.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(
    app: ASGIApp, port: int, *, name: str = "live-server"
) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1:port``; yield its base URL; stop it and wait for the thread on exit."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws="none",
        )
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"{name} did not stop within {STOP_TIMEOUT} s")
