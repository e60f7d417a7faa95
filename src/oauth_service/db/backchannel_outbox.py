"""The back-channel logout outbox (``backchannel_logouts``): claim due rows, then delete or reschedule them.

Several replicas deliver from one table, so a row is claimed before it is sent: the claim moves
``next_attempt_at`` to the end of a lease and counts the attempt, in one short transaction, and any other
worker then sees the row as not due. On Postgres the due rows are locked ``FOR UPDATE SKIP LOCKED``, so a
second worker skips them instead of waiting; SQLite has one writer at a time and claims with a single
conditional ``UPDATE ... RETURNING``. A worker that dies mid-delivery leaves the row to be retried when its
lease ends.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.tables import BackchannelLogoutRow

OUTBOX = BackchannelLogoutRow.__table__  # type: ignore[attr-defined]
_MAX_ERROR = 255  # the column's length


@dataclass(frozen=True, slots=True)
class ClaimedLogout:
    """A claimed outbox row; ``attempt`` counts this one (1 for the first)."""

    id: uuid.UUID
    client_id: str
    subject: str
    sid: str | None
    reason: str
    attempt: int


def _claimed(rows: Sequence[Row[Any]]) -> list[ClaimedLogout]:
    return [
        ClaimedLogout(r.id, r.client_id, r.subject, r.sid, r.reason, r.attempts)
        for r in rows
    ]


async def any_due(engine: AsyncEngine, *, now: datetime) -> bool:
    """Whether a row is due at ``now`` (an indexed probe, no lock): a pass with nothing to send stops here."""
    probe = select(OUTBOX.c.id).where(OUTBOX.c.next_attempt_at <= now).limit(1)
    async with engine.connect() as conn:
        return (await conn.scalar(probe)) is not None


async def claim_due(
    engine: AsyncEngine, *, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedLogout]:
    """Claim up to ``limit`` rows due at ``now`` until ``lease_until``; no two workers get the same row."""
    due = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.next_attempt_at <= now)
        .order_by(OUTBOX.c.next_attempt_at)
        .limit(limit)
    )
    claim = update(OUTBOX).values(
        next_attempt_at=lease_until, attempts=OUTBOX.c.attempts + 1
    )
    columns = (
        OUTBOX.c.id,
        OUTBOX.c.client_id,
        OUTBOX.c.subject,
        OUTBOX.c.sid,
        OUTBOX.c.reason,
        OUTBOX.c.attempts,
    )
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            ids = list(
                (await conn.scalars(due.with_for_update(skip_locked=True))).all()
            )
            if not ids:
                return []
            result = await conn.execute(
                claim.where(OUTBOX.c.id.in_(ids)).returning(*columns)
            )
        else:
            # One statement: SQLite runs it alone, and the due condition is checked again on every row.
            result = await conn.execute(
                claim.where(
                    OUTBOX.c.id.in_(due.scalar_subquery()),
                    OUTBOX.c.next_attempt_at <= now,
                ).returning(*columns)
            )
        return _claimed(result.all())


async def finish(engine: AsyncEngine, row_id: uuid.UUID) -> None:
    """Delete a row: delivered, or given up."""
    async with engine.begin() as conn:
        await conn.execute(delete(OUTBOX).where(OUTBOX.c.id == row_id))


async def reschedule(
    engine: AsyncEngine, row_id: uuid.UUID, *, at: datetime, error: str
) -> None:
    """Retry a row at ``at``, remembering why the last attempt failed."""
    async with engine.begin() as conn:
        await conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == row_id)
            .values(next_attempt_at=at, last_error=error[:_MAX_ERROR])
        )
