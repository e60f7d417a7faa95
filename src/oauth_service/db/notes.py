"""Notes of the sample protected API (``/api/v1/notes``), each owned by the token subject that wrote it.

Every query is scoped by ``owner``, so one subject can neither read nor delete another's notes (RFC 6750's
resource owner; a foreign note is indistinguishable from a missing one).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.db.tables import NoteRow
from oauth_service.oauth.clock import Clock, utcnow

MAX_NOTES_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class Note:
    """A stored note."""

    id: uuid.UUID
    owner: str
    title: str
    body: str
    created_at: datetime


def _note(row: NoteRow) -> Note:
    return Note(
        id=row.id,
        owner=row.owner,
        title=row.title,
        body=row.body,
        created_at=row.created_at,
    )


async def create_note(
    session: AsyncSession, *, owner: str, title: str, body: str, clock: Clock = utcnow
) -> Note:
    """Add a note for ``owner`` (the caller commits)."""
    row = NoteRow(
        id=uuid.uuid4(), owner=owner, title=title, body=body, created_at=clock()
    )
    session.add(row)
    await session.flush()
    return _note(row)


async def list_notes(
    session: AsyncSession, *, owner: str, limit: int = MAX_NOTES_PER_PAGE
) -> list[Note]:
    """Return ``owner``'s notes, newest first."""
    rows = await session.scalars(
        select(NoteRow)
        .where(col(NoteRow.owner) == owner)
        .order_by(col(NoteRow.created_at).desc(), col(NoteRow.id))
        .limit(limit)
    )
    return [_note(row) for row in rows]


async def get_note(
    session: AsyncSession, *, owner: str, note_id: uuid.UUID
) -> Note | None:
    """Return the note when it exists and belongs to ``owner``."""
    row = await session.scalar(
        select(NoteRow).where(col(NoteRow.id) == note_id, col(NoteRow.owner) == owner)
    )
    return _note(row) if row is not None else None


async def delete_note(session: AsyncSession, *, owner: str, note_id: uuid.UUID) -> bool:
    """Delete ``owner``'s note; False when there was none (the caller commits)."""
    result = await session.execute(
        delete(NoteRow).where(col(NoteRow.id) == note_id, col(NoteRow.owner) == owner)
    )
    return isinstance(result, CursorResult) and result.rowcount == 1
