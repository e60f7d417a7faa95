"""SQLite: spending a refresh token or a code is a short transaction (conditional UPDATE, then INSERT).

The conditional ``UPDATE ... RETURNING`` takes SQLite's write lock, so concurrent spends of one token are
serialised and only the first matches; what SQL does not check here (the scope, an administrator's scope) is
checked before the transaction commits, and a refusal rolls it back, leaving nothing changed.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, exists, false, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from oauth_service.db.stores.common import (
    CODES,
    INSERT_REFRESH,
    REFRESH,
    USER_BY_ID,
    USERS,
    SqlAuthorizationCodeStore,
    SqlRefreshTokenStore,
    code_from,
    refresh_from,
    user_from,
)
from oauth_service.oauth.models import User
from oauth_service.oauth.storage import (
    AccessRecord,
    CodeClaim,
    CodeRecord,
    RefreshClaim,
    RefreshRecord,
    Successor,
)


class _RefusedError(Exception):
    """Raised inside a spend's transaction to roll it back."""


def _active_user(user_id: Any) -> ColumnElement[bool]:
    return exists().where(USERS.c.id == user_id, USERS.c.is_active.is_(True))


async def _user(conn: AsyncConnection, user_id: str | None) -> User | None:
    if user_id is None:
        return None
    row = (await conn.execute(USER_BY_ID, {"user_id": user_id})).first()
    return user_from(row._mapping if row is not None else None)


def _successor_row(
    successor: Successor,
    spent: Mapping[Any, Any],
    *,
    family: tuple[UUID, datetime],
    parent_id: UUID | None,
    at: datetime,
    access: AccessRecord,
) -> dict[str, Any]:
    """The row of the refresh token stored in place of ``spent`` (its client, user, scope and auth_time)."""
    family_id, family_end = family
    return {
        "id": successor.id,
        "token_hash": successor.token_hash,
        "family_id": family_id,
        "parent_id": parent_id,
        "client_id": spent["client_id"],
        "user_id": spent["user_id"],
        "scope": spent["scope"],
        "auth_time": spent["auth_time"],
        "issued_at": at,
        "expires_at": min(successor.idle_until, family_end),
        "family_expires_at": family_end,
        "access_jti": access.jti,
        "access_expires_at": access.expires_at,
        "sid": spent["sid"],
    }


class SqliteRefreshTokenStore(SqlRefreshTokenStore):
    """Refresh tokens on SQLite."""

    async def rotate(self, claim: RefreshClaim) -> RefreshRecord | None:
        """Mark the live token rotated and insert its successor, in one transaction."""
        at = claim.at
        spend = (
            update(REFRESH)
            .where(
                REFRESH.c.token_hash == claim.token_hash,
                REFRESH.c.client_id == claim.client_id,
                REFRESH.c.rotated_at.is_(None),
                REFRESH.c.revoked_at.is_(None),
                REFRESH.c.expires_at > at,
                REFRESH.c.family_expires_at > at,
                or_(REFRESH.c.user_id.is_(None), _active_user(REFRESH.c.user_id)),
            )
            .values(rotated_at=at)
            .returning(*REFRESH.c)
        )
        try:
            async with self._db.transaction() as conn:
                row = (await conn.execute(spend)).first()
                if row is None:
                    return None
                old = refresh_from(row._mapping)
                user = await _user(conn, old.user_id)
                admin_missing = user is not None and not user.is_admin
                if not claim.required_scope <= old.scope or (
                    claim.requires_admin and admin_missing
                ):
                    raise _RefusedError
                await conn.execute(
                    INSERT_REFRESH,
                    _successor_row(
                        claim.successor,
                        row._mapping,
                        family=(old.family_id, old.family_expires_at),
                        parent_id=old.id,
                        at=at,
                        access=claim.access,
                    ),
                )
        except _RefusedError:
            return None
        return refresh_from(row._mapping, user)


def _code_bindings(claim: CodeClaim) -> list[ColumnElement[bool]]:
    """The redirect URI and PKCE conditions of ``claim`` (``oauth.storage.CodeClaim``)."""
    stored = CODES.c.redirect_uri
    if claim.redirect_uri is None:
        # Nothing sent matches only nothing stored, and only when that is allowed (as on Postgres).
        redirect = stored.is_(None) if claim.redirect_uri_registered else false()
    elif claim.redirect_uri_registered:
        redirect = or_(stored == claim.redirect_uri, stored.is_(None))
    else:
        redirect = stored == claim.redirect_uri
    proofs: list[ColumnElement[bool]] = []
    method, challenge = CODES.c.code_challenge_method, CODES.c.code_challenge
    if claim.s256_challenge is not None:
        proofs.append(and_(method == "S256", challenge == claim.s256_challenge))
    if claim.plain_challenge is not None:
        proofs.append(and_(method == "plain", challenge == claim.plain_challenge))
    if not claim.verifier_sent and not claim.public_client:
        proofs.append(challenge.is_(None))
    return [redirect, or_(*proofs) if proofs else false()]


class SqliteAuthorizationCodeStore(SqlAuthorizationCodeStore):
    """Authorization codes on SQLite."""

    async def redeem(self, claim: CodeClaim) -> CodeRecord | None:
        """Mark the code used if ``claim`` holds and store its refresh token, in one transaction."""
        at = claim.at
        spend = (
            update(CODES)
            .where(
                CODES.c.code_hash == claim.code_hash,
                CODES.c.client_id == claim.client_id,
                CODES.c.used_at.is_(None),
                CODES.c.expires_at > at,
                _active_user(CODES.c.user_id),
                *_code_bindings(claim),
            )
            .values(
                used_at=at,
                family_id=claim.family_id,
                access_jti=claim.access.jti,
                access_expires_at=claim.access.expires_at,
            )
            .returning(*CODES.c)
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(spend)).first()
            if row is None:
                return None
            user = await _user(conn, row.user_id)
            refresh = claim.refresh
            if refresh is not None:
                await conn.execute(
                    INSERT_REFRESH,
                    _successor_row(
                        refresh,
                        row._mapping,
                        family=(claim.family_id, claim.family_expires_at),
                        parent_id=None,
                        at=at,
                        access=claim.access,
                    ),
                )
        return code_from(row._mapping, user)
