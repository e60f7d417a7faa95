"""Factories built on ``oauth_service.db.admin`` (the same code the CLI uses; they commit and return secrets), and
small request and pool helpers shared by the API tests."""

import base64
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from oauth_service.db import admin
from oauth_service.oauth.models import Client, User
from oauth_service.runtime import Runtime


async def make_user(
    runtime: Runtime,
    *,
    email: str = "alice@example.com",
    password: str = "correct horse battery",  # noqa: S107 - test fixture value
    is_admin: bool = False,
) -> tuple[User, str]:
    """Create and commit a user; return it with its plaintext password."""
    async with runtime.sessionmaker() as session:
        user = await admin.create_user(
            session,
            email=email,
            password=password,
            hasher=runtime.passwords,
            is_admin=is_admin,
            clock=runtime.clock,
        )
        await session.commit()
    return user, password


async def make_client(
    runtime: Runtime,
    *,
    name: str = "app",
    grant_types: Iterable[str] = ("client_credentials",),
    redirect_uris: Iterable[str] = (),
    scopes: Iterable[str] = ("read", "write"),
    is_public: bool = False,
    is_first_party: bool = False,
    client_id: str | None = None,
) -> tuple[Client, str | None]:
    """Create and commit a client; return it with its plaintext secret (``None`` when public)."""
    async with runtime.sessionmaker() as session:
        result = await admin.create_client(
            session,
            name=name,
            grant_types=grant_types,
            redirect_uris=redirect_uris,
            scopes=scopes,
            is_public=is_public,
            is_first_party=is_first_party,
            client_id=client_id,
            clock=runtime.clock,
        )
        await session.commit()
    return result


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """The ``Authorization: Basic`` header of a client (RFC 6749 §2.3.1)."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def queue_pool(runtime: Runtime) -> QueuePool:
    """The runtime engine's connection pool (a ``QueuePool`` on both test backends)."""
    pool = runtime.engine.pool
    assert isinstance(pool, QueuePool)
    return pool


@contextmanager
def peak_checkouts(runtime: Runtime) -> Iterator[list[int]]:
    """Track the most connections checked out of the runtime's pool at once inside the block (``[peak]``)."""
    pool = queue_pool(runtime)
    held = pool.checkedout()
    peak = [held]

    def checkout(*_: Any) -> None:
        nonlocal held
        held += 1
        peak[0] = max(peak[0], held)

    def checkin(*_: Any) -> None:
        nonlocal held
        held -= 1

    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    try:
        yield peak
    finally:
        event.remove(pool, "checkout", checkout)
        event.remove(pool, "checkin", checkin)
