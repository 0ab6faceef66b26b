package io.meterstream.validation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.rules.Rules;

import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.util.Collector;
import org.junit.jupiter.api.Test;

/**
 * The job tests' file source parses through production's code: for every record of {@code golden/validation.json}
 * that can be a line of a file, {@link UsageFileLines} gives the row {@link UsageEventDeserializer} gives for the
 * same bytes read from Kafka (partition 0, offset 0, no record timestamp), column for column.
 */
class UsageFileLinesTest {
    private static final String TOPIC = "usage-events";
    private static final String CATALOG = GoldenVectors.load("java-catalog.json").get("java_catalog_json").textValue();

    @Test
    void aLineBecomesTheRowTheKafkaDeserializerBuilds() {
        JsonNode golden = GoldenVectors.load("validation.json");
        String catalog = golden.get("java_catalog_json").textValue();
        long now = golden.get("now_ms").longValue();
        long maxAge = golden.get("max_age_ms").longValue();
        long maxFuture = golden.get("max_future_ms").longValue();
        UsageEventDeserializer kafka = new UsageEventDeserializer(catalog, now, maxAge, maxFuture, null);
        kafka.open(null);
        UsageFileLines file = UsageFileLines.create(catalog, now, maxAge, maxFuture, TOPIC, null);
        file.open(null);
        int compared = 0;
        int valid = 0;
        for (JsonNode c : golden.get("cases")) {
            if (c.get("raw").isNull()) {
                continue;  // a tombstone is no line
            }
            byte[] raw = Base64.getDecoder().decode(c.get("raw").textValue());
            if (contains(raw, (byte) '\n') || contains(raw, (byte) '\r')) {
                continue;  // a line break would split the record into lines
            }
            List<RowData> out = new ArrayList<>();
            kafka.deserialize(new ConsumerRecord<>(TOPIC, 0, 0L, null, raw), new Collector<>() {
                @Override
                public void collect(RowData row) {
                    out.add(row);
                }

                @Override
                public void close() {}
            });
            assertEquals(1, out.size());
            RowData fromFile = file.map(new String(raw, StandardCharsets.ISO_8859_1));
            assertEquals(out.get(0), fromFile, "case " + compared + " " + c.get("raw"));
            valid += fromFile.isNullAt(5) ? 1 : 0;
            compared++;
        }
        assertTrue(compared >= 2000, "records compared: " + compared);
        assertTrue(valid >= 100, "valid records compared: " + valid);
    }

    @Test
    void invalidUtf8SurvivesTheLine() {
        byte[] raw = {(byte) 0xff, (byte) 0xfe, ' ', 'x'};
        UsageFileLines file = UsageFileLines.create(CATALOG, 0L, 1L, 1L, TOPIC, null);
        file.open(null);
        GenericRowData row = (GenericRowData) file.map(new String(raw, StandardCharsets.ISO_8859_1));
        assertEquals(new String(raw, StandardCharsets.ISO_8859_1),
                new String((byte[]) row.getField(0), StandardCharsets.ISO_8859_1));
        assertEquals(Rules.reasonCode(Rules.REASON_NOT_UTF8), row.getString(5).toString());
    }

    @Test
    void ingestionTimeComesFromTheTestField() {
        UsageFileLines file = UsageFileLines.create(CATALOG, 0L, 1L, 1L, TOPIC, null);
        file.open(null);
        RowData row = file.map("{\"event_id\": \"e1\", \"_ingested_ms\": 1795500000123}");
        assertEquals(1_795_500_000_123L, row.getLong(4));
        assertEquals(TOPIC, row.getString(1).toString());
        assertEquals(0, row.getInt(2));
        assertEquals(0L, row.getLong(3));
        assertTrue(file.map("{\"event_id\": \"e1\"}").isNullAt(4));

        assertEquals(42L, UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": 42}")));
        assertEquals(42L, UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": \"42\"}")));
        assertEquals(7L, UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": 42, \"a\": [1, {}], \"_ingested_ms\": 7}")));
        assertNull(UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": 4.5}")));
        assertNull(UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": \"soon\"}")));
        assertNull(UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": 123456789012345678901234}")));
        assertNull(UsageFileLines.ingestedMs(bytes("{\"d\": {\"_ingested_ms\": 42}}")), "top level only");
        assertNull(UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": 42, ")), "malformed");
        assertNull(UsageFileLines.ingestedMs(bytes("{\"_ingested_ms\": 42} {}")), "trailing data");
        assertNull(UsageFileLines.ingestedMs(bytes("[\"_ingested_ms\", 42]")));
        assertNull(UsageFileLines.ingestedMs(bytes("{\"event_id\": \"e1\"}")));
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static boolean contains(byte[] bytes, byte b) {
        for (byte x : bytes) {
            if (x == b) {
                return true;
            }
        }
        return false;
    }
}
