"""UUIDv7 row ids (RFC 9562 §5.7): version and variant bits, the embedded time, order, and randomness."""

import time
import uuid

from oauth_service.oauth.ids import time_ordered_uuid


def test_time_ordered_uuids_are_rfc_9562_version_7() -> None:
    values = [time_ordered_uuid() for _ in range(1_000)]
    assert {v.version for v in values} == {7}
    assert {v.variant for v in values} == {uuid.RFC_4122}


def test_time_ordered_uuid_carries_its_creation_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = time_ordered_uuid()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_time_ordered_uuid_at_a_given_time() -> None:
    # The benchmark seeds rows as if issued earlier: the given time is the one carried, bits intact.
    value = time_ordered_uuid(1_700_000_000_123)
    assert (value.int >> 80, value.version, value.variant) == (
        1_700_000_000_123,
        7,
        uuid.RFC_4122,
    )


def test_time_ordered_uuids_sort_in_creation_order() -> None:
    earlier = [time_ordered_uuid() for _ in range(50)]
    time.sleep(0.002)  # a later millisecond
    later = [time_ordered_uuid() for _ in range(50)]
    assert max(earlier) < min(later)


def test_time_ordered_uuids_with_the_same_time_differ_in_their_random_bits() -> None:
    values = [time_ordered_uuid(1_700_000_000_000) for _ in range(10_000)]
    assert len(set(values)) == len(values)
    random_b = {v.int & ((1 << 62) - 1) for v in values}
    assert len(random_b) == len(values)
    # The 12 bits after the version are random too, not a counter stuck at zero.
    assert len({(v.int >> 64) & 0xFFF for v in values}) > 1
