"""`io.meterstream.rating.SeriesStore`, the window operator's memory of billed series, called directly in the JVM
(py4j): a series is forgotten exactly at its TTL horizon (Flink's rule: processing time from the last write), a
checkpoint drops expired series and writes the live ones under their own key groups, and a restore of a key group's
block gives the same series back. The savepoint integration tests restore it inside the job, across rescaling."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.job

TTL = 1_000
MAX_PARALLELISM = 128
BIG = 2**40  # py4j sends ints beyond 32 bits as java.lang.Long, the key's type


@pytest.fixture(scope="module")
def jvm(udf_jvm):
    return udf_jvm


def key(jvm, n: int):
    return jvm.org.apache.flink.api.java.tuple.Tuple2.of(BIG + n, -(BIG + n))


def series(jvm, customer: str, window_starts=()):
    s = jvm.io.meterstream.rating.Series("acme-ai", customer, "input_tokens", '{"model":"nova"}', "sum")
    for start in window_starts:
        s.openWindow(start)
    return s


def test_a_series_is_forgotten_exactly_at_the_horizon_of_its_last_write(jvm):
    store = jvm.io.meterstream.rating.SeriesStore(TTL)
    s = series(jvm, "c-1")
    store.written(key(jvm, 1), s, 10_000)
    store.written(key(jvm, 1), s, 10_500)  # a later write moves the horizon
    assert store.get(key(jvm, 1), 10_500 + TTL - 1).toString() == s.toString()
    assert store.get(key(jvm, 1), 10_500 + TTL) is None
    assert store.size() == 0  # forgotten, not only hidden


def test_a_checkpoint_writes_live_series_by_key_group_and_a_restore_reads_them_back(jvm):
    flink = jvm.org.apache.flink
    store = jvm.io.meterstream.rating.SeriesStore(TTL)
    live = {n: series(jvm, f"c-{n}", [60_000 * n, 60_000 * (n + 1)]) for n in range(40)}
    for n, s in live.items():
        store.written(key(jvm, n), s, 5_000)
    store.written(key(jvm, 99), series(jvm, "c-old"), 1_000)  # expired by the checkpoint at 5_000 + TTL - 1
    checkpoint_at = 5_000 + TTL - 1
    everything = flink.runtime.state.KeyGroupRange.of(0, MAX_PARALLELISM - 1)
    groups = store.byKeyGroup(everything, MAX_PARALLELISM, checkpoint_at)
    assert store.size() == len(live)

    restored = jvm.io.meterstream.rating.SeriesStore(TTL)
    written = 0
    for key_group in range(MAX_PARALLELISM):
        entries = groups.get(key_group)
        for entry in entries:
            assert flink.runtime.state.KeyGroupRangeAssignment.assignToKeyGroup(
                entry.getKey(), MAX_PARALLELISM) == key_group
        out = flink.core.memory.DataOutputSerializer(64)
        store.writeKeyGroup(entries, out)
        restored.readKeyGroup(flink.core.memory.DataInputDeserializer(out.getCopyOfBuffer()), key_group)
        written += entries.size()
    assert written == len(live) == restored.size()
    for n, s in live.items():
        assert restored.get(key(jvm, n), checkpoint_at).toString() == s.toString()
    assert restored.get(key(jvm, 0), 5_000 + TTL) is None  # the restored last write still sets the horizon


def test_a_block_of_another_format_is_refused(jvm):
    flink = jvm.org.apache.flink
    out = flink.core.memory.DataOutputSerializer(16)
    out.writeInt(99)
    out.writeInt(0)
    with pytest.raises(Exception, match="format 99"):
        jvm.io.meterstream.rating.SeriesStore(TTL).readKeyGroup(
            flink.core.memory.DataInputDeserializer(out.getCopyOfBuffer()), 7)
