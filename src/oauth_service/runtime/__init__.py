"""Long-lived collaborators built once per process by the app's lifespan (the composition root's output)."""

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from oauth_service.crypto.jwt import KeySet
from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.db import cutoffs, revocation_reads
from oauth_service.db.change_feed import (
    Change,
    ClientChanged,
    JtisRevoked,
    KeysChanged,
    RevocationsChanged,
    SubjectCutOff,
    UserChanged,
    apply_on_commit,
)
from oauth_service.db.stores import build_stores
from oauth_service.oauth.client_cache import ClientCache
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.profile_cache import ProfileCache
from oauth_service.oauth.revocation_list import RevocationList
from oauth_service.oauth.storage import Stores
from oauth_service.oauth.throttling import NoThrottle, Throttle
from oauth_service.settings import Settings


@dataclass(slots=True)
class Runtime:
    """What every request needs that outlives it. Each field is typed; add one per long-lived collaborator."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    passwords: PasswordHasher
    # Replaceable: a key reload assigns a new KeySet; readers take the reference once per request.
    keys: KeySet
    # Brute-force protection of every credential check (password grant, login form, client auth).
    throttle: Throttle = field(default_factory=NoThrottle)
    clock: Clock = utcnow
    # Hot-path caches, each with a staleness bound of its TTL setting (see their modules).
    client_cache: ClientCache = field(init=False)
    # Users' standard claims for UserInfo (``oauth.profile_cache``).
    profiles: ProfileCache = field(init=False)
    revocations: RevocationList = field(init=False)
    # The protocol core's stores for this backend; each operation is its own unit of work (``db.stores``).
    stores: Stores = field(init=False)
    # Set by a signing-key change notification: the key reload loop (``background``) reloads at once.
    keys_changed: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Set after a commit that enqueued back-channel logouts: the delivery loop (``background``) runs at once.
    backchannel_due: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # Both read the runtime's clock at call time, so a test's injected clock ages them too.
        self.client_cache = ClientCache(
            self.settings.client_cache_ttl, clock=lambda: self.clock().timestamp()
        )
        self.profiles = ProfileCache(
            self.settings.user_cache_ttl, clock=lambda: self.clock().timestamp()
        )
        engine = self.engine
        self.revocations = RevocationList(
            lambda now: revocation_reads.load_revoked(engine, now),
            lambda jti: revocation_reads.is_revoked(engine, jti),
            ttl=self.settings.revocation_cache_ttl,
            clock=lambda: self.clock().timestamp(),
            load_cutoffs=lambda now: cutoffs.load_cutoffs(engine, now),
            check_cutoffs=lambda subjects: cutoffs.read_cutoffs(engine, subjects),
        )
        self.stores = build_stores(
            engine,
            clock=lambda: self.clock(),
            client_cache=self.client_cache,
            revocations=self.revocations,
        )
        # Whatever a session of this process commits (admin API, pages) is applied here at once; the stores
        # apply their own revocations when they commit; other processes hear of both through the change feed.
        apply_on_commit(self.sessionmaker, self.apply_change)

    def apply_change(self, change: Change) -> None:
        """Bring this process's in-memory state up to a committed change (``db.change_feed``)."""
        match change:
            case JtisRevoked(entries):
                for jti, expires_at in entries:
                    self.revocations.add(jti, expires_at)
            case SubjectCutOff(subject, cutoff, expires_at):
                self.revocations.add_cutoff(subject, cutoff, expires_at)
                if subject[0] == "user":
                    self.profiles.invalidate(subject[1])
            case ClientChanged(client_id):
                self.client_cache.invalidate(client_id)
            case UserChanged(user_id):
                self.profiles.invalidate(user_id)
            case KeysChanged():
                self.keys_changed.set()
            case RevocationsChanged():
                self.revocations.invalidate()

    async def catch_up(self, reconnected: bool) -> None:
        """Forget or reload what a change the listener did not hear of may have touched.

        After a gap everything is reloaded now. At the first connection nothing was missed but what the
        revocation snapshot (if loaded yet) and the client cache may lack, so those are only marked stale:
        start-up does no more database work, and the keys it has just loaded stay.
        """
        self.client_cache.clear()
        self.profiles.clear()
        if not reconnected:
            self.revocations.invalidate()
            return
        self.keys_changed.set()
        await self.revocations.refresh()
