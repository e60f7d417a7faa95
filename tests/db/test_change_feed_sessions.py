"""``db.change_feed.apply_on_commit`` on SQLite and Postgres: only committed changes reach this process."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from oauth_service.db.change_feed import Change, ClientChanged, apply_on_commit, publish


def _maker(
    database: AsyncEngine, applied: list[Change]
) -> async_sessionmaker[AsyncSession]:
    maker = async_sessionmaker(database, expire_on_commit=False)
    apply_on_commit(maker, applied.append)
    return maker


async def test_publish_then_rollback_applies_nothing_then_or_at_a_later_commit(
    database: AsyncEngine,
) -> None:
    applied: list[Change] = []
    async with _maker(database, applied)() as session:
        await session.execute(text("SELECT 1"))
        await publish(session, ClientChanged("rolled-back"))
        await session.rollback()
        assert applied == []
        await session.execute(text("SELECT 1"))
        await session.commit()
    assert applied == []


async def test_changes_of_a_transaction_closed_without_commit_are_dropped(
    database: AsyncEngine,
) -> None:
    applied: list[Change] = []
    async with _maker(database, applied)() as session:
        await session.execute(text("SELECT 1"))
        await publish(session, ClientChanged("abandoned"))
        await session.close()
        await session.execute(text("SELECT 1"))
        await publish(session, ClientChanged("committed"))
        await session.commit()
    assert applied == [ClientChanged("committed")]
