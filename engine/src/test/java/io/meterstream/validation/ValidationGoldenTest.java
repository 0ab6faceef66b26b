package io.meterstream.validation;

import static io.meterstream.golden.GoldenVectors.text;
import static io.meterstream.golden.GoldenVectors.wire;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.rules.Rules;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * {@link UsageEventParser} (the parser of {@code PARSE_USAGE_EVENT} and of the Kafka source) against
 * {@code udfs.validation.validate_usage_record} and {@code udfs.grouping} ({@code golden/validation.json}: every
 * example message, hand-written edges where Jackson and Python's {@code json} could differ, and seeded near-valid
 * records reaching every reason, and records read from tenant topics). Per record: the same reason, the same field named by a structural detail, a
 * rejected record's (tenant_id, event_id) when both are valid, and for
 * a valid record the same ids, event time, value, aggregation, group_json, unique_token and fingerprint.
 */
class ValidationGoldenTest {
    private static final Pattern DETAIL_FIELD = Pattern.compile("^field '([^'.]*)");

    @Test
    void everyRecordGetsThePythonReasonAndColumns() {
        JsonNode golden = GoldenVectors.load("validation.json");
        MeterCatalog catalog = MeterCatalog.parse(golden.get("java_catalog_json").textValue());
        long now = golden.get("now_ms").longValue();
        long maxAge = golden.get("max_age_ms").longValue();
        long maxFuture = golden.get("max_future_ms").longValue();
        String prefix = golden.get("tenant_topic_prefix").textValue();
        UsageEventParser parser = new UsageEventParser();
        Set<String> reasons = new HashSet<>();
        int i = 0;
        for (JsonNode c : golden.get("cases")) {
            byte[] raw = c.get("raw").isNull() ? null : Base64.getDecoder().decode(c.get("raw").textValue());
            // a case with a topic was read from that tenant topic (udfs.validation.tenant_of_topic)
            String topicTenant = c.has("topic") ? TenantTopics.tenantOf(prefix, c.get("topic").textValue()) : null;
            UsageEventParser.Result r = parser.parse(raw, catalog, now, maxAge, maxFuture, topicTenant);
            String where = "case " + i + " " + c.get("raw") + " topic " + c.get("topic") + ": " + r.detail;
            String reason = text(c.get("reason"));
            assertEquals(reason, r.reasonCode(), where);
            reasons.add(String.valueOf(reason));
            if (reason != null) {
                assertNotNull(r.detail, where);
                Matcher m = DETAIL_FIELD.matcher(r.detail);
                assertEquals(text(c.get("detail_field")), m.find() ? m.group(1) : null, where + ": detail field");
                // the ids the correction ledger remembers a dead letter by (udfs.validation.rejected_record_ids)
                JsonNode ids = c.get("ids");
                assertEquals(ids.isNull() ? null : List.of(ids.get(0).textValue(), ids.get(1).textValue()),
                        r.tenantId == null || r.eventId == null ? null : List.of(r.tenantId, r.eventId),
                        where + ": ids");
            } else {
                assertEquals(text(c.get("event_id")), r.eventId, where);
                assertEquals(text(c.get("tenant_id")), r.tenantId, where);
                assertEquals(text(c.get("customer_id")), r.customerId, where);
                assertEquals(text(c.get("meter")), r.meter, where);
                assertEquals(c.get("event_time_ms").longValue(), r.eventTimeMs, where);
                assertEquals(text(c.get("value")), wire(r.value), where);
                assertEquals(text(c.get("aggregation")), r.aggregation, where);
                assertEquals(text(c.get("group_json")), r.groupJson, where);
                assertEquals(text(c.get("unique_token")), r.uniqueToken, where);
                assertEquals(text(c.get("fingerprint")), r.fingerprint, where);
            }
            i++;
        }
        // every reason and valid records are in the file
        assertEquals(Rules.REASON_COUNT + 1, reasons.size(), "reasons covered: " + reasons);
        assertTrue(i >= 2000, "golden vectors too small: " + i);
    }
}
