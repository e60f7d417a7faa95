"""``oauth_service.db.cutoffs`` on SQLite and Postgres: a subject's cut-off only moves forward."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.cutoffs import cut_off, read_cutoffs
from oauth_service.oauth.cutoffs import CUTOFF_LIFETIME, Subject
from oauth_service.runtime import Runtime

ALICE: Subject = ("user", "alice")
EARLY = datetime(2031, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)


async def _write(runtime: Runtime, at: datetime) -> None:
    async with runtime.sessionmaker() as session:
        await cut_off(session, ALICE, at)
        await session.commit()


async def _stored(database: AsyncEngine) -> tuple[float, float]:
    return (await read_cutoffs(database, (ALICE,)))[ALICE]


async def test_an_earlier_cutoff_does_not_move_a_later_one_back(
    runtime: Runtime, database: AsyncEngine
) -> None:
    later = EARLY + timedelta(seconds=5)
    await _write(runtime, later)
    await _write(runtime, EARLY)
    assert await _stored(database) == (
        later.timestamp(),
        (later + CUTOFF_LIFETIME).timestamp(),
    )


async def test_a_later_cutoff_moves_an_earlier_one_forward(
    runtime: Runtime, database: AsyncEngine
) -> None:
    later = EARLY + timedelta(milliseconds=1)
    await _write(runtime, EARLY)
    await _write(runtime, later)
    assert await _stored(database) == (
        later.timestamp(),
        (later + CUTOFF_LIFETIME).timestamp(),
    )
