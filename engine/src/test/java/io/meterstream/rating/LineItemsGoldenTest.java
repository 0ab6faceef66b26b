package io.meterstream.rating;

import static io.meterstream.golden.GoldenVectors.decimal;
import static io.meterstream.golden.GoldenVectors.text;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.api.Test;

/**
 * {@link RateLineItem#eval} against {@code udfs.window_rows.line_item_from_period_row} ({@code
 * golden/line-items.json}): every price entry of a catalog with every aggregation but unique_count, quantities at
 * and around tier bounds and package multiples, zero, 20-digit and decreasing quantities, tricky groups and
 * customer ids, window starts at and around period starts and DST changes. The JSON must be identical, byte for
 * byte: price entry, tier deltas, rounding adjustment, billing period, line item id, escaping.
 */
class LineItemsGoldenTest {
    @Test
    void everyLineItemIsThePythonOneByteForByte() {
        JsonNode golden = GoldenVectors.load("line-items.json");
        StringData catalog = StringData.fromString(golden.get("java_catalog_json").textValue());
        long emittedAt = golden.get("emitted_at_ms").longValue();
        RateLineItem rate = new RateLineItem();
        int cases = 0;
        for (JsonNode c : golden.get("cases")) {
            String where = c.toString();
            if (c.get("line_item").isNull()) {
                assertThrows(ArithmeticException.class, () -> eval(rate, c, catalog, emittedAt), where);
            } else {
                assertEquals(c.get("line_item").textValue(), eval(rate, c, catalog, emittedAt), where);
            }
            cases++;
        }
        assertTrue(cases >= 400, "golden vectors too small: " + cases);
    }

    private static String eval(RateLineItem rate, JsonNode c, StringData catalog, long emittedAt) {
        return rate.eval(text(c.get("tenant_id")), text(c.get("customer_id")), text(c.get("meter")),
                text(c.get("group_json")), text(c.get("aggregation")), c.get("window_start_ms").longValue(),
                c.get("event_count").longValue(), decimal(c.get("quantity")), text(c.get("last_key")),
                decimal(c.get("period_quantity_before")), decimal(c.get("period_quantity")),
                text(c.get("last_key_before")), catalog, c.get("window_size_ms").longValue(), emittedAt);
    }
}
