"""How ``perform`` prints a token response (RFC 6749 §5.1): aligned fields, then the tokens' claims.

The claims of the access token (and of the ID token, OpenID Connect Core §2) are decoded without verifying the
signature, as a convenience for reading them; an API must verify the token (``oauth_service.resource_server``)
and a relying party the ID token. An opaque token simply has no claims to show.
"""

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_FIELDS = (
    "access_token",
    "token_type",
    "expires_in",
    "scope",
    "refresh_token",
    "id_token",
)
_DECODED = (("access_token", "access token"), ("id_token", "ID token"))
_TIMES = ("exp", "iat", "nbf", "auth_time")


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWS compact serialization, not verified; None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _claim(name: str, value: Any) -> str:
    if name in _TIMES and isinstance(value, int):
        moment = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{value} ({moment})"
    return value if isinstance(value, str) else json.dumps(value)


def format_token_response(body: Mapping[str, Any]) -> str:
    """The human-readable report: one ``name: value`` line per field, then the claims indented."""
    names = [name for name in _FIELDS if name in body]
    names += sorted(name for name in body if name not in _FIELDS)
    width = max(len(name) for name in names) + 1
    lines = [f"{name + ':':<{width}} {_claim(name, body[name])}" for name in names]
    for member, label in _DECODED:
        claims = unverified_claims(str(body.get(member, "")))
        if claims:
            lines.append(f"{label} claims (decoded, not verified):")
            claim_width = max(len(name) for name in claims) + 1
            lines += [
                f"  {name + ':':<{claim_width}} {_claim(name, claims[name])}"
                for name in sorted(claims)
            ]
    return "\n".join(lines)
