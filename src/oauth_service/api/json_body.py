"""``JsonBody``: the hot routes' JSON response, with its body encoded and its headers laid out directly.

Starlette's ``JSONResponse`` calls ``json.dumps`` with non-default options, which builds a new encoder for
every response, then works out its raw headers generically (lower-casing and encoding each given header,
scanning them for a content type and length). The token, introspection and ``/api/v1/me`` answers are small
dicts with fixed headers, so one module-level encoder (the same options) and header lines prepared once do
the same work. The bytes on the wire are the ones ``JSONResponse`` sends.
"""

import json
from typing import Any

from fastapi.responses import JSONResponse

from oauth_service.oauth.caching import NO_STORE

# Starlette's options: compact, UTF-8 (not ASCII-escaped), and NaN refused as JSON has no such value.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_CONTENT_TYPE = (b"content-type", b"application/json")
# RFC 6749 §5.1: token responses are never cached (``oauth.caching.NO_STORE`` as raw headers).
NO_STORE_HEADERS = tuple(
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in NO_STORE.items()
)


class JsonBody(JSONResponse):
    """A 200 (or ``status_code``) JSON answer with ``extra`` header lines (lower-case names, bytes)."""

    def __init__(
        self,
        content: Any,
        *,
        status_code: int = 200,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        body = _ENCODER.encode(content).encode()
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [
            *extra,
            (b"content-length", str(len(body)).encode("latin-1")),
            _CONTENT_TYPE,
        ]
