"""Proof Key for Code Exchange (RFC 7636 §4.1 to §4.6; downgrade protection per RFC 9700 §4.8.2).

The authorization endpoint checks the challenge (``validate_challenge``); the token endpoint checks the verifier
against it (``verify_code_verifier``). ``S256`` is the only method unless ``plain`` is explicitly allowed; a
request without ``code_challenge_method`` means ``plain`` (RFC 7636 §4.3), so it is refused by default.
"""

import base64
import hashlib
import re

from oauth_service.crypto.tokens import constant_time_equals
from oauth_service.oauth.errors import InvalidRequestError

S256 = "S256"
PLAIN = "plain"

# RFC 7636 §4.1: code-verifier = 43*128unreserved.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# BASE64URL(SHA256(verifier)) without padding is always 43 characters.
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def is_valid_verifier(verifier: str) -> bool:
    """Return whether ``verifier`` has the RFC 7636 §4.1 syntax (43 to 128 unreserved characters)."""
    return bool(_VERIFIER.fullmatch(verifier))


def s256_challenge(verifier: str) -> str:
    """Return ``BASE64URL(SHA256(ASCII(verifier)))`` without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_challenge(
    challenge: str, method: str | None, *, allow_plain: bool
) -> tuple[str, str]:
    """Check a ``code_challenge`` and its method at the authorization endpoint.

    Args:
        challenge: the ``code_challenge`` parameter.
        method: the ``code_challenge_method`` parameter, or None when absent (meaning ``plain``).
        allow_plain: whether the ``plain`` method is enabled.

    Returns:
        The challenge and the effective method.

    Raises:
        InvalidRequestError: unsupported method or malformed challenge.
    """
    effective = PLAIN if method is None else method
    if effective == S256:
        if not _S256_CHALLENGE.fullmatch(challenge):
            raise InvalidRequestError(
                "code_challenge must be 43 base64url characters for S256."
            )
        return challenge, S256
    if effective == PLAIN and allow_plain:
        if not _VERIFIER.fullmatch(challenge):
            raise InvalidRequestError(
                "code_challenge must be 43 to 128 unreserved characters."
            )
        return challenge, PLAIN
    if method is None:
        raise InvalidRequestError("code_challenge_method is required; use S256.")
    raise InvalidRequestError("Unsupported code_challenge_method; use S256.")


def verify_code_verifier(
    verifier: str, challenge: str, method: str, *, allow_plain: bool
) -> bool:
    """Return whether ``verifier`` matches the stored ``challenge`` (RFC 7636 §4.6), in constant time."""
    if not is_valid_verifier(verifier):
        return False
    if method == S256:
        return constant_time_equals(s256_challenge(verifier), challenge)
    if method == PLAIN and allow_plain:
        return constant_time_equals(verifier, challenge)
    return False
