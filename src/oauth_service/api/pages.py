"""Server-rendered HTML pages (Jinja2, autoescaped) with the headers every page must carry.

Pages may not be framed (clickjacking on consent), leak no referrer, load nothing from third parties.
"""

import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from oauth_service.oauth.caching import NO_STORE

TEMPLATES_DIR = Path(__file__).parent / "templates"

CSP = "Content-Security-Policy"
_BASE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# form-action keeps an injected form from posting anywhere else. Browsers apply it to every redirect that
# follows a form submission too (Chromium blocks the navigation), and the login and consent forms end in a
# 303 to the client's redirect URI: those pages add that URI's origin (``form_action_headers``).
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    CSP: f"{_BASE_CSP}; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    **NO_STORE,
}


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")


def _source(redirect_uri: str) -> str | None:
    """The CSP source that matches ``redirect_uri``: its origin, or its scheme for a private-use scheme.

    None when it cannot be written safely (a CSP is a header: no space, ``;`` or ``,`` may come from data).
    """
    try:
        parts = urlsplit(redirect_uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        return None
    if not parts.netloc:  # com.example.app:/callback (RFC 8252 §7.1)
        return f"{scheme}:"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    if not _HOST.fullmatch(host):
        return None
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def form_action_headers(redirect_uri: str) -> dict[str, str]:
    """The CSP of a page whose form may end in a redirect to ``redirect_uri`` (login, consent).

    Without a safe source for the URI the page goes without form-action rather than break the flow.
    """
    source = _source(redirect_uri)
    if source is None:
        return {CSP: _BASE_CSP}
    return {CSP: f"{_BASE_CSP}; form-action 'self' {source}"}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def render_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with the page security headers."""
    html = _environment().get_template(template).render(request=request, **context)
    return HTMLResponse(
        html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})}
    )
