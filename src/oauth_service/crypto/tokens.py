"""Opaque random tokens and their at-rest hashes.

Refresh tokens, authorization codes, client secrets and session ids carry 256 bits from ``secrets``; only their
SHA-256 digest is stored. A high-entropy secret needs no slow hash, which keeps lookups a single indexed read.
"""

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits


def new_opaque_token() -> str:
    """Return a fresh URL-safe token with 256 bits of entropy."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 digest stored in place of ``token``."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two strings without leaking where they differ; any text works (compared as UTF-8 bytes).

    ``hmac.compare_digest`` on two ``str`` raises ``TypeError`` when either holds a non-ASCII character, so
    attacker-supplied text (cookies, form fields, cursors) must come through here, never straight to it.
    """
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def verify_token_hash(token: str, expected_hash: str) -> bool:
    """Check ``token`` against a stored digest in constant time."""
    return constant_time_equals(token_hash(token), expected_hash)
