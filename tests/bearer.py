"""Access tokens for tests of protected routes, signed with the running app's keys (RFC 9068 claims)."""

import uuid
from typing import Any

from oauth_service.runtime import Runtime


def access_token(
    runtime: Runtime,
    *,
    subject: str,
    client_id: str = "app",
    scope: str = "read write",
    ttl: int = 600,
    jti: str | None = None,
    **overrides: Any,
) -> str:
    """Sign an access token the way the token endpoint does; ``overrides`` replace or drop (None) claims."""
    now = int(runtime.clock().timestamp())
    claims: dict[str, Any] = {
        "iss": runtime.settings.issuer,
        "aud": runtime.settings.resource_audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
        "jti": jti or uuid.uuid4().hex,
    }
    claims.update(overrides)
    return runtime.keys.sign({k: v for k, v in claims.items() if v is not None})


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}
