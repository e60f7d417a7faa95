"""Server-wide secrets (HMAC keys of cookies, CSRF tokens and admin cursors) generated once for every replica.

Used when ``OAUTH_SECRET_KEY`` is not set: the first replica to ask inserts a random value into the
``server_secrets`` table, and every other one reads it.
"""

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from oauth_service.db.tables import ServerSecretRow
from oauth_service.oauth.clock import Clock


async def server_secret(engine: AsyncEngine, name: str, clock: Clock) -> bytes:
    """Return the shared secret ``name``, generating it once for every replica (first writer wins)."""
    for _ in range(2):
        async with engine.begin() as conn:
            value = await conn.scalar(
                select(col(ServerSecretRow.value)).where(
                    col(ServerSecretRow.name) == name
                )
            )
            if value is not None:
                return bytes.fromhex(value)
        try:
            async with engine.begin() as conn:
                fresh = secrets.token_hex(32)
                await conn.execute(
                    ServerSecretRow.__table__.insert().values(  # type: ignore[attr-defined]
                        name=name, value=fresh, created_at=clock()
                    )
                )
                return bytes.fromhex(fresh)
        except IntegrityError:
            continue  # another replica inserted it first; read theirs
    raise RuntimeError(f"server secret {name!r} could not be read or created")
