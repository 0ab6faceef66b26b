package io.meterstream.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.meterstream.harness.RawKeyedState;
import io.meterstream.rules.Rules;
import io.meterstream.validation.UsageEventDeserializer;
import io.meterstream.windows.TumblingWindows;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.core.memory.DataOutputViewStreamWrapper;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.checkpoint.StateObjectCollection;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyGroupRangeOffsets;
import org.apache.flink.runtime.state.KeyGroupsStateHandle;
import org.apache.flink.runtime.state.KeyedStateHandle;
import org.apache.flink.runtime.state.memory.ByteStreamStateHandle;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.IntType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarBinaryType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;
import org.junit.jupiter.api.Test;

/**
 * {@link UsageRouting} in Flink's keyed operator harness (flink-training's {@code LongRidesHarnessTest} style), on
 * internal rows of {@code usage_parsed}'s row type: dedup outcomes against {@code udfs.dedup}
 * ({@code golden/dedup.json}, each copy at its processing time); the watermark floor each first-seen record is stamped
 * with and which records carry what a late event needs; the accounting counts; snapshot and restore (the dedup tables
 * as raw keyed state, the floor as union list state), also into two subtasks and back into one; and the dedup
 * horizon: after it an id is new again, and the next snapshot writes only the ids still within it (after the last
 * one's horizon, byte for byte what an operator that saw nothing writes, and nothing is held in memory, also after
 * a restore); state written in the former format (whole tables) is still restored.
 */
class UsageRoutingHarnessTest {
    private static final long WINDOW_MS = 60_000;
    private static final int MAX_PARALLELISM = 128;
    private static final OutputTag<Row> DEAD = new OutputTag<>("dead-lettered", Types.GENERIC(Row.class));
    private static final OutputTag<Row> ACCOUNTING = new OutputTag<>("accounting", Types.GENERIC(Row.class));
    private static final String FIRST = DedupTableGoldenTest.FIRST;
    private static final String FP_A = "a".repeat(64);
    private static final String FP_B = "ab".repeat(32);
    private static final long T0 = 1_795_000_000_000L;

