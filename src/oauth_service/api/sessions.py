"""Browser state of the authorization endpoint: the signed login-session cookie and CSRF tokens.

The cookie carries a random session id plus an HMAC over it; the database keeps only the id's hash, so every
replica can check a cookie. The HMAC key is ``OAUTH_SECRET_KEY`` when set, else a secret generated once and
shared through the ``server_secrets`` table. CSRF tokens are HMACs bound to the pending request (login form) or
to the login session and the pending request (consent form), so a cross-site page cannot forge either POST.
Before sign-in there is no session, and anyone can create a pending request and read its login form, so the login
form's token is also bound to a random browser id in its own signed cookie (set by the login page): a cross-site
page cannot sign a victim's browser into the attacker's account (login CSRF, OWASP; RFC 6749 §10.12).
Cookies and form fields are attacker-chosen text: they are compared as bytes (``constant_time_equals``), since
``hmac.compare_digest`` raises on a ``str`` holding anything but ASCII.
"""

import base64
import hashlib
import hmac

from fastapi import Request, Response

from oauth_service.api.hmac_keys import hmac_key
from oauth_service.crypto.tokens import constant_time_equals
from oauth_service.runtime import Runtime

COOKIE_NAME = "oauth_session"
BROWSER_COOKIE_NAME = "oauth_browser"
COOKIE_PATH = "/oauth"
# With Secure cookies (an https issuer) both cookies take the __Host- prefix: the browser then accepts them only
# from this host, Secure, without Domain and with Path=/ (RFC 6265bis §4.1.3.2), so a sibling subdomain cannot
# plant its own signed session or browser id here (cookie tossing: a same-site login CSRF that SameSite=Lax
# does not stop). Path=/ sends them to the whole origin; a path was never a boundary within one origin, and
# both are HttpOnly and ignored outside the pages. Plain http (development) keeps the short names on /oauth.
HOST_PREFIX = "__Host-"
_SECRET_NAME = "cookie_signing"


async def signing_key(request: Request, runtime: Runtime) -> bytes:
    """Return the cookie/CSRF HMAC key, read once per process."""
    return await hmac_key(request, runtime, _SECRET_NAME)


def _mac(key: bytes, *parts: str) -> str:
    message = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_token(key: bytes, purpose: str, *bound_to: str) -> str:
    """Return the CSRF token for a form of ``purpose`` bound to ``bound_to``."""
    return _mac(key, "csrf", purpose, *bound_to)


def csrf_valid(key: bytes, token: str | None, purpose: str, *bound_to: str) -> bool:
    """Check a submitted CSRF token in constant time."""
    if not token:
        return False
    return constant_time_equals(token, csrf_token(key, purpose, *bound_to))


def _read_signed(request: Request, key: bytes, name: str, purpose: str) -> str | None:
    value = request.cookies.get(name)
    if not value or "." not in value:
        return None
    raw, _, mac = value.rpartition(".")
    if not constant_time_equals(mac, _mac(key, purpose, raw)):
        return None
    return raw


def cookie_name(name: str, *, secure: bool) -> str:
    """The cookie's name as sent: ``__Host-`` prefixed when the cookies are Secure."""
    return f"{HOST_PREFIX}{name}" if secure else name


def _path(secure: bool) -> str:
    return "/" if secure else COOKIE_PATH  # __Host- cookies must have Path=/


def read_session_cookie(request: Request, key: bytes, *, secure: bool) -> str | None:
    """Return the raw session id of a correctly signed cookie, else None (only the prefixed name when Secure)."""
    return _read_signed(
        request, key, cookie_name(COOKIE_NAME, secure=secure), "session"
    )


def read_browser_cookie(request: Request, key: bytes, *, secure: bool) -> str | None:
    """Return the browser id of a correctly signed pre-login cookie, else None."""
    return _read_signed(
        request, key, cookie_name(BROWSER_COOKIE_NAME, secure=secure), "browser"
    )


def set_browser_cookie(
    response: Response, key: bytes, browser_id: str, *, secure: bool
) -> None:
    """Attach the signed, HttpOnly, SameSite=Lax browser-id cookie (lives as long as the browser session)."""
    response.set_cookie(
        cookie_name(BROWSER_COOKIE_NAME, secure=secure),
        f"{browser_id}.{_mac(key, 'browser', browser_id)}",
        path=_path(secure),
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def set_session_cookie(
    response: Response, key: bytes, raw_id: str, *, max_age: int, secure: bool
) -> None:
    """Attach the signed, HttpOnly, SameSite=Lax session cookie (Secure when configured or https)."""
    response.set_cookie(
        cookie_name(COOKIE_NAME, secure=secure),
        f"{raw_id}.{_mac(key, 'session', raw_id)}",
        max_age=max_age,
        path=_path(secure),
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    """Tell the browser to drop the session cookie (logout): same name, path and flags as when it was set."""
    response.delete_cookie(
        cookie_name(COOKIE_NAME, secure=secure),
        path=_path(secure),
        secure=secure,
        httponly=True,
        samesite="lax",
    )
