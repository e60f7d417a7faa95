"""The per-process listener of the change feed (``db.change_feed``): Postgres ``LISTEN`` on one channel.

It holds one dedicated asyncpg connection, outside the pool and named ``oauth-service-listener`` in
``pg_stat_activity``, and hands each notification to ``apply`` (``Runtime.apply_change``: a revocation or
cut-off at once, a client evicted from the cache, a key set reloaded by the key loop). A change made on any
replica is so honoured everywhere within a fraction of a second.

When the connection is lost it reconnects with bounded backoff and, on every (re)connection, once ``LISTEN``
is in place, calls ``catch_up(reconnected)`` (after a gap the runtime reloads the revocation list and
cut-offs, asks the key loop to reload and empties the client cache), so nothing committed while it was away
is missed. The periodic reloads (their TTLs) remain the
bound if a notification is lost any other way. SQLite has no channel and needs none: one process.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from oauth_service.db.change_feed import CHANNEL, Change, decode
from oauth_service.db.errors import describe_error

log = logging.getLogger("oauth_service.change_listener")

APPLICATION_NAME = "oauth-service-listener"
# Reconnection backoff, doubling from the first to the last (seconds).
BACKOFF = (0.1, 5.0)
# How often an idle connection is checked: a silent network loss shows no error until something is sent.
PING_INTERVAL = 10.0


def listener_dsn(database_url: str) -> str:
    """The asyncpg DSN of a ``postgresql+asyncpg://`` database URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ChangeListener:
    """Listens for changes until stopped; see the module docstring."""

    def __init__(
        self,
        database_url: str,
        *,
        apply: Callable[[Change], None],
        catch_up: Callable[[bool], Awaitable[None]],
        stop: asyncio.Event,
        connect_timeout: float = 5.0,
    ) -> None:
        self._dsn = listener_dsn(database_url)
        self._apply = apply
        self._catch_up = catch_up
        self._stop = stop
        self._connect_timeout = connect_timeout
        self.connections = 0  # (re)connections made so far
        # Set once LISTEN is in place and the first catch-up is done (tests wait for it).
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Connect, listen and reconnect until ``stop`` is set."""
        delay = BACKOFF[0]
        while not self._stop.is_set():
            try:
                await self._listen_once()
                delay = BACKOFF[0]  # it was connected: start the backoff afresh
            except Exception as exc:  # an outage: retry, never crash the process
                log.warning(
                    "change listener disconnected: %s; reconnecting in %.1f s",
                    describe_error(exc),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(delay * 2, BACKOFF[1])

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": APPLICATION_NAME},
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
            # After LISTEN: a change committed from here on is heard, one committed before is read.
            await self._catch_up(self.connections > 0)
            self.connections += 1
            self.listening.set()
            if self.connections > 1:
                log.info("change listener reconnected; caught up")
            await self._watch(conn, lost)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2.0)

    async def _watch(self, conn: Any, lost: asyncio.Event) -> None:
        """Return when ``stop`` is set; raise when the connection is lost."""
        while not self._stop.is_set():
            waiters = [asyncio.ensure_future(e.wait()) for e in (self._stop, lost)]
            try:
                done, _ = await asyncio.wait(
                    waiters, timeout=PING_INTERVAL, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if self._stop.is_set():
                return
            if lost.is_set() or conn.is_closed():
                raise ConnectionError("the listening connection was closed")
            if not done:
                await conn.execute("SELECT 1", timeout=PING_INTERVAL)

    def _on_notification(
        self, _conn: Any, _pid: int, _channel: str, payload: str
    ) -> None:
        change = decode(payload)
        if change is None:
            log.warning("change listener ignored an unknown notification")
            return
        self._apply(change)
