package io.meterstream.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.harness.RawKeyedState;
import io.meterstream.rules.Rules;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.checkpoint.SavepointType;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;
import org.junit.jupiter.api.Test;

/**
 * {@link UsageRouting} with corrections, in Flink's keyed two-input operator harness: every first-seen record is
 * observed by the correction ledger, accepted corrections (second input, keyed by {@link CorrectionKey}) are decided
 * at the task's processing time, rejections go to their side output with the record's coordinates, both are counted;
 * the ledger survives a snapshot and restore (raw keyed state, format 5), also into two subtasks, also with every id
 * sealed at once (its entries in the blocks' companions; on the heap backend and on RocksDB, and from either onto the
 * other through a canonical savepoint); state without a ledger
 * restores with an empty one; after the horizons nothing is held; the corrections input holds
 * no watermark back; an applied correction's contributions go on to the window operator as correction records.
 */
class UsageRoutingCorrectionsTest {
    private static final long WINDOW_MS = 60_000;
    private static final long HORIZON_MS = 1_000;
    private static final long TTL_MS = 5_000;
    private static final int MAX_PARALLELISM = 128;
    private static final long T0 = 1_795_000_000_000L;
    private static final String CATALOG = GoldenVectors.load("corrections.json").get("java_catalog_json").textValue();
    private static final OutputTag<Row> DEAD = new OutputTag<>("dead-lettered", Types.GENERIC(Row.class));
    private static final OutputTag<Row> ACCOUNTING = new OutputTag<>("accounting", Types.GENERIC(Row.class));
    private static final OutputTag<Row> REJECTS = UsageRouting.correctionRejectTag();

    private static final Map<Object, UsageRouting> OPERATORS = new java.util.IdentityHashMap<>();

    private long offset;
    /** Each test's operators seal at this many ids ({@link UsageRouting#sealAtIds}), on RocksDB if so. */
    private int sealAtIds = UsageRouting.SEAL_AT_IDS;
    private boolean rocksDb;
    /** The backend the restores run on, when not the one the snapshot was taken on (null: the same). */
    private Boolean restoreOnRocksDb;

    @Test
    void correctionsAreDecidedAgainstTheEventsTheOperatorSaw() throws Exception {
        decidedAgainstTheEventsSeen();
    }

    @Test
    void withEveryIdSealedTheLedgerEntriesAreSealedWithItAndDecideAlike() throws Exception {
        sealAtIds = 1;
        decidedAgainstTheEventsSeen();
    }

    @Test
    void onRocksDbWithEveryIdSealedTheLedgerEntriesAreManagedStateAndDecideAlike() throws Exception {
        sealAtIds = 1;
        rocksDb = true;
        decidedAgainstTheEventsSeen();
    }

    @Test
    void aSavepointOfSealedEntriesWithCompanionsRestoresFromTheHeapOntoRocksDb() throws Exception {
        sealAtIds = 1;
        restoreOnRocksDb = true;
        decidedAgainstTheEventsSeen();
    }

    @Test
    void aSavepointOfSealedEntriesWithCompanionsRestoresFromRocksDbOntoTheHeap() throws Exception {
        sealAtIds = 1;
        rocksDb = true;
        restoreOnRocksDb = false;
        decidedAgainstTheEventsSeen();
    }

