package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.harness.RawKeyedState;
import io.meterstream.routing.HashedKey;
import io.meterstream.routing.UsageRouting;
import io.meterstream.rules.Rules;
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
 * {@link WindowRating} in Flink's keyed operator harness against {@code udfs.lateness} ({@code golden/lateness.json}:
 * streams of records, each with the watermark it came after, and which are billed, into which windows). Each stream
 * is replayed three ways, and each must give exactly the recorded outcome: in source order with the watermark
 * before every record (parallelism 1); through two channels merged at random, each channel carrying every watermark
 * and its share of the records, the operator's watermark the lower of the two (parallelism 2: records meet the
 * operator before or after watermarks that came after them in the source); and in source order with a snapshot,
 * a new operator restored from it, halfway. And state cleanup: after the series TTL of processing time without a
 * write, a checkpoint drops the series, and no timer of a fired window is left.
 */
class WindowRatingHarnessTest {
    private static final JsonNode VECTORS = GoldenVectors.load("lateness.json");
    private static final long WINDOW_MS = VECTORS.get("window_size_ms").longValue();
    private static final long TTL_MS = 67L * 24 * 3600 * 1000;
    private static final long MAX_AGE_MS = 35L * 24 * 3600 * 1000;
    private static final OutputTag<Row> UNIQUE = new OutputTag<>("unique-count-windows", Types.GENERIC(Row.class));
    private static final OutputTag<Row> LATE = new OutputTag<>("late", Types.GENERIC(Row.class));
    private static final OutputTag<Row> ACCOUNTING = new OutputTag<>("accounting", Types.GENERIC(Row.class));
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What came out of the operator(s) for one stream. */
    private static final class Outcome {
        final Set<String> late = new HashSet<>();
        final Map<Integer, List<long[]>> windows = new TreeMap<>();
        /** Per series, its late adjustment lines in output order: "start x events # line_item_id". */
        final Map<Integer, List<String>> adjustments = new TreeMap<>();
        final Map<String, Long> counted = new HashMap<>();
    }

    @Test
    void inSourceOrderEveryRecordIsBilledOrLateAsSpecified() throws Exception {
        for (JsonNode stream : VECTORS.get("streams")) {
            var harness = open(null);
            Outcome outcome = new Outcome();
            long watermark = Long.MIN_VALUE;
            for (JsonNode record : stream.get("records")) {
                watermark = advance(harness, watermark, floor(record));
                harness.processElement(new StreamRecord<>(usage(record), record.get("event_time_ms").longValue()));
            }
            harness.processWatermark(Long.MAX_VALUE);
            collect(harness, outcome);
            harness.close();
            check(stream, outcome, "in order");
        }
    }

