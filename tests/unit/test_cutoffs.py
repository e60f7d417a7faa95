"""Subject cut-offs (``oauth.cutoffs``), the jti's millisecond time, and the change feed's payloads."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from oauth_service.db.change_feed import (
    ClientChanged,
    JtisRevoked,
    KeysChanged,
    RevocationsChanged,
    SubjectCutOff,
    decode,
    encode,
    jtis_revoked,
)
from oauth_service.oauth.access_tokens import AccessToken
from oauth_service.oauth.cutoffs import issued_before, subjects_of
from oauth_service.oauth.ids import millis_of, time_ordered_uuid, uuid7_millis
from oauth_service.oauth.revocation_list import Cutoffs, RevocationList

MOMENT = datetime(2031, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
CUTOFF = MOMENT.timestamp()


def _token(
    *, jti: str, iat: int | None, sub: str = "u1", client: str = "app"
) -> AccessToken:
    return AccessToken(
        subject=sub,
        client_id=client,
        scopes=frozenset(),
        jti=jti,
        expires_at=iat or 0,
        issued_at=iat,
    )


def _v7(moment: datetime) -> str:
    return time_ordered_uuid(millis_of(moment)).hex


def test_uuid7_millis_reads_back_the_time_and_refuses_other_ids() -> None:
    assert uuid7_millis(_v7(MOMENT)) == millis_of(MOMENT)
    assert uuid7_millis(uuid.uuid4().hex) is None
    assert uuid7_millis("not-a-uuid") is None
    assert uuid7_millis("z" * 32) is None


@pytest.mark.parametrize(
    ("offset_ms", "refused"),
    [(-1000, True), (-1, True), (0, True), (1, False), (300, False)],
    ids=["second-before", "ms-before", "same-ms", "ms-after", "same-second-after"],
)
def test_cutoff_compares_v7_jti_to_the_millisecond(
    offset_ms: int, refused: bool
) -> None:
    minted = MOMENT + timedelta(milliseconds=offset_ms)
    token = _token(jti=_v7(minted), iat=int(minted.timestamp()))
    assert issued_before(token, CUTOFF) is refused


@pytest.mark.parametrize(
    ("iat_offset", "refused"),
    [(-1, True), (0, True), (1, False)],
    ids=["second-before", "same-second", "second-after"],
)
def test_cutoff_without_v7_jti_refuses_the_whole_cutoff_second(
    iat_offset: int, refused: bool
) -> None:
    token = _token(jti=uuid.uuid4().hex, iat=int(CUTOFF) + iat_offset)
    assert issued_before(token, CUTOFF) is refused


def test_cutoff_subjects_of_user_and_client_tokens() -> None:
    assert subjects_of(_token(jti="j", iat=1)) == (("user", "u1"), ("client", "app"))
    client_token = _token(jti="j", iat=1, sub="app")
    assert subjects_of(client_token) == (("client", "app"),)


class _Db:
    def __init__(self) -> None:
        self.cutoffs: Cutoffs = {}
        self.loads = 0
        self.during_load: Callable[[], None] = lambda: None

    async def load(self, _now: float) -> dict[str, float]:
        self.loads += 1
        self.during_load()
        return {}

    async def check(self, _jti: str) -> bool:
        return False

    async def load_cutoffs(self, now: float) -> Cutoffs:
        return {s: c for s, c in self.cutoffs.items() if c[1] > now}

    async def check_cutoffs(self, _subjects: object) -> Cutoffs:
        return dict(self.cutoffs)


def _list(db: _Db, ttl: float) -> RevocationList:
    return RevocationList(
        db.load,
        db.check,
        ttl=ttl,
        clock=lambda: CUTOFF + 1,
        load_cutoffs=db.load_cutoffs,
        check_cutoffs=db.check_cutoffs,
    )


async def test_revocation_list_local_cutoff_refuses_at_once() -> None:
    db = _Db()
    revocations = _list(db, ttl=60)
    before = _token(jti=_v7(MOMENT - timedelta(seconds=1)), iat=int(CUTOFF) - 1)
    after = _token(jti=_v7(MOMENT + timedelta(milliseconds=5)), iat=int(CUTOFF))
    assert not await revocations.refuses(before)
    revocations.add_cutoff(("user", "u1"), CUTOFF, CUTOFF + 600)
    assert await revocations.refuses(before)
    assert not await revocations.refuses(after)
    other_user = _token(jti=before.jti, iat=before.issued_at, sub="u2")
    assert not await revocations.refuses(other_user)


@pytest.mark.parametrize("ttl", [0, 60], ids=["uncached", "snapshot"])
async def test_revocation_list_reads_cutoffs_of_other_processes(ttl: float) -> None:
    db = _Db()
    db.cutoffs[("client", "app")] = (CUTOFF, CUTOFF + 600)
    revocations = _list(db, ttl=ttl)
    token = _token(jti=_v7(MOMENT), iat=int(CUTOFF))
    assert await revocations.refuses(token)


async def test_revocation_list_invalidate_during_reload_keeps_it_stale() -> None:
    db = _Db()
    revocations = _list(db, ttl=60)
    db.during_load = revocations.invalidate  # a "reload" notification arrives mid-load
    await revocations.refuses(_token(jti="j", iat=1))
    db.during_load = lambda: None
    await revocations.refuses(_token(jti="j", iat=1))
    assert db.loads == 2


@pytest.mark.parametrize(
    "change",
    [
        JtisRevoked((("a" * 32, 1.5), ("b" * 32, 2.0))),
        SubjectCutOff(("user", "u1"), 10.25, 20.0),
        SubjectCutOff(("client", "c"), 10.0, 20.0),
        ClientChanged("c"),
        KeysChanged(),
        RevocationsChanged(),
    ],
    ids=["jtis", "user-cutoff", "client-cutoff", "client", "keys", "revocations"],
)
def test_change_payload_round_trips(change: object) -> None:
    assert decode(encode(change)) == change  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload", ["", "{", "[]", '{"t":"nope"}', '{"t":"cutoff","k":"x","i":1}']
)
def test_change_unknown_payload_is_ignored(payload: str) -> None:
    assert decode(payload) is None


def test_change_revoked_jtis_batch_under_the_notify_limit() -> None:
    at = datetime.now(UTC)
    entries = [(time_ordered_uuid().hex, at) for _ in range(250)]
    changes = jtis_revoked(entries)
    assert [len(c.entries) for c in changes if isinstance(c, JtisRevoked)] == [
        100,
        100,
        50,
    ]
    assert all(len(encode(change).encode()) < 8000 for change in changes)
    many = [(time_ordered_uuid().hex, at) for _ in range(501)]
    assert jtis_revoked(many) == [RevocationsChanged()]
