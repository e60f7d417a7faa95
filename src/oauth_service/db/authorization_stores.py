"""SQL stores of the authorization endpoint: codes, consents, login sessions, pending requests, server secrets.

Codes, session ids and pending-request ids are stored only as SHA-256 digests. Single use of a code is a
conditional ``UPDATE ... WHERE used_at IS NULL`` (RFC 6749 §4.1.2), so two concurrent redemptions cannot both win.
Everything runs on SQLite and Postgres with portable SQLAlchemy constructs.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CursorResult, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.db.change_feed import jtis_revoked, publish
from oauth_service.db.direct import DirectStatement, direct_for
from oauth_service.db.mapping import join_set, joined_user, split_set
from oauth_service.db.refresh_sql import (
    INSERT_REFRESH,
    insert_after,
    new_refresh_params,
    refresh_values,
)
from oauth_service.db.release import release_reads
from oauth_service.db.tables import (
    AuthorizationCodeRow,
    AuthorizationRequestRow,
    ConsentRow,
    LoginSessionRow,
    RevokedTokenRow,
    UserRow,
)
from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.clock import Clock
from oauth_service.oauth.revocation_list import RevocationList
from oauth_service.oauth.storage import CodeRecord, NewRefreshToken

# Built once with bind parameters (per-call construction cost more CPU than the round trip; bench/README.md).
_CODES = AuthorizationCodeRow.__table__  # type: ignore[attr-defined]
_CONSUME_CODE = (
    update(_CODES)
    .where(_CODES.c.code_hash == bindparam("hash"), _CODES.c.used_at.is_(None))
    .values(
        used_at=bindparam("at"),
        family_id=bindparam("family"),
        access_jti=bindparam("jti"),
        access_expires_at=bindparam("jti_expires"),
    )
)
# Postgres: consuming the code and storing its refresh token is one statement (``refresh_sql``).
_CONSUME_CODE_WITH_REFRESH = insert_after(
    _CONSUME_CODE.returning(_CODES.c.code_hash.label("used_hash")).cte("used")
)
# A Core row, not an ORM entity: loading the entity (identity map, instance state) cost more than the read.
# The code with its user (LEFT JOIN): a redemption needs both, and one query saves a round trip.
_USERS = UserRow.__table__  # type: ignore[attr-defined]
_SELECT_CODE = (
    select(
        _CODES,
        *(
            _USERS.c[name].label(f"u_{name}")
            for name in ("id", "email", "is_active", "is_admin", "password_hash")
        ),
    )
    .outerjoin(_USERS, _USERS.c.id == _CODES.c.user_id)
    .where(_CODES.c.code_hash == bindparam("hash"))
)

# The redemption's read and write for the asyncpg connection of an autocommit session (``db.direct``).
_SELECT_CODE_DIRECT = DirectStatement.compile(_SELECT_CODE)
_CONSUME_CODE_WITH_REFRESH_DIRECT = DirectStatement.compile(_CONSUME_CODE_WITH_REFRESH)


def _code_from_row(row: Mapping[Any, Any]) -> CodeRecord:
    """A code row joined with its user (a Core row's ``_mapping`` or an asyncpg record)."""
    return CodeRecord(
        code_hash=row["code_hash"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        scope=split_set(row["scope"]),
        auth_time=row["auth_time"],
        expires_at=row["expires_at"],
        code_challenge=row["code_challenge"],
        code_challenge_method=row["code_challenge_method"],
        used_at=row["used_at"],
        family_id=row["family_id"],
        access_jti=row["access_jti"],
        access_expires_at=row["access_expires_at"],
        user=joined_user(row),
    )


class SqlAuthorizationCodeStore:
    """``oauth.storage.AuthorizationCodeStore`` on the request's session.

    ``revoke_issued`` writes on its own connection: it must survive the error response that follows it.
    """

    def __init__(
        self,
        session: AsyncSession,
        engine: AsyncEngine,
        clock: Clock,
        revocations: RevocationList | None = None,
    ) -> None:
        self._session = session
        self._engine = engine
        self._clock = clock
        self._revocations = revocations

    async def save(self, code: CodeRecord) -> None:
        """Store a new code (hash only)."""
        self._session.add(
            AuthorizationCodeRow(
                code_hash=code.code_hash,
                client_id=code.client_id,
                user_id=code.user_id,
                redirect_uri=code.redirect_uri,
                scope=join_set(code.scope),
                code_challenge=code.code_challenge,
                code_challenge_method=code.code_challenge_method,
                auth_time=code.auth_time,
                created_at=self._clock(),
                expires_at=code.expires_at,
            )
        )
        await self._session.flush()

    async def get(self, code_hash: str) -> CodeRecord | None:
        """Return the code by hash, used or not."""
        direct = await direct_for(self._session)
        if direct is not None:
            record = await _SELECT_CODE_DIRECT.fetchrow(direct, {"hash": code_hash})
            return _code_from_row(record) if record is not None else None
        result = await self._session.execute(_SELECT_CODE, {"hash": code_hash})
        row = result.first()
        return _code_from_row(row._mapping) if row is not None else None

    async def consume(
        self,
        code_hash: str,
        at: datetime,
        *,
        family_id: UUID,
        access_jti: str,
        access_expires_at: datetime,
        refresh: NewRefreshToken | None = None,
    ) -> bool:
        """Mark the code used if nobody did yet, and store ``refresh`` with it, all or nothing.

        The row lock makes a concurrent redemption wait, then lose. On Postgres both writes are one statement;
        elsewhere they share the request's transaction.
        """
        params = {
            "hash": code_hash,
            "at": at,
            "family": family_id,
            "jti": access_jti,
            "jti_expires": access_expires_at,
        }
        if refresh is not None and self._engine.dialect.name == "postgresql":
            values = {**params, **new_refresh_params(refresh)}
            direct = await direct_for(self._session)
            if direct is not None:
                row = await _CONSUME_CODE_WITH_REFRESH_DIRECT.fetchrow(direct, values)
                return row is not None
            inserted = await self._session.execute(_CONSUME_CODE_WITH_REFRESH, values)
            return inserted.first() is not None
        result: CursorResult[Any] = await self._session.execute(_CONSUME_CODE, params)  # type: ignore[assignment]
        if result.rowcount != 1:
            return False
        if refresh is not None:
            await self._session.execute(INSERT_REFRESH, refresh_values(refresh))
        return True

    async def revoke_issued(self, code_hash: str, at: datetime) -> None:
        """Put the access token the code's redemption issued on the revocation list, committed at once.

        The request's connection goes back first (an error response follows; nothing written is dropped,
        ``db.release``): a request never holds one connection while waiting for another.
        """
        await release_reads(self._session)
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        col(AuthorizationCodeRow.access_jti),
                        col(AuthorizationCodeRow.access_expires_at),
                    ).where(col(AuthorizationCodeRow.code_hash) == code_hash)
                )
            ).first()
            if row is None or row.access_jti is None or row.access_expires_at is None:
                return
            if row.access_expires_at <= at:
                return  # already dead; nothing to list
            # Concurrent replays race to list the same jti: insert-or-ignore, not check-then-insert.
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            await conn.execute(
                dialect.insert(RevokedTokenRow.__table__)  # type: ignore[attr-defined]
                .values(
                    jti=row.access_jti, expires_at=row.access_expires_at, revoked_at=at
                )
                .on_conflict_do_nothing()
            )
            await publish(
                conn, *jtis_revoked([(row.access_jti, row.access_expires_at)])
            )
        # Committed: this process refuses the token from the next request on.
        if self._revocations is not None:
            self._revocations.add(row.access_jti, row.access_expires_at.timestamp())


