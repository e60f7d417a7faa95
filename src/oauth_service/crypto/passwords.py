"""argon2id password hashing, always off the event loop.

Hashing and verifying cost tens of milliseconds of CPU by design, so both run in a worker thread. Unknown users
are verified against a dummy hash with the same parameters, so timing does not reveal which emails exist.

At most ``max_threads`` (default: the CPU count) hashes run at once per process: the hasher has its own pool
of that many threads, and the rest queue in it. A hashing thread takes the next queued hash as soon as it is
done, without a round through the event loop (cheaper for the loop than anyio's ``to_thread`` with a capacity
limiter while logins queue; docs/performance.md). More threads than cores add no
throughput, but each one holds a ~19 MiB argon2 buffer and competes with the event loop for a core; hashing
threads also run at a lower priority than the event loop. A cancelled wait drops its hash if it has not
started; one that has started finishes in its thread while the cancelled caller moves on.

glibc gives each thread its own malloc arena, and an arena keeps a freed 19 MiB buffer for reuse, so the
process is held to one arena (``mallopt(M_ARENA_MAX)``). Once no hash has run for ``trim_delay`` seconds
(default 2) the freed buffers go back to the OS (``malloc_trim``, in a hashing thread: it takes about a
millisecond), so once logins pause a burst does not leave a worker's memory inflated; while they keep coming
it holds at most ``max_threads`` freed buffers. Not sooner: a hash that finds its buffer returned pays its
page faults first, which made a lone login half again as slow (docs/performance.md).
"""

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")


_M_ARENA_MAX = -8  # glibc's mallopt parameter number
_MALLOC_ARENAS = 1


def _load_glibc(symbol: str) -> Callable[..., int] | None:
    """Return a glibc malloc tuning function, or None elsewhere (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(name), symbol)
    except (OSError, AttributeError, TypeError):
        return None
    return function


_MALLOC_TRIM = _load_glibc("malloc_trim")
_MALLOPT = _load_glibc("mallopt")
_THREAD_NICENESS = 10
TRIM_DELAY_SECONDS = 2.0


def _lower_thread_priority() -> None:
    """Run the calling hashing thread at a lower priority (Linux schedules threads one by one); once per thread.

    Under a login storm the event loop then preempts hashing, so every other request (``/healthz`` included)
    keeps its latency; throughput is unchanged, because the CPU stays busy either way.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _THREAD_NICENESS)


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """Outcome of a verification; ``new_hash`` is set when the stored hash should be upgraded."""

    ok: bool
    new_hash: str | None = None


class PasswordHasher:
    """argon2id with explicit parameters (OWASP minimum: m >= 19 MiB, t >= 2, p = 1)."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19_456,
        parallelism: int = 1,
        max_threads: int | None = None,
        trim_delay: float = TRIM_DELAY_SECONDS,
    ) -> None:
        self._max_threads = max_threads or os.cpu_count() or 1
        self._trim_delay = trim_delay
        self._malloc_trim = _MALLOC_TRIM
        self._trim_timer: asyncio.TimerHandle | None = None
        self._trim_task: asyncio.Future[int] | None = None
        if _MALLOPT is not None:  # before any hashing thread gets an arena of its own
            _MALLOPT(_M_ARENA_MAX, _MALLOC_ARENAS)
        # Made on first use: a hasher that only hashes synchronously (CLI) never starts a thread.
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False
        self._in_flight = 0
        self._hasher = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash("dummy password for timing equalization")

    def hash_sync(self, password: str) -> str:
        """Hash in the calling thread (CLI and migrations only)."""
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        """Hash a password in a worker thread."""
        return await self._run(self._hasher.hash, password)

    def _verify_sync(self, stored_hash: str | None, password: str) -> PasswordCheck:
        target = stored_hash or self._dummy_hash
        try:
            self._hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        if stored_hash is None:
            return PasswordCheck(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return PasswordCheck(ok=True, new_hash=self._hasher.hash(password))
        return PasswordCheck(ok=True)

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Verify in a worker thread; ``stored_hash=None`` burns the same time and fails."""
        return await self._run(self._verify_sync, stored_hash, password)

    def close(self) -> None:
        """Refuse new work and let the hashing threads end (the app's shutdown, once requests are done).

        A hash still queued is dropped (its caller gets ``CancelledError``); a running one finishes.
        """
        self._closed = True
        self._cancel_trim()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    def _cancel_trim(self) -> None:
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._closed:
            raise RuntimeError("the password hasher is closed")
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                max_workers=self._max_threads,
                thread_name_prefix="argon2",
                initializer=_lower_thread_priority,
            )
        return self._threads

    async def _run(self, work: Callable[..., T], *args: str | None) -> T:
        threads = self._executor()
        self._cancel_trim()  # hashing again: this hash reuses the freed buffer
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                threads, work, *args
            )
        finally:
            self._in_flight -= 1
            if (
                self._in_flight == 0
                and self._malloc_trim is not None
                and not self._closed
            ):
                self._trim_timer = asyncio.get_running_loop().call_later(
                    self._trim_delay, self._trim_if_idle
                )

    def _trim_if_idle(self) -> None:
        """Give argon2's freed memory back to the OS, off the event loop (no hash ran for ``trim_delay`` s)."""
        self._trim_timer = None
        if self._in_flight == 0 and self._malloc_trim is not None and not self._closed:
            self._trim_task = asyncio.get_running_loop().run_in_executor(
                self._executor(), self._malloc_trim, 0
            )
