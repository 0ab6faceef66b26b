package io.meterstream.rating;

import io.meterstream.routing.WindowedUsage;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;

/** The keyed operator harness the {@link WindowRating} tests run it in. */
final class RatingHarnesses {
    private RatingHarnesses() {
    }

    /** {@code operator} keyed by {@link MeterKey}, restored from {@code restored} (null: a fresh start), opened. */
    static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            WindowRating operator, OperatorSubtaskState restored) throws Exception {
        return open(operator, restored, false);
    }

    /** The same, on RocksDB if {@code rocksDb} (else the heap backend). */
    static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            WindowRating operator, OperatorSubtaskState restored, boolean rocksDb) throws Exception {
        MeterKey key = new MeterKey();
        var harness = new KeyedOneInputStreamOperatorTestHarness<>(operator, key, key.getProducedType());
        if (rocksDb) {
            harness.setStateBackend(new org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend());
        }
        if (restored != null) {
            harness.initializeState(restored);
        }
        harness.open();
        return harness;
    }
}
