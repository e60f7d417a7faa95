"""The access-token revocation list (RFC 7009 §2.1, RFC 7662 §2.2), held in memory.

Verifying a JWT access token at a resource or at the introspection endpoint then costs no database round trip.

Each process keeps a snapshot of every revoked, still-unexpired ``jti`` and reloads it whole when it is older
than ``ttl`` seconds; concurrent readers of a stale snapshot wait for one shared reload, so no answer is ever
based on a snapshot older than ``ttl``. Staleness bound: a revocation made in another process or replica is
honoured here at most ``ttl`` seconds (plus one reload's duration) after it was committed; one made in this
process (``add``) is honoured at once. The snapshot is small by construction: an entry lives only until the
token it names expires (at most the access-token lifetime). ``ttl=0`` disables the snapshot and asks the
database for every check.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from oauth_service.oauth.storage import RevokedTokenStore

LoadRevoked = Callable[[float], Awaitable[dict[str, float]]]
"""``async (now) -> {jti: expires_at}``: every revoked ``jti`` whose token has not expired at ``now`` (epoch)."""

CheckRevoked = Callable[[str], Awaitable[bool]]
"""``async (jti) -> bool``: the uncached, per-token question."""


class RevocationList:
    """Answers "is this ``jti`` revoked?" from a snapshot at most ``ttl`` seconds old."""

    def __init__(
        self,
        load: LoadRevoked,
        check: CheckRevoked,
        *,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._load = load
        self._check = check
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, float] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def contains(self, jti: str) -> bool:
        """Whether ``jti`` is revoked (as of at most ``ttl`` seconds ago)."""
        if self.ttl <= 0:
            return await self._check(jti)
        if self._is_stale():
            await self._reload()
        expires_at = self._entries.get(jti)
        return expires_at is not None and expires_at > self._clock()

    def add(self, jti: str, expires_at: float) -> None:
        """Record a revocation made by this process, effective at once."""
        self._entries[jti] = expires_at

    def __len__(self) -> int:
        return len(self._entries)

    def _is_stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self.ttl

    async def _reload(self) -> None:
        async with self._lock:
            if not self._is_stale():
                return  # another reader reloaded while this one waited
            started = self._clock()
            fresh = await self._load(started)
            # Revocation is permanent: entries leave only when their token expires (local ones included).
            now = self._clock()
            local = {j: e for j, e in self._entries.items() if e > now}
            self._entries = {**local, **fresh}
            self._loaded_at = started


class ListedRevokedTokenStore:
    """A ``RevokedTokenStore`` whose reads go through the ``RevocationList`` and whose writes also update it.

    A revocation made through this process (RFC 7009 endpoint) is therefore honoured here at once; others
    within the list's ``ttl``.
    """

    def __init__(self, store: RevokedTokenStore, revocations: RevocationList) -> None:
        self._store = store
        self._revocations = revocations

    async def add(self, jti: str, expires_at: datetime) -> None:
        """Put a ``jti`` on the list in the database and in this process's snapshot."""
        await self._store.add(jti, expires_at)
        self._revocations.add(jti, expires_at.timestamp())

    async def contains(self, jti: str) -> bool:
        """Whether the ``jti`` is revoked, as of at most ``ttl`` seconds ago."""
        return await self._revocations.contains(jti)
