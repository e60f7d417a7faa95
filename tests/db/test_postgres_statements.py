"""Postgres: spending a refresh token or a code is one statement on the asyncpg connection itself.

Counted without SQLAlchemy: the asyncpg connection the store gets from ``_driver`` is wrapped so every method
the store calls on it is recorded, and asyncpg's own query logger lists every query run on that connection
meanwhile, whoever runs it. A lost connection leaves the pool; any other error gives it back.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from oauth_service.db.stores import postgres
from oauth_service.db.stores.units import Database
from oauth_service.oauth.storage import Stores
from oauth_service.runtime import Runtime
from tests.db.spending import (
    children,
    code_claim,
    code_record,
    count_refresh,
    new_token,
    refresh_claim,
)
from tests.factories import make_client, make_user

pytestmark = pytest.mark.postgres


class _Recorded:
    """Stands for the asyncpg connection and records the name of everything used on it."""

    def __init__(self, driver: Any, used: list[str]) -> None:
        self._driver = driver
        self._used = used

    def __getattr__(self, name: str) -> Any:
        self._used.append(name)
        return getattr(self._driver, name)


@dataclass
class DriverUse:
    """What a store did on the asyncpg connections ``_driver`` lent it."""

    used: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    in_transaction: list[bool] = field(default_factory=list)

    async def reset(self) -> None:
        """Forget what the test's set-up did."""
        await asyncio.sleep(0)  # let asyncpg hand over the set-up's query records first
        self.used.clear()
        self.queries.clear()
        self.in_transaction.clear()


@pytest.fixture
def driver_use(monkeypatch: pytest.MonkeyPatch) -> DriverUse:
    use = DriverUse()
    lend = postgres._driver  # the seam through which the stores reach asyncpg

    def log(record: Any) -> None:
        use.queries.append(record.query)

    @asynccontextmanager
    async def recorded(db: Database) -> AsyncIterator[Any]:
        async with lend(db) as driver:
            driver.add_query_logger(log)
            try:
                yield _Recorded(driver, use.used)
            finally:
                driver.remove_query_logger(log)
                use.in_transaction.append(driver.is_in_transaction())

    monkeypatch.setattr(postgres, "_driver", recorded)
    return use


@pytest.fixture
def sqlalchemy_statements(database: AsyncEngine) -> Iterator[list[str]]:
    """Statements SQLAlchemy sends on the stores' engine while the test runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(database.sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(database.sync_engine, "before_cursor_execute", record)


async def _logged(use: DriverUse) -> list[str]:
    await asyncio.sleep(0)  # asyncpg hands query records to its loggers with call_soon
    return use.queries


async def test_rotate_is_one_statement_on_asyncpg(
    runtime: Runtime,
    stores: Stores,
    observer: AsyncEngine,
    driver_use: DriverUse,
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime)
    token = new_token(client.client_id, user.id)
    await stores.refresh_tokens.save(token)
    await driver_use.reset()
    claim = refresh_claim(token)
    spent = await stores.refresh_tokens.rotate(claim)
    assert spent is not None
    assert spent.user == user
    assert driver_use.used == ["fetchrow"]
    assert await _logged(driver_use) == [postgres.ROTATE]
    assert driver_use.in_transaction == [False]
    assert [child.id for child in await children(observer, token.id)] == [
        claim.successor.id
    ]


async def test_rotate_sends_nothing_through_sqlalchemy(
    runtime: Runtime,
    stores: Stores,
    driver_use: DriverUse,
    sqlalchemy_statements: list[str],
) -> None:
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    token = new_token(client.client_id, None)
    await stores.refresh_tokens.save(token)
    await driver_use.reset()
    sqlalchemy_statements.clear()
    assert await stores.refresh_tokens.rotate(refresh_claim(token)) is not None
    # A refused rotation is the same single statement.
    assert await stores.refresh_tokens.rotate(refresh_claim(token)) is None
    assert sqlalchemy_statements == []
    assert driver_use.used == ["fetchrow", "fetchrow"]
    assert await _logged(driver_use) == [postgres.ROTATE, postgres.ROTATE]


@pytest.mark.parametrize("with_refresh", [True, False], ids=["refresh", "no-refresh"])
async def test_redeem_is_one_statement_on_asyncpg(
    runtime: Runtime,
    stores: Stores,
    observer: AsyncEngine,
    driver_use: DriverUse,
    sqlalchemy_statements: list[str],
    with_refresh: bool,
) -> None:
    user, _ = await make_user(runtime)
    await make_client(
        runtime,
        client_id="web",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("https://app.example/cb",),
    )
    code = code_record(user.id)
    await stores.codes.save(code)
    sqlalchemy_statements.clear()
    spent = await stores.codes.redeem(code_claim(code, with_refresh=with_refresh))
    assert spent is not None
    assert spent.user == user
    assert await stores.codes.redeem(code_claim(code)) is None
    assert driver_use.used == ["fetchrow", "fetchrow"]
    assert await _logged(driver_use) == [postgres.REDEEM, postgres.REDEEM]
    assert driver_use.in_transaction == [False, False]
    assert sqlalchemy_statements == []
    assert await count_refresh(observer) == (1 if with_refresh else 0)


async def _fail_on_the_driver(
    database: AsyncEngine, fail: Callable[[Any], Awaitable[None]]
) -> tuple[Any, Exception]:
    """Lend the asyncpg connection as the stores get it and fail while using it: what was lent, and the error."""
    lent: list[Any] = []
    try:
        async with postgres._driver(Database(database)) as driver:
            lent.append(driver)
            await fail(driver)
    except Exception as error:  # each test checks which error came out
        return lent[0], error
    raise AssertionError("the failure was swallowed")


async def _lose(_: Any) -> None:
    raise asyncpg.InterfaceError("connection lost")


async def _query_a_missing_table(driver: Any) -> None:
    await driver.fetchrow("SELECT * FROM no_such_table")


async def test_a_lost_connection_leaves_the_pool(database: AsyncEngine) -> None:
    driver, error = await _fail_on_the_driver(database, _lose)
    assert isinstance(error, asyncpg.InterfaceError)
    assert driver.is_closed()
    pool = database.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0


async def test_a_statement_error_gives_the_connection_back(
    database: AsyncEngine,
) -> None:
    driver, error = await _fail_on_the_driver(database, _query_a_missing_table)
    assert isinstance(error, asyncpg.UndefinedTableError)
    assert not driver.is_closed()
    assert not driver.is_in_transaction()
    pool = database.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0


async def test_password_grant_statements_are_one_each_on_asyncpg(
    runtime: Runtime,
    stores: Stores,
    observer: AsyncEngine,
    driver_use: DriverUse,
    sqlalchemy_statements: list[str],
) -> None:
    """The password grant's user read and refresh-token insert: one asyncpg statement each, no SQLAlchemy."""
    client, _ = await make_client(runtime, grant_types=("password", "refresh_token"))
    user, _ = await make_user(runtime, email="Alice@Example.com")
    sqlalchemy_statements.clear()
    found = await stores.users.get_by_email("  alice@EXAMPLE.com ")
    assert found == user
    assert await stores.users.get_by_email("nobody@example.com") is None
    token = new_token(client.client_id, user.id)
    await stores.refresh_tokens.save(token)
    assert sqlalchemy_statements == []
    assert driver_use.used == ["fetchrow", "fetchrow", "execute"]
    assert await _logged(driver_use) == [
        postgres.USER_BY_EMAIL,
        postgres.USER_BY_EMAIL,
        postgres.SAVE_REFRESH,
    ]
    assert driver_use.in_transaction == [False, False, False]
    assert await count_refresh(observer) == 1
