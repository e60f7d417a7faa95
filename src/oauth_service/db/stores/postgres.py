"""Postgres: spending a refresh token or a code is one statement, one round trip, run on asyncpg.

The password grant's two statements (its user read, its refresh token's insert) run on asyncpg too.

``WITH spent AS (UPDATE ... WHERE <every check> RETURNING ...) INSERT INTO refresh_tokens ... SELECT ... FROM
spent``: the conditional UPDATE is the gate, and the successor is inserted only when it matched, in the same
statement, so the write is atomic on an autocommit connection. The row lock makes a concurrent spend wait and
then match nothing. Every check of ``oauth.storage.RefreshClaim`` / ``CodeClaim`` is in the WHERE clause, so a
refused request changes nothing. The SQL is run by the asyncpg connection itself (reached through SQLAlchemy's
public ``get_raw_connection``): on the two busiest writes SQLAlchemy's execution layer cost more CPU than the
round trip (docs/performance.md).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from oauth_service.db.stores.common import (
    SqlAuthorizationCodeStore,
    SqlRefreshTokenStore,
    SqlUserStore,
    code_from,
    refresh_from,
    refresh_values,
    user_from,
)
from oauth_service.db.stores.units import Database
from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.models import User
from oauth_service.oauth.storage import (
    CodeClaim,
    CodeRecord,
    NewRefreshToken,
    RefreshClaim,
    RefreshRecord,
)

# $1 hash, $2 client, $3 at, $4 required scope, $5 requires admin, $6 new id, $7 new hash, $8 idle until,
# $9 access jti, $10 access expiry.
ROTATE = """
WITH spent AS (
    UPDATE refresh_tokens AS t SET rotated_at = $3
    WHERE t.token_hash = $1 AND t.client_id = $2
      AND t.rotated_at IS NULL AND t.revoked_at IS NULL
      AND t.expires_at > $3 AND t.family_expires_at > $3
      AND string_to_array(t.scope, ' ') @> $4::text[]
      AND (t.user_id IS NULL OR EXISTS (
          SELECT 1 FROM users AS a
          WHERE a.id = t.user_id AND a.is_active AND (a.is_admin OR NOT $5::boolean)))
    RETURNING t.*
), successor AS (
    INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope, auth_time,
        issued_at, expires_at, family_expires_at, access_jti, access_expires_at, sid)
    SELECT $6, $7, s.family_id, s.id, s.client_id, s.user_id, s.scope, s.auth_time, $3,
           LEAST($8::timestamptz, s.family_expires_at), s.family_expires_at, $9, $10, s.sid
    FROM spent AS s
)
SELECT s.*, u.id AS u_id, u.email AS u_email, u.is_active AS u_is_active, u.is_admin AS u_is_admin,
       u.password_hash AS u_password_hash
FROM spent AS s LEFT JOIN users AS u ON u.id = s.user_id
"""

# $1 hash, $2 client, $3 at, $4 family, $5 access jti, $6 access expiry, $7 redirect_uri sent, $8 redirect_uri
# registered, $9 S256 challenge, $10 plain challenge, $11 verifier sent, $12 public client, $13 refresh id
# (NULL: none), $14 refresh hash, $15 refresh expiry, $16 family expiry.
REDEEM = """
WITH spent AS (
    UPDATE authorization_codes AS c
    SET used_at = $3, family_id = $4, access_jti = $5, access_expires_at = $6
    FROM users AS u
    WHERE c.code_hash = $1 AND c.client_id = $2 AND c.used_at IS NULL AND c.expires_at > $3
      AND u.id = c.user_id AND u.is_active
      AND (c.redirect_uri = $7::text OR (c.redirect_uri IS NULL AND $8::boolean))
      AND ((c.code_challenge_method = 'S256' AND c.code_challenge = $9::text)
           OR (c.code_challenge_method = 'plain' AND c.code_challenge = $10::text)
           OR (c.code_challenge IS NULL AND NOT $11::boolean AND NOT $12::boolean))
    RETURNING c.*, u.id AS u_id, u.email AS u_email, u.is_active AS u_is_active, u.is_admin AS u_is_admin,
       u.password_hash AS u_password_hash
), refresh AS (
    INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope, auth_time,
        issued_at, expires_at, family_expires_at, access_jti, access_expires_at, sid)
    SELECT $13::uuid, $14, $4, NULL, s.client_id, s.user_id, s.scope, s.auth_time, $3, $15, $16, $5, $6, s.sid
    FROM spent AS s WHERE $13::uuid IS NOT NULL
)
SELECT * FROM spent
"""

# The password grant's two statements: its user read and its new refresh token.
USER_BY_EMAIL = """
SELECT id, email, is_active, is_admin, password_hash FROM users WHERE email_normalized = $1
"""
SAVE_REFRESH = """
INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope, auth_time,
    issued_at, expires_at, family_expires_at, access_jti, access_expires_at, sid)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""


