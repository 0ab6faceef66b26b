"""`io.meterstream.routing.DedupTable`, the routing operator's dedup memory per bucket of event ids, called
directly in the JVM (py4j): first copy recorded, later copies found with the first fingerprint, an id forgotten
exactly at the horizon (Flink's TTL rule), growth that keeps every id, and rebuilds that drop expired ids.
The billing job tests cover it inside the job (duplicate counts against the independent expected computation)."""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.job

TTL = 1_000


@pytest.fixture
def table_class(udf_jvm):
    return udf_jvm.io.meterstream.routing.DedupTable


class Bucket:
    """One table, kept in the JVM (its bytes never cross py4j)."""

    def __init__(self, table_class):
        self.table_class = table_class
        self.lookup = table_class.Lookup()

    def record(self, key: tuple[int, int], fingerprint: int, now: int) -> tuple[bool, int | None]:
        """(seen before, the first fingerprint if seen) for one copy of the event key (hi, lo)."""
        from py4j.java_gateway import get_field

        self.table_class.recordFirst(self.lookup, key[0], key[1], fingerprint, now, TTL)
        seen = get_field(self.lookup, "seenBefore")
        return seen, (get_field(self.lookup, "firstFingerprint") if seen else None)


def test_first_copy_wins_and_later_copies_see_its_fingerprint(table_class):
    bucket = Bucket(table_class)
    assert bucket.record((1, 2), 111, 10_000) == (False, None)
    assert bucket.record((1, 2), 111, 10_001) == (True, 111)
    assert bucket.record((1, 2), 222, 10_002) == (True, 111)  # a conflicting copy: the first stays
    # Same low half, other high half: another id (it probes on).
    assert bucket.record((7, 2), 333, 10_003) == (False, None)
    assert bucket.record((7, 2), 333, 10_004) == (True, 333)
    assert bucket.lookup.occupied() == 2


def test_an_id_is_forgotten_exactly_at_the_horizon(table_class):
    bucket = Bucket(table_class)
    bucket.record((5, 6), 1, 50_000)
    assert bucket.record((5, 6), 2, 50_000 + TTL - 1) == (True, 1)
    assert bucket.record((5, 6), 2, 50_000 + TTL) == (False, None)  # expired: recorded again, in its old slot
    assert bucket.record((5, 6), 3, 50_000 + TTL + 1) == (True, 2)
    assert bucket.lookup.occupied() == 1


def test_growth_keeps_every_id_and_rebuilds_drop_expired_ones(table_class):
    rng = random.Random(7)
    keys = [(rng.getrandbits(64) - 2**63, rng.getrandbits(64) - 2**63) for _ in range(1_500)]
    bucket = Bucket(table_class)
    for index, key in enumerate(keys):
        assert bucket.record(key, index, 100_000) == (False, None)
    assert bucket.lookup.occupied() == len(keys)
    assert bucket.lookup.occupied() * 4 <= bucket.lookup.slots() * 3
    for index in range(0, len(keys), 37):
        assert bucket.record(keys[index], -1, 100_500) == (True, index)
    # A horizon later every one of them has expired: growth rebuilds the table from the live ids only.
    slots_before = bucket.lookup.slots()
    fresh = [(hi ^ 1, lo) for hi, lo in keys]
    for key in fresh:
        assert bucket.record(key, 0, 100_000 + TTL) == (False, None)
    assert bucket.lookup.slots() <= 2 * slots_before
    assert bucket.lookup.occupied() < 2 * len(keys)
    assert all(bucket.record(key, 1, 100_000 + TTL)[0] for key in fresh[::41])
    assert bucket.record(keys[0], 1, 100_000 + TTL) == (False, None)