    /** The row type of {@code usage_parsed} ({@code jobs/billing_sql.py} {@code parsed_view}). */
    static final RowType INPUT = new RowType(List.of(
            new RowType.RowField("payload", new VarBinaryType(true, VarBinaryType.MAX_LENGTH)),
            new RowType.RowField("src_topic", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("src_partition", new IntType(false)),
            new RowType.RowField("src_offset", new BigIntType(false)),
            new RowType.RowField("src_timestamp", new BigIntType(true)),
            new RowType.RowField("reason", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("detail", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("event_id", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("tenant_id", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("customer_id", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("meter", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("event_time_ms", new BigIntType(true)),
            new RowType.RowField("value", new DecimalType(true, 38, 18)),
            new RowType.RowField("aggregation", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("group_json", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("unique_token", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("fingerprint", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("event_key_hi", new BigIntType(true)),
            new RowType.RowField("event_key_lo", new BigIntType(true))));

    private long offset;

    @Test
    void theInputTypeHasTheColumnsOfTheKafkaSourcesRows() {
        assertEquals(UsageEventDeserializer.rowType().getFieldNames(), INPUT.getFieldNames());
    }

    // ---- dedup: golden vectors ------------------------------------------------------------------------------

    @Test
    void everyCopyGetsItsSpecifiedOutcomeAtItsProcessingTime() throws Exception {
        for (JsonNode stream : DedupTableGoldenTest.VECTORS.get("streams")) {
            long ttl = stream.get("ttl_ms").longValue();
            var harness = open(ttl, null, 1, 0);
            long last = Long.MIN_VALUE;
            for (JsonNode record : stream.get("records")) {
                long now = record.get("processing_time_ms").longValue();
                harness.setProcessingTime(now);
                last = now;
                harness.processElement(valid(record.get("tenant_id").textValue(), record.get("event_id").textValue(),
                        record.get("fingerprint").textValue(), T0), T0);
                Map<String, Long> counts = flush(harness);
                List<WindowedUsage> out = harness.extractOutputValues();
                harness.getOutput().clear();
                String outcome = record.get("outcome").textValue();
                // A first copy goes on to the window operator (counted windowed: no watermark yet); a later one
                // leaves nothing but its count.
                assertEquals(outcome.equals(FIRST) ? 1 : 0, out.size(), record.toString());
                assertEquals(Map.of(outcome.equals(FIRST) ? UsageRouting.WINDOWED : outcome, 1L), counts,
                        record.toString());
            }
            harness.snapshot(1L, last);
            assertEquals(stream.get("live_at_end").intValue(), liveIds(harness, last));
            long horizon = stream.get("horizon_end_ms").longValue();
            harness.setProcessingTime(horizon);
            harness.snapshot(2L, horizon);
            assertEquals(0, liveIds(harness, horizon), "after the last horizon");
            harness.close();
        }
    }

    // ---- the watermark floor --------------------------------------------------------------------------------

    @Test
    void eachFirstSeenRecordCarriesTheHighestWatermarkForwardedBeforeItAndOnlyRecordsPastItAreMarked()
            throws Exception {
        var harness = open(1_000_000L, null, 1, 0);
        harness.setProcessingTime(T0);
        long s = TumblingWindows.start(T0 + 10 * WINDOW_MS, WINDOW_MS);
        long w = s + WINDOW_MS - 1;  // exactly the last millisecond of window [s, s + size)
        Map<Long, String> names = new HashMap<>();
        names.put(s + 5, "before-any");
        names.put(s + 7, "edge-past");  // its window's end - 1 == the watermark: past it
        names.put(s + WINDOW_MS + 3, "on-time");  // the next window: end - 1 == watermark + size
        names.put(s - 5 * WINDOW_MS + 11, "old");
        names.put(s + 13, "after-lower");
        harness.processElement(valid("acme-ai", "before-any", FP_A, s + 5), 0L);
        harness.processWatermark(w);
        harness.processElement(valid("acme-ai", "edge-past", FP_A, s + 7), 0L);
        harness.processElement(valid("acme-ai", "on-time", FP_A, s + WINDOW_MS + 3), 0L);
        harness.processElement(valid("acme-ai", "old", FP_A, s - 5 * WINDOW_MS + 11), 0L);
        harness.processWatermark(w - 5);  // a lower watermark never lowers the floor
        harness.processElement(valid("acme-ai", "after-lower", FP_A, s + 13), 0L);
        harness.processElement(rejected("malformed_json"), 0L);
        harness.processElement(valid("acme-ai", "on-time", FP_B, s + WINDOW_MS + 3), 0L);  // a conflicting copy
        harness.processElement(valid("acme-ai", "old", FP_A, s - 5 * WINDOW_MS + 11), 0L);  // a retry

        Map<String, WindowedUsage> byName = new LinkedHashMap<>();
        for (WindowedUsage record : harness.extractOutputValues()) {
            byName.put(names.get(record.eventTimeMs), record);
        }
        assertEquals(List.of("before-any", "edge-past", "on-time", "old", "after-lower"),
                new ArrayList<>(byName.keySet()), "each first copy once, in arrival order");
        assertEquals(Long.MIN_VALUE, byName.get("before-any").floorMs);
        assertNull(byName.get("before-any").pastWatermark, "no watermark yet: nothing is past it");
        for (String name : List.of("edge-past", "on-time", "old", "after-lower")) {
            assertEquals(w, byName.get(name).floorMs, name);
        }
        for (String name : List.of("edge-past", "old", "after-lower")) {
            WindowedUsage.PastWatermark past = byName.get(name).pastWatermark;
            assertNotNull(past, name + " is past the watermark");
            assertEquals(w, past.watermarkMs);
            assertArrayEquals(name.getBytes(StandardCharsets.UTF_8), past.payload);
            assertEquals("usage-events", past.srcTopic);
        }
        assertNull(byName.get("on-time").pastWatermark, "its window ends after the watermark");

        // Accounting: the window operator counts the records past the watermark; routing counts the rest.
        assertEquals(Map.of(UsageRouting.WINDOWED, 2L, UsageRouting.DEAD_LETTERED, 1L,
                UsageRouting.DUPLICATE_SAME_PAYLOAD, 1L, UsageRouting.DUPLICATE_CONFLICTING_PAYLOAD, 1L),
                flush(harness));
        List<StreamRecord<Row>> dead = new ArrayList<>(harness.getSideOutput(DEAD));
        assertEquals(1, dead.size());
        assertEquals("malformed_json", dead.get(0).getValue().getField(4));
        assertArrayEquals("not json".getBytes(StandardCharsets.UTF_8), (byte[]) dead.get(0).getValue().getField(0));
        harness.close();
    }

    @Test
    void sealedAtEveryIdAndRestoredHalfwayEveryCopyGetsItsSpecifiedOutcome() throws Exception {
        // The sealed memory (SealedDedup: 23-byte records in managed state, found through the in-heap index) answers
        // as the tables do: every id sealed as soon as it is recorded, and each stream restored halfway from a
        // snapshot (which rebuilds the index from the stored blocks alone).
        for (JsonNode stream : DedupTableGoldenTest.VECTORS.get("streams")) {
            long ttl = stream.get("ttl_ms").longValue();
            var harness = sealingAtEveryId(open(ttl, null, 1, 0));
            JsonNode records = stream.get("records");
            long last = Long.MIN_VALUE;
            for (int i = 0; i < records.size(); i++) {
                JsonNode record = records.get(i);
                long now = record.get("processing_time_ms").longValue();
                if (i == records.size() / 2) {
                    OperatorSubtaskState snapshot = harness.snapshot(1L, now);
                    harness.close();
                    harness = sealingAtEveryId(open(ttl, snapshot, 1, 0));
                }
                harness.setProcessingTime(now);
                last = now;
                harness.processElement(valid(record.get("tenant_id").textValue(), record.get("event_id").textValue(),
                        record.get("fingerprint").textValue(), T0), T0);
                Map<String, Long> counts = flush(harness);
                harness.getOutput().clear();
                String outcome = record.get("outcome").textValue();
                assertEquals(Map.of(outcome.equals(FIRST) ? UsageRouting.WINDOWED : outcome, 1L), counts,
                        record.toString());
            }
            assertEquals(0, ((UsageRouting) harness.getOneInputOperator()).tablesHeld(), "every id sealed");
            assertEquals(stream.get("live_at_end").intValue(), liveIds(harness, last));
            long horizon = stream.get("horizon_end_ms").longValue();
            harness.setProcessingTime(horizon);
            harness.snapshot(2L, horizon);
            assertEquals(0, ((UsageRouting) harness.getOneInputOperator()).sealedIds(), "all runs dropped");
            assertEquals(0, harness.numKeyedStateEntries(), "no block left");
            harness.close();
        }
    }

    @Test
    void onRocksDbTheSealedBlocksAreManagedStateAndSurviveARestoreAndARescale() throws Exception {
        // The cluster's backend: blocks in managed state (one entry each), nothing sealed in the raw state.
        long ttl = 1_000_000L;
        var harness = sealingAtEveryId(open(ttl, null, 1, 0, true));
        harness.setProcessingTime(T0);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            ids.add("evt-" + i);
            harness.processElement(valid(tenantOf(i), "evt-" + i, FP_A, T0), T0);
        }
        OperatorSubtaskState snapshot = harness.snapshot(1L, T0);
        assertEquals(300, ((UsageRouting) harness.getOneInputOperator()).sealedIds());
        assertEquals(0, ((UsageRouting) harness.getOneInputOperator()).tablesHeld());
        try (var blocks = ((UsageRouting) harness.getOneInputOperator()).getKeyedStateBackend()
                .getKeysAndNamespaces(UsageRouting.SEALED_BLOCKS)) {
            assertTrue(blocks.count() > 0, "blocks in managed state");
        }
        harness.close();
        RawKeyedState.forEachKeyGroup(snapshot, (keyGroup, in) -> {
            assertEquals(UsageRouting.DEDUP_FORMAT_SEALED_LEDGER, in.readInt());
            assertEquals(-1, in.readInt(), "no table");
            assertEquals(0, in.readInt(), "no block in the raw state");
        });
        List<KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage>> two = new ArrayList<>();
        for (int subtask = 0; subtask < 2; subtask++) {
            var h = sealingAtEveryId(open(ttl, AbstractStreamOperatorTestHarness.repartitionOperatorState(
                    snapshot, MAX_PARALLELISM, 1, 2, subtask), 2, subtask, true));
            h.setProcessingTime(T0 + 1);
            two.add(h);
        }
        assertEveryIdRemembered(two, ids);
        for (var h : two) {
            h.close();
        }
    }

    private static KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage> sealingAtEveryId(
            KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage> harness) {
        ((UsageRouting) harness.getOneInputOperator()).sealAtIds = 1;
        return harness;
    }

    // ---- snapshot and restore -------------------------------------------------------------------------------

    @Test
    void aRestoreKeepsEveryIdAndTheFloorAlsoInTwoSubtasksAndBackInOne() throws Exception {
        long ttl = 1_000_000L;
        var harness = open(ttl, null, 1, 0);
        harness.setProcessingTime(T0);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            ids.add("evt-" + i);
            harness.processElement(valid(tenantOf(i), "evt-" + i, FP_A, T0), T0);
        }
        long floor = T0 + 3 * WINDOW_MS;
        harness.processWatermark(floor);
        OperatorSubtaskState snapshot = harness.snapshot(1L, T0);
        assertEquals(300, liveIds(harness, T0));
        harness.close();

        // into one subtask
        var one = open(ttl, snapshot, 1, 0);
        one.setProcessingTime(T0 + 1);
        assertEveryIdRemembered(List.of(one), ids);
        assertFloor(one, floor, 1, 0);
        one.close();

        // into two subtasks: each gets its key groups' tables and the floor
        var two = restoredInTwo(snapshot, ttl, T0 + 1);
        List<OperatorSubtaskState> halves = new ArrayList<>();
        assertEveryIdRemembered(two, ids);
        long higher = floor + 5 * WINDOW_MS;
        two.get(1).processWatermark(higher);  // only subtask 1 moves on
        int total = 0;
        for (int subtask = 0; subtask < 2; subtask++) {
            OperatorSubtaskState half = two.get(subtask).snapshot(2L, T0 + 1);
            int live = liveIds(two.get(subtask), T0 + 1);
            assertTrue(live > 0 && live < 300, "each subtask holds a share: " + live);
            total += live;
            halves.add(half);
            assertFloor(two.get(subtask), subtask == 0 ? floor : higher, 2, subtask);
            two.get(subtask).close();
        }
        assertEquals(300, total, "every id in exactly one subtask");

        // and back into one: every id, and the lowest of the stored floors (at or above every fired window's end)
        OperatorSubtaskState merged = AbstractStreamOperatorTestHarness.repartitionOperatorState(
                AbstractStreamOperatorTestHarness.repackageState(halves.get(0), halves.get(1)),
                MAX_PARALLELISM, 2, 1, 0);
        var back = open(ttl, merged, 1, 0);
        back.setProcessingTime(T0 + 2);
        assertEveryIdRemembered(List.of(back), ids);
        assertFloor(back, floor, 1, 0);
        back.close();
    }

    // ---- the dedup horizon ----------------------------------------------------------------------------------

    @Test
    void afterTheHorizonAnIdIsNewAgainAndTheNextSnapshotRemembersNothing() throws Exception {
        long ttl = 10_000L;
        byte[] empty = emptyDedupState(ttl);
        var harness = open(ttl, null, 1, 0);
        harness.setProcessingTime(T0);
        harness.processElement(valid("acme-ai", "e1", FP_A, T0), T0);
        harness.setProcessingTime(T0 + ttl - 1);
        harness.processElement(valid("acme-ai", "e1", FP_A, T0), T0);  // does not extend the horizon
        assertEquals(Map.of(UsageRouting.WINDOWED, 1L, UsageRouting.DUPLICATE_SAME_PAYLOAD, 1L), flush(harness));
        OperatorSubtaskState before = harness.snapshot(1L, T0 + ttl - 1);
        assertEquals(1, liveIds(harness, T0 + ttl - 1));
        assertEquals(1, entries(before));

        harness.setProcessingTime(T0 + ttl);
        OperatorSubtaskState atHorizon = harness.snapshot(2L, T0 + ttl);
        assertEquals(0, entries(atHorizon), "nothing remembered at the horizon");
        assertBackToZero(harness, atHorizon, empty);
        harness.getOutput().clear();
        harness.processElement(valid("acme-ai", "e1", FP_B, T0), T0);  // first again, with its own content
        assertEquals(1, harness.extractOutputValues().size());
        harness.processElement(valid("acme-ai", "e1", FP_A, T0), T0);
        assertEquals(Map.of(UsageRouting.WINDOWED, 1L, UsageRouting.DUPLICATE_CONFLICTING_PAYLOAD, 1L),
                flush(harness));
        harness.snapshot(3L, T0 + ttl);
        assertEquals(1, liveIds(harness, T0 + ttl));
        harness.setProcessingTime(T0 + 2 * ttl);
        OperatorSubtaskState after = harness.snapshot(4L, T0 + 2 * ttl);
        assertBackToZero(harness, after, empty);
        harness.close();

        // restored from the snapshot taken after the horizon: nothing held, nothing written, the id new again
        var fromAfter = open(ttl, after, 1, 0);
        fromAfter.setProcessingTime(T0 + 2 * ttl);
        assertBackToZero(fromAfter, fromAfter.snapshot(5L, T0 + 2 * ttl), empty);
        fromAfter.processElement(valid("acme-ai", "e1", FP_A, T0), T0);
        assertEquals(1, fromAfter.extractOutputValues().size(), "new after a restore past the horizon");
        fromAfter.close();

        // restored from the snapshot taken before the horizon, the id expires there all the same
        var restored = open(ttl, before, 1, 0);
        restored.setProcessingTime(T0 + ttl);
        assertBackToZero(restored, restored.snapshot(6L, T0 + ttl), empty);
        restored.processElement(valid("acme-ai", "e1", FP_A, T0), T0);
        assertEquals(1, restored.extractOutputValues().size(), "new again after the horizon");
        restored.close();
    }

    @Test
    void aSnapshotWritesOnlyTheIdsStillWithinTheirHorizonAndARestoreHoldsJustThose() throws Exception {
        long ttl = 10_000L;
        var harness = open(ttl, null, 1, 0);
        harness.setProcessingTime(T0);
        for (int i = 0; i < 200; i++) {
            harness.processElement(valid("acme-ai", "old-" + i, FP_A, T0), T0);
        }
        harness.setProcessingTime(T0 + ttl / 2);
        List<String> young = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            young.add("young-" + i);
            harness.processElement(valid(tenantOf(i), "young-" + i, FP_A, T0), T0);
        }
        harness.setProcessingTime(T0 + ttl);  // the old ids' horizon; the young ones' is half a horizon later
        OperatorSubtaskState snapshot = harness.snapshot(1L, T0 + ttl);
        assertEquals(100, liveIds(harness, T0 + ttl));
        harness.close();
        assertEquals(100, entries(snapshot), "only the young ids are written");

        var restored = open(ttl, snapshot, 1, 0);
        restored.setProcessingTime(T0 + ttl);
        assertEveryIdRemembered(List.of(restored), young);
        restored.getOutput().clear();
        restored.processElement(valid("acme-ai", "old-7", FP_A, T0), T0);
        assertEquals(1, restored.extractOutputValues().size(), "an expired id was not restored");
        restored.close();
    }

    @Test
    void stateWrittenInTheFormerFormatWholeTablesIsStillRestored() throws Exception {
        long ttl = 1_000_000L;
        List<String> ids = new ArrayList<>();
        Map<Integer, DedupTable.Lookup> tables = new HashMap<>();
        for (int i = 0; i < 50; i++) {
            ids.add("evt-" + i);
            Tuple2<Long, Long> key = UsageDedupKey.eventKey(StringData.fromString(tenantOf(i)),
                    StringData.fromString("evt-" + i));
            DedupTable.Lookup lookup = tables.computeIfAbsent(UsageDedupKey.bucket(key.f0),
                    bucket -> new DedupTable.Lookup());
            DedupTable.recordFirst(lookup, key.f0, key.f1, UsageRouting.fingerprint64(StringData.fromString(FP_A)),
                    T0, ttl);
        }
        // format 1, per key group: version, how many tables, then (bucket, length, the table's bytes) each
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputViewStreamWrapper out = new DataOutputViewStreamWrapper(bytes);
        long[] offsets = new long[MAX_PARALLELISM];
        for (int keyGroup = 0; keyGroup < MAX_PARALLELISM; keyGroup++) {
            offsets[keyGroup] = bytes.size();
            List<Integer> buckets = new ArrayList<>();
            for (int bucket : tables.keySet()) {
                if (KeyGroupRangeAssignment.assignToKeyGroup(bucket, MAX_PARALLELISM) == keyGroup) {
                    buckets.add(bucket);
                }
            }
            out.writeInt(1);
            out.writeInt(buckets.size());
            for (int bucket : buckets) {
                out.writeInt(bucket);
                out.writeInt(tables.get(bucket).table.length);
                out.write(tables.get(bucket).table);
            }
        }
        OperatorSubtaskState formerFormat = OperatorSubtaskState.builder()
                .setRawKeyedState(new KeyGroupsStateHandle(
                        new KeyGroupRangeOffsets(KeyGroupRange.of(0, MAX_PARALLELISM - 1), offsets),
                        new ByteStreamStateHandle("dedup-format-1", bytes.toByteArray())))
                .build();

        var restored = open(ttl, formerFormat, 1, 0);
        restored.setProcessingTime(T0 + 1);
        assertEveryIdRemembered(List.of(restored), ids);
        assertEquals(0, entries(restored.snapshot(1L, T0 + 1)), "sealed at the restore: no table left");
        assertEquals(50, ((UsageRouting) restored.getOneInputOperator()).sealedIds());
        restored.close();
    }

    @Test
    void stateOfFormatFourSealedWithoutCompanionsIsStillRestored() throws Exception {
        // Format 4 (sealed blocks, before companions) has format 5's layout; an operator without corrections writes
        // exactly it but for the version number. Some key groups sealed (their blocks in the raw state on the heap
        // backend), the others' ids still in tables: rewritten as format 4, the state is restored whole, in one
        // subtask and in two.
        long ttl = 1_000_000L;
        var harness = open(ttl, null, 1, 0);
        UsageRouting written = (UsageRouting) harness.getOneInputOperator();
        written.sealAtIds = 3;
        harness.setProcessingTime(T0);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            ids.add("evt-" + i);
            harness.processElement(valid(tenantOf(i), "evt-" + i, FP_A, T0), T0);
        }
        long sealedIds = written.sealedIds();
        assertTrue(sealedIds > 0 && sealedIds < ids.size() && written.tablesHeld() > 0,
                "ids both sealed and in tables: " + sealedIds);
        OperatorSubtaskState formatFour = withDedupFormat(harness.snapshot(1L, T0), UsageRouting.DEDUP_FORMAT_SEALED);
        harness.close();
        RawKeyedState.forEachKeyGroup(formatFour, (keyGroup, in) ->
                assertEquals(UsageRouting.DEDUP_FORMAT_SEALED, in.readInt(), "rewritten as format 4"));

        var restored = open(ttl, formatFour, 1, 0);
        restored.setProcessingTime(T0 + 1);
        // the restored blocks, and the restored tables' ids sealed at the restore (as at every restore)
        assertEquals(ids.size(), ((UsageRouting) restored.getOneInputOperator()).sealedIds());
        assertEquals(0, ((UsageRouting) restored.getOneInputOperator()).tablesHeld());
        assertEquals(ids.size(), liveIds(restored, T0 + 1));
        assertEveryIdRemembered(List.of(restored), ids);
        restored.close();
        var two = restoredInTwo(formatFour, ttl, T0 + 1);
        assertEveryIdRemembered(two, ids);
        for (var h : two) {
            h.close();
        }
    }

    /** Two subtasks (heap backend) restored from a snapshot of one, their clocks at {@code now}. */
    private static List<KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage>> restoredInTwo(
            OperatorSubtaskState snapshot, long ttl, long now) throws Exception {
        List<KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage>> two = new ArrayList<>();
        for (int subtask = 0; subtask < 2; subtask++) {
            var h = open(ttl, AbstractStreamOperatorTestHarness.repartitionOperatorState(
                    snapshot, MAX_PARALLELISM, 1, 2, subtask), 2, subtask);
            h.setProcessingTime(now);
            two.add(h);
        }
        return two;
    }

    /** {@code snapshot} with the dedup format number of every key group's raw block set to {@code version}. */
    private static OperatorSubtaskState withDedupFormat(OperatorSubtaskState snapshot, int version) throws Exception {
        List<KeyedStateHandle> rewritten = new ArrayList<>();
        for (KeyedStateHandle handle : snapshot.getRawKeyedState()) {
            KeyGroupsStateHandle groups = (KeyGroupsStateHandle) handle;
            byte[] bytes;
            try (var in = groups.openInputStream()) {
                bytes = in.readAllBytes();
            }
            for (int keyGroup : groups.getKeyGroupRange()) {
                java.nio.ByteBuffer.wrap(bytes).putInt((int) groups.getOffsetForKeyGroup(keyGroup), version);
            }
            rewritten.add(new KeyGroupsStateHandle(groups.getGroupRangeOffsets(),
                    new ByteStreamStateHandle("dedup-format-" + version, bytes)));
        }
        return OperatorSubtaskState.builder()
                .setManagedKeyedState(snapshot.getManagedKeyedState())
                .setRawKeyedState(new StateObjectCollection<>(rewritten))
                .setManagedOperatorState(snapshot.getManagedOperatorState())
                .setRawOperatorState(snapshot.getRawOperatorState())
                .build();
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private static KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage> open(long ttlMs,
            OperatorSubtaskState restored, int parallelism, int subtask) throws Exception {
        return open(ttlMs, restored, parallelism, subtask, false);
    }

    private static KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage> open(long ttlMs,
            OperatorSubtaskState restored, int parallelism, int subtask, boolean rocksDb) throws Exception {
        UsageRouting operator = new UsageRouting(INPUT, WINDOW_MS, ttlMs, DEAD, ACCOUNTING);
        var harness = new KeyedOneInputStreamOperatorTestHarness<>(operator, new UsageDedupKey(INPUT), Types.INT,
                MAX_PARALLELISM, parallelism, subtask);
        if (rocksDb) {
            harness.setStateBackend(new org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend());
        }
        if (restored != null) {
            harness.initializeState(restored);
        }
        harness.open();
        return harness;
    }

    /** The tenant of the i-th id of a list: two tenants, so that ids spread over both. */
    private static String tenantOf(int i) {
        return i % 2 == 0 ? "acme-ai" : "zeta-test";
    }

    /**
     * Every id again (the i-th of tenant {@link #tenantOf}), each to the subtask owning its key group, as the same
     * payload: all duplicates.
     */
    private void assertEveryIdRemembered(
            List<KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage>> subtasks, List<String> ids)
            throws Exception {
        for (int i = 0; i < ids.size(); i++) {
            RowData row = valid(tenantOf(i), ids.get(i), FP_A, T0);
            int keyGroup = KeyGroupRangeAssignment.assignToKeyGroup(new UsageDedupKey(INPUT).getKey(row),
                    MAX_PARALLELISM);
            subtasks.get(KeyGroupRangeAssignment.computeOperatorIndexForKeyGroup(MAX_PARALLELISM, subtasks.size(),
                    keyGroup)).processElement(row, T0);
        }
        long duplicates = 0;
        for (var subtask : subtasks) {
            assertEquals(0, subtask.extractOutputValues().size(), "no id is new");
            Map<String, Long> counts = flush(subtask);
            assertEquals(List.of(UsageRouting.DUPLICATE_SAME_PAYLOAD), new ArrayList<>(counts.keySet()));
            duplicates += counts.get(UsageRouting.DUPLICATE_SAME_PAYLOAD);
        }
        assertEquals(ids.size(), duplicates);
    }

    /** A new id (of a key group this subtask owns) with a window before the floor comes out stamped with it. */
    private void assertFloor(KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage> harness,
            long floor, int parallelism, int subtask) throws Exception {
        RowData probe;
        int n = 0;
        do {
            probe = valid("acme-ai", "probe-" + n++, FP_A, T0);
        } while (KeyGroupRangeAssignment.computeOperatorIndexForKeyGroup(MAX_PARALLELISM, parallelism,
                KeyGroupRangeAssignment.assignToKeyGroup(new UsageDedupKey(INPUT).getKey(probe), MAX_PARALLELISM))
                != subtask);
        harness.getOutput().clear();
        harness.processElement(probe, T0);
        WindowedUsage out = harness.extractOutputValues().get(0);
        assertEquals(floor, out.floorMs);
        assertNotNull(out.pastWatermark);
        harness.getOutput().clear();
        flush(harness);
    }

    /** The counts since the last flush, as a barrier would flush them. */
    private static Map<String, Long> flush(KeyedOneInputStreamOperatorTestHarness<?, ?, ?> harness)
            throws Exception {
        harness.prepareSnapshotPreBarrier(0L);
        Map<String, Long> counts = new HashMap<>();
        if (harness.getSideOutput(ACCOUNTING) != null) {
            for (StreamRecord<Row> count : harness.getSideOutput(ACCOUNTING)) {
                counts.merge((String) count.getValue().getField(0), (Long) count.getValue().getField(2), Long::sum);
            }
            harness.getSideOutput(ACCOUNTING).clear();
        }
        return counts;
    }

    /** Ids the operator remembers at {@code now}: in its tables and its sealed runs. */
    static int liveIds(KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage> harness, long now)
            throws Exception {
        return (int) ((UsageRouting) harness.getOneInputOperator()).liveIds(now);
    }

    /** Ids written into a snapshot's dedup tables, whatever their age. */
    static int entries(OperatorSubtaskState snapshot) throws Exception {
        int[] entries = {0};
        forEachTable(snapshot, (table, count) -> {
            assertEquals(count, DedupTable.occupied(table));
            entries[0] += count;
        });
        return entries[0];
    }

    private interface TableVisitor {
        void visit(byte[] table, int count);
    }

    /** Each table in a snapshot (format 4: per key group, (bucket, entries, slots) until the end mark, then the
     * ledger's flag). */
    private static void forEachTable(OperatorSubtaskState snapshot, TableVisitor visitor) throws Exception {
        RawKeyedState.forEachKeyGroup(snapshot, (keyGroup, in) -> {
            assertEquals(UsageRouting.DEDUP_FORMAT_SEALED_LEDGER, in.readInt(), "dedup format version");
            for (int bucket = in.readInt(); bucket != -1; bucket = in.readInt()) {
                assertEquals(keyGroup, KeyGroupRangeAssignment.assignToKeyGroup(bucket, MAX_PARALLELISM));
                int count = in.readInt();
                assertTrue(count > 0, "a table without entries is not written");
                byte[] slots = new byte[count * DedupTable.SLOT_BYTES];
                in.readFully(slots);
                visitor.visit(DedupTable.unpacked(slots, count), count);
            }
        });
    }

    /**
     * The raw keyed state of an operator that has seen nothing: per key group, the version, the end mark, no sealed
     * block and no ledger.
     */
    private static byte[] emptyDedupState(long ttl) throws Exception {
        var fresh = open(ttl, null, 1, 0);
        fresh.setProcessingTime(T0);
        byte[] empty = RawKeyedState.bytes(fresh.snapshot(0L, T0));
        fresh.close();
        assertEquals(MAX_PARALLELISM * (3 * Integer.BYTES + 1), empty.length);
        return empty;
    }

    /** State and timers back to zero: the snapshot's dedup part is an empty operator's, byte for byte; no table. */
    private static void assertBackToZero(KeyedOneInputStreamOperatorTestHarness<Integer, RowData, WindowedUsage>
            harness, OperatorSubtaskState snapshot, byte[] empty) throws Exception {
        assertArrayEquals(empty, RawKeyedState.bytes(snapshot), "the dedup state of an operator that saw nothing");
        assertEquals(0, ((UsageRouting) harness.getOneInputOperator()).tablesHeld(), "no table held in memory");
        assertEquals(0, harness.numKeyedStateEntries(), "no managed keyed state");
        assertEquals(0, harness.numProcessingTimeTimers() + harness.numEventTimeTimers(), "no timers");
    }

    /** A valid parsed record of a count meter: its payload is its event id. */
    private GenericRowData valid(String tenant, String eventId, String fingerprint, long eventTimeMs) {
        Tuple2<Long, Long> key = UsageDedupKey.eventKey(StringData.fromString(tenant), StringData.fromString(eventId));
        GenericRowData row = new GenericRowData(INPUT.getFieldCount());
        row.setField(0, eventId.getBytes(StandardCharsets.UTF_8));
        row.setField(1, StringData.fromString("usage-events"));
        row.setField(2, 0);
        row.setField(3, offset++);
        row.setField(7, StringData.fromString(eventId));
        row.setField(8, StringData.fromString(tenant));
        row.setField(9, StringData.fromString("c1"));
        row.setField(10, StringData.fromString("requests"));
        row.setField(11, eventTimeMs);
        row.setField(12, DecimalData.fromBigDecimal(BigDecimal.ONE, 38, 18));
        row.setField(13, StringData.fromString(Rules.AGGREGATION_COUNT));
        row.setField(14, StringData.fromString("{}"));
        row.setField(16, StringData.fromString(fingerprint));
        row.setField(17, key.f0);
        row.setField(18, key.f1);
        return row;
    }

    private GenericRowData rejected(String reason) {
        GenericRowData row = new GenericRowData(INPUT.getFieldCount());
        row.setField(0, "not json".getBytes(StandardCharsets.UTF_8));
        row.setField(1, StringData.fromString("usage-events"));
        row.setField(2, 0);
        row.setField(3, offset++);
        row.setField(5, StringData.fromString(reason));
        row.setField(6, StringData.fromString("not a JSON document"));
        return row;
    }
}
