"""``LimitsThrottle`` keeps its windows under the keys ``limits.MovingWindowRateLimiter`` gives them.

Replicas share the windows through Redis, so every replica, whatever its version, must read and write the same
keys: a lock taken through the rate limiter is seen by the throttle, and the throttle's failures and locks are
seen by the rate limiter.
"""

import logging

import pytest
import redis
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from oauth_service.oauth.throttling import Attempt, ThrottledClientError
from oauth_service.runtime.limits_throttle import LimitsThrottle, redis_address

PREFIX = "test-throttle"
LOCKOUT = 120
LOCK = RateLimitItemPerSecond(1, LOCKOUT)
CLIENT = Attempt("client", "svc", "192.0.2.7")


def _throttle(storage: MemoryStorage) -> LimitsThrottle:
    return LimitsThrottle(
        storage,
        max_failures=3,
        max_failures_per_ip=5,
        lockout_seconds=LOCKOUT,
        prefix=PREFIX,
    )


@pytest.mark.parametrize("locked", [CLIENT.account_key, "ip:192.0.2.7"])
async def test_lock_taken_through_the_rate_limiter_refuses_the_attempt(
    locked: str,
) -> None:
    storage = MemoryStorage()
    assert await MovingWindowRateLimiter(storage).hit(LOCK, PREFIX, locked)
    with pytest.raises(ThrottledClientError) as refused:
        await _throttle(storage).check(CLIENT)
    assert 0 < refused.value.retry_after <= LOCKOUT


async def test_failures_and_lock_are_seen_by_the_rate_limiter() -> None:
    storage = MemoryStorage()
    throttle = _throttle(storage)
    limiter = MovingWindowRateLimiter(storage)
    failures = RateLimitItemPerSecond(3, LOCKOUT)
    await throttle.failed(CLIENT)
    stats = await limiter.get_window_stats(failures, PREFIX, CLIENT.account_key)
    assert stats.remaining == 2
    ip_stats = await limiter.get_window_stats(
        RateLimitItemPerSecond(5, LOCKOUT), PREFIX, "ip:192.0.2.7"
    )
    assert ip_stats.remaining == 4
    await throttle.failed(CLIENT)
    await throttle.failed(CLIENT)
    assert not await limiter.test(LOCK, PREFIX, CLIENT.account_key)
    assert await limiter.test(LOCK, PREFIX, "ip:192.0.2.7")


async def test_success_clears_the_account_failures_only() -> None:
    storage = MemoryStorage()
    throttle = _throttle(storage)
    limiter = MovingWindowRateLimiter(storage)
    await throttle.failed(CLIENT)
    await throttle.succeeded(CLIENT)
    account = await limiter.get_window_stats(
        RateLimitItemPerSecond(3, LOCKOUT), PREFIX, CLIENT.account_key
    )
    ip = await limiter.get_window_stats(
        RateLimitItemPerSecond(5, LOCKOUT), PREFIX, "ip:192.0.2.7"
    )
    assert (account.remaining, ip.remaining) == (3, 4)


class FlakyStorage(MemoryStorage):
    """Memory storage that fails, as ``RedisStorage`` wraps a refused connection, while ``down`` is set."""

    down = False

    async def get_moving_window(
        self, key: str, limit: int, expiry: int
    ) -> tuple[float, int]:
        if self.down:
            raise StorageError(
                redis.ConnectionError("Error 111 connecting to cache:6379.")
            )
        return await super().get_moving_window(key, limit, expiry)


async def test_storage_outage_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = FlakyStorage()
    throttle = LimitsThrottle(
        storage,
        max_failures=3,
        max_failures_per_ip=5,
        lockout_seconds=LOCKOUT,
        prefix=PREFIX,
        address="redis://cache:6379/0",
    )
    caplog.set_level(logging.WARNING, logger="oauth_service.throttle")
    for down in (True, True, True, False, False, True):
        storage.down = down
        await throttle.check(CLIENT)  # fails open while down
    outage = (
        "throttle storage at redis://cache:6379/0 unavailable (ConnectionError: Error 111 connecting to "
        "cache:6379.); failed logins are not counted until it answers"
    )
    assert caplog.messages == [
        outage,
        "throttle storage at redis://cache:6379/0 answers again; failed logins are counted",
        outage,
    ]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://:s3cret@cache:6380/2", "redis://cache:6380/2"),
        ("rediss://user:s3cret@cache.example.com", "rediss://cache.example.com"),
        ("redis://[::1]:6379?password=s3cret", "redis://[::1]:6379"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock"),
    ],
    ids=["password", "user-and-tls", "ipv6-query", "unix"],
)
def test_redis_address_drops_credentials_and_query(url: str, address: str) -> None:
    assert redis_address(url) == address
