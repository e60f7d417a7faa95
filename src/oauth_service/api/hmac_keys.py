"""HMAC keys for the browser-facing state this service signs (session cookies and CSRF tokens, admin cursors).

Each purpose gets its own key: derived from ``OAUTH_SECRET_KEY`` when set, otherwise a random secret generated
once and stored in ``server_secrets`` so every replica signs and checks alike. Read once per app.
"""

import hashlib
import hmac

from fastapi import Request

from oauth_service.db.server_secrets import server_secret
from oauth_service.runtime import Runtime


async def hmac_key(request: Request, runtime: Runtime, purpose: str) -> bytes:
    """Return the key for ``purpose`` (e.g. ``"cookie_signing"``), cached on the app."""
    cache: dict[str, bytes] | None = getattr(request.app.state, "hmac_keys", None)
    if cache is None:
        cache = request.app.state.hmac_keys = {}
    cached = cache.get(purpose)
    if cached is not None:
        return cached
    configured = runtime.settings.secret_key
    if configured:
        key = hmac.new(configured.encode(), purpose.encode(), hashlib.sha256).digest()
    else:
        key = await server_secret(runtime.engine, purpose, runtime.clock)
    cache[purpose] = key
    return key
