"""Keyset-paginated reads for the admin API: clients by ``client_id``, users by email, scopes by name.

Keyset (``WHERE key > :after ORDER BY key LIMIT n + 1``) rather than OFFSET: pages stay stable while rows are
added or deleted, and each page costs one index range scan. One extra row tells whether a next page exists.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.db.admin import Scope
from oauth_service.db.mapping import client_from_row, user_from_row
from oauth_service.db.tables import ClientRow, ScopeRow, UserRow
from oauth_service.oauth.models import Client, User

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items and the key to continue after, when there is more."""

    items: list[T]
    next_after: str | None


def _page(items: list[T], keys: list[str], limit: int) -> Page[T]:
    if len(items) > limit:
        return Page(items=items[:limit], next_after=keys[limit - 1])
    return Page(items=items, next_after=None)


async def page_clients(
    session: AsyncSession, *, after: str | None, limit: int
) -> Page[Client]:
    """Return clients ordered by ``client_id``, starting after ``after``."""
    query = select(ClientRow).order_by(col(ClientRow.client_id)).limit(limit + 1)
    if after is not None:
        query = query.where(col(ClientRow.client_id) > after)
    rows = list(await session.scalars(query))
    return _page([client_from_row(r) for r in rows], [r.client_id for r in rows], limit)


async def page_users(
    session: AsyncSession, *, after: str | None, limit: int
) -> Page[User]:
    """Return users ordered by normalized email, starting after ``after``."""
    query = select(UserRow).order_by(col(UserRow.email_normalized)).limit(limit + 1)
    if after is not None:
        query = query.where(col(UserRow.email_normalized) > after)
    rows = list(await session.scalars(query))
    return _page(
        [user_from_row(r) for r in rows], [r.email_normalized for r in rows], limit
    )


async def page_scopes(
    session: AsyncSession, *, after: str | None, limit: int
) -> Page[Scope]:
    """Return scopes ordered by name, starting after ``after``."""
    query = select(ScopeRow).order_by(col(ScopeRow.name)).limit(limit + 1)
    if after is not None:
        query = query.where(col(ScopeRow.name) > after)
    rows = list(await session.scalars(query))
    scopes = [Scope(name=r.name, description=r.description) for r in rows]
    return _page(scopes, [r.name for r in rows], limit)


async def get_client(session: AsyncSession, client_id: str) -> Client | None:
    """Return one client, or None."""
    row = await session.get(ClientRow, client_id)
    return client_from_row(row) if row is not None else None


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    """Return one user, or None."""
    row = await session.get(UserRow, user_id)
    return user_from_row(row) if row is not None else None
