"""Periodic work of every server process, started and stopped by the app's lifespan.

* **Key reload** (every ``key_reload_interval`` seconds, as soon as a pending key's activation or a retired
  key's expiry comes due, and at once when the change feed announces a key change): settles the key states,
  rotates first when automatic rotation (``key_rotation_interval``) is due, then loads a fresh immutable
  ``KeySet`` and swaps ``runtime.keys`` by reference. A rotation made by the CLI or another replica is picked
  up everywhere within a fraction of a second, and within one interval if its notification is lost.
* **Purge** (every ``purge_interval`` seconds; 0 turns it off): ``db.housekeeping.purge_expired``.
* **Back-channel logout** (at start-up, at once when ``runtime.backchannel_due`` is set, and every
  ``backchannel.POLL_INTERVAL`` seconds): ``runtime.backchannel.deliver_all_due``.
* **Change listener** (Postgres only): ``db.change_listener.ChangeListener``.

A failure (database outage, bad key) is logged as one line, with no secrets, and the loop carries on with the
last good key set. At shutdown the loops are told to stop, finish the pass they are in, and end before the
engine is disposed.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from oauth_service.crypto.key_encryption import KeyEncryptionError, PrivateKeyCipher
from oauth_service.db.backchannel_outbox import any_due
from oauth_service.db.change_listener import ChangeListener
from oauth_service.db.errors import describe_error
from oauth_service.db.housekeeping import PurgeReport, purge_expired
from oauth_service.db.key_rotation import (
    next_key_event,
    retire_after,
    rotate_if_due,
    settle_keys,
)
from oauth_service.db.keys import NoSigningKeyError, load_keyset
from oauth_service.outbound.http import outbound_client
from oauth_service.runtime import Runtime
from oauth_service.runtime.backchannel import POLL_INTERVAL, deliver_all_due

log = logging.getLogger("oauth_service.background")

# Errors whose message is safe to log (no key material, no statement parameters).
_SAFE_ERRORS = (KeyEncryptionError, NoSigningKeyError)
# How long shutdown waits for a loop to finish the pass it is in before cancelling it.
STOP_GRACE = 10.0
# Wake a little after a key event, so the clock has certainly passed it.
_EVENT_MARGIN = 0.05


async def refresh_keys(runtime: Runtime, cipher: PrivateKeyCipher) -> datetime | None:
    """Rotate if due, settle states, swap in a fresh key set; return when the key set next changes by itself."""
    settings = runtime.settings
    grace = retire_after(settings.signed_token_ttl)
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


async def _paused(
    stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
) -> bool:
    """Wait ``seconds``, or until ``stop`` (or ``wake``, which is then cleared) is set; return whether to stop."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        return stop.is_set()
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, wake)]
    try:
        await asyncio.wait(
            waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
    wake.clear()
    return stop.is_set()


async def key_reload_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Reload the key set until ``stop`` is set (see the module docstring)."""
    interval = runtime.settings.key_reload_interval
    cipher = PrivateKeyCipher(runtime.settings.key_encryption_key)
    # The first pass comes one interval after start-up, which has just loaded the keys itself.
    delay = interval

    async def reload() -> None:
        nonlocal delay
        upcoming = await refresh_keys(runtime, cipher)
        delay = reload_delay(upcoming, runtime.clock(), interval)

    while not await _paused(stop, delay, runtime.keys_changed):
        delay = interval  # unless the reload succeeds and knows better
        await _guarded("key reload", reload)


async def purge_once(runtime: Runtime) -> PurgeReport:
    """Purge expired rows with the runtime's settings and clock, and log the counts."""
    settings = runtime.settings
    report = await purge_expired(
        runtime.engine,
        retire_after=retire_after(settings.signed_token_ttl),
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


async def purge_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Purge every ``purge_interval`` seconds (the first time one interval after start-up) until ``stop``."""

    async def purge() -> None:
        await purge_once(runtime)

    while not await _paused(stop, runtime.settings.purge_interval):
        await _guarded("purge", purge)


async def backchannel_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Deliver back-channel logouts until ``stop`` is set (``runtime.backchannel``); the first pass at once."""

    async def deliver() -> None:
        # The HTTP client (and its TLS context, a few MiB) is made only for a pass with something to send:
        # most workers never send a logout token.
        if not await any_due(runtime.engine, now=runtime.clock()):
            return
        async with outbound_client() as http:
            await deliver_all_due(runtime, http)

    await _guarded("back-channel logout", deliver)
    while not await _paused(stop, POLL_INTERVAL, runtime.backchannel_due):
        await _guarded("back-channel logout", deliver)


class BackgroundTasks:
    """The running loops of one process."""

    def __init__(
        self,
        tasks: list[asyncio.Task[None]],
        stop: asyncio.Event,
        listener: ChangeListener | None = None,
    ) -> None:
        self._tasks = tasks
        self._stop = stop
        self.listener = listener

    @property
    def running(self) -> int:
        """How many loops are still running."""
        return sum(not task.done() for task in self._tasks)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask every loop to stop and wait until each has ended.

        A loop in the middle of a pass finishes it (up to ``grace`` seconds), so no connection is abandoned
        half-open; whatever is still running after that is cancelled.
        """
        self._stop.set()
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def start_background(runtime: Runtime) -> BackgroundTasks:
    """Start the key-reload, back-channel and (unless ``purge_interval`` is 0) purge loops; on Postgres the listener."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(key_reload_loop(runtime, stop), name="oauth-key-reload")
    ]
    if runtime.settings.purge_interval:
        tasks.append(asyncio.create_task(purge_loop(runtime, stop), name="oauth-purge"))
    tasks.append(
        asyncio.create_task(backchannel_loop(runtime, stop), name="oauth-backchannel")
    )
    listener = None
    if runtime.engine.dialect.name == "postgresql":
        listener = ChangeListener(
            runtime.settings.database_url,
            apply=runtime.apply_change,
            catch_up=runtime.catch_up,
            stop=stop,
            connect_timeout=runtime.settings.db_pool_timeout,
        )
        tasks.append(asyncio.create_task(listener.run(), name="oauth-change-listener"))
    return BackgroundTasks(tasks, stop, listener)
