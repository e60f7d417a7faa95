"""Matching a requested ``redirect_uri`` against a client's registrations (RFC 6749 §3.1.2.3, RFC 8252 §7.3).

Matching is simple string comparison (RFC 9700 §4.1.3). The one exception is loopback IP literals registered with
``http``: native apps listen on an ephemeral port, so any port is accepted when everything else is identical.
"""

import re
from urllib.parse import urlsplit

from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.oauth.models import Client

# RFC 8252 §7.3 names the IP literals; "localhost" is NOT RECOMMENDED (§8.3) and gets no port leeway.
_LOOPBACK_NETLOC = re.compile(r"^(127\.0\.0\.1|\[::1\])(:\d{1,5})?$")
_URI_CHARS = re.compile(r"[\x21-\x7e]+")


def _loopback_parts(uri: str) -> tuple[str, str, str] | None:
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 bracket: no URI, so no match
        return None
    match = _LOOPBACK_NETLOC.fullmatch(parts.netloc)
    if parts.scheme != "http" or match is None or parts.fragment:
        return None
    return match.group(1), parts.path, parts.query


def _matches_loopback(registered: str, requested: str) -> bool:
    # urlsplit silently drops tabs and newlines; such a URI must never match (it would be echoed in Location).
    if not _URI_CHARS.fullmatch(requested):
        return False
    reg = _loopback_parts(registered)
    return reg is not None and reg == _loopback_parts(requested)


def resolve_redirect_uri(client: Client, requested: str | None) -> str:
    """Return where the authorization response goes, or raise ``invalid_request`` (never redirected).

    Args:
        client: the client named by ``client_id``.
        requested: the ``redirect_uri`` parameter, or None when absent.

    Raises:
        InvalidRequestError: absent while the client registered several (or none), or no match.
    """
    if requested is None:
        if len(client.redirect_uris) == 1:
            return client.redirect_uris[0]
        if not client.redirect_uris:
            raise InvalidRequestError("The client has no registered redirect_uri.")
        raise InvalidRequestError(
            "redirect_uri is required: the client registered several."
        )
    if requested in client.redirect_uris:
        return requested
    if any(_matches_loopback(reg, requested) for reg in client.redirect_uris):
        return requested
    raise InvalidRequestError("redirect_uri does not match a registered one.")