    private void decidedAgainstTheEventsSeen() throws Exception {
        var harness = open(null, 1, 0);
        harness.setProcessingTime(T0);
        harness.processElement1(usage("acme-ai", "e1", "10"), T0);
        harness.processElement1(usage("acme-ai", "e2", "20"), T0);
        assertEquals(Map.of(UsageRouting.WINDOWED, 2L), flush(harness));
        if (sealAtIds == 1) {
            // sealed with their ids: the ledger's slots hold nothing, the blocks' companions hold both events
            assertEquals(2, OPERATORS.get(harness).sealedIds());
            assertEquals(0, OPERATORS.get(harness).ledgerSize());
            if (rocksDb) {
                try (var stored = OPERATORS.get(harness).getKeyedStateBackend()
                        .getKeysAndNamespaces(UsageRouting.SEALED_BLOCKS)) {
                    assertEquals(2, stored.filter(k -> SealedDedup.isCompanion((Long) k.f1)).count(),
                            "each block's companion in managed state");
                }
            }
        }

        harness.processElement2(correction("acme-ai", "e1", "k1", "cancel", null), T0);
        harness.processElement2(correction("acme-ai", "e1", "k2", "amend", "5"), T0);
        harness.processElement2(correction("acme-ai", "e9", "k3", "cancel", null), T0);
        harness.processElement2(correction("zeta-test", "e2", "k4", "cancel", null), T0);
        assertEquals(Map.of(UsageRouting.CORRECTION_APPLIED, 1L, UsageRouting.CORRECTION_REJECTED + "/"
                + Rules.CORRECTION_ALREADY_CANCELLED, 1L, UsageRouting.CORRECTION_REJECTED + "/"
                + Rules.CORRECTION_UNKNOWN_EVENT, 2L), flush(harness));
        List<Row> rejects = rejects(harness);
        assertEquals(List.of("k2", "k3", "k4"), List.of(rejects.get(0).getField(7), rejects.get(1).getField(7),
                rejects.get(2).getField(7)));
        Row first = rejects.get(0);
        assertEquals("correction k2", new String((byte[]) first.getField(0), StandardCharsets.UTF_8));
        assertEquals("usage-corrections", first.getField(1));
        assertEquals(Rules.CORRECTION_ALREADY_CANCELLED, first.getField(4));
        assertNull(first.getField(6));
        assertEquals(List.of("acme-ai", "e1"), List.of(first.getField(8), first.getField(9)));
        // the applied cancel goes on to the window operator: a remove of e1's contribution, in e1's series
        List<WindowedUsage> out = harness.extractOutputValues();
        assertEquals(3, out.size());
        WindowedUsage usage = out.get(0);
        WindowedUsage remove = out.get(2);
        assertEquals(WindowedUsage.NOT_A_CORRECTION, usage.correction);
        assertEquals(WindowedUsage.REMOVE, remove.correction);
        assertEquals(List.of(usage.seriesHi, usage.seriesLo, usage.eventTimeMs, usage.aggregation),
                List.of(remove.seriesHi, remove.seriesLo, remove.eventTimeMs, remove.aggregation));
        assertEquals(0, new java.math.BigDecimal("10").compareTo(remove.value));
        assertEquals(usage.floorMs, remove.floorMs);

        // Across backends (the blocks and companions raw state on the heap, managed state on RocksDB): a savepoint in
        // the canonical format, what a user takes to switch backends.
        boolean crossing = restoreOnRocksDb != null && restoreOnRocksDb != rocksDb;
        OperatorSubtaskState snapshot = crossing ? harness.snapshotWithLocalState(1L, T0 + 1,
                SavepointType.savepoint(SavepointFormatType.CANONICAL)).getJobManagerOwnedState()
                : harness.snapshot(1L, T0 + 1);
        harness.close();
        if (crossing) {
            rocksDb = restoreOnRocksDb;
        }
        List<KeyedTwoInputStreamOperatorTestHarness<Integer, RowData, Row, WindowedUsage>> two = new ArrayList<>();
        for (int subtask = 0; subtask < 2; subtask++) {
            two.add(open(AbstractStreamOperatorTestHarness.repartitionOperatorState(
                    snapshot, MAX_PARALLELISM, 1, 2, subtask), 2, subtask));
        }
        if (crossing) {  // the blocks and their companions moved: into managed state on RocksDB, out of it on the heap
            long managed = 0;
            for (var subtask : two) {
                try (var stored = OPERATORS.get(subtask).getKeyedStateBackend()
                        .getKeysAndNamespaces(UsageRouting.SEALED_BLOCKS)) {
                    managed += stored.count();
                }
            }
            assertEquals(rocksDb ? 4 : 0, managed, "two blocks and their companions in managed state on RocksDB");
        }
        // after the restore, on whichever subtask owns each key: e1 is still cancelled, e2 can still be amended
        Map<String, Long> counts = new HashMap<>();
        for (var subtask : two) {
            subtask.setProcessingTime(T0 + 2);
        }
        owner(two, "acme-ai", "e1").processElement2(correction("acme-ai", "e1", "k5", "amend", "1"), T0);
        owner(two, "acme-ai", "e2").processElement2(correction("acme-ai", "e2", "k6", "amend", "1"), T0);
        for (var subtask : two) {
            flush(subtask).forEach((k, v) -> counts.merge(k, v, Long::sum));
        }
        assertEquals(Map.of(UsageRouting.CORRECTION_APPLIED, 1L, UsageRouting.CORRECTION_REJECTED + "/"
                + Rules.CORRECTION_ALREADY_CANCELLED, 1L), counts);
        // the amend of e2 (20 -> 1) in its own series and window travels as one amend record: the change
        List<WindowedUsage> amended = owner(two, "acme-ai", "e2").extractOutputValues();
        assertEquals(1, amended.size());
        assertEquals(WindowedUsage.AMEND, amended.get(0).correction);
        assertEquals(0, new java.math.BigDecimal("-19").compareTo(amended.get(0).value));

        // past the correction horizon, then past the dedup horizon
        var e2Owner = owner(two, "acme-ai", "e2");
        e2Owner.setProcessingTime(T0 + HORIZON_MS);
        e2Owner.processElement2(correction("acme-ai", "e2", "k7", "cancel", null), T0);
        e2Owner.setProcessingTime(T0 + TTL_MS);
        e2Owner.processElement2(correction("acme-ai", "e2", "k8", "cancel", null), T0);
        assertEquals(Map.of(UsageRouting.CORRECTION_REJECTED + "/" + Rules.CORRECTION_OUTSIDE_HORIZON, 1L,
                UsageRouting.CORRECTION_REJECTED + "/" + Rules.CORRECTION_UNKNOWN_EVENT, 1L), flush(e2Owner));
        for (var subtask : two) {
            subtask.snapshot(2L, T0 + TTL_MS);
            assertEquals(0, OPERATORS.get(subtask).ledgerSize(), "nothing held after both horizons");
        }
    }

