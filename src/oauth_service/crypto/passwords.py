"""argon2id password hashing, always off the event loop.

Hashing and verifying cost tens of milliseconds of CPU by design, so both run in a worker thread. Unknown users
are verified against a dummy hash with the same parameters, so timing does not reveal which emails exist.
"""

from dataclasses import dataclass

import anyio.to_thread
from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """Outcome of a verification; ``new_hash`` is set when the stored hash should be upgraded."""

    ok: bool
    new_hash: str | None = None


class PasswordHasher:
    """argon2id with explicit parameters (OWASP minimum: m >= 19 MiB, t >= 2, p = 1)."""

    def __init__(
        self, *, time_cost: int = 2, memory_cost: int = 19_456, parallelism: int = 1
    ) -> None:
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
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

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
        return await anyio.to_thread.run_sync(self._verify_sync, stored_hash, password)
