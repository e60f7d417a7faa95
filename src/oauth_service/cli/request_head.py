"""A bound on the size of a request's head (request line and headers) for ``oauth-service serve``.

uvicorn's httptools (llhttp) protocol has no limit of its own: measured against ``serve``, a 10 MB header was
read into memory and answered 200, so a few connections could take a worker's memory. This subclass counts the
bytes that arrive before a request's headers are complete and, past ``MAX_HEAD_BYTES``, answers
``431 Request Header Fields Too Large`` (RFC 6585 §5) and closes the connection without parsing more. The h11
fallback gets the same bound from ``h11_max_incomplete_event_size`` (uvicorn then answers 400).
"""

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The parser callbacks this subclass extends: uvicorn's, not a public API (tests/unit/test_request_head.py
# fails loudly if a release renames them).
HOOKS = ("data_received", "on_headers_complete", "on_message_complete")
_END_OF_HEAD = b"\r\n\r\n"

# Cookies and a bearer token need a few KB; nginx's default allows 4 x 8 KiB, Node's 16 KiB.
MAX_HEAD_BYTES = 32 * 1024

_BODY = json.dumps(
    {
        "error": "invalid_request",
        "error_description": "The request headers are too large.",
    },
    separators=(",", ":"),
).encode("ascii")
_REFUSAL = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/json\r\n",
        b"cache-control: no-store\r\n",
        b"content-length: " + str(len(_BODY)).encode("ascii") + b"\r\n",
        b"connection: close\r\n",
        b"\r\n",
        _BODY,
    ]
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request head over ``MAX_HEAD_BYTES`` with 431.

    Bytes are counted from the start of the connection, or the end of the previous request, up to the blank
    line that ends the headers; body bytes that arrive in the same read are not. A chunk holding the end of one
    request and the start of the next is counted for neither, so the bound is exceeded by at most one read
    (256 KiB), never without limit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._tail = b""  # the last bytes of the head so far: the blank line may straddle two reads

    def data_received(self, data: bytes) -> None:
        """Count head bytes before parsing; refuse once they pass the bound."""
        if self._in_head:
            end = (self._tail + data).find(_END_OF_HEAD)
            head = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._head_bytes += head
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()
                return
            self._tail = data[-3:]
        super().data_received(data)

    def _refuse(self) -> None:
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(_REFUSAL)
            self.transport.close()

    def on_headers_complete(self) -> None:
        """The head ended within the bound: the body is not counted."""
        self._in_head = False
        self._head_bytes = 0
        self._tail = b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The next request on this connection starts a new head."""
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""
