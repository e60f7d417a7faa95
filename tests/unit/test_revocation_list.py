"""The in-memory revocation list: staleness bounded by its TTL, local revocations at once, one shared reload."""

import asyncio

from oauth_service.oauth.revocation_list import RevocationList

TTL = 2.0


class Db:
    """The revoked_tokens table as other replicas see it."""

    def __init__(self) -> None:
        self.rows: dict[str, float] = {}
        self.loads = 0
        self.checks = 0

    async def load(self, now: float) -> dict[str, float]:
        self.loads += 1
        await asyncio.sleep(0)
        return {jti: exp for jti, exp in self.rows.items() if exp > now}

    async def check(self, jti: str) -> bool:
        self.checks += 1
        return jti in self.rows


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _setup(ttl: float = TTL) -> tuple[Db, RevocationList, Ticker]:
    db, ticker = Db(), Ticker()
    return db, RevocationList(db.load, db.check, ttl=ttl, clock=ticker), ticker


async def test_revocation_list_remote_revocation_seen_within_ttl() -> None:
    db, revocations, ticker = _setup()
    assert not await revocations.contains("a")
    db.rows["a"] = ticker.now + 600  # revoked by another replica
    ticker.now += TTL - 0.01
    assert not await revocations.contains("a")  # stale, but within the stated bound
    ticker.now += 0.01
    assert await revocations.contains("a")


async def test_revocation_list_checks_within_ttl_load_once() -> None:
    db, revocations, ticker = _setup()
    for _ in range(50):
        await revocations.contains("x")
        ticker.now += TTL / 100
    assert (db.loads, db.checks) == (1, 0)


async def test_revocation_list_concurrent_stale_readers_share_one_reload() -> None:
    db, revocations, _ = _setup()
    await asyncio.gather(*(revocations.contains("x") for _ in range(20)))
    assert db.loads == 1


async def test_revocation_list_local_add_is_effective_at_once() -> None:
    _, revocations, ticker = _setup()
    await revocations.contains("x")
    revocations.add("b", ticker.now + 60)
    assert await revocations.contains("b")


async def test_revocation_list_local_add_survives_reload() -> None:
    _, revocations, ticker = _setup()
    revocations.add("b", ticker.now + 60)
    ticker.now += TTL
    assert await revocations.contains("b")


async def test_revocation_list_expired_entry_is_not_revoked() -> None:
    _, revocations, ticker = _setup()
    revocations.add("old", ticker.now + 1)
    ticker.now += 1
    assert not await revocations.contains("old")


async def test_revocation_list_zero_ttl_asks_database_each_time() -> None:
    db, revocations, _ = _setup(ttl=0)
    db.rows["a"] = 2000.0
    assert await revocations.contains("a")
    assert not await revocations.contains("b")
    assert (db.loads, db.checks) == (0, 2)
