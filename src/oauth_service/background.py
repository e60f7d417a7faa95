"""Periodic work of every server process, started and stopped by the app's lifespan.

* **Key reload** (every ``key_reload_interval`` seconds, and as soon as a pending key's activation or a retired
  key's expiry comes due): settles the key states, rotates first when automatic rotation
  (``key_rotation_interval``) is due, then loads a fresh immutable ``KeySet`` and swaps ``runtime.keys`` by
  reference. A rotation made by the CLI or another replica is therefore picked up everywhere within one interval.
* **Purge** (every ``purge_interval`` seconds; 0 turns it off): ``db.housekeeping.purge_expired``.

A failure (database outage, bad key) is logged as one line, with no secrets, and the loop carries on with the
last good key set; cancellation at shutdown ends the loops cleanly before the engine is disposed.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from oauth_service.crypto.key_encryption import KeyEncryptionError, PrivateKeyCipher
from oauth_service.db.errors import describe_error
from oauth_service.db.housekeeping import PurgeReport, purge_expired
from oauth_service.db.key_rotation import (
    list_keys,
    next_key_event,
    retire_after,
    rotate_if_due,
    settle_keys,
)
from oauth_service.db.keys import NoSigningKeyError, load_keyset
from oauth_service.runtime import Runtime

log = logging.getLogger("oauth_service.background")

# Errors whose message is safe to log (no key material, no statement parameters).
_SAFE_ERRORS = (KeyEncryptionError, NoSigningKeyError)
# Wake a little after a key event, so the clock has certainly passed it.
_EVENT_MARGIN = 0.05


async def refresh_keys(runtime: Runtime, cipher: PrivateKeyCipher) -> datetime | None:
    """Rotate if due, settle states, swap in a fresh key set; return when the key set next changes by itself."""
    settings = runtime.settings
    grace = retire_after(settings.access_token_ttl)
    if settings.key_rotation_interval:
        rotated = await rotate_if_due(
            runtime.engine,
            settings.signing_alg,
            interval=timedelta(seconds=settings.key_rotation_interval),
            publish_delay=timedelta(seconds=settings.key_publish_delay),
            retire_after=grace,
            cipher=cipher,
            clock=runtime.clock,
        )
        if rotated is not None:
            log.info(
                "rotated the signing key",
                extra={"kid": rotated.kid, "activates_at": rotated.activates_at},
            )
    views = await settle_keys(runtime.engine, retire_after=grace, clock=runtime.clock)
    runtime.keys = await load_keyset(runtime.engine, clock=runtime.clock, cipher=cipher)
    return next_key_event(views, runtime.clock())


def reload_delay(next_event: datetime | None, now: datetime, interval: float) -> float:
    """Seconds until the next reload: the interval, or sooner when a key event comes first."""
    if next_event is None:
        return interval
    return max(0.0, min(interval, (next_event - now).total_seconds() + _EVENT_MARGIN))


async def _guarded(what: str, work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except Exception as exc:  # keep running on the last good state
        log.warning("%s failed: %s", what, describe_error(exc, safe=_SAFE_ERRORS))


async def key_reload_loop(runtime: Runtime) -> None:
    """Reload the key set forever (see the module docstring)."""
    interval = runtime.settings.key_reload_interval
    cipher = PrivateKeyCipher(runtime.settings.key_encryption_key)
    retired_for = retire_after(runtime.settings.access_token_ttl)
    delay = interval

    async def first_delay() -> None:
        nonlocal delay
        views = await list_keys(
            runtime.engine, retire_after=retired_for, clock=runtime.clock
        )
        now = runtime.clock()
        delay = reload_delay(next_key_event(views, now), now, interval)

    async def reload() -> None:
        nonlocal delay
        upcoming = await refresh_keys(runtime, cipher)
        delay = reload_delay(upcoming, runtime.clock(), interval)

    await _guarded("key reload", first_delay)
    while True:
        await asyncio.sleep(delay)
        delay = interval  # unless the reload succeeds and knows better
        await _guarded("key reload", reload)


async def purge_once(runtime: Runtime) -> PurgeReport:
    """Purge expired rows with the runtime's settings and clock, and log the counts."""
    settings = runtime.settings
    report = await purge_expired(
        runtime.engine,
        retire_after=retire_after(settings.access_token_ttl),
        clock=runtime.clock,
        batch_size=settings.purge_batch_size,
    )
    counts = ", ".join(f"{table} {count}" for table, count in report.as_dict().items())
    log.info(
        "purged %d expired rows (%s)",
        report.total,
        counts,
        extra={"purged_rows": report.total},
    )
    return report


async def purge_loop(runtime: Runtime) -> None:
    """Purge every ``purge_interval`` seconds, the first time one interval after start-up."""

    async def purge() -> None:
        await purge_once(runtime)

    while True:
        await asyncio.sleep(runtime.settings.purge_interval)
        await _guarded("purge", purge)


class BackgroundTasks:
    """The running loops of one process."""

    def __init__(self, tasks: list[asyncio.Task[None]]) -> None:
        self._tasks = tasks

    @property
    def running(self) -> int:
        """How many loops are still running."""
        return sum(not task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Cancel every loop and wait until each has ended."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def start_background(runtime: Runtime) -> BackgroundTasks:
    """Start the key-reload loop, and the purge loop unless ``purge_interval`` is 0."""
    tasks = [asyncio.create_task(key_reload_loop(runtime), name="oauth-key-reload")]
    if runtime.settings.purge_interval:
        tasks.append(asyncio.create_task(purge_loop(runtime), name="oauth-purge"))
    return BackgroundTasks(tasks)
