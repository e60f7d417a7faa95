"""argon2 work is bounded per process (at most ``max_threads`` hashes at once) and trims memory once idle."""

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from oauth_service.crypto import passwords
from oauth_service.crypto.passwords import PasswordHasher


class PeakTracker:
    """Wraps argon2's ``verify`` and records the most calls that ran at the same time."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.release.wait(timeout=5)  # hold the thread until every call has been queued
        try:
            result: bool = self.real.verify(stored, password)
            return result
        finally:
            with self.lock:
                self.active -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _recorder(
    calls: list[int], threads: list[int] | None = None
) -> Callable[[int], int]:
    def trim(pad: int) -> int:
        calls.append(pad)
        if threads is not None:
            threads.append(threading.get_ident())
        return 1

    return trim


def _cheap(max_threads: int, trim_delay: float = 0.05) -> PasswordHasher:
    return PasswordHasher(
        time_cost=1,
        memory_cost=8,
        parallelism=1,
        max_threads=max_threads,
        trim_delay=trim_delay,
    )


W = TypeVar("W")


def _wrapped(
    monkeypatch: pytest.MonkeyPatch, max_threads: int, wrap: Callable[[Any], W]
) -> tuple[PasswordHasher, str, W]:
    """A cheap hasher whose argon2 calls go through ``wrap(real)``, and a stored hash of "pw"."""
    hasher = _cheap(max_threads)
    stored = hasher.hash_sync("pw")
    wrapper = wrap(hasher._hasher)
    monkeypatch.setattr(hasher, "_hasher", wrapper)
    return hasher, stored, wrapper


async def test_password_verify_runs_at_most_max_threads_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher, stored, tracker = _wrapped(monkeypatch, 2, PeakTracker)
    calls = [asyncio.create_task(hasher.verify(stored, "pw")) for _ in range(8)]
    # Every call has queued; the hashing threads have taken what they can.
    await asyncio.sleep(0.05)
    tracker.release.set()
    results = await asyncio.gather(*calls)
    assert all(check.ok for check in results)
    assert tracker.peak == 2


async def _trims_after(trims: list[int], seconds: float) -> list[int]:
    """The trims recorded once ``seconds`` have passed (the trim itself runs in a worker thread)."""
    await asyncio.sleep(seconds)
    for _ in range(100):  # the timer fired; give its thread a moment to record the call
        if trims:
            break
        await asyncio.sleep(0.01)
    return trims


async def test_password_verify_keeps_memory_between_hashes_then_trims_when_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []
    threads: list[int] = []
    monkeypatch.setattr(passwords, "_MALLOC_TRIM", _recorder(trims, threads))
    hasher = _cheap(max_threads=2, trim_delay=0.5)
    stored = hasher.hash_sync("pw")
    await hasher.verify(stored, "pw")
    await hasher.verify(stored, "wrong")
    # Back-to-back logins reuse the freed buffer: trimming after each one made the next fault it in again.
    assert trims == []
    assert await _trims_after(trims, 0.6) == [0]
    assert threads != [
        threading.get_ident()
    ]  # off the event loop: it takes about a millisecond
    await asyncio.sleep(0.6)
    assert trims == [0]  # one trim per idle period


async def test_password_hash_within_the_delay_cancels_the_pending_trim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []
    monkeypatch.setattr(passwords, "_MALLOC_TRIM", _recorder(trims))
    hasher = _cheap(max_threads=1, trim_delay=1.0)
    stored = hasher.hash_sync("pw")
    await hasher.verify(stored, "pw")
    await asyncio.sleep(0.6)
    await hasher.verify(stored, "pw")  # restarts the idle period
    await asyncio.sleep(0.6)
    assert trims == []  # 1.2 s after the first hash, but only 0.6 s after the last
    assert await _trims_after(trims, 0.5) == [0]


async def test_password_verify_burst_trims_only_when_drained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []
    monkeypatch.setattr(passwords, "_MALLOC_TRIM", _recorder(trims))
    hasher = _cheap(max_threads=1, trim_delay=0.5)
    stored = hasher.hash_sync("pw")
    await asyncio.gather(*(hasher.verify(stored, "pw") for _ in range(6)))
    assert trims == []
    assert await _trims_after(trims, 0.6) == [0]


async def test_password_hashing_thread_runs_at_lower_priority() -> None:
    hasher = _cheap(max_threads=1)
    stored = hasher.hash_sync("pw")
    seen: list[int] = []

    def niceness(stored_hash: str | None, password: str) -> bool:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return hasher._verify_sync(stored_hash, password).ok

    assert await hasher._run(niceness, stored, "pw")
    assert seen == [os.getpriority(os.PRIO_PROCESS, 0) + passwords._THREAD_NICENESS]


class CountingVerifier:
    """Wraps argon2's ``verify``: counts the calls that ran; the first waits at a gate when one is set."""

    def __init__(
        self, real: Any, gate: threading.Event | None = None, expected: int = 0
    ) -> None:
        self.real = real
        self.gate = gate
        self.ran = 0
        self.lock = threading.Lock()
        self.all_ran = threading.Event()
        self.expected = expected

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.ran += 1
            first = self.ran == 1
            if self.ran == self.expected:
                self.all_ran.set()
        if first and self.gate is not None:
            self.gate.wait(timeout=5)
        result: bool = self.real.verify(stored, password)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_hashing_thread_takes_the_next_queued_hash_without_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A finished hash used to hand its slot over through the event loop (anyio's limiter): under a login
    # storm the hashing thread waited for a busy loop before it could start the next hash.
    hasher, stored, counter = _wrapped(
        monkeypatch, 1, lambda real: CountingVerifier(real, expected=3)
    )
    calls = [asyncio.create_task(hasher.verify(stored, "pw")) for _ in range(3)]
    await asyncio.sleep(0)  # each call queues its hash
    # The loop is blocked from here on: only the hashing thread can move from one hash to the next.
    assert counter.all_ran.wait(timeout=5)
    assert all(check.ok for check in await asyncio.gather(*calls))


async def test_cancelled_login_drops_its_queued_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = threading.Event()
    hasher, stored, counter = _wrapped(
        monkeypatch, 1, lambda real: CountingVerifier(real, gate)
    )
    running = asyncio.create_task(hasher.verify(stored, "pw"))
    queued = asyncio.create_task(hasher.verify(stored, "pw"))
    await asyncio.sleep(0.05)
    queued.cancel()  # e.g. a request cancelled by the server's graceful-shutdown timeout
    await asyncio.sleep(0)
    gate.set()
    assert (await running).ok
    with pytest.raises(asyncio.CancelledError):
        await queued
    await asyncio.sleep(0.05)
    assert counter.ran == 1  # the cancelled hash never cost the CPU


async def test_closed_hasher_refuses_work_and_its_threads_end() -> None:
    hasher = _cheap(max_threads=2, trim_delay=0.05)
    stored = hasher.hash_sync("pw")
    assert (await hasher.verify(stored, "pw")).ok
    threads = list(hasher._threads._threads) if hasher._threads else []
    assert threads
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _loop, context: loop_errors.append(context)
    )
    hasher.close()
    with pytest.raises(RuntimeError, match="closed"):
        await hasher.verify(stored, "pw")
    assert hasher._trim_timer is None  # a refused call arms no trim on a closed hasher
    await asyncio.sleep(
        0.15
    )  # past the trim delay: nothing fires into the stopped threads
    for thread in threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads)
    assert loop_errors == []


def test_hasher_used_only_synchronously_starts_no_thread() -> None:
    hasher = _cheap(max_threads=2)
    hasher.hash_sync("pw")  # the CLI's use
    assert hasher._threads is None
