"""``LimitsThrottle`` keeps its windows under the keys ``limits.MovingWindowRateLimiter`` gives them.

Replicas share the windows through Redis, so every replica, whatever its version, must read and write the same
keys: a lock taken through the rate limiter is seen by the throttle, and the throttle's failures and locks are
seen by the rate limiter.
"""

import pytest
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from oauth_service.oauth.throttling import Attempt, ThrottledClientError
from oauth_service.throttle import LimitsThrottle

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
