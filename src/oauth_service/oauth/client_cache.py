"""A short-lived, process-wide cache of registered clients (client authentication, RFC 6749 §2.3.1).

It keeps the token endpoint's hot path free of database round trips.

Staleness bound: a change made through *this* process (admin API) invalidates its entry at once; a change made
by another worker, replica or the CLI invalidates it when its notification arrives (``db.change_feed``, a
fraction of a second), and any change (plain SQL included) is seen within ``ttl`` seconds. So after a secret
rotation the old secret may keep authenticating for at most ``ttl`` seconds, and a deleted client for at most
``ttl`` seconds. A *new* secret is never refused because of the cache: a secret that does not match the cached
digest is checked once more against a fresh read (``reload``), so only failed authentications pay the round
trip. Unknown client ids are not cached (a client registered a moment ago is usable at once). ``ttl=0``
disables the cache.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from oauth_service.oauth.access_tokens import TtlCache
from oauth_service.oauth.models import Client
from oauth_service.oauth.storage import ClientStore


class ClientCache:
    """Clients by ``client_id``, each kept ``ttl`` seconds at most (bounded, least recently used first out)."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: TtlCache[str, Client] = TtlCache(
            max_entries=max_entries, clock=clock
        )
        self._inflight: dict[str, asyncio.Future[Client | None]] = {}

    @property
    def enabled(self) -> bool:
        """Whether entries are kept at all."""
        return self.ttl > 0

    def get(self, client_id: str) -> Client | None:
        """The cached client, or None when absent or older than ``ttl``."""
        return self._entries.get(client_id) if self.enabled else None

    def put(self, client: Client) -> None:
        """Remember ``client`` for ``ttl`` seconds."""
        if self.enabled:
            self._entries.put(client.client_id, client, until=self._clock() + self.ttl)

    def invalidate(self, client_id: str) -> None:
        """Forget one client (its registration changed, here or, as notified, elsewhere)."""
        self._entries.pop(client_id)

    def clear(self) -> None:
        """Forget every client (changes may have been missed: the change listener reconnected)."""
        self._entries.clear()

    async def single_flight(
        self, client_id: str, read: Callable[[str], Awaitable[Client | None]]
    ) -> Client | None:
        """Run ``read(client_id)`` once for all callers that need it at the same time.

        When an entry expires, every request in flight for that client misses at once: without this each one
        opened its own database read (tens per worker at once), and the burst of pool checkouts stalled them
        all (a p99 of hundreds of milliseconds every ``ttl`` seconds under load). The first caller reads; the
        others wait for its answer, or its error. If the first caller is cancelled, the next one reads.
        """
        while (pending := self._inflight.get(client_id)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if pending.cancelled() and not (task and task.cancelling()):
                    continue  # the reader was cancelled, not us: read ourselves
                raise
        future: asyncio.Future[Client | None] = (
            asyncio.get_running_loop().create_future()
        )
        # An error nobody waited for is not "never retrieved".
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._inflight[client_id] = future
        try:
            client = await read(client_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            raise
        else:
            future.set_result(client)
            return client
        finally:
            del self._inflight[client_id]


class CachedClientStore:
    """A ``ClientStore`` answering from a ``ClientCache`` and reading through to ``store`` on a miss."""

    def __init__(self, store: ClientStore, cache: ClientCache) -> None:
        self._store = store
        self._cache = cache

    async def get(self, client_id: str) -> Client | None:
        """Return the client (possibly up to ``ttl`` seconds old), or None."""
        cached = self._cache.get(client_id)
        if cached is not None:
            return cached
        return await self.reload(client_id)

    async def reload(self, client_id: str) -> Client | None:
        """Read the client from the store, bypassing and refreshing the cache.

        Concurrent reloads of one client share a single read (``ClientCache.single_flight``).
        """
        return await self._cache.single_flight(client_id, self._read)

    async def _read(self, client_id: str) -> Client | None:
        client = await self._store.get(client_id)
        if client is None:
            self._cache.invalidate(client_id)
        else:
            self._cache.put(client)
        return client
