"""argon2 work is bounded per process (at most ``max_threads`` hashes at once) and trims memory when idle."""

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

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


def _recorder(calls: list[int]) -> Callable[[int], int]:
    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    return trim


def _cheap(max_threads: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, max_threads=max_threads
    )


async def test_password_verify_runs_at_most_max_threads_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = _cheap(max_threads=2)
    stored = hasher.hash_sync("pw")
    tracker = PeakTracker(hasher._hasher)
    monkeypatch.setattr(hasher, "_hasher", tracker)
    calls = [asyncio.create_task(hasher.verify(stored, "pw")) for _ in range(8)]
    await asyncio.sleep(0.05)  # let the limiter admit what it will
    tracker.release.set()
    results = await asyncio.gather(*calls)
    assert all(check.ok for check in results)
    assert tracker.peak == 2


async def test_password_verify_alone_trims_memory_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []
    monkeypatch.setattr(passwords, "_MALLOC_TRIM", _recorder(trims))
    hasher = _cheap(max_threads=2)
    stored = hasher.hash_sync("pw")
    await hasher.verify(stored, "pw")
    await hasher.verify(stored, "wrong")
    assert trims == [0, 0]


async def test_password_verify_burst_trims_only_when_drained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []
    monkeypatch.setattr(passwords, "_MALLOC_TRIM", _recorder(trims))
    hasher = _cheap(max_threads=1)
    stored = hasher.hash_sync("pw")
    await asyncio.gather(*(hasher.verify(stored, "pw") for _ in range(6)))
    assert 1 <= len(trims) < 6


async def test_password_hashing_thread_runs_at_lower_priority() -> None:
    hasher = _cheap(max_threads=1)
    stored = hasher.hash_sync("pw")
    seen: list[int] = []

    def niceness(stored_hash: str | None, password: str) -> bool:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return hasher._verify_sync(stored_hash, password).ok

    assert await hasher._run(niceness, stored, "pw")
    assert seen == [os.getpriority(os.PRIO_PROCESS, 0) + passwords._THREAD_NICENESS]
