package io.meterstream.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.api.Test;

/**
 * {@link DedupTable} against {@code udfs.dedup} ({@code golden/dedup.json}): every copy, looked up under the
 * {@link HashedKey} of (tenant_id, event_id) in its bucket's table at its processing time with the first 64 bits of
 * its fingerprint, gets the recorded outcome; at the end the tables remember exactly the keys the specification
 * does, and none once the last horizon has passed.
 */
class DedupTableGoldenTest {
    static final JsonNode VECTORS = GoldenVectors.load("dedup.json");

    /** The outcome names of {@code udfs.dedup}: first, or the operator's duplicate counts. */
    static final String FIRST = "first";

    @Test
    void everyCopyGetsTheSpecifiedOutcomeAndTheTablesForgetAtTheHorizon() {
        for (JsonNode stream : VECTORS.get("streams")) {
            long ttl = stream.get("ttl_ms").longValue();
            Map<Integer, byte[]> tables = new HashMap<>();
            DedupTable.Lookup lookup = new DedupTable.Lookup();
            long last = Long.MIN_VALUE;
            for (JsonNode record : stream.get("records")) {
                Tuple2<Long, Long> key = eventKey(record);
                long fingerprint = UsageRouting.fingerprint64(StringData.fromString(
                        record.get("fingerprint").textValue()));
                long now = record.get("processing_time_ms").longValue();
                int bucket = UsageDedupKey.bucket(key.f0);
                lookup.table = tables.get(bucket);
                DedupTable.recordFirst(lookup, key.f0, key.f1, fingerprint, now, ttl);
                tables.put(bucket, lookup.table);
                String outcome = !lookup.seenBefore ? FIRST : lookup.firstFingerprint == fingerprint
                        ? UsageRouting.DUPLICATE_SAME_PAYLOAD : UsageRouting.DUPLICATE_CONFLICTING_PAYLOAD;
                assertEquals(record.get("outcome").textValue(), outcome, record.toString());
                last = Math.max(last, now);
            }
            assertEquals(stream.get("live_at_end").intValue(), live(tables, last, ttl), "remembered at the end");
            assertEquals(0, live(tables, stream.get("horizon_end_ms").longValue(), ttl), "after the last horizon");
        }
    }

    static Tuple2<Long, Long> eventKey(JsonNode record) {
        return UsageDedupKey.eventKey(StringData.fromString(record.get("tenant_id").textValue()),
                StringData.fromString(record.get("event_id").textValue()));
    }

    private static int live(Map<Integer, byte[]> tables, long now, long ttl) {
        int live = 0;
        for (byte[] table : tables.values()) {
            live += DedupTable.live(table, now, ttl);
        }
        return live;
    }
}
