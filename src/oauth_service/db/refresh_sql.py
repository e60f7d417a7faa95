"""Statements that insert refresh tokens, shared by the refresh-token and authorization-code stores.

On Postgres a grant's only write is one statement: ``WITH gate AS (UPDATE ... RETURNING ...) INSERT INTO
refresh_tokens ... SELECT ... FROM gate``. The conditional ``UPDATE`` (a code's ``used_at IS NULL``, a refresh
token's ``rotated_at IS NULL AND revoked_at IS NULL``) is the gate: the new token is inserted only when it
matched, in the same statement, so the write is atomic without a transaction around it and the row lock still
makes exactly one of concurrent requests win (the loser's ``UPDATE`` re-checks the row after the winner commits
and matches nothing, so it inserts nothing).
"""

from typing import Any

from sqlalchemy import CTE, BindParameter, Insert, bindparam, insert, select

from oauth_service.db.mapping import join_set
from oauth_service.db.tables import RefreshTokenRow
from oauth_service.oauth.storage import NewRefreshToken

REFRESH = RefreshTokenRow.__table__  # type: ignore[attr-defined]
INSERT_REFRESH = insert(REFRESH)

NEW_COLUMNS = (
    "id",
    "token_hash",
    "family_id",
    "parent_id",
    "client_id",
    "user_id",
    "scope",
    "auth_time",
    "issued_at",
    "expires_at",
    "family_expires_at",
    "access_jti",
    "access_expires_at",
)


def _new_params(prefix: str = "") -> dict[str, BindParameter[Any]]:
    """A typed bind parameter per new-token column, named ``prefix + column``."""
    return {
        name: bindparam(prefix + name, type_=REFRESH.c[name].type)
        for name in NEW_COLUMNS
    }


# The columns of ``refresh_values`` as named bind parameters, for a statement compiled once (``db.direct``).
INSERT_NEW_REFRESH = insert(REFRESH).values(_new_params())


def refresh_values(token: NewRefreshToken) -> dict[str, Any]:
    """The row of a new refresh token, keyed by column name."""
    return {
        "id": token.id,
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "parent_id": token.parent_id,
        "client_id": token.client_id,
        "user_id": token.user_id,
        "scope": join_set(token.scope),
        "auth_time": token.auth_time,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "family_expires_at": token.family_expires_at,
        "access_jti": token.access_jti,
        "access_expires_at": token.access_expires_at,
    }


def new_refresh_params(token: NewRefreshToken) -> dict[str, Any]:
    """The bind parameters of ``insert_after``'s statement for ``token``."""
    return {f"new_{name}": value for name, value in refresh_values(token).items()}


def insert_after(gate: CTE) -> Insert:
    """``INSERT INTO refresh_tokens (...) SELECT :new_id, ... FROM gate RETURNING id``: one row per gate row."""
    values = select(*_new_params("new_").values()).select_from(gate)
    return insert(REFRESH).from_select(NEW_COLUMNS, values).returning(REFRESH.c.id)