# The connection is unusable after these: it leaves the pool instead of going back to it.
_LOST = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError, TimeoutError)


@asynccontextmanager
async def _driver(db: Database) -> AsyncIterator[Any]:
    """The asyncpg connection (asyncpg ships no type information) of an autocommit pooled connection."""
    async with db.statement() as connection:
        pooled = await connection.get_raw_connection()
        try:
            yield pooled.driver_connection
        except _LOST:
            await connection.invalidate()
            raise


class PostgresUserStore(SqlUserStore):
    """Users on Postgres: the password grant's read by email runs on asyncpg."""

    async def get_by_email(self, email: str) -> User | None:
        """Return the user by email (``USER_BY_EMAIL``), or None."""
        async with _driver(self._db) as driver:
            row = await driver.fetchrow(USER_BY_EMAIL, canonical_email(email))
        return user_from(row)


class PostgresRefreshTokenStore(SqlRefreshTokenStore):
    """Refresh tokens on Postgres."""

    async def save(self, token: NewRefreshToken) -> None:
        """Store a new refresh token (``SAVE_REFRESH``: the password grant's one write)."""
        # ``refresh_values`` lists the columns in ``SAVE_REFRESH``'s order.
        async with _driver(self._db) as driver:
            await driver.execute(SAVE_REFRESH, *refresh_values(token).values())

    async def rotate(self, claim: RefreshClaim) -> RefreshRecord | None:
        """Rotate and insert the successor in one statement (``ROTATE``)."""
        successor, access = claim.successor, claim.access
        async with _driver(self._db) as driver:
            row = await driver.fetchrow(
                ROTATE,
                claim.token_hash,
                claim.client_id,
                claim.at,
                sorted(claim.required_scope),
                claim.requires_admin,
                successor.id,
                successor.token_hash,
                successor.idle_until,
                access.jti,
                access.expires_at,
            )
        return refresh_from(row, user_from(row, "u_")) if row is not None else None


class PostgresAuthorizationCodeStore(SqlAuthorizationCodeStore):
    """Authorization codes on Postgres."""

    async def redeem(self, claim: CodeClaim) -> CodeRecord | None:
        """Spend the code and store its refresh token in one statement (``REDEEM``)."""
        refresh, access = claim.refresh, claim.access
        async with _driver(self._db) as driver:
            row = await driver.fetchrow(
                REDEEM,
                claim.code_hash,
                claim.client_id,
                claim.at,
                claim.family_id,
                access.jti,
                access.expires_at,
                claim.redirect_uri,
                claim.redirect_uri_registered,
                claim.s256_challenge,
                claim.plain_challenge,
                claim.verifier_sent,
                claim.public_client,
                refresh.id if refresh is not None else None,
                refresh.token_hash if refresh is not None else None,
                min(refresh.idle_until, claim.family_expires_at)
                if refresh is not None
                else None,
                claim.family_expires_at,
            )
        return code_from(row, user_from(row, "u_")) if row is not None else None