    @Test
    void throughTwoChannelsMergedAtRandomTheOutcomeIsTheSame() throws Exception {
        Random random = new Random(15);
        int streamIndex = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            for (int trial = 0; trial < 5; trial++) {
                List<Deque<Object>> channels = List.of(new ArrayDeque<>(), new ArrayDeque<>());
                long last = Long.MIN_VALUE;
                for (JsonNode record : stream.get("records")) {
                    long floor = floor(record);
                    if (floor > last) {
                        for (Deque<Object> channel : channels) {
                            channel.add(floor);
                        }
                        last = floor;
                    }
                    channels.get(random.nextInt(2)).add(record);
                }
                for (Deque<Object> channel : channels) {
                    channel.add(Long.MAX_VALUE);
                }
                var harness = open(null);
                TwoChannels.merge(channels, random, harness::processWatermark, next -> {
                    JsonNode record = (JsonNode) next;
                    harness.processElement(new StreamRecord<>(usage(record), record.get("event_time_ms").longValue()));
                });
                Outcome outcome = new Outcome();
                collect(harness, outcome);
                harness.close();
                check(stream, outcome, "two channels, stream " + streamIndex + ", trial " + trial);
            }
            streamIndex++;
        }
    }

    @Test
    void aSnapshotAndRestoreHalfwayChangesNothing() throws Exception {
        for (JsonNode stream : VECTORS.get("streams")) {
            JsonNode records = stream.get("records");
            int half = records.size() / 2;
            var harness = open(null);
            Outcome outcome = new Outcome();
            long watermark = Long.MIN_VALUE;
            for (int i = 0; i < records.size(); i++) {
                if (i == half) {
                    // Records waiting for their decision and windows with their fire times travel in the snapshot.
                    OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
                    collect(harness, outcome);
                    harness.close();
                    harness = open(snapshot);
                    // A restored job starts without a watermark (Flink does not checkpoint it); the source's comes
                    // again with the next records.
                    watermark = Long.MIN_VALUE;
                }
                JsonNode record = records.get(i);
                watermark = advance(harness, watermark, floor(record));
                harness.processElement(new StreamRecord<>(usage(record), record.get("event_time_ms").longValue()));
            }
            harness.processWatermark(Long.MAX_VALUE);
            collect(harness, outcome);
            harness.close();
            check(stream, outcome, "restored");
        }
    }

    @Test
    void afterTheSeriesTtlWithoutAWriteACheckpointDropsTheSeriesAndNoTimerIsLeft() throws Exception {
        long ttl = 10_000L;
        long t = 1_000L;
        long start = TumblingWindows.start(1_795_000_000_000L, WINDOW_MS);
        var harness = open(null, ttl);
        harness.setProcessingTime(t);
        harness.processElement(record("a1", 0, start + 1), start + 1);
        harness.processElement(record("a2", 0, start + 2), start + 2);
        harness.processElement(record("b1", 1, start + 3), start + 3);
        assertEquals(2, harness.numEventTimeTimers(), "one timer per open window");
        harness.processWatermark(start + WINDOW_MS - 1);
        assertEquals(2, harness.extractOutputValues().size(), "both windows fired");
        assertEquals(0, harness.numEventTimeTimers(), "the timers of fired windows are gone");
        assertEquals(2, seriesIn(harness.snapshot(1L, t)));

        harness.setProcessingTime(t + ttl - 1);
        assertEquals(2, seriesIn(harness.snapshot(2L, t + ttl - 1)), "kept until the TTL has passed");
        // a write restarts a series' TTL: b opens and fires its next window
        harness.processElement(record("b2", 1, start + WINDOW_MS), start + WINDOW_MS);
        harness.processWatermark(start + 2 * WINDOW_MS - 1);
        assertEquals(3, harness.extractOutputValues().size());
        OperatorSubtaskState beforeExpiry = harness.snapshot(3L, t + ttl - 1);

        harness.setProcessingTime(t + ttl);
        assertEquals(1, seriesIn(harness.snapshot(4L, t + ttl)), "a expired, b was written since");
        harness.setProcessingTime(t + 2 * ttl - 1);
        assertEquals(0, seriesIn(harness.snapshot(5L, t + 2 * ttl - 1)), "b expired too: nothing is kept");
        assertEquals(0, harness.numEventTimeTimers());
        harness.close();

        // restored from before the expiry, the series expire all the same
        var restored = open(beforeExpiry, ttl);
        restored.setProcessingTime(t + 2 * ttl - 1);
        assertEquals(0, seriesIn(restored.snapshot(6L, t + 2 * ttl - 1)));
        assertEquals(0, restored.numEventTimeTimers());
        restored.close();
    }

    /** A record of one of the vectors' series, not past any watermark. */
    private static WindowedUsage record(String id, int series, long eventTimeMs) {
        return usage(JSON.createObjectNode().put("id", id).put("series", series).put("event_time_ms", eventTimeMs)
                .putNull("floor_ms"));
    }

    /** The series a snapshot of the window operator holds (its raw keyed state: per key group, format, count). */
    private static int seriesIn(OperatorSubtaskState snapshot) throws Exception {
        int[] series = {0};
        RawKeyedState.forEachKeyGroup(snapshot, (keyGroup, in) -> {
            assertEquals(SeriesStore.FORMAT_VERSION, in.readInt());
            series[0] += in.readInt();
        });
        return series[0];
    }

    private static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            OperatorSubtaskState restored) throws Exception {
        return open(restored, TTL_MS);
    }

    private static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            OperatorSubtaskState restored, long ttlMs) throws Exception {
        return RatingHarnesses.open(new WindowRating(VECTORS.get("java_catalog_json").textValue(), WINDOW_MS, ttlMs,
                MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING), restored);
    }

    private static long advance(KeyedOneInputStreamOperatorTestHarness<?, ?, ?> harness, long current, long next)
            throws Exception {
        if (next > current) {
            harness.processWatermark(next);
            return next;
        }
        return current;
    }

    private static long floor(JsonNode record) {
        JsonNode floor = record.get("floor_ms");
        return floor == null || floor.isNull() ? Long.MIN_VALUE : floor.longValue();
    }

    /** The record as the routing operator hands it on (a count meter, no group). */
    private static WindowedUsage usage(JsonNode record) {
        JsonNode series = VECTORS.get("series").get(record.get("series").intValue());
        String tenant = series.get(0).textValue();
        String customer = series.get(1).textValue();
        String meter = series.get(2).textValue();
        WindowedUsage out = new WindowedUsage();
        Tuple2<Long, Long> key = new HashedKey().part(StringData.fromString(tenant))
                .part(StringData.fromString(customer)).part(StringData.fromString(meter))
                .part(StringData.fromString("{}")).key();
        out.seriesHi = key.f0;
        out.seriesLo = key.f1;
        out.tenantId = bytes(tenant);
        out.customerId = bytes(customer);
        out.meter = bytes(meter);
        out.groupJson = bytes("{}");
        out.aggregation = WindowedUsage.COUNT;
        out.eventTimeMs = record.get("event_time_ms").longValue();
        out.floorMs = floor(record);
        if (out.floorMs != Long.MIN_VALUE && TumblingWindows.end(out.eventTimeMs, WINDOW_MS) - 1 <= out.floorMs) {
            WindowedUsage.PastWatermark past = new WindowedUsage.PastWatermark();
            past.payload = bytes(record.get("id").textValue());
            past.srcTopic = "usage-events";
            past.srcPartition = 0;
            past.srcOffset = 0L;
            past.watermarkMs = out.floorMs;
            out.pastWatermark = past;
        }
        return out;
    }

    private static void collect(KeyedOneInputStreamOperatorTestHarness<?, WindowedUsage, String> harness,
            Outcome outcome) throws Exception {
        harness.prepareSnapshotPreBarrier(0L);  // the counts go out ahead of a barrier
        Map<String, Integer> seriesIndex = new HashMap<>();
        JsonNode series = VECTORS.get("series");
        for (int i = 0; i < series.size(); i++) {
            seriesIndex.put(series.get(i).get(0).textValue() + "|" + series.get(i).get(1).textValue(), i);
        }
        for (String lineItem : harness.extractOutputValues()) {
            JsonNode line = JSON.readTree(lineItem);
            int index = seriesIndex.get(line.get("tenant_id").textValue() + "|" + line.get("customer_id").textValue());
            long start = Instant.parse(line.get("window_start").textValue()).toEpochMilli();
            if (line.get("kind").textValue().equals(Rules.LINE_KIND_LATE_ADJUSTMENT)) {
                outcome.adjustments.computeIfAbsent(index, i -> new ArrayList<>()).add(start + "x"
                        + line.get("event_count").longValue() + "#" + line.get("line_item_id").textValue());
            } else {
                outcome.windows.computeIfAbsent(index, i -> new ArrayList<>())
                        .add(new long[] {start, line.get("event_count").longValue()});
            }
        }
        if (harness.getSideOutput(LATE) != null) {
            for (StreamRecord<Row> late : harness.getSideOutput(LATE)) {
                outcome.late.add(new String((byte[]) late.getValue().getField(0), StandardCharsets.UTF_8));
            }
        }
        if (harness.getSideOutput(ACCOUNTING) != null) {
            for (StreamRecord<Row> count : harness.getSideOutput(ACCOUNTING)) {
                outcome.counted.merge((String) count.getValue().getField(0), (Long) count.getValue().getField(2),
                        Long::sum);
            }
        }
        harness.getOutput().clear();
    }

    private static void check(JsonNode stream, Outcome outcome, String how) {
        Set<String> late = new HashSet<>();
        long pastBilled = 0;
        for (JsonNode record : stream.get("records")) {
            boolean past = floor(record) != Long.MIN_VALUE
                    && TumblingWindows.end(record.get("event_time_ms").longValue(), WINDOW_MS) - 1 <= floor(record);
            if (!record.get("billed").booleanValue()) {
                late.add(record.get("id").textValue());
            } else if (past) {
                pastBilled++;
            }
        }
        assertEquals(late, outcome.late, how + ": late records");
        Map<Integer, List<String>> expected = new TreeMap<>();
        stream.get("windows").fields().forEachRemaining(entry -> {
            List<String> windows = new ArrayList<>();
            entry.getValue().forEach(w -> windows.add(w.get(0).longValue() + "x" + w.get(1).longValue()));
            expected.put(Integer.parseInt(entry.getKey()), windows);
        });
        Map<Integer, List<String>> actual = new TreeMap<>();
        outcome.windows.forEach((index, windows) -> {
            List<String> text = new ArrayList<>();
            windows.forEach(w -> text.add(w[0] + "x" + w[1]));
            actual.put(index, text);
        });
        assertEquals(expected, actual, how + ": each series' windows, in the order they fired, and their counts");
        Map<Integer, List<String>> adjustments = new TreeMap<>();
        stream.get("adjustments").fields().forEachRemaining(entry -> {
            List<String> lines = new ArrayList<>();
            entry.getValue().forEach(a -> lines.add(a.get(0).longValue() + "x" + a.get(1).longValue() + "#"
                    + a.get(2).textValue()));
            adjustments.put(Integer.parseInt(entry.getKey()), lines);
        });
        assertEquals(adjustments, outcome.adjustments, how + ": each series' late adjustments, in order, their "
                + "event counts and ids (one per window and watermark the late events came after)");
        assertEquals(late.size(), outcome.counted.getOrDefault(UsageRouting.BILLED_LATE, 0L),
                how + ": billed late counted");
        assertEquals(pastBilled, outcome.counted.getOrDefault(UsageRouting.WINDOWED, 0L),
                how + ": billed past the watermark counted");
        assertTrue(outcome.counted.keySet().stream().allMatch(k -> k.equals(UsageRouting.BILLED_LATE)
                || k.equals(UsageRouting.WINDOWED)), how);
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