    @Test
    void stateWithoutALedgerRestoresWithAnEmptyOne() throws Exception {
        UsageRouting plain = new UsageRouting(UsageRoutingHarnessTest.INPUT, WINDOW_MS, TTL_MS, DEAD, ACCOUNTING);
        var before = new KeyedOneInputStreamOperatorTestHarness<>(plain,
                new UsageDedupKey(UsageRoutingHarnessTest.INPUT), Types.INT, MAX_PARALLELISM, 1, 0);
        before.open();
        before.setProcessingTime(T0);
        before.processElement(usage("acme-ai", "e1", "10"), T0);
        OperatorSubtaskState formatTwo = before.snapshot(1L, T0);
        RawKeyedState.forEachKeyGroup(formatTwo, (keyGroup, in) -> {
            assertEquals(UsageRouting.DEDUP_FORMAT_SEALED_LEDGER, in.readInt());
            while (in.readInt() != -1) {
                in.skipBytes(in.readInt() * DedupTable.SLOT_BYTES);
            }
            assertEquals(0, in.readInt(), "no sealed block");
            assertEquals(false, in.readBoolean(), "no ledger");
        });
        before.close();

        var harness = open(formatTwo, 1, 0);
        harness.setProcessingTime(T0 + 1);
        harness.processElement1(usage("acme-ai", "e1", "10"), T0);  // still a duplicate: the dedup tables restored
        harness.processElement2(correction("acme-ai", "e1", "k1", "cancel", null), T0);  // but no ledger entry
        assertEquals(Map.of(UsageRouting.DUPLICATE_SAME_PAYLOAD, 1L, UsageRouting.CORRECTION_REJECTED + "/"
                + Rules.CORRECTION_UNKNOWN_EVENT, 1L), flush(harness));
        RawKeyedState.forEachKeyGroup(harness.snapshot(2L, T0 + 1), (keyGroup, in) -> assertEquals(
                UsageRouting.DEDUP_FORMAT_SEALED_LEDGER, in.readInt()));
    }