class SqlConsentStore:
    """Scopes each user granted each client (remembered consent)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: str, client_id: str) -> frozenset[str] | None:
        """Return the remembered scopes, or None when the user never consented."""
        row = await self._session.get(ConsentRow, (user_id, client_id))
        return split_set(row.scope) if row is not None else None

    async def grant(
        self, user_id: str, client_id: str, scope: frozenset[str], at: datetime
    ) -> None:
        """Remember ``scope`` in addition to what was granted before."""
        row = await self._session.get(ConsentRow, (user_id, client_id))
        if row is None:
            self._session.add(
                ConsentRow(
                    user_id=user_id,
                    client_id=client_id,
                    scope=join_set(scope),
                    granted_at=at,
                )
            )
        else:
            row.scope = join_set(split_set(row.scope) | scope)
            row.granted_at = at
        await self._session.flush()


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A signed-in browser: who, and when they last proved it (``auth_time``)."""

    user_id: str
    auth_time: datetime


class SqlLoginSessionStore:
    """Browser login sessions; the cookie carries the raw id, the table only its hash."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self, user_id: str, *, auth_time: datetime, expires_at: datetime
    ) -> str:
        """Start a session and return its raw id (for the cookie); expired sessions are swept here."""
        await self._session.execute(
            delete(LoginSessionRow).where(col(LoginSessionRow.expires_at) <= auth_time)
        )
        raw = new_opaque_token()
        self._session.add(
            LoginSessionRow(
                id_hash=token_hash(raw),
                user_id=user_id,
                auth_time=auth_time,
                created_at=auth_time,
                expires_at=expires_at,
            )
        )
        await self._session.flush()
        return raw

    async def get(self, raw_id: str, now: datetime) -> LoginSession | None:
        """Return the live session for ``raw_id``, or None when unknown or expired."""
        row = await self._session.get(LoginSessionRow, token_hash(raw_id))
        if row is None or row.expires_at <= now:
            return None
        return LoginSession(user_id=row.user_id, auth_time=row.auth_time)

    async def delete(self, raw_id: str) -> None:
        """End a session (logout, or replaced by a fresh login)."""
        await self._session.execute(
            delete(LoginSessionRow).where(
                col(LoginSessionRow.id_hash) == token_hash(raw_id)
            )
        )


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A validated authorization request waiting for login or consent."""

    request: AuthorizationRequest
    created_at: datetime


