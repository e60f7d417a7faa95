"""Opaque pagination cursors for the admin API, HMAC-signed so a client can neither forge nor alter one.

A cursor is ``base64url(last key) "." base64url(HMAC-SHA256(key, collection, last key))``; it is bound to its
collection, so a users cursor is refused on clients. The key is ``OAUTH_SECRET_KEY`` (derived per purpose) when
set, else a secret generated once and shared by every replica through the ``server_secrets`` table.
"""

import base64
import binascii
import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from oauth_service.api.deps import RuntimeDep
from oauth_service.api.hmac_keys import hmac_key
from oauth_service.crypto.tokens import constant_time_equals
from oauth_service.oauth.errors import InvalidRequestError

_SECRET_NAME = "admin_cursor"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def cursor_key(request: Request, runtime: RuntimeDep) -> bytes:
    """Return the cursor HMAC key, read once per app."""
    return await hmac_key(request, runtime, _SECRET_NAME)


CursorKeyDep = Annotated[bytes, Depends(cursor_key)]


def _mac(key: bytes, collection: str, payload: str) -> str:
    message = f"{collection}\x1f{payload}".encode("ascii")
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def encode_cursor(key: bytes, collection: str, after: str | None) -> str | None:
    """Return the cursor continuing after ``after`` (None when there is no next page)."""
    if after is None:
        return None
    payload = _b64(after.encode("utf-8"))
    return f"{payload}.{_mac(key, collection, payload)}"


def decode_cursor(key: bytes, collection: str, cursor: str | None) -> str | None:
    """Return the key a cursor continues after.

    Raises:
        InvalidRequestError: the cursor was altered, forged, or belongs to another collection.
    """
    if cursor is None:
        return None
    payload, _, mac = cursor.partition(".")
    try:
        expected = _mac(key, collection, payload)
        # Bytes, not str: compare_digest raises TypeError on non-ASCII text, and the cursor is the caller's.
        if not constant_time_equals(mac, expected):
            raise ValueError("bad cursor signature")
        return _unb64(payload).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRequestError("The cursor is invalid.") from None
