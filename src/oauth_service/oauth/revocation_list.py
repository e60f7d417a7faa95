"""The access-token revocation list (RFC 7009 §2.1, RFC 7662 §2.2), held in memory.

Verifying a JWT access token at a resource or at the introspection endpoint then costs no database round trip.

Each process keeps a snapshot of every revoked, still-unexpired ``jti`` and reloads it whole when it is older
than ``ttl`` seconds; concurrent readers of a stale snapshot wait for one shared reload, so no answer is ever
based on a snapshot older than ``ttl``. Staleness bound: a revocation made in another process or replica is
honoured here at most ``ttl`` seconds (plus one reload's duration) after it was committed; one made in this
process (``add``) is honoured at once. The snapshot is small by construction: an entry lives only until the
token it names expires (at most the access-token lifetime). ``ttl=0`` disables the snapshot and asks the
database for every check.

The snapshot also holds the subject cut-offs (``oauth.cutoffs``), loaded and updated with the jtis, so
``refuses`` answers both questions with dictionary lookups. Changes made elsewhere also arrive as
notifications (``db.change_feed``), which ``add``/``add_cutoff`` apply at once; ``ttl`` is then only the bound
when a notification is lost.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from oauth_service.oauth.access_tokens import AccessToken
from oauth_service.oauth.cutoffs import Subject, issued_before, subjects_of
from oauth_service.oauth.storage import RevokedTokenStore

LoadRevoked = Callable[[float], Awaitable[dict[str, float]]]
"""``async (now) -> {jti: expires_at}``: every revoked ``jti`` whose token has not expired at ``now`` (epoch)."""

CheckRevoked = Callable[[str], Awaitable[bool]]
"""``async (jti) -> bool``: the uncached, per-token question."""

Cutoffs = dict[Subject, tuple[float, float]]
"""``{subject: (cutoff, expires_at)}``, epoch seconds."""

LoadCutoffs = Callable[[float], Awaitable[Cutoffs]]
"""``async (now) -> cutoffs``: every cut-off still unexpired at ``now``."""

CheckCutoffs = Callable[[tuple[Subject, ...]], Awaitable[Cutoffs]]
"""``async (subjects) -> cutoffs``: the uncached read of some subjects' cut-offs."""


async def _no_cutoffs(_: object) -> Cutoffs:
    return {}


class RevocationList:
    """Answers "is this ``jti`` revoked?" from a snapshot at most ``ttl`` seconds old."""

    def __init__(
        self,
        load: LoadRevoked,
        check: CheckRevoked,
        *,
        ttl: float,
        clock: Callable[[], float] = time.time,
        load_cutoffs: LoadCutoffs = _no_cutoffs,
        check_cutoffs: CheckCutoffs = _no_cutoffs,
    ) -> None:
        self._load = load
        self._check = check
        self._load_cutoffs = load_cutoffs
        self._check_cutoffs = check_cutoffs
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, float] = {}
        self._cutoffs: Cutoffs = {}
        self._loaded_at: float | None = None
        # Bumped by ``invalidate``: a reload that began before it must not mark the snapshot fresh.
        self._generation = 0
        self._lock = asyncio.Lock()

    async def contains(self, jti: str) -> bool:
        """Whether ``jti`` is revoked (as of at most ``ttl`` seconds ago)."""
        if self.ttl <= 0:
            return await self._check(jti)
        if self._is_stale():
            await self._reload()
        expires_at = self._entries.get(jti)
        return expires_at is not None and expires_at > self._clock()

    async def refuses(self, access: AccessToken) -> bool:
        """Whether ``access`` is revoked by its jti or by its user's or client's cut-off."""
        if self.ttl <= 0:
            if await self._check(access.jti):
                return True
            cutoffs = await self._check_cutoffs(subjects_of(access))
            return any(issued_before(access, cutoff) for cutoff, _ in cutoffs.values())
        if self._is_stale():
            await self._reload()
        now = self._clock()
        expires_at = self._entries.get(access.jti)
        if expires_at is not None and expires_at > now:
            return True
        if not self._cutoffs:
            return False
        for subject in subjects_of(access):
            entry = self._cutoffs.get(subject)
            if entry is not None and issued_before(access, entry[0]):
                return True
        return False

    def add(self, jti: str, expires_at: float) -> None:
        """Record a revocation, effective at once (made by this process, or notified)."""
        self._entries[jti] = expires_at

    def add_cutoff(self, subject: Subject, cutoff: float, expires_at: float) -> None:
        """Refuse every token of ``subject`` issued at or before ``cutoff``, effective at once."""
        current = self._cutoffs.get(subject)
        if current is None or current[0] < cutoff:
            self._cutoffs[subject] = (cutoff, expires_at)

    def invalidate(self) -> None:
        """Mark the snapshot stale: the next check reloads it (a notification named too much to carry)."""
        self._generation += 1
        self._loaded_at = None

    async def refresh(self) -> None:
        """Reload the snapshot now (the change listener's catch-up after a reconnect)."""
        if self.ttl <= 0:
            return  # no snapshot: every check reads the database
        self.invalidate()
        await self._reload()

    def __len__(self) -> int:
        return len(self._entries)

    def _is_stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self.ttl

    async def _reload(self) -> None:
        async with self._lock:
            if not self._is_stale():
                return  # another reader reloaded while this one waited
            generation = self._generation
            started = self._clock()
            fresh = await self._load(started)
            fresh_cutoffs = await self._load_cutoffs(started)
            # Revocation is permanent: entries leave only when their token expires (local ones included).
            now = self._clock()
            local = {j: e for j, e in self._entries.items() if e > now}
            self._entries = {**local, **fresh}
            cutoffs = {s: c for s, c in self._cutoffs.items() if c[1] > now}
            for subject, (cutoff, expires_at) in fresh_cutoffs.items():
                current = cutoffs.get(subject)
                if current is None or current[0] < cutoff:
                    cutoffs[subject] = (cutoff, expires_at)
            self._cutoffs = cutoffs
            if generation == self._generation:
                self._loaded_at = started


class ListedRevokedTokenStore:
    """A ``RevokedTokenStore`` whose reads go through the ``RevocationList`` and whose writes also update it.

    A revocation made through this process (RFC 7009 endpoint) is therefore honoured here at once; others
    when their notification arrives, and within the list's ``ttl`` if it is lost.
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
