package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.routing.HashedKey;
import io.meterstream.routing.WindowedUsage;
import io.meterstream.windows.TumblingWindows;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.table.data.StringData;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;
import org.junit.jupiter.api.Test;

/**
 * {@link WindowRating} with corrections in Flink's keyed operator harness against {@code udfs.rating_stream}
 * ({@code golden/rating-stream.json}): streams of usage (on time, past the watermark, late), cancels and amends of it
 * (of a value; of a group-by dimension, which moves usage between series) and watermarks, as the routing operator
 * hands them on, across a billing period's close and its grace. Each series must write exactly the recorded lines,
 * in order, byte for byte but for {@code emitted_at}: in one run; through two channels merged at random (parallelism
 * 2 upstream); and with a snapshot and a restore into a new operator halfway (records waiting for their watermark
 * and retained window contents travel in it).
 */
class WindowRatingStreamGoldenTest {
    private static final JsonNode VECTORS = GoldenVectors.load("rating-stream.json");
    private static final String CATALOG = VECTORS.get("java_catalog_json").textValue();
    private static final long WINDOW_MS = VECTORS.get("window_size_ms").longValue();
    private static final long MAX_AGE_MS = VECTORS.get("max_age_ms").longValue();
    private static final long TTL_MS = MAX_AGE_MS * 2;
    private static final long RETAIN_MS = 2L * 24 * 3600 * 1000;
    private static final OutputTag<Row> UNIQUE = new OutputTag<>("unique-count-windows", Types.GENERIC(Row.class));
    private static final OutputTag<Row> LATE = new OutputTag<>("late", Types.GENERIC(Row.class));
    private static final OutputTag<Row> ACCOUNTING = new OutputTag<>("accounting", Types.GENERIC(Row.class));
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void everySeriesWritesTheLinesTheSpecificationDoesInOrder() throws Exception {
        int index = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            check(stream, run(stream, -1), "stream " + index++);
        }
    }

    @Test
    void aSnapshotAndRestoreHalfwayChangesNothing() throws Exception {
        int index = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            check(stream, run(stream, stream.get("ops").size() / 2), "restored, stream " + index++);
        }
    }

    /**
     * On RocksDB the series live in managed state: a checkpoint every second step stores the series touched since the
     * last one and lets those untouched for two leave the heap, and the next record or timer reads them back; the
     * lines are the same, and restored halfway from such a checkpoint too.
     */
    @Test
    void onRocksDbWithFrequentCheckpointsSeriesLeaveTheHeapAndTheLinesAreTheSame() throws Exception {
        int index = 0;
        int evictions = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            Run onRocksDb = new Run(true, true, 2);
            check(stream, onRocksDb.lines(stream, -1), "RocksDB, stream " + index);
            Run restored = new Run(true, true, 2);
            check(stream, restored.lines(stream, stream.get("ops").size() / 2), "RocksDB, restored, stream " + index);
            evictions += onRocksDb.readBack + restored.readBack;
            index++;
        }
        assertTrue(evictions > 0, "series left the heap and were read back");
    }

    @Test
    void aCanonicalSavepointHalfwayMovesTheSeriesFromTheHeapOntoRocksDbAndBack() throws Exception {
        int index = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            int half = stream.get("ops").size() / 2;
            check(stream, new Run(false, true, 0).lines(stream, half), "heap -> RocksDB, stream " + index);
            check(stream, new Run(true, false, 2).lines(stream, half), "RocksDB -> heap, stream " + index);
            index++;
        }
    }

    @Test
    void throughTwoChannelsMergedAtRandomTheLinesAreTheSame() throws Exception {
        // Parallelism 2 upstream: each event's records travel on one of two channels, every watermark on both, and
        // the operator's watermark is the lower of the two; records meet it before or after watermarks that followed
        // them.
        Random random = new Random(31);
        int index = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            for (int trial = 0; trial < 3; trial++) {
                List<Deque<Object>> channels = List.of(new ArrayDeque<>(), new ArrayDeque<>());
                Map<String, Integer> channelOf = new HashMap<>();
                for (JsonNode op : stream.get("ops")) {
                    if (op.get("op").textValue().equals("watermark")) {
                        channels.forEach(channel -> channel.add(op.get("ms").longValue()));
                    } else {
                        // the routing operator is keyed by event: an event's usage and its corrections share a channel
                        channels.get(channelOf.computeIfAbsent(op.get("event_id").textValue(),
                                id -> random.nextInt(2))).add(op);
                    }
                }
                var harness = open(null);
                TwoChannels.merge(channels, random, harness::processWatermark, op -> {
                    WindowedUsage record = record(stream, (JsonNode) op);
                    harness.processElement(new StreamRecord<>(record, record.eventTimeMs));
                });
                Map<Integer, List<String>> lines = new TreeMap<>();
                collect(stream, harness, lines);
                harness.close();
                check(stream, lines, "two channels, stream " + index + ", trial " + trial);
            }
            index++;
        }
    }

    /** Every line written, by series (index into the stream's series), in output order, emitted_at blanked. */
    private static Map<Integer, List<String>> run(JsonNode stream, int restoreAt) throws Exception {
        return new Run(false, false, 0).lines(stream, restoreAt);
    }

    /** A run on the heap backend or RocksDB (before and after a restore), with a checkpoint every so many steps. */
    private static final class Run {
        final boolean rocksDbBefore;
        final boolean rocksDbAfter;
        final int checkpointEvery;
        WindowRating operator;
        /** Series read back from managed state after they left the heap (RocksDB). */
        int readBack;

        Run(boolean rocksDbBefore, boolean rocksDbAfter, int checkpointEvery) {
            this.rocksDbBefore = rocksDbBefore;
            this.rocksDbAfter = rocksDbAfter;
            this.checkpointEvery = checkpointEvery;
        }

        KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
                OperatorSubtaskState restored, boolean rocksDb) throws Exception {
            operator = operator();
            return RatingHarnesses.open(operator, restored, rocksDb);
        }

        Map<Integer, List<String>> lines(JsonNode stream, int restoreAt) throws Exception {
            var harness = open(null, rocksDbBefore);
            Map<Integer, List<String>> lines = new TreeMap<>();
            JsonNode ops = stream.get("ops");
            long checkpoint = 0;
            for (int i = 0; i < ops.size(); i++) {
                if (i == restoreAt) {
                    boolean crossing = rocksDbBefore != rocksDbAfter;
                    OperatorSubtaskState snapshot = crossing ? harness.snapshotWithLocalState(++checkpoint, 0L,
                            org.apache.flink.runtime.checkpoint.SavepointType.savepoint(
                                    org.apache.flink.core.execution.SavepointFormatType.CANONICAL))
                            .getJobManagerOwnedState() : harness.snapshot(++checkpoint, 0L);
                    collect(stream, harness, lines);
                    harness.close();
                    harness = open(snapshot, rocksDbAfter);
                    if (crossing && !rocksDbAfter) {
                        try (var stored = operator.getKeyedStateBackend().getKeys(WindowRating.SERIES_STATE,
                                org.apache.flink.runtime.state.VoidNamespace.INSTANCE)) {
                            assertEquals(0, stored.count(), "restored onto the heap: the series left managed state");
                        }
                    }
                }
                JsonNode op = ops.get(i);
                int heldBefore = operator.seriesInHeap();
                boolean stored = rocksDbOf(i, restoreAt) && operator.seriesStored();
                if (op.get("op").textValue().equals("watermark")) {
                    harness.processWatermark(op.get("ms").longValue());
                } else {
                    WindowedUsage record = record(stream, op);
                    harness.processElement(new StreamRecord<>(record, record.eventTimeMs));
                }
                if (stored && operator.seriesInHeap() > heldBefore) {
                    readBack++;
                }
                if (checkpointEvery > 0 && (i + 1) % checkpointEvery == 0) {
                    harness.snapshot(++checkpoint, 0L);
                }
            }
            collect(stream, harness, lines);
            assertEquals(0, harness.numEventTimeTimers(), "no timer left after the end of the input");
            harness.close();
            return lines;
        }

        private boolean rocksDbOf(int step, int restoreAt) {
            return restoreAt >= 0 && step >= restoreAt ? rocksDbAfter : rocksDbBefore;
        }
    }

    private static void check(JsonNode stream, Map<Integer, List<String>> actual, String how) {
        Map<Integer, List<String>> expected = new TreeMap<>();
        stream.get("lines").fields().forEachRemaining(entry -> {
            List<String> lines = new ArrayList<>();
            entry.getValue().forEach(line -> lines.add(blankEmittedAt(line.textValue())));
            expected.put(Integer.parseInt(entry.getKey()), lines);
        });
        assertEquals(expected.keySet(), actual.keySet(), how + ": the series that write lines");
        for (Map.Entry<Integer, List<String>> entry : expected.entrySet()) {
            List<String> got = actual.get(entry.getKey());
            for (int i = 0; i < Math.max(entry.getValue().size(), got.size()); i++) {
                assertEquals(i < entry.getValue().size() ? entry.getValue().get(i) : null,
                        i < got.size() ? got.get(i) : null,
                        how + ", series " + entry.getKey() + ", line " + i + " of " + entry.getValue().size());
            }
        }
    }

    private static void collect(JsonNode stream, KeyedOneInputStreamOperatorTestHarness<?, WindowedUsage, String>
            harness, Map<Integer, List<String>> into) throws Exception {
        Map<String, Integer> seriesIndex = new HashMap<>();
        JsonNode series = stream.get("series");
        for (int i = 0; i < series.size(); i++) {
            JsonNode s = series.get(i);
            seriesIndex.put(s.get(1).textValue() + "|" + s.get(2).textValue() + "|"
                    + JSON.readTree(s.get(3).textValue()), i);
        }
        for (String line : harness.extractOutputValues()) {
            JsonNode parsed = JSON.readTree(line);
            Integer index = seriesIndex.get(parsed.get("customer_id").textValue() + "|"
                    + parsed.get("meter").textValue() + "|" + parsed.get("group"));
            into.computeIfAbsent(index, i -> new ArrayList<>()).add(blankEmittedAt(line));
        }
        harness.getOutput().clear();
    }

    private static String blankEmittedAt(String line) {
        return line.replaceFirst("\"emitted_at\":\"[^\"]*\"", "\"emitted_at\":\"\"");
    }

    /** The record as the routing operator hands it on ({@code UsageRouting}: values compact but a last meter's). */
    private static WindowedUsage record(JsonNode stream, JsonNode op) {
        JsonNode series = stream.get("series").get(op.get("series").intValue());
        String tenant = series.get(0).textValue();
        String customer = series.get(1).textValue();
        String meter = series.get(2).textValue();
        String group = series.get(3).textValue();
        WindowedUsage out = new WindowedUsage();
        Tuple2<Long, Long> key = new HashedKey().part(StringData.fromString(tenant))
                .part(StringData.fromString(customer)).part(StringData.fromString(meter))
                .part(StringData.fromString(group)).key();
        out.seriesHi = key.f0;
        out.seriesLo = key.f1;
        out.tenantId = bytes(tenant);
        out.customerId = bytes(customer);
        out.meter = bytes(meter);
        out.groupJson = bytes(group);
        out.aggregation = WindowedUsage.code(series.get(4).textValue());
        out.eventTimeMs = op.get("event_time_ms").longValue();
        out.eventId = bytes(op.get("event_id").textValue());
        JsonNode value = op.get("value");
        if (!value.isNull() && out.aggregation != WindowedUsage.COUNT) {
            BigDecimal parsed = new BigDecimal(value.textValue());
            out.value = out.aggregation == WindowedUsage.LAST ? parsed : RateLineItem.compact(parsed);
        }
        out.floorMs = op.get("floor_ms").isNull() ? Long.MIN_VALUE : op.get("floor_ms").longValue();
        switch (op.get("op").textValue()) {
            case "usage":
                if (out.floorMs != Long.MIN_VALUE
                        && TumblingWindows.end(out.eventTimeMs, WINDOW_MS) - 1 <= out.floorMs) {
                    WindowedUsage.PastWatermark past = new WindowedUsage.PastWatermark();
                    past.payload = bytes(op.get("event_id").textValue());
                    past.srcTopic = "usage-events";
                    past.srcPartition = 0;
                    past.srcOffset = 0L;
                    past.watermarkMs = out.floorMs;
                    out.pastWatermark = past;
                }
                break;
            case "remove":
                out.correction = WindowedUsage.REMOVE;
                break;
            case "add":
                out.correction = WindowedUsage.ADD;
                break;
            case "amend":
                out.correction = WindowedUsage.AMEND;
                break;
            default:
                throw new IllegalArgumentException("op " + op);
        }
        return out;
    }

    private static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            OperatorSubtaskState restored) throws Exception {
        return RatingHarnesses.open(operator(), restored);
    }

    /** The operator under test: with corrections on (retained contents). */
    private static WindowRating operator() {
        return new WindowRating(CATALOG, WINDOW_MS, TTL_MS, MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING, true, RETAIN_MS);
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
