"""The client cache: TTL-bounded staleness, local invalidation, and rotation never locking out the new secret."""

import asyncio
import dataclasses

import pytest

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.client_auth import authenticate_client
from oauth_service.oauth.client_cache import CachedClientStore, ClientCache
from oauth_service.oauth.errors import InvalidClientError
from oauth_service.oauth.models import Client, ClientCredentials
from tests.fakes import CLIENT_SECRET, FakeClientStore, confidential_client

TTL = 5.0


class CountingStore(FakeClientStore):
    def __init__(self, clients: list[Client]) -> None:
        super().__init__(clients)
        self.reads = 0

    async def get(self, client_id: str) -> Client | None:
        self.reads += 1
        return await super().get(client_id)


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _setup(ttl: float = TTL) -> tuple[CountingStore, CachedClientStore, Ticker]:
    store = CountingStore([confidential_client()])
    ticker = Ticker()
    return store, CachedClientStore(store, ClientCache(ttl, clock=ticker)), ticker


def _basic(secret: str) -> ClientCredentials:
    return ClientCredentials("conf", secret, "client_secret_basic")


async def test_client_cache_hit_within_ttl_reads_store_once() -> None:
    store, cached, ticker = _setup()
    for _ in range(3):
        assert await cached.get("conf") == confidential_client()
        ticker.now += TTL / 4
    assert store.reads == 1


async def test_client_cache_entry_older_than_ttl_is_read_again() -> None:
    store, cached, ticker = _setup()
    await cached.get("conf")
    ticker.now += TTL
    await cached.get("conf")
    assert store.reads == 2


async def test_client_cache_with_zero_ttl_reads_store_every_time() -> None:
    store, cached, _ = _setup(ttl=0)
    await cached.get("conf")
    await cached.get("conf")
    assert store.reads == 2


async def test_client_cache_unknown_client_is_not_cached() -> None:
    store, cached, _ = _setup()
    assert await cached.get("late") is None
    store.clients["late"] = confidential_client("late")
    assert await cached.get("late") is not None


async def test_client_cache_invalidate_forgets_entry_at_once() -> None:
    store, cached, _ = _setup()
    cache = ClientCache(TTL)
    cached = CachedClientStore(store, cache)
    await cached.get("conf")
    del store.clients["conf"]
    cache.invalidate("conf")
    assert await cached.get("conf") is None


async def test_client_auth_after_rotation_accepts_new_secret_at_once() -> None:
    store, cached, _ = _setup()
    await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)
    rotated = dataclasses.replace(confidential_client(), secret_hash=token_hash("new"))
    store.clients["conf"] = (
        rotated  # rotated by another replica: this cache still holds the old digest
    )
    client = await authenticate_client(_basic("new"), cached, allow_public=False)
    assert client.secret_hash == token_hash("new")
    with pytest.raises(InvalidClientError):  # and the re-read replaced the stale entry
        await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)


async def test_client_auth_old_secret_after_remote_rotation_works_until_ttl_only() -> (
    None
):
    store, cached, ticker = _setup()
    await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)
    store.clients["conf"] = dataclasses.replace(
        confidential_client(), secret_hash=token_hash("new")
    )
    ticker.now += TTL - 0.1  # the stated bound: the old secret lingers < TTL
    await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)
    ticker.now += 0.1
    with pytest.raises(InvalidClientError):
        await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)


async def test_client_auth_deleted_client_is_refused_once_ttl_passed() -> None:
    store, cached, ticker = _setup()
    await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)
    del store.clients["conf"]
    ticker.now += TTL
    with pytest.raises(InvalidClientError):
        await authenticate_client(_basic(CLIENT_SECRET), cached, allow_public=False)


async def test_client_auth_wrong_secret_with_cache_is_invalid_client() -> None:
    store, cached, _ = _setup()
    await cached.get("conf")
    with pytest.raises(InvalidClientError):
        await authenticate_client(_basic("wrong"), cached, allow_public=False)
    assert store.reads == 2  # a failure re-reads once; successes do not


class GatedStore(CountingStore):
    """A store whose reads wait for ``gate``: concurrent callers pile up behind the first read."""

    def __init__(self, clients: list[Client]) -> None:
        super().__init__(clients)
        self.gate = asyncio.Event()
        self.fail_with: Exception | None = None

    async def get(self, client_id: str) -> Client | None:
        self.reads += 1
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return await FakeClientStore.get(self, client_id)


def _gated() -> tuple[GatedStore, CachedClientStore, Ticker]:
    store = GatedStore([confidential_client()])
    ticker = Ticker()
    return store, CachedClientStore(store, ClientCache(TTL, clock=ticker)), ticker


async def test_concurrent_misses_share_one_read() -> None:
    """An expired entry does not send every request in flight to the database at once."""
    store, cached, _ = _gated()
    callers = [asyncio.create_task(cached.get("conf")) for _ in range(20)]
    await asyncio.sleep(0)
    store.gate.set()
    clients = await asyncio.gather(*callers)
    assert store.reads == 1
    assert {client.client_id for client in clients if client} == {"conf"}
    assert await cached.get("conf") is clients[0]  # cached now
    assert store.reads == 1


async def test_a_failed_shared_read_fails_every_waiter_and_is_not_remembered() -> None:
    store, cached, _ = _gated()
    store.fail_with = OSError("database down")
    callers = [asyncio.create_task(cached.get("conf")) for _ in range(5)]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(result is store.fail_with for result in results)
    store.fail_with = None
    client = await cached.get("conf")
    assert client is not None
    assert store.reads == 2


async def test_a_waiter_reads_itself_when_the_first_reader_is_cancelled() -> None:
    store, cached, _ = _gated()
    first = asyncio.create_task(cached.get("conf"))
    await asyncio.sleep(0)
    second = asyncio.create_task(cached.get("conf"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    store.gate.set()
    client = await second
    assert client is not None
    assert client.client_id == "conf"
    assert first.cancelled()
    assert store.reads == 2
