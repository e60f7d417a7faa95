"""argon2id passwords: hashed and verified off the event loop, rehashed when parameters change, dummy verify."""

import threading
from typing import Any

import pytest
from argon2 import PasswordHasher as Argon2Hasher

from oauth_service.crypto.passwords import PasswordHasher


class SpyHasher:
    """Delegates to the real argon2 hasher, recording which stored hash and thread each call used."""

    def __init__(self, real: Argon2Hasher) -> None:
        self.real = real
        self.verified: list[str] = []
        self.threads: list[int] = []

    def hash(self, password: str) -> str:
        self.threads.append(threading.get_ident())
        return self.real.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        self.threads.append(threading.get_ident())
        self.verified.append(stored)
        return self.real.verify(stored, password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _spy(hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch) -> SpyHasher:
    spy = SpyHasher(hasher._hasher)
    monkeypatch.setattr(hasher, "_hasher", spy)
    return spy


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


async def test_hash_is_argon2id_with_configured_parameters(
    hasher: PasswordHasher,
) -> None:
    stored = await hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert stored != await hasher.hash("correct horse battery")  # salted


async def test_verify_right_password_ok_without_rehash(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")
    check = await hasher.verify(stored, "correct horse battery")
    assert (check.ok, check.new_hash) == (True, None)


async def test_verify_wrong_password_fails(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")
    check = await hasher.verify(stored, "Correct horse battery")
    assert (check.ok, check.new_hash) == (False, None)


async def test_verify_unknown_user_runs_dummy_hash_and_fails(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _spy(hasher, monkeypatch)
    check = await hasher.verify(None, "dummy password for timing equalization")
    assert (check.ok, check.new_hash) == (False, None)
    assert (
        len(spy.verified) == 1
    )  # the argon2 work was done, so timing matches a real user
    assert spy.verified[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_verify_after_parameter_change_returns_upgraded_hash(
    hasher: PasswordHasher,
) -> None:
    stored = await hasher.hash("correct horse battery")
    stronger = PasswordHasher(time_cost=3, memory_cost=19_456, parallelism=1)
    check = await stronger.verify(stored, "correct horse battery")
    assert check.ok
    assert check.new_hash is not None
    assert check.new_hash.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    assert (
        await stronger.verify(check.new_hash, "correct horse battery")
    ).new_hash is None


async def test_verify_wrong_password_with_old_parameters_gives_no_rehash(
    hasher: PasswordHasher,
) -> None:
    stored = await hasher.hash("correct horse battery")
    stronger = PasswordHasher(time_cost=3, memory_cost=19_456, parallelism=1)
    check = await stronger.verify(stored, "wrong")
    assert (check.ok, check.new_hash) == (False, None)


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$2b$12$abcdefghijklmnopqrstuv"])
async def test_verify_malformed_stored_hash_fails_closed(
    hasher: PasswordHasher, stored: str
) -> None:
    assert not (await hasher.verify(stored, "anything")).ok


async def test_hash_and_verify_run_off_the_event_loop(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    spy = _spy(hasher, monkeypatch)
    stored = await hasher.hash("correct horse battery")
    await hasher.verify(stored, "correct horse battery")
    assert len(spy.threads) == 2
    assert loop_thread not in spy.threads