    @Test
    void inABoundedRunCorrectionsWaitForTheEndOfTheUsageThroughARestore() throws Exception {
        // the corrections topic is read before the usage it corrects (a replay reads both at once)
        var harness = open(null, 1, 0, true);
        harness.setProcessingTime(T0);
        harness.processElement2(correction("acme-ai", "e1", "k1", "cancel", null), T0);
        harness.processElement2(correction("acme-ai", "e1", "k2", "amend", "5"), T0);
        assertEquals(Map.of(), flush(harness), "held: not decided, not counted yet");
        OperatorSubtaskState snapshot = harness.snapshot(1L, T0);
        harness.close();

        var restored = open(snapshot, 1, 0, true);
        restored.setProcessingTime(T0);
        restored.processElement1(usage("acme-ai", "e1", "10"), T0);
        restored.processWatermark1(new Watermark(T0 + 5 * WINDOW_MS));
        assertEquals(1, restored.extractOutputValues().size(), "a finite watermark releases nothing: only usage");
        restored.processWatermark1(new Watermark(Long.MAX_VALUE));
        assertEquals(List.of(new Watermark(T0 + 5 * WINDOW_MS)), watermarks(restored),
                "the maximum waits for the end of the corrections input");
        // decided in arrival order once the usage ended: the cancel applies, the amend finds e1 cancelled
        assertEquals(Map.of(UsageRouting.WINDOWED, 1L, UsageRouting.CORRECTION_APPLIED, 1L,
                UsageRouting.CORRECTION_REJECTED + "/" + Rules.CORRECTION_ALREADY_CANCELLED, 1L), flush(restored));
        List<WindowedUsage> out = restored.extractOutputValues();
        assertEquals(WindowedUsage.REMOVE, out.get(1).correction);
        assertEquals(Long.MAX_VALUE, out.get(1).floorMs, "after the end of the usage: the window operator's end");
        restored.processElement2(correction("acme-ai", "e1", "k3", "cancel", null), T0);
        assertEquals(Map.of(UsageRouting.CORRECTION_REJECTED + "/" + Rules.CORRECTION_ALREADY_CANCELLED, 1L),
                flush(restored), "after the end of the usage: decided at once");
        OPERATORS.get(restored).endInput(2);
        assertEquals(List.of(new Watermark(T0 + 5 * WINDOW_MS), new Watermark(Long.MAX_VALUE)), watermarks(restored));
    }

    @Test
    void aCorrectionOfADeadLetteredEventSaysSoAndWhy() throws Exception {
        var harness = open(null, 1, 0);
        harness.setProcessingTime(T0);
        // e1 was too old (its ids valid: the parse keyed it by them); x1 malformed (no ids: nothing to remember)
        GenericRowData tooOld = usage("acme-ai", "e1", "10");
        tooOld.setField(5, StringData.fromString(Rules.reasonCode(Rules.REASON_TOO_OLD)));
        tooOld.setField(6, StringData.fromString("timestamp is older than 35 days before now"));
        harness.processElement1(tooOld, T0);
        harness.processElement2(correction("acme-ai", "e1", "k1", "cancel", null), T0);
        harness.processElement2(correction("acme-ai", "x1", "k2", "cancel", null), T0);
        assertEquals(Map.of(UsageRouting.CORRECTION_REJECTED + "/" + Rules.CORRECTION_EVENT_DEAD_LETTERED, 1L,
                UsageRouting.CORRECTION_REJECTED + "/" + Rules.CORRECTION_UNKNOWN_EVENT, 1L,
                Rules.OUTCOME_DEAD_LETTERED, 1L), flush(harness));
        Row rejected = rejects(harness).get(0);
        assertEquals(List.of(Rules.CORRECTION_EVENT_DEAD_LETTERED, Rules.reasonCode(Rules.REASON_TOO_OLD)),
                List.of(rejected.getField(4), rejected.getField(6)));
        assertEquals(0, harness.extractOutputValues().size(), "nothing billed, nothing corrected");
    }

    @Test
    void aCorrectionAfterTheEndOfTheUsageIsMarkedSoForTheWindowOperator() throws Exception {
        // a bounded run's usage ended (the maximum watermark): the window operator decides it at its own end
        var harness = open(null, 1, 0);
        harness.setProcessingTime(T0);
        harness.processElement1(usage("acme-ai", "e1", "10"), T0);
        harness.processWatermark1(new Watermark(T0 + 5 * WINDOW_MS));
        harness.processWatermark1(new Watermark(Long.MAX_VALUE));
        harness.processElement2(correction("acme-ai", "e1", "k1", "cancel", null), T0);
        List<WindowedUsage> out = harness.extractOutputValues();
        assertEquals(WindowedUsage.REMOVE, out.get(1).correction);
        assertEquals(Long.MAX_VALUE, out.get(1).floorMs);
    }

