"""The ``limits``-backed ``Throttle`` (RFC 6749 §10.10, RFC 9700 §4.16): Redis when configured, else memory.

Counts live in Redis when ``REDIS_URL`` is set, so every replica sees the same failures and locks; without it
they live in process memory (one replica, or a development server). Each account and each IP has two moving
windows: *failures* (``limit`` per ``lockout_seconds``) and *lock* (one entry per ``lockout_seconds``, taken when
the failures reach the limit). A lock therefore lasts exactly ``lockout_seconds`` from the failure that set
it, and by the time it ends the failures that caused it have aged out too. Authorization requests have one
moving window per IP (``max_authorize_requests_per_ip`` per minute), refused while full.

Redis trouble fails open: a throttling outage must not become a login outage. It is bounded by short socket
timeouts, the argon2 cost of every guess still applies, and it is logged once per outage in one line (the
address without its password, and the cause), not once per request.
"""

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

import redis.asyncio
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.errors import StorageError

from oauth_service.oauth.throttling import (
    CLIENT_KINDS,
    Attempt,
    AttemptKind,
    ThrottledAuthorizationError,
    throttled_error,
)
from oauth_service.observability.logs import audit
from oauth_service.settings import Settings

logger = logging.getLogger("oauth_service.throttle")

REDIS_TIMEOUT_SECONDS = 0.5
_STORAGE_ERRORS = (StorageError, redis.RedisError, OSError, TimeoutError)
# Errors of the connection itself, whose messages name the address and the system error; a reply error could
# echo a key, and keys name accounts.
_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError, TimeoutError)


def redis_address(url: str) -> str:
    """``url`` fit for a log line: no user, password or query (redis-py reads a ``password`` parameter)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def storage_failure(exc: BaseException) -> str:
    """The cause of a storage failure in a few words: the class, and the message of connection errors."""
    inner = exc.storage_error if isinstance(exc, StorageError) else exc
    if isinstance(inner, _CONNECTION_ERRORS):
        return f"{type(inner).__name__}: {inner}"
    return type(inner).__name__


class MovingWindowStorage(Protocol):
    """What the throttle uses of a ``limits`` async storage (``MemoryStorage`` and ``RedisStorage`` have it)."""

    async def acquire_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Add an entry to the moving window at ``key`` unless it holds ``limit`` already."""
        ...

    async def get_moving_window(
        self, key: str, limit: int, expiry: int
    ) -> tuple[float, int]:
        """The time of the oldest entry of the window at ``key`` and how many entries it holds."""
        ...

    async def clear(self, key: str) -> None:
        """Forget the window at ``key``."""
        ...


@dataclass(frozen=True, slots=True)
class _Keys:
    """The storage keys of one attempt's windows: failures and lock, of the account and of the IP."""

    account_failures: str
    account_lock: str
    ip_failures: str | None
    ip_lock: str | None


# Distinct client authentications (kind, client id, IP) whose storage keys are kept: building them costs more than
# a memory check, on every request of a client. Password and login attempts (argon2-bound, and naming users)
# build theirs each time.
KEY_CACHE_SIZE = 4096


