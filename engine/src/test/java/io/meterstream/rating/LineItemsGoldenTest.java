package io.meterstream.rating;

import java.math.BigDecimal;

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
 * {@link RateLineItem#eval} (through {@code windowLine}) and {@code lateAdjustment} against {@code
 * udfs.window_rows.line_item_from_period_row} ({@code golden/line-items.json}): usage lines, windows first opened
 * after a watermark and late events after one, around each period's close (end + grace: usage, late adjustment,
 * prior-period adjustment, invoice ids), every price entry of a catalog with every aggregation but unique_count, quantities at
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

    /**
     * A window's own line through {@link RateLineItem#windowLine} (the watermark it was first opened after, if any),
     * or late events' line through {@link RateLineItem#lateAdjustment} (with the period quantities as values: for a
     * last meter those inside the last keys, as the window operator passes them).
     */
    private static String eval(RateLineItem rate, JsonNode c, StringData catalog, long emittedAt) {
        JsonNode decided = c.get("decided_after_ms");
        long decidedAfter = decided.isNull() ? RateLineItem.NO_WATERMARK : decided.longValue();
        if (c.get("late").booleanValue()) {
            boolean last = "last".equals(text(c.get("aggregation")));
            String keyBefore = text(c.get("last_key_before"));
            BigDecimal before = last ? (keyBefore == null ? null : RateLineItem.lastValue(keyBefore))
                    : decimal(c.get("period_quantity_before"));
            BigDecimal after = last ? RateLineItem.lastValue(text(c.get("last_key"))) : decimal(c.get("period_quantity"));
            return rate.lateAdjustment(text(c.get("tenant_id")), text(c.get("customer_id")), text(c.get("meter")),
                    text(c.get("group_json")), c.get("window_start_ms").longValue(), c.get("event_count").longValue(),
                    decimal(c.get("quantity")), text(c.get("last_key")), before, after, catalog,
                    c.get("window_size_ms").longValue(), decidedAfter, emittedAt);
        }
        return rate.windowLine(text(c.get("tenant_id")), text(c.get("customer_id")), text(c.get("meter")),
                text(c.get("group_json")), text(c.get("aggregation")), c.get("window_start_ms").longValue(),
                c.get("event_count").longValue(), decimal(c.get("quantity")), text(c.get("last_key")),
                decimal(c.get("period_quantity_before")), decimal(c.get("period_quantity")),
                text(c.get("last_key_before")), catalog, c.get("window_size_ms").longValue(), emittedAt,
                decidedAfter);
    }
}