    @Test
    void theCorrectionsInputHoldsNoWatermarkBack() throws Exception {
        var harness = open(null, 1, 0);
        harness.processWatermark2(new Watermark(T0 + 500));
        harness.processWatermark1(new Watermark(T0));
        assertEquals(List.of(new Watermark(T0)), watermarks(harness));
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    private KeyedTwoInputStreamOperatorTestHarness<Integer, RowData, Row, WindowedUsage> open(
            OperatorSubtaskState restored, int parallelism, int subtask) throws Exception {
        return open(restored, parallelism, subtask, false);
    }

    private KeyedTwoInputStreamOperatorTestHarness<Integer, RowData, Row, WindowedUsage> open(
            OperatorSubtaskState restored, int parallelism, int subtask, boolean bounded) throws Exception {
        UsageRouting operator = new UsageRouting(UsageRoutingHarnessTest.INPUT, WINDOW_MS, TTL_MS, DEAD, ACCOUNTING,
                CATALOG, HORIZON_MS, REJECTS, bounded);
        operator.sealAtIds = sealAtIds;
        var harness = new KeyedTwoInputStreamOperatorTestHarness<>(operator,
                new UsageDedupKey(UsageRoutingHarnessTest.INPUT), new CorrectionKey(), Types.INT, MAX_PARALLELISM,
                parallelism, subtask);
        if (rocksDb) {
            harness.setStateBackend(new org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend());
        }
        if (restored != null) {
            harness.initializeState(restored);
        }
        harness.open();
        OPERATORS.put(harness, operator);
        return harness;
    }

    private static KeyedTwoInputStreamOperatorTestHarness<Integer, RowData, Row, WindowedUsage> owner(
            List<KeyedTwoInputStreamOperatorTestHarness<Integer, RowData, Row, WindowedUsage>> subtasks, String tenant,
            String eventId) {
        Tuple2<Long, Long> key = UsageDedupKey.eventKey(StringData.fromString(tenant), StringData.fromString(eventId));
        int keyGroup = org.apache.flink.runtime.state.KeyGroupRangeAssignment.assignToKeyGroup(
                UsageDedupKey.bucket(key.f0), MAX_PARALLELISM);
        return subtasks.get(org.apache.flink.runtime.state.KeyGroupRangeAssignment.computeOperatorIndexForKeyGroup(
                MAX_PARALLELISM, subtasks.size(), keyGroup));
    }

    /** Counts since the last flush, by outcome, "outcome/detail" for corrections' rejections. */
    private static Map<String, Long> flush(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> harness)
            throws Exception {
        harness.prepareSnapshotPreBarrier(0L);
        Map<String, Long> counts = new HashMap<>();
        if (harness.getSideOutput(ACCOUNTING) != null) {
            for (StreamRecord<Row> count : harness.getSideOutput(ACCOUNTING)) {
                String outcome = (String) count.getValue().getField(0);
                String key = UsageRouting.CORRECTION_REJECTED.equals(outcome)
                        ? outcome + "/" + count.getValue().getField(1) : outcome;
                counts.merge(key, (Long) count.getValue().getField(2), Long::sum);
            }
            harness.getSideOutput(ACCOUNTING).clear();
        }
        return counts;
    }

    private static List<Row> rejects(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> harness) {
        List<Row> rows = new ArrayList<>();
        for (StreamRecord<Row> record : harness.getSideOutput(REJECTS)) {
            rows.add(record.getValue());
        }
        return rows;
    }

    private static List<Watermark> watermarks(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> harness) {
        List<Watermark> marks = new ArrayList<>();
        for (Object item : harness.getOutput()) {
            if (item instanceof Watermark) {
                marks.add((Watermark) item);
            }
        }
        return marks;
    }

    /** A valid parsed record of acme-ai's sum meter input_tokens (group {"model":"a"}). */
    private GenericRowData usage(String tenant, String eventId, String value) {
        Tuple2<Long, Long> key = UsageDedupKey.eventKey(StringData.fromString(tenant), StringData.fromString(eventId));
        GenericRowData row = new GenericRowData(UsageRoutingHarnessTest.INPUT.getFieldCount());
        row.setField(0, eventId.getBytes(StandardCharsets.UTF_8));
        row.setField(1, StringData.fromString("usage-events"));
        row.setField(2, 0);
        row.setField(3, offset++);
        row.setField(7, StringData.fromString(eventId));
        row.setField(8, StringData.fromString(tenant));
        row.setField(9, StringData.fromString("c1"));
        row.setField(10, StringData.fromString("input_tokens"));
        row.setField(11, T0);
        row.setField(12, DecimalData.fromBigDecimal(new BigDecimal(value), 38, 18));
        row.setField(13, StringData.fromString(Rules.AGGREGATION_SUM));
        row.setField(14, StringData.fromString("{\"model\":\"a\"}"));
        row.setField(16, StringData.fromString("a".repeat(64)));
        row.setField(17, key.f0);
        row.setField(18, key.f1);
        return row;
    }

    private Row correction(String tenant, String eventId, String correctionId, String action, String value) {
        byte[] payload = ("correction " + correctionId).getBytes(StandardCharsets.UTF_8);
        return Row.of(tenant, eventId, correctionId, action, value, null, payload, "usage-corrections", 0, offset++);
    }
}