class SqlAuthorizationRequestStore:
    """Validated authorization requests carried across pages, keyed by the hash of an opaque id."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def save(
        self,
        request: AuthorizationRequest,
        *,
        created_at: datetime,
        expires_at: datetime,
    ) -> str:
        """Store ``request`` and return the raw id that names it; expired requests are swept here."""
        # Anyone can start an authorization, so abandoned requests must not pile up (indexed delete).
        await self._session.execute(
            delete(AuthorizationRequestRow).where(
                col(AuthorizationRequestRow.expires_at) <= created_at
            )
        )
        raw = new_opaque_token()
        self._session.add(
            AuthorizationRequestRow(
                id_hash=token_hash(raw),
                client_id=request.client_id,
                params=request.to_params(),
                created_at=created_at,
                expires_at=expires_at,
            )
        )
        await self._session.flush()
        return raw

    async def get(self, raw_id: str, now: datetime) -> PendingRequest | None:
        """Return the pending request, or None when unknown, finished or expired."""
        row = await self._session.get(AuthorizationRequestRow, token_hash(raw_id))
        if row is None or row.expires_at <= now:
            return None
        return PendingRequest(
            AuthorizationRequest.from_params(row.params), row.created_at
        )

    async def delete(self, raw_id: str) -> None:
        """Finish a request so its id cannot be used twice."""
        await self._session.execute(
            delete(AuthorizationRequestRow).where(
                col(AuthorizationRequestRow.id_hash) == token_hash(raw_id)
            )
        )
