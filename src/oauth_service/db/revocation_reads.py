"""Reads of ``revoked_tokens`` for ``oauth.revocation_list`` (RFC 7009 §2.1).

Each read runs on a short-lived pooled connection of its own: a resource check needs, and holds, no session.
"""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.tables import RevokedTokenRow

_REVOKED = RevokedTokenRow.__table__  # type: ignore[attr-defined]


async def load_revoked(engine: AsyncEngine, now: float) -> dict[str, float]:
    """Every revoked ``jti`` whose token is still unexpired at ``now`` (epoch seconds), with its expiry."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(_REVOKED.c.jti, _REVOKED.c.expires_at).where(
                _REVOKED.c.expires_at > datetime.fromtimestamp(now, UTC)
            )
        )
        return {str(jti): expires.timestamp() for jti, expires in result.all()}


async def is_revoked(engine: AsyncEngine, jti: str) -> bool:
    """Whether ``jti`` is on the revocation list (one indexed read)."""
    async with engine.connect() as conn:
        found = await conn.scalar(select(_REVOKED.c.jti).where(_REVOKED.c.jti == jti))
    return found is not None
