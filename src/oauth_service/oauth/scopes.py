"""Scope strings and sets (RFC 6749 §3.3).

A scope token is one or more of %x21 / %x23-5B / %x5D-7E, separated by single spaces.
"""

import re
from collections.abc import Iterable

from oauth_service.oauth.errors import InvalidScopeError

# Granted only to admin users, and never without being asked for (RFC 6749 §3.3 leaves the policy to us).
ADMIN_SCOPE = "admin"

_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(raw: str) -> frozenset[str]:
    """Parse a space-delimited scope string; malformed tokens raise ``invalid_scope``."""
    tokens = [t for t in raw.split(" ") if t]
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScopeError("The scope parameter is malformed.")
    return frozenset(tokens)


def format_scope(scopes: Iterable[str]) -> str:
    """Render a scope set in a stable, sorted order."""
    return " ".join(sorted(scopes))


def is_valid_scope_token(token: str) -> bool:
    """Return whether ``token`` is a syntactically valid scope token."""
    return bool(_SCOPE_TOKEN.fullmatch(token))


def narrow_scope(
    requested: frozenset[str] | None, allowed: frozenset[str]
) -> frozenset[str]:
    """Return the granted scope: ``requested`` if within ``allowed``, or ``allowed`` when none was asked.

    Raises:
        InvalidScopeError: the request asks for more than ``allowed`` (RFC 6749 §3.3, §5.2).
    """
    if not requested:
        return allowed
    if not requested <= allowed:
        raise InvalidScopeError("The requested scope exceeds what may be granted.")
    return requested
