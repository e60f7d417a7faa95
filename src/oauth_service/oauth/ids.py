"""Row ids that sort by creation time: UUIDv7 (RFC 9562 §5.7).

A refresh token's row id and its family id are keys of B-tree indexes that every rotation reads or writes.
With random (v4) ids each lands on a random leaf page, so once the table outgrows Postgres' buffer cache
most of them read a page back first. A token presented for refresh was usually issued recently (by its
family's last rotation), so with ids that grow with time both the rotation's lookup of that row by id and
the new row's insert land on the newest pages of the primary key, which stay cached whatever the table's
size. The family index gains little: a rotation's entry lands where its family began, up to the refresh
token lifetime ago. The ids stay unguessable (74 random bits) and are never shown to a client; they carry
their creation time to the millisecond, as the rows' ``issued_at`` does anyway.
"""

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

_VERSION = 7 << 76
_VARIANT = 0b10 << 62
_RANDOM_A = ((1 << 12) - 1) << 64  # 12 random bits after the version
_RANDOM_B = (1 << 62) - 1  # 62 random bits after the variant


def time_ordered_uuid(millis: int | None = None) -> uuid.UUID:
    """A new UUIDv7: 48 bits of Unix time in milliseconds (now, or ``millis``), version, variant, 74 random bits."""
    if millis is None:
        millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, of which 74 are kept
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | _VERSION
        | (rand & _RANDOM_A)
        | _VARIANT
        | (rand & _RANDOM_B)
    )
    return uuid.UUID(int=value)


def millis_of(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MILLISECOND


def uuid7_millis(value: str) -> int | None:
    """The Unix time in milliseconds of a UUIDv7 written as 32 hex digits (a jti), or None for anything else."""
    if len(value) != 32:
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    if number >> 76 & 0xF != 7 or number >> 62 & 0b11 != 0b10:
        return None
    return number >> 80
