"""SQL stores of the browser pages: consents, login sessions and pending authorization requests.

They live in the page's session and commit with it. Session ids and pending-request ids are stored only as
SHA-256 digests. Authorization codes are the core's (``db.stores``). A login session also has a public id, the
OpenID Connect ``sid`` that ID tokens and logout tokens carry, distinct from the cookie's secret; the clients
answered in a session are recorded against it (``login_session_clients``) for back-channel logout.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.db.mapping import join_set, split_set
from oauth_service.db.tables import (
    AuthorizationRequestRow,
    ConsentRow,
    LoginSessionClientRow,
    LoginSessionRow,
)
from oauth_service.oauth.authorization import AuthorizationRequest


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


_SESSION_CLIENTS = LoginSessionClientRow.__table__  # type: ignore[attr-defined]
# 128 bits: unguessable, 22 url-safe characters (OIDC Front/Back-Channel Logout: ``sid`` is opaque).
SID_BYTES = 16


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A signed-in browser: who, when they last proved it (``auth_time``), and its public ``sid``.

    ``sid`` is None only for a session started before sessions had one.
    """

    user_id: str
    auth_time: datetime
    sid: str | None = None


class SqlLoginSessionStore:
    """Browser login sessions; the cookie carries the raw id, the table only its hash."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        user_id: str,
        *,
        auth_time: datetime,
        expires_at: datetime,
        sid: str | None = None,
    ) -> str:
        """Start a session and return its raw id (for the cookie); expired sessions are swept here.

        The session gets a fresh random ``sid`` of its own, not derived from the cookie's secret, unless it
        continues one (``sid``: the same user signed in again in this browser, a new secret for the cookie).
        """
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
                sid=sid or secrets.token_urlsafe(SID_BYTES),
            )
        )
        await self._session.flush()
        return raw

    async def get(self, raw_id: str, now: datetime) -> LoginSession | None:
        """Return the live session for ``raw_id``, or None when unknown or expired."""
        row = await self._session.get(LoginSessionRow, token_hash(raw_id))
        if row is None or row.expires_at <= now:
            return None
        return LoginSession(user_id=row.user_id, auth_time=row.auth_time, sid=row.sid)

    async def add_client(
        self, sid: str, client_id: str, user_id: str, at: datetime
    ) -> None:
        """Record that ``client_id`` was answered in session ``sid`` (kept once per client, the first time)."""
        dialect = (
            postgresql
            if self._session.get_bind().dialect.name == "postgresql"
            else sqlite
        )
        # Insert-if-absent in one statement: two tabs answering the same client at once must not collide.
        await self._session.execute(
            dialect.insert(_SESSION_CLIENTS)
            .values(sid=sid, client_id=client_id, user_id=user_id, created_at=at)
            .on_conflict_do_nothing()
        )

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
