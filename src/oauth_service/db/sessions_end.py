"""Ending browser sessions: the rows to delete, the tokens to revoke and the back-channel logouts to enqueue.

RP-Initiated Logout 1.0 §2 ends the browser's session at the OP; Back-Channel Logout 1.0 §2.5 to §2.7 then tells
every client that received tokens in that session. Here, in the caller's transaction, so the notifications are
stored if and only if the session really ended: the login session row goes, so do its refresh tokens unless
the user granted ``offline_access`` (OIDC Core §11: those outlive the browser session), their access tokens go
on the revocation list (announced on the change feed, as a family revocation is), and one outbox row per client
of the session that registered a ``backchannel_logout_uri`` is added to ``backchannel_logouts``, which
``runtime.backchannel`` delivers after the commit.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.crypto.tokens import token_hash
from oauth_service.db.change_feed import jtis_revoked, publish
from oauth_service.db.tables import (
    BackchannelLogoutRow,
    ClientRow,
    LoginSessionClientRow,
    LoginSessionRow,
    RefreshTokenRow,
    RevokedTokenRow,
)
from oauth_service.oidc.claims import OFFLINE_ACCESS_SCOPE

REVOKED = RevokedTokenRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A live login session: its row, its user and its public ``sid`` (None for sessions from before OIDC)."""

    id_hash: str
    user_id: str
    sid: str | None


async def find_browser_session(
    session: AsyncSession, raw_id: str, now: datetime
) -> BrowserSession | None:
    """The live session a cookie's raw id names, or None when unknown or expired."""
    row = await session.get(LoginSessionRow, token_hash(raw_id))
    if row is None or row.expires_at <= now:
        return None
    return BrowserSession(row.id_hash, row.user_id, row.sid)


def _online_only() -> ColumnElement[bool]:
    # Scopes are stored space-separated and sorted: pad both ends so the test matches whole tokens only.
    padded = literal(" ") + col(RefreshTokenRow.scope) + literal(" ")
    return padded.not_like(f"% {OFFLINE_ACCESS_SCOPE} %")


async def _revoke_session_tokens(
    session: AsyncSession, sid: str, now: datetime
) -> None:
    """Revoke the refresh tokens of ``sid`` that lack ``offline_access``, and their live access tokens."""
    live = (
        col(RefreshTokenRow.sid) == sid,
        col(RefreshTokenRow.revoked_at).is_(None),
        _online_only(),
    )
    result = await session.execute(
        select(
            col(RefreshTokenRow.access_jti), col(RefreshTokenRow.access_expires_at)
        ).where(
            *live,
            col(RefreshTokenRow.access_jti).is_not(None),
            col(RefreshTokenRow.access_expires_at) > now,
        )
    )
    entries: list[tuple[str, datetime]] = [
        (jti, expires_at) for jti, expires_at in result.all() if jti and expires_at
    ]
    await session.execute(update(RefreshTokenRow).where(*live).values(revoked_at=now))
    if not entries:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = [
        {"jti": jti, "expires_at": exp, "revoked_at": now} for jti, exp in entries
    ]
    await session.execute(insert(REVOKED).values(values).on_conflict_do_nothing())
    # On the session: this process applies them at commit, the others hear of them through the feed.
    await publish(session, *jtis_revoked(entries))


async def _enqueue(
    session: AsyncSession, *where: ColumnElement[bool], reason: str, now: datetime
) -> int:
    """Add one outbox row per (session, client) row matching ``where`` whose client takes back-channel logouts."""
    rows = await session.execute(
        select(
            col(LoginSessionClientRow.client_id),
            col(LoginSessionClientRow.user_id),
            col(LoginSessionClientRow.sid),
        )
        .join(
            ClientRow, col(ClientRow.client_id) == col(LoginSessionClientRow.client_id)
        )
        .where(*where, col(ClientRow.backchannel_logout_uri).is_not(None))
        .order_by(col(LoginSessionClientRow.client_id))
    )
    count = 0
    for client_id, user_id, sid in rows.all():
        session.add(
            BackchannelLogoutRow(
                id=uuid.uuid4(),
                client_id=client_id,
                subject=user_id,
                sid=sid,
                reason=reason,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
            )
        )
        count += 1
    await session.execute(delete(LoginSessionClientRow).where(*where))
    return count


async def end_browser_session(
    session: AsyncSession, browser: BrowserSession, *, reason: str, now: datetime
) -> int:
    """End one browser session (see the module docstring); return how many back-channel logouts were enqueued."""
    await session.execute(
        delete(LoginSessionRow).where(col(LoginSessionRow.id_hash) == browser.id_hash)
    )
    if browser.sid is None:
        return 0
    await _revoke_session_tokens(session, browser.sid, now)
    count = await _enqueue(
        session, col(LoginSessionClientRow.sid) == browser.sid, reason=reason, now=now
    )
    await session.flush()
    return count


async def end_user_sessions(
    session: AsyncSession, user_id: str, *, reason: str, now: datetime
) -> int:
    """End every browser session of a user (an administrator's logout); return the notifications enqueued."""
    rows = await session.execute(
        select(LoginSessionRow).where(col(LoginSessionRow.user_id) == user_id)
    )
    count = 0
    for row in rows.scalars().all():
        count += await end_browser_session(
            session,
            BrowserSession(row.id_hash, row.user_id, row.sid),
            reason=reason,
            now=now,
        )
    # Clients of sessions already expired or gone are told too: the relying party may still hold one.
    count += await notify_user_logout(session, user_id, reason=reason, now=now)
    return count


async def notify_user_logout(
    session: AsyncSession, user_id: str, *, reason: str, now: datetime
) -> int:
    """Enqueue back-channel logouts for every client of every session the user had (deactivation, new password).

    The caller deletes the sessions themselves (``db.admin``), in the same transaction.
    """
    count = await _enqueue(
        session, col(LoginSessionClientRow.user_id) == user_id, reason=reason, now=now
    )
    await session.flush()
    return count
