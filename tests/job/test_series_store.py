"""`io.meterstream.rating.SeriesStore`, the window operator's memory of billed series, called directly in the JVM
(py4j): a series is forgotten exactly at its TTL horizon (Flink's rule: processing time from the last write), the
open-addressing table keeps every key reachable through growth and removals, a checkpoint drops expired series and
writes the live ones under Flink's key group of their key, and a restore of a key group's block gives the same series
back. The savepoint integration tests restore it inside the job, across rescaling."""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.job

TTL = 1_000
WINDOW = 60_000
MAX_PARALLELISM = 128
BIG = 2**40  # py4j sends ints beyond 32 bits as java.lang.Long, the key's type


@pytest.fixture
def jvm(udf_jvm):
    return udf_jvm


def key(n: int) -> tuple[int, int]:
    return BIG + n, -(BIG + 7 * n)


def series(jvm, customer: str, window_starts=()):
    s = jvm.io.meterstream.rating.Series("acme-ai", customer, "input_tokens", '{"model":"nova"}', "sum")
    for start in window_starts:
        s.openWindow(start, start + WINDOW - 1)
    return s


def test_a_series_is_forgotten_exactly_at_the_horizon_of_its_last_write(jvm):
    store = jvm.io.meterstream.rating.SeriesStore(TTL, WINDOW)
    s = series(jvm, "c-1")
    store.add(*key(1), s, 10_000)
    store.written(s, 10_500)  # a later write moves the horizon
    assert store.get(*key(1), 10_500 + TTL - 1).toString() == s.toString()
    assert store.get(*key(1), 10_500 + TTL) is None
    assert store.size() == 0  # forgotten, not only hidden


def test_every_key_stays_reachable_through_growth_and_removals(jvm):
    """Keys that share their first probe (same low long) make long probe runs; removals in the middle of a run
    must not cut later keys off."""
    store = jvm.io.meterstream.rating.SeriesStore(TTL, WINDOW)
    rng = random.Random(3)
    keys = [(BIG + n, BIG * (n % 5)) for n in range(3_000)]  # 5 low longs: 5 long runs
    written = {}
    for n, (hi, lo) in enumerate(keys):
        at = 1_000 if n % 3 == 0 else 5_000  # every third expires before the others
        s = series(jvm, f"c-{n}")
        store.add(hi, lo, s, at)
        written[(hi, lo)] = (s.toString(), at)
    rng.shuffle(keys)
    for hi, lo in keys[:300]:  # lookups after the horizon of the early ones remove them, in random order
        text, at = written[(hi, lo)]
        found = store.get(hi, lo, 1_000 + TTL)
        assert (found is None) == (at == 1_000)
        if found is not None:
            assert found.toString() == text
    for hi, lo in keys:
        text, at = written[(hi, lo)]
        found = store.get(hi, lo, 1_000 + TTL)
        assert (found is None) == (at == 1_000), (hi, lo)
        if found is not None:
            assert found.toString() == text
    assert store.size() == 2_000


def test_a_checkpoint_writes_live_series_by_key_group_and_a_restore_reads_them_back(jvm):
    flink = jvm.org.apache.flink
    store = jvm.io.meterstream.rating.SeriesStore(TTL, WINDOW)
    live = {n: series(jvm, f"c-{n}", [60_000 * n, 60_000 * (n + 1)]) for n in range(40)}
    for n, s in live.items():
        store.add(*key(n), s, 5_000)
    store.add(*key(99), series(jvm, "c-old"), 1_000)  # expired by the checkpoint at 5_000 + TTL - 1
    checkpoint_at = 5_000 + TTL - 1
    everything = flink.runtime.state.KeyGroupRange.of(0, MAX_PARALLELISM - 1)
    slots = store.slotsByKeyGroup(everything, MAX_PARALLELISM, checkpoint_at)
    assert store.size() == len(live)

    restored = jvm.io.meterstream.rating.SeriesStore(TTL, WINDOW)
    found_in_group = {}
    for key_group in range(MAX_PARALLELISM):
        out = flink.core.memory.DataOutputSerializer(64)
        store.writeKeyGroup(slots[key_group], out)
        block = out.getCopyOfBuffer()
        one_group = jvm.io.meterstream.rating.SeriesStore(TTL, WINDOW)
        one_group.readKeyGroup(flink.core.memory.DataInputDeserializer(block), key_group)
        restored.readKeyGroup(flink.core.memory.DataInputDeserializer(block), key_group)
        for n in live:
            if one_group.get(*key(n), checkpoint_at) is not None:
                found_in_group[n] = key_group
    assert restored.size() == len(live)
    for n, s in live.items():
        assert restored.get(*key(n), checkpoint_at).toString() == s.toString()
        flink_key = flink.api.java.tuple.Tuple2.of(*key(n))
        assert found_in_group[n] == flink.runtime.state.KeyGroupRangeAssignment.assignToKeyGroup(
            flink_key, MAX_PARALLELISM)
    assert restored.get(*key(0), 5_000 + TTL) is None  # the restored last write still sets the horizon


def test_a_block_of_another_format_is_refused(jvm):
    flink = jvm.org.apache.flink
    out = flink.core.memory.DataOutputSerializer(16)
    out.writeInt(99)
    out.writeInt(0)
    with pytest.raises(Exception, match="format 99"):
        jvm.io.meterstream.rating.SeriesStore(TTL, WINDOW).readKeyGroup(
            flink.core.memory.DataInputDeserializer(out.getCopyOfBuffer()), 7)
