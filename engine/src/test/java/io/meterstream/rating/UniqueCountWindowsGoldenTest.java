package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.routing.HashedKey;
import io.meterstream.routing.WindowedUsage;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.table.data.StringData;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;
import org.junit.jupiter.api.Test;

/**
 * The unique_count window rule against {@code udfs.aggregations} ({@code golden/unique-windows.json}): the events of
 * one series, each with the token the parser writes for its counted value (or none), through {@link WindowRating} in
 * Flink's keyed operator harness; each fired window (side output {@code unique-count-windows}, for the Python
 * period accumulator) carries the event count and exactly the distinct tokens of its events.
 */
class UniqueCountWindowsGoldenTest {
    private static final JsonNode VECTORS = GoldenVectors.load("unique-windows.json");
    private static final String CATALOG = GoldenVectors.load("lateness.json").get("java_catalog_json").textValue();
    private static final OutputTag<Row> UNIQUE = new OutputTag<>("unique-count-windows", Types.GENERIC(Row.class));
    private static final OutputTag<Row> LATE = new OutputTag<>("late", Types.GENERIC(Row.class));
    private static final OutputTag<Row> ACCOUNTING = new OutputTag<>("accounting", Types.GENERIC(Row.class));

    @Test
    void everyFiredWindowHoldsTheDistinctTokensOfItsEvents() throws Exception {
        long windowMs = VECTORS.get("window_size_ms").longValue();
        int index = 0;
        for (JsonNode series : VECTORS.get("series")) {
            WindowRating operator = new WindowRating(CATALOG, windowMs, 86_400_000L, 35L * 86_400_000L, UNIQUE, LATE, ACCOUNTING);
            MeterKey key = new MeterKey();
            var harness = new KeyedOneInputStreamOperatorTestHarness<>(operator, key, key.getProducedType());
            harness.open();
            for (JsonNode event : series.get("events")) {
                WindowedUsage record = usage(event.get(0).longValue(), GoldenVectors.text(event.get(3)));
                harness.processElement(new StreamRecord<>(record, record.eventTimeMs));
            }
            harness.processWatermark(Long.MAX_VALUE);
            List<String> fired = new ArrayList<>();
            if (harness.getSideOutput(UNIQUE) != null) {
                for (StreamRecord<Row> window : harness.getSideOutput(UNIQUE)) {
                    Row row = window.getValue();
                    String tokens = (String) row.getField(8);  // UNIQUE_COUNT_WINDOW_TYPE's unique_tokens
                    fired.add(row.getField(5) + " " + row.getField(7) + " "
                            + new TreeSet<>(tokens == null ? List.of() : Arrays.asList(tokens.split(",", -1))));
                }
            }
            List<String> expected = new ArrayList<>();
            for (JsonNode window : series.get("windows")) {
                TreeSet<String> tokens = new TreeSet<>();
                window.get("tokens").forEach(t -> tokens.add(t.textValue()));
                expected.add(window.get("window_start_ms").longValue() + " " + window.get("event_count").longValue()
                        + " " + tokens);
            }
            assertEquals(expected, fired, "series " + index);
            harness.close();
            index++;
        }
    }

    private static WindowedUsage usage(long eventTimeMs, String token) {
        WindowedUsage out = new WindowedUsage();
        Tuple2<Long, Long> key = new HashedKey().part(StringData.fromString("acme-ai"))
                .part(StringData.fromString("c1")).part(StringData.fromString("active_users"))
                .part(StringData.fromString("{}")).key();
        out.seriesHi = key.f0;
        out.seriesLo = key.f1;
        out.tenantId = "acme-ai".getBytes(StandardCharsets.UTF_8);
        out.customerId = "c1".getBytes(StandardCharsets.UTF_8);
        out.meter = "active_users".getBytes(StandardCharsets.UTF_8);
        out.groupJson = "{}".getBytes(StandardCharsets.UTF_8);
        out.aggregation = WindowedUsage.UNIQUE_COUNT;
        out.eventTimeMs = eventTimeMs;
        out.uniqueToken = token == null ? null : token.getBytes(StandardCharsets.UTF_8);
        return out;
    }
}
