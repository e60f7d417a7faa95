"""Writes and reads of ``subject_cutoffs`` (``oauth.cutoffs``): a user's or client's tokens issued before now.

``cut_off`` writes in the caller's transaction and publishes the change (``db.change_feed``), so the cut-off
takes effect with the deactivation, password change or deletion it belongs to, and only if that commits.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Row, case, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from oauth_service.db.change_feed import SubjectCutOff, publish
from oauth_service.db.tables import SubjectCutoffRow
from oauth_service.oauth.cutoffs import CUTOFF_LIFETIME, Subject
from oauth_service.oauth.revocation_list import Cutoffs

_CUTOFFS = SubjectCutoffRow.__table__  # type: ignore[attr-defined]


async def cut_off(session: AsyncSession, subject: Subject, at: datetime) -> None:
    """Refuse every token of ``subject`` issued at or before ``at`` (an existing cut-off moves forward)."""
    kind, subject_id = subject
    expires_at = at + CUTOFF_LIFETIME
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(_CUTOFFS).values(
        kind=kind, subject_id=subject_id, cutoff_at=at, expires_at=expires_at
    )
    # Only forward: a later writer with an earlier moment (a slower clock, a transaction that began first)
    # must not shorten a cut-off already in force. CASE, as SQLite has no GREATEST.
    later = insert.excluded.cutoff_at > _CUTOFFS.c.cutoff_at
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["kind", "subject_id"],
            set_={
                "cutoff_at": case(
                    (later, insert.excluded.cutoff_at), else_=_CUTOFFS.c.cutoff_at
                ),
                "expires_at": case(
                    (later, insert.excluded.expires_at), else_=_CUTOFFS.c.expires_at
                ),
            },
        )
    )
    await publish(
        session, SubjectCutOff(subject, at.timestamp(), expires_at.timestamp())
    )


def _as_cutoffs(rows: Sequence[Row[str, str, datetime, datetime]]) -> Cutoffs:
    cutoffs: Cutoffs = {}
    for kind, subject_id, cutoff, expires in rows:
        times = (cutoff.timestamp(), expires.timestamp())
        if kind == "user":
            cutoffs["user", subject_id] = times
        elif kind == "client":
            cutoffs["client", subject_id] = times
    return cutoffs


_COLUMNS = (
    _CUTOFFS.c.kind,
    _CUTOFFS.c.subject_id,
    _CUTOFFS.c.cutoff_at,
    _CUTOFFS.c.expires_at,
)


async def load_cutoffs(engine: AsyncEngine, now: float) -> Cutoffs:
    """Every cut-off still in force at ``now`` (epoch seconds)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(*_COLUMNS).where(
                _CUTOFFS.c.expires_at > datetime.fromtimestamp(now, UTC)
            )
        )
        return _as_cutoffs(result.all())


async def read_cutoffs(engine: AsyncEngine, subjects: tuple[Subject, ...]) -> Cutoffs:
    """The cut-offs of ``subjects`` (the uncached check, ``revocation_cache_ttl=0``)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(*_COLUMNS).where(
                tuple_(_CUTOFFS.c.kind, _CUTOFFS.c.subject_id).in_(subjects)
            )
        )
        return _as_cutoffs(result.all())
