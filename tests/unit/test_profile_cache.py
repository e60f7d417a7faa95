"""The UserInfo profile cache: kept ``ttl`` seconds, dropped on a change, never caching an absent user."""

from oauth_service.db.change_feed import UserChanged, decode, encode
from oauth_service.oauth.models import UserProfile
from oauth_service.oauth.profile_cache import ProfileCache

ANN = UserProfile(subject="u1", email="ann@example.com", name="Ann")


class Reads:
    """A profile reader that counts its calls and answers what ``known`` holds."""

    def __init__(self, known: dict[str, UserProfile]) -> None:
        self.known = known
        self.calls: list[str] = []

    async def __call__(self, user_id: str) -> UserProfile | None:
        self.calls.append(user_id)
        return self.known.get(user_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_profile_is_read_once_within_ttl_and_again_after_it() -> None:
    clock, reads = Clock(), Reads({"u1": ANN})
    cache = ProfileCache(5.0, clock=clock)
    assert await cache.profile("u1", reads) == ANN
    clock.now += 4.9
    assert await cache.profile("u1", reads) == ANN
    assert reads.calls == ["u1"]
    clock.now += 0.2
    assert await cache.profile("u1", reads) == ANN
    assert reads.calls == ["u1", "u1"]


async def test_invalidate_and_clear_make_the_next_call_read() -> None:
    renamed = UserProfile(subject="u1", email="ann@example.com", name="Ann B.")
    reads = Reads({"u1": ANN})
    cache = ProfileCache(60.0, clock=Clock())
    await cache.profile("u1", reads)
    reads.known["u1"] = renamed
    cache.invalidate("u1")
    assert await cache.profile("u1", reads) == renamed
    cache.clear()
    assert await cache.profile("u1", reads) == renamed
    assert reads.calls == ["u1", "u1", "u1"]


async def test_an_absent_or_inactive_user_is_not_remembered() -> None:
    reads = Reads({})
    cache = ProfileCache(60.0, clock=Clock())
    assert await cache.profile("gone", reads) is None
    assert await cache.profile("gone", reads) is None
    assert reads.calls == ["gone", "gone"]


async def test_ttl_zero_reads_every_time() -> None:
    reads = Reads({"u1": ANN})
    cache = ProfileCache(0.0, clock=Clock())
    await cache.profile("u1", reads)
    await cache.profile("u1", reads)
    assert reads.calls == ["u1", "u1"]


def test_a_claim_change_travels_on_the_change_feed() -> None:
    assert encode(UserChanged("u1")) == '{"t":"user","i":"u1"}'
    assert decode(encode(UserChanged("u1"))) == UserChanged("u1")
