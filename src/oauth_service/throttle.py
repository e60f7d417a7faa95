"""The ``limits``-backed ``Throttle`` (RFC 6749 §10.10, RFC 9700 §4.16): Redis when configured, else memory.

Counts live in Redis when ``REDIS_URL`` is set, so every replica sees the same failures and locks; without it
they live in process memory (one replica, or a development server). Each account and each IP has two moving
windows: *failures* (``limit`` per ``lockout_seconds``) and *lock* (one entry per ``lockout_seconds``, taken when
the failures reach the limit). A lock therefore lasts exactly ``lockout_seconds`` from the failure that set
it, and by the time it ends the failures that caused it have aged out too.

Redis trouble fails open: a throttling outage must not become a login outage. It is logged, bounded by short
socket timeouts, and the argon2 cost of every guess still applies.
"""

import logging
import math
import time

import redis.asyncio
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from oauth_service.logs import audit
from oauth_service.oauth.throttling import Attempt, throttled_error
from oauth_service.settings import Settings

logger = logging.getLogger("oauth_service.throttle")

REDIS_TIMEOUT_SECONDS = 0.5
_STORAGE_ERRORS = (StorageError, redis.RedisError, OSError, TimeoutError)


class LimitsThrottle:
    """Per-account and per-IP failure counting with temporary locks (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_failures: int,
        max_failures_per_ip: int,
        lockout_seconds: int,
        prefix: str,
        pool: redis.asyncio.ConnectionPool | None = None,
    ) -> None:
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._account_failures = RateLimitItemPerSecond(max_failures, lockout_seconds)
        self._ip_failures = RateLimitItemPerSecond(max_failures_per_ip, lockout_seconds)
        self._lock = RateLimitItemPerSecond(1, lockout_seconds)
        self._prefix = prefix
        self._pool = pool

    def _keys(self, attempt: Attempt) -> list[tuple[str, str, RateLimitItem]]:
        keys: list[tuple[str, str, RateLimitItem]] = [
            ("account", attempt.account_key, self._account_failures)
        ]
        if attempt.ip:
            keys.append(("ip", f"ip:{attempt.ip}", self._ip_failures))
        return keys

    async def check(self, attempt: Attempt) -> None:
        """Raise the endpoint's throttled error while the account or the IP is locked."""
        try:
            retry_after = 0
            for _, key, _ in self._keys(attempt):
                if not await self._limiter.test(self._lock, self._prefix, key):
                    stats = await self._limiter.get_window_stats(
                        self._lock, self._prefix, key
                    )
                    retry_after = max(
                        retry_after, math.ceil(stats.reset_time - time.time())
                    )
        except _STORAGE_ERRORS as exc:
            logger.warning("throttle storage unavailable: %s", type(exc).__name__)
            return
        if retry_after > 0:
            audit("throttle.refused", kind=attempt.kind, retry_after=retry_after)
            raise throttled_error(attempt.kind, retry_after)

    async def failed(self, attempt: Attempt) -> None:
        """Count the failure for the account and the IP; lock each one that reached its limit."""
        try:
            for scope, key, item in self._keys(attempt):
                await self._limiter.hit(item, self._prefix, key)
                stats = await self._limiter.get_window_stats(item, self._prefix, key)
                if stats.remaining > 0:
                    continue
                if await self._limiter.hit(self._lock, self._prefix, key):
                    audit(
                        "throttle.locked",
                        kind=attempt.kind,
                        scope=scope,
                        lockout_seconds=self._lock.get_expiry(),
                    )
        except _STORAGE_ERRORS as exc:
            logger.warning("throttle storage unavailable: %s", type(exc).__name__)

    async def succeeded(self, attempt: Attempt) -> None:
        """Reset the account's failure count (the IP's count stays)."""
        try:
            await self._limiter.clear(
                self._account_failures, self._prefix, attempt.account_key
            )
        except _STORAGE_ERRORS as exc:
            logger.warning("throttle storage unavailable: %s", type(exc).__name__)

    async def aclose(self) -> None:
        """Close the Redis connection pool, if any."""
        if self._pool is not None:
            await self._pool.aclose()


def build_throttle(settings: Settings) -> LimitsThrottle:
    """The throttle for ``settings``: shared through Redis when ``redis_url`` is set, else in memory."""
    storage: Storage
    pool: redis.asyncio.ConnectionPool | None = None
    if settings.redis_url:
        pool = redis.asyncio.ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        storage = RedisStorage(
            "async+" + settings.redis_url.removeprefix("async+"),
            implementation="redispy",
            key_prefix=settings.throttle_key_prefix,
            wrap_exceptions=True,
            connection_pool=pool,  # type: ignore[arg-type]  # passed through to redis.asyncio.Redis
        )
    else:
        storage = MemoryStorage()
    return LimitsThrottle(
        storage,
        max_failures=settings.max_failed_logins,
        max_failures_per_ip=settings.max_failed_logins_per_ip,
        lockout_seconds=settings.lockout_seconds,
        prefix=settings.throttle_key_prefix,
        pool=pool,
    )
