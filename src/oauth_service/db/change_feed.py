"""Changes that every server process must apply at once, sent through Postgres ``LISTEN/NOTIFY``.

A revocation, a subject cut-off (``oauth.cutoffs``), a signing-key change or a client change is written to the
database and, in the same transaction, published with ``pg_notify`` on one channel. Postgres delivers a
notification only if and when its transaction commits, so listeners never hear of a change that was rolled
back nor miss one that committed while they were connected (``change_listener`` catches up after a gap).
SQLite serves one process: there is no channel, and ``publish`` only records the change for this process.

The process that writes applies its own changes at once, without waiting for its listener: a session's
changes when the session commits (``apply_on_commit``), a store's own-connection writes right after them.
A payload stays far below ``pg_notify``'s 8000-byte limit: jtis travel in batches, and a family too large for
a few batches becomes one "reload the revocation list" event.
"""

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from oauth_service.oauth.cutoffs import Subject

CHANNEL = "oauth_service_changes"
_PENDING = "oauth_service.changes"
# jtis per notification (~60 bytes each as JSON), and batches before a reload is cheaper.
_JTI_BATCH = 100
_MAX_JTI_BATCHES = 5

log = logging.getLogger("oauth_service.change_feed")


@dataclass(frozen=True, slots=True)
class JtisRevoked:
    """Access-token ids put on the revocation list, with their expiry (epoch seconds)."""

    entries: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class SubjectCutOff:
    """Every token of ``subject`` issued at or before ``cutoff`` is refused until ``expires_at``."""

    subject: Subject
    cutoff: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class ClientChanged:
    """A client's secret or registration changed, or it was deleted: forget the cached copy."""

    client_id: str


@dataclass(frozen=True, slots=True)
class UserChanged:
    """A user's standard claims changed: forget the cached profile (UserInfo)."""

    user_id: str


@dataclass(frozen=True, slots=True)
class KeysChanged:
    """A signing key was added or changed state: reload the key set now."""


@dataclass(frozen=True, slots=True)
class RevocationsChanged:
    """Too many revocations to carry: reload the revocation list now."""


Change = (
    JtisRevoked
    | SubjectCutOff
    | ClientChanged
    | UserChanged
    | KeysChanged
    | RevocationsChanged
)


def jtis_revoked(entries: Sequence[tuple[str, datetime]]) -> list[Change]:
    """The changes announcing ``entries``: a few batches, or one reload event for a large family."""
    values = [(jti, expires_at.timestamp()) for jti, expires_at in entries]
    if not values:
        return []
    if len(values) > _JTI_BATCH * _MAX_JTI_BATCHES:
        return [RevocationsChanged()]
    return [
        JtisRevoked(tuple(values[i : i + _JTI_BATCH]))
        for i in range(0, len(values), _JTI_BATCH)
    ]


def encode(change: Change) -> str:
    """The notification payload of ``change`` (compact JSON)."""
    body: dict[str, Any]
    match change:
        case JtisRevoked(entries):
            body = {"t": "jtis", "e": [list(entry) for entry in entries]}
        case SubjectCutOff((kind, subject_id), cutoff, expires_at):
            body = {
                "t": "cutoff",
                "k": kind,
                "i": subject_id,
                "c": cutoff,
                "x": expires_at,
            }
        case ClientChanged(client_id):
            body = {"t": "client", "i": client_id}
        case UserChanged(user_id):
            body = {"t": "user", "i": user_id}
        case KeysChanged():
            body = {"t": "keys"}
        case RevocationsChanged():
            body = {"t": "revocations"}
    return json.dumps(body, separators=(",", ":"))


def decode(payload: str) -> Change | None:
    """The change a payload announces, or None when it is not one this version knows."""
    try:
        body = json.loads(payload)
        kind = body["t"]
        if kind == "jtis":
            return JtisRevoked(tuple((str(j), float(x)) for j, x in body["e"]))
        if kind == "cutoff" and body["k"] in ("user", "client"):
            subject: Subject = (body["k"], str(body["i"]))
            return SubjectCutOff(subject, float(body["c"]), float(body["x"]))
        if kind == "client":
            return ClientChanged(str(body["i"]))
        if kind == "user":
            return UserChanged(str(body["i"]))
        if kind == "keys":
            return KeysChanged()
        if kind == "revocations":
            return RevocationsChanged()
    except (ValueError, TypeError, KeyError):
        pass
    return None


async def publish(executor: AsyncSession | AsyncConnection, *changes: Change) -> None:
    """Announce ``changes`` within the executor's transaction (delivered at commit; nothing on SQLite).

    On a session they are also kept for ``apply_on_commit``, so this process applies them when it commits.
    """
    if isinstance(executor, AsyncConnection):
        dialect = executor.dialect.name
    else:
        executor.info.setdefault(_PENDING, []).extend(changes)
        dialect = executor.get_bind().dialect.name
    if dialect != "postgresql":
        return
    for change in changes:
        await executor.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": encode(change)},
        )


def apply_on_commit(
    maker: async_sessionmaker[AsyncSession], apply: Callable[[Change], None]
) -> None:
    """Apply the changes a session of ``maker`` published when, and only when, its transaction commits.

    The one place where every session write (admin API, CLI code run in-process, tests) reaches this
    process's in-memory state, whichever code path made it.
    """

    class ChangeSession(Session):
        """A session whose published changes this process applies at commit."""

    def committed(session: Session) -> None:
        for change in _take(session):
            apply(change)

    def ended(session: Session, transaction: SessionTransaction) -> None:
        # The root transaction ended: after ``committed`` if it committed, otherwise rolled back, its COMMIT
        # failed or the session closed. Whatever is left was not committed and must not reach a later commit.
        if transaction.parent is None:
            _take(session)

    event.listen(ChangeSession, "after_commit", committed)
    event.listen(ChangeSession, "after_transaction_end", ended)
    maker.configure(sync_session_class=ChangeSession)


def _take(session: Session) -> Iterable[Change]:
    pending: list[Change] = session.info.pop(_PENDING, [])
    return pending