class LimitsThrottle:
    """Per-account and per-IP failure counting with temporary locks (see the module docstring).

    The windows are read and written through the storage's moving-window calls directly, under the keys
    ``limits.MovingWindowRateLimiter`` gives them (``RateLimitItem.key_for(prefix, key)``; built once per
    client and IP for client authentication). A successful credential check pays for reading two lock windows
    (one when the attempt carries no IP) and clearing the account's failures: three storage calls.
    """

    def __init__(
        self,
        storage: MovingWindowStorage,
        *,
        max_failures: int,
        max_failures_per_ip: int,
        lockout_seconds: int,
        prefix: str,
        pool: redis.asyncio.ConnectionPool | None = None,
        authorization_requests_per_ip: int | None = None,
        address: str = "memory",
    ) -> None:
        self._storage = storage
        self._address = address
        # Set from the first failure of an outage to the next answer: the outage is logged once, not per request.
        self._unavailable = False
        # Authorization requests per IP per minute (None: unlimited).
        self._authorizations = (
            RateLimitItemPerMinute(authorization_requests_per_ip)
            if authorization_requests_per_ip is not None
            else None
        )
        self._account_failures = RateLimitItemPerSecond(max_failures, lockout_seconds)
        self._ip_failures = RateLimitItemPerSecond(max_failures_per_ip, lockout_seconds)
        self._lock = RateLimitItemPerSecond(1, lockout_seconds)
        self._lockout = self._lock.get_expiry()
        self._prefix = prefix
        self._pool = pool
        self._client_keys = lru_cache(maxsize=KEY_CACHE_SIZE)(self._build_client_keys)

    def _storage_failed(self, exc: BaseException) -> None:
        if self._unavailable:
            return
        self._unavailable = True
        logger.warning(
            "throttle storage at %s unavailable (%s); failed logins are not counted until it answers",
            self._address,
            storage_failure(exc),
        )

    def _storage_answered(self) -> None:
        if self._unavailable:
            self._unavailable = False
            logger.warning(
                "throttle storage at %s answers again; failed logins are counted",
                self._address,
            )

    def _keys(self, attempt: Attempt) -> _Keys:
        if attempt.kind in CLIENT_KINDS:
            return self._client_keys(attempt.kind, attempt.account, attempt.ip)
        return self._build_keys(attempt)

    def _build_client_keys(
        self, kind: AttemptKind, client_id: str, ip: str | None
    ) -> _Keys:
        return self._build_keys(Attempt(kind, client_id, ip))

    def _build_keys(self, attempt: Attempt) -> _Keys:
        prefix, account = self._prefix, attempt.account_key
        ip = f"ip:{attempt.ip}" if attempt.ip else None
        return _Keys(
            account_failures=self._account_failures.key_for(prefix, account),
            account_lock=self._lock.key_for(prefix, account),
            ip_failures=self._ip_failures.key_for(prefix, ip) if ip else None,
            ip_lock=self._lock.key_for(prefix, ip) if ip else None,
        )

    async def check(self, attempt: Attempt) -> None:
        """Raise the endpoint's throttled error while the account or the IP is locked."""
        keys = self._keys(attempt)
        try:
            retry_after = self._retry_after(
                await self._storage.get_moving_window(
                    keys.account_lock, 1, self._lockout
                )
            )
            if keys.ip_lock is not None:
                retry_after = max(
                    retry_after,
                    self._retry_after(
                        await self._storage.get_moving_window(
                            keys.ip_lock, 1, self._lockout
                        )
                    ),
                )
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return
        self._storage_answered()
        if retry_after > 0:
            audit("throttle.refused", kind=attempt.kind, retry_after=retry_after)
            raise throttled_error(attempt.kind, retry_after)

    def _retry_after(self, window: tuple[float, int]) -> int:
        """Seconds until a lock window empties; 0 when it holds no lock."""
        start, entries = window
        if entries == 0:
            return 0
        return math.ceil(start + self._lockout - time.time())

    async def failed(self, attempt: Attempt) -> None:
        """Count the failure for the account and the IP; lock each one that reached its limit."""
        keys = self._keys(attempt)
        windows = [
            (
                "account",
                keys.account_failures,
                keys.account_lock,
                self._account_failures,
            )
        ]
        if keys.ip_failures is not None and keys.ip_lock is not None:
            windows.append(("ip", keys.ip_failures, keys.ip_lock, self._ip_failures))
        try:
            for scope, failures, lock, item in windows:
                expiry = item.get_expiry()
                await self._storage.acquire_entry(failures, item.amount, expiry)
                _, entries = await self._storage.get_moving_window(
                    failures, item.amount, expiry
                )
                if entries < item.amount:
                    continue
                if await self._storage.acquire_entry(lock, 1, self._lockout):
                    audit(
                        "throttle.locked",
                        kind=attempt.kind,
                        scope=scope,
                        lockout_seconds=self._lockout,
                    )
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return
        self._storage_answered()

    async def succeeded(self, attempt: Attempt) -> None:
        """Reset the account's failure count (the IP's count stays)."""
        try:
            await self._storage.clear(self._keys(attempt).account_failures)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return
        self._storage_answered()

    async def admit_authorization(self, ip: str | None) -> None:
        """Take one entry of ``ip``'s authorization window; refuse with 429 when the window is full."""
        item = self._authorizations
        if item is None or ip is None:
            return
        key = item.key_for(self._prefix, f"authorize:ip:{ip}")
        expiry = item.get_expiry()
        try:
            if await self._storage.acquire_entry(key, item.amount, expiry):
                return
            start, _ = await self._storage.get_moving_window(key, item.amount, expiry)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return
        self._storage_answered()
        retry_after = math.ceil(start + expiry - time.time())
        audit("throttle.refused", kind="authorize", retry_after=retry_after)
        raise ThrottledAuthorizationError(retry_after)

    async def aclose(self) -> None:
        """Close the Redis connection pool, if any."""
        if self._pool is not None:
            await self._pool.aclose()


def build_throttle(settings: Settings) -> LimitsThrottle:
    """The throttle for ``settings``: shared through Redis when ``redis_url`` is set, else in memory."""
    storage: MovingWindowStorage
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
        authorization_requests_per_ip=settings.max_authorize_requests_per_ip,
        address=redis_address(settings.redis_url) if settings.redis_url else "memory",
    )
