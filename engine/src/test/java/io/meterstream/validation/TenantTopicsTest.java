package io.meterstream.validation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.api.Test;

/**
 * {@link TenantTopics} and the tenant check through {@link UsageRows} (what the Kafka source's deserializer calls):
 * the precedence itself is replayed from {@code golden/validation.json} by {@link ValidationGoldenTest}.
 */
class TenantTopicsTest {
    private static final String PREFIX = "usage-events.";

    @Test
    void theTenantIsTheTopicNameAfterThePrefix() {
        assertEquals("acme-ai", TenantTopics.tenantOf(PREFIX, "usage-events.acme-ai"));
        assertEquals("a.b", TenantTopics.tenantOf(PREFIX, "usage-events.a.b"));
        assertThrows(IllegalArgumentException.class, () -> TenantTopics.tenantOf(PREFIX, "usage-events."));
        assertThrows(IllegalArgumentException.class, () -> TenantTopics.tenantOf(PREFIX, "usage-events"));
        assertThrows(IllegalArgumentException.class, () -> TenantTopics.tenantOf(PREFIX, "other.acme-ai"));
        assertThrows(IllegalArgumentException.class, () -> TenantTopics.tenantOf("", "acme-ai"));
    }

    @Test
    void aRecordOfAnotherTenantIsDeadLetteredNamingBoth() {
        JsonNode golden = GoldenVectors.load("validation.json");
        UsageRows rows = new UsageRows(golden.get("java_catalog_json").textValue(), golden.get("now_ms").longValue(),
                golden.get("max_age_ms").longValue(), golden.get("max_future_ms").longValue());
        rows.open();
        byte[] record = ("{\"event_id\":\"e\",\"tenant_id\":\"acme-ai\",\"customer_id\":\"c\",\"meter\":\"requests\","
                + "\"timestamp\":\"2026-11-24T11:00:00Z\"}").getBytes(StandardCharsets.UTF_8);
        StringData topic = StringData.fromString("usage-events.globex");
        int reason = UsageEventDeserializer.COORDINATES.length;
        GenericRowData foreign = rows.row(record, topic, 0, 7, null, TenantTopics.tenantOf(PREFIX, topic.toString()));
        assertEquals("tenant_mismatch", foreign.getString(reason).toString());
        assertEquals("tenant_id 'acme-ai' is not 'globex', the tenant of the topic the record was read from",
                foreign.getString(reason + 1).toString());
        assertEquals("acme-ai", foreign.getString(reason + 3).toString()); // the ids stay (the correction ledger)
        GenericRowData own = rows.row(record, StringData.fromString("usage-events.acme-ai"), 0, 8, null, "acme-ai");
        assertNull(own.getString(reason));
        GenericRowData shared = rows.row(record, StringData.fromString("usage-events"), 0, 9, null);
        assertNull(shared.getString(reason)); // no tenant topic: no tenant check, as before
    }
}
