"""Registration rules: what a client registration, a user or a scope must satisfy before anything is stored.

Redirect URIs follow RFC 6749 §3.1.2 (absolute, no fragment), RFC 9700 §2.1 / §4.1 (https, exact match) and
RFC 8252 §7.1 and §7.3 (native apps: reverse-DNS private-use schemes, loopback http on any port); logout URIs
follow RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2. Scope tokens
follow RFC 6749 §3.3. Every rule raises ``RegistrationError`` with one line fit for a terminal; ``db.admin``,
which applies them, answers ``AdminError`` (a subclass) with the same line.
"""

import re
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.models import GRANT_TYPES
from oauth_service.oauth.scopes import is_valid_scope_token

REDIRECT_GRANTS = frozenset({"authorization_code", "implicit"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # bounds the argon2 input; long enough for any passphrase

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,255}$")
_PRIVATE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
# No whitespace and no control characters (NUL included: Postgres cannot store it in text).
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
)
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]*$")


class RegistrationError(ValueError):
    """Input that breaks a registration rule; ``str(error)`` is one clear line."""


def check_grant_types(grant_types: Iterable[str], *, is_public: bool) -> frozenset[str]:
    """Validate the grant types a client may use."""
    grants = frozenset(grant_types)
    if not grants:
        raise RegistrationError("a client needs at least one grant type")
    unknown = sorted(grants - GRANT_TYPES)
    if unknown:
        known = ", ".join(sorted(GRANT_TYPES))
        raise RegistrationError(f"unknown grant type {unknown[0]!r} (known: {known})")
    if is_public and "client_credentials" in grants:
        raise RegistrationError(
            "a public client cannot use client_credentials (it has no secret)"
        )
    if "refresh_token" in grants and not grants & {"authorization_code", "password"}:
        raise RegistrationError(
            "refresh_token needs authorization_code or password (nothing else issues refresh tokens)"
        )
    return grants


def check_redirect_uri(uri: str) -> str:
    """Validate one redirect URI (RFC 6749 §3.1.2, RFC 8252 §7.1/§7.3)."""
    if not uri or not _PRINTABLE.fullmatch(uri) or " " in uri:
        raise RegistrationError(f"redirect URI {uri!r} is empty or contains whitespace")
    if "#" in uri:
        raise RegistrationError(f"redirect URI {uri!r} must not contain a fragment")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise RegistrationError(f"redirect URI {uri!r} is not a valid URI") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise RegistrationError(f"redirect URI {uri!r} must be absolute")
    if scheme in {"http", "https"}:
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise RegistrationError(
                f"redirect URI {uri!r} has an invalid port"
            ) from None
        if not parts.hostname or parts.username is not None:
            raise RegistrationError(
                f"redirect URI {uri!r} must be absolute, without userinfo"
            )
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise RegistrationError(
                f"redirect URI {uri!r} must use https (http only for 127.0.0.1, [::1] or localhost)"
            )
        return uri
    if _PRIVATE_SCHEME.fullmatch(scheme):
        return uri
    raise RegistrationError(
        f"redirect URI {uri!r} must be https, loopback http, or a reverse-DNS private-use scheme"
    )


def check_post_logout_redirect_uris(uris: Iterable[str]) -> list[str]:
    """Validate the URIs the end-session endpoint may redirect to (RP-Initiated Logout 1.0 §3.1).

    The same rules as redirect URIs: absolute, no fragment, https, loopback http or a private-use scheme.
    """
    checked: list[str] = []
    for uri in uris:
        try:
            check_redirect_uri(uri)
        except RegistrationError as exc:
            raise RegistrationError(
                str(exc).replace("redirect URI", "post_logout_redirect_uri", 1)
            ) from None
        if uri not in checked:
            checked.append(uri)
    return checked


def check_backchannel_logout_uri(uri: str) -> str:
    """Validate a ``backchannel_logout_uri`` (Back-Channel Logout 1.0 §2.2): absolute https, no fragment.

    Plain http only for a loopback host, as for redirect URIs (a receiver on the developer's machine).
    """
    what = f"backchannel_logout_uri {uri!r}"
    if not uri or not _PRINTABLE.fullmatch(uri) or " " in uri:
        raise RegistrationError(f"{what} is empty or contains whitespace")
    if "#" in uri:
        raise RegistrationError(f"{what} must not contain a fragment")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise RegistrationError(f"{what} is not a valid URI") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise RegistrationError(f"{what} must be an absolute https URI")
    if parts.username is not None:
        raise RegistrationError(f"{what} must not contain userinfo")
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise RegistrationError(
            f"{what} must use https (http only for 127.0.0.1, [::1] or localhost)"
        )
    return uri


def check_redirect_uris(uris: Iterable[str], grants: frozenset[str]) -> list[str]:
    """Validate a client's redirect URIs against its grants."""
    checked: list[str] = []
    for uri in uris:
        check_redirect_uri(uri)
        if uri not in checked:
            checked.append(uri)
    needs = sorted(grants & REDIRECT_GRANTS)
    if needs and not checked:
        raise RegistrationError(
            f"grant type {needs[0]!r} needs at least one redirect URI"
        )
    return checked


def check_client_id(client_id: str) -> str:
    """Validate a caller-chosen client_id (URL- and Basic-auth-safe characters)."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise RegistrationError(
            f"client_id {client_id!r} must be 1-255 of A-Z a-z 0-9 . _ ~ -"
        )
    if _looks_like_user_id(client_id):
        # A client's tokens carry sub=client_id; a UUID could equal a user's id and let the client's tokens
        # pass for that user's at resource servers (RFC 9068 §5).
        raise RegistrationError(
            f"client_id {client_id!r} must not be a UUID (user ids are UUIDs)"
        )
    return client_id


def _looks_like_user_id(client_id: str) -> bool:
    try:
        uuid.UUID(client_id)
    except ValueError:
        return False
    return True


def check_name(name: str, *, what: str = "client name", limit: int = 255) -> str:
    """Validate a display name: non-blank, printable, bounded."""
    name = name.strip()
    if not name or len(name) > limit or not _PRINTABLE.fullmatch(name):
        raise RegistrationError(f"{what} must be 1-{limit} printable characters")
    return name


def check_scope_name(name: str) -> str:
    """Validate a scope token (RFC 6749 §3.3)."""
    if not is_valid_scope_token(name) or len(name) > 128:
        raise RegistrationError(
            f"scope {name!r} is not a valid scope token (printable ASCII, no space, quote or backslash)"
        )
    return name


def normalize_email(email: str) -> str:
    """Return the comparison form of an email; invalid addresses raise."""
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise RegistrationError(f"invalid email address {email!r}")
    return canonical_email(email)  # the form lookups and the lockout compare


def check_password(password: str) -> str:
    """Enforce the password length policy."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RegistrationError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise RegistrationError(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters"
        )
    return password
