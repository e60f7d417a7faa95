"""Housekeeping: delete rows that can no longer matter, so tables stay bounded under load.

What goes (each only once it is dead for every purpose the server still has for it):

* authorization codes past ``expires_at``; a *used* code is kept until the access token its redemption
  issued has expired too, because a replay must still revoke that token (RFC 6749 §4.1.2, RFC 9700 §4.4);
* refresh tokens of families that are over (``family_expires_at`` passed, or every token of the family past its
  own ``expires_at``), and revoked refresh tokens past ``expires_at``; rotated tokens of a live family stay,
  since presenting one is how reuse is detected (RFC 9700 §4.14.2);
* revocation-list entries past ``expires_at`` (the token would fail its ``exp`` check anyway, RFC 7009 §2.2),
  and subject cut-offs past theirs (every token they refuse has expired);
* expired login sessions and pending authorization requests, and the record of which clients were answered in
  a session once that session is gone (back-channel logout has no one left to tell);
* retired signing keys past ``expires_at`` (see ``db.key_rotation``).

Deletes run in batches of ``batch_size`` rows, one short transaction each, so a large backlog never holds long
locks or a huge transaction. Every step is idempotent; replicas purging at the same time do no harm.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from oauth_service.db.key_rotation import settle_keys
from oauth_service.db.tables import (
    AuthorizationCodeRow,
    AuthorizationRequestRow,
    LoginSessionClientRow,
    LoginSessionRow,
    RefreshTokenRow,
    RevokedTokenRow,
    SigningKeyRow,
    SubjectCutoffRow,
)
from oauth_service.oauth.clock import Clock, utcnow

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """How many rows each table lost."""

    authorization_codes: int
    refresh_tokens: int
    revoked_tokens: int
    login_sessions: int
    authorization_requests: int
    signing_keys: int
    subject_cutoffs: int
    login_session_clients: int = 0

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(asdict(self).values())

    def as_dict(self) -> dict[str, int]:
        """Counts by table."""
        return asdict(self)


async def _delete_batched(
    engine: AsyncEngine,
    model: Any,
    key: Any,
    condition: ColumnElement[bool],
    batch_size: int,
) -> int:
    """Delete the rows of ``model`` matching ``condition``, ``batch_size`` primary keys per transaction."""
    total = 0
    while True:
        batch = select(key).where(condition).limit(batch_size)
        async with engine.begin() as conn:
            result = await conn.execute(delete(model).where(key.in_(batch)))
        deleted = int(result.rowcount)
        total += deleted
        if deleted < batch_size:
            return total


def _dead_codes(now: datetime) -> ColumnElement[bool]:
    code = AuthorizationCodeRow
    return and_(
        col(code.expires_at) <= now,
        or_(
            col(code.used_at).is_(None),
            col(code.access_expires_at).is_(None),
            col(code.access_expires_at) <= now,
        ),
    )


def _dead_refresh_tokens(now: datetime) -> ColumnElement[bool]:
    token = RefreshTokenRow
    finished_families = (
        select(col(token.family_id))
        .group_by(col(token.family_id))
        .having(func.max(col(token.expires_at)) <= now)
    )
    return or_(
        col(token.family_expires_at) <= now,
        col(token.family_id).in_(finished_families),
        and_(col(token.revoked_at).is_not(None), col(token.expires_at) <= now),
    )


async def purge_expired(
    engine: AsyncEngine,
    *,
    retire_after: timedelta,
    clock: Clock = utcnow,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> PurgeReport:
    """Delete every expired row (see the module docstring) and report the counts."""
    now = clock()

    async def purge(model: Any, key: Any, condition: ColumnElement[bool]) -> int:
        return await _delete_batched(engine, model, key, condition, batch_size)

    # Retired keys get their expires_at written first, so a key superseded since the last reload is counted.
    await settle_keys(engine, retire_after=retire_after, clock=clock)
    return PurgeReport(
        authorization_codes=await purge(
            AuthorizationCodeRow, col(AuthorizationCodeRow.code_hash), _dead_codes(now)
        ),
        refresh_tokens=await purge(
            RefreshTokenRow, col(RefreshTokenRow.id), _dead_refresh_tokens(now)
        ),
        revoked_tokens=await purge(
            RevokedTokenRow,
            col(RevokedTokenRow.jti),
            col(RevokedTokenRow.expires_at) <= now,
        ),
        login_sessions=await purge(
            LoginSessionRow,
            col(LoginSessionRow.id_hash),
            col(LoginSessionRow.expires_at) <= now,
        ),
        authorization_requests=await purge(
            AuthorizationRequestRow,
            col(AuthorizationRequestRow.id_hash),
            col(AuthorizationRequestRow.expires_at) <= now,
        ),
        signing_keys=await purge(
            SigningKeyRow,
            col(SigningKeyRow.kid),
            and_(
                col(SigningKeyRow.state) == "retired",
                col(SigningKeyRow.expires_at) <= now,
            ),
        ),
        subject_cutoffs=await _purge_cutoffs(engine, now),
        login_session_clients=await _purge_session_clients(engine),
    )


async def _purge_cutoffs(engine: AsyncEngine, now: datetime) -> int:
    # One statement: a small table (a row per deactivation, password change or client deletion, kept a day)
    # whose two-column key the batched delete cannot select.
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(SubjectCutoffRow).where(col(SubjectCutoffRow.expires_at) <= now)
        )
    return int(result.rowcount)


async def _purge_session_clients(engine: AsyncEngine) -> int:
    # After the sessions: rows whose session expired (an ended one took its rows with it). One statement, like
    # the cut-offs: a two-column key, and a row per client a user signed in to.
    live = select(col(LoginSessionRow.sid)).where(col(LoginSessionRow.sid).is_not(None))
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(LoginSessionClientRow).where(
                col(LoginSessionClientRow.sid).not_in(live)
            )
        )
    return int(result.rowcount)
