"""A short-lived, process-wide cache of users' standard claims for UserInfo (OpenID Connect Core §5.3).

It keeps UserInfo free of a database read per call. Staleness bound, as for ``client_cache``: a claim change
made through *this* process (admin API) drops the entry at once, one made by another worker, replica or the CLI
when its notification arrives (``db.change_feed``), and any change (plain SQL included) is seen within ``ttl``
seconds. It never lets a token through: a deactivated user's or a changed password's tokens are refused by the
subject cut-offs before UserInfo asks for the profile. Unknown and inactive users are not cached. ``ttl=0``
disables it.
"""

import time
from collections.abc import Awaitable, Callable

from oauth_service.oauth.access_tokens import TtlCache
from oauth_service.oauth.models import UserProfile

ProfileReader = Callable[[str], Awaitable[UserProfile | None]]


class ProfileCache:
    """Profiles by user id, each kept ``ttl`` seconds at most (bounded, least recently used first out)."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: TtlCache[str, UserProfile] = TtlCache(
            max_entries=max_entries, clock=clock
        )

    async def profile(self, user_id: str, read: ProfileReader) -> UserProfile | None:
        """The cached profile, else ``read(user_id)``'s, remembered when there is one."""
        if self.ttl <= 0:
            return await read(user_id)
        cached = self._entries.get(user_id)
        if cached is not None:
            return cached
        profile = await read(user_id)
        if profile is not None:
            self._entries.put(user_id, profile, until=self._clock() + self.ttl)
        return profile

    def invalidate(self, user_id: str) -> None:
        """Forget one user (their claims changed, here or, as notified, elsewhere)."""
        self._entries.pop(user_id)

    def clear(self) -> None:
        """Forget every user (changes may have been missed: the change listener reconnected)."""
        self._entries.clear()
