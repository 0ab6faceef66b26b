package io.meterstream.rating;

import static io.meterstream.golden.GoldenVectors.decimal;
import static io.meterstream.golden.GoldenVectors.text;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.api.Test;

/**
 * {@link RateLineItem#correctionLine} against {@code udfs.line_items.accumulate_correction} ({@code
 * golden/correction-lines.json}): corrections of one fired window after one watermark, around each period's close
 * (correction or prior-period adjustment, invoice ids), every price entry of every folded aggregation, a series
 * without a period state before, negative lines and tier crossings. The JSON must be identical, byte for byte.
 */
class CorrectionLinesGoldenTest {
    @Test
    void everyCorrectionLineIsThePythonOneByteForByte() {
        JsonNode golden = GoldenVectors.load("correction-lines.json");
        StringData catalog = StringData.fromString(golden.get("java_catalog_json").textValue());
        long emittedAt = golden.get("emitted_at_ms").longValue();
        RateLineItem rate = new RateLineItem();
        int cases = 0;
        for (JsonNode c : golden.get("cases")) {
            assertEquals(c.get("line_item").textValue(), eval(rate, c, catalog, emittedAt), c.toString());
            cases++;
        }
        assertTrue(cases >= 400, "golden vectors too small: " + cases);
    }

    @Test
    void aCorrectionLineNeedsItsWatermarkAndACorrection() {
        JsonNode golden = GoldenVectors.load("correction-lines.json");
        StringData catalog = StringData.fromString(golden.get("java_catalog_json").textValue());
        JsonNode c = golden.get("cases").get(0);
        RateLineItem rate = new RateLineItem();
        assertThrows(RuntimeException.class, () -> rate.correctionLine(text(c.get("tenant_id")),
                text(c.get("customer_id")), text(c.get("meter")), text(c.get("group_json")),
                c.get("window_start_ms").longValue(), 1, BigDecimal.ONE, null, BigDecimal.ONE, catalog,
                c.get("window_size_ms").longValue(), RateLineItem.NO_WATERMARK, 0L));
        assertThrows(RuntimeException.class, () -> rate.correctionLine(text(c.get("tenant_id")),
                text(c.get("customer_id")), text(c.get("meter")), text(c.get("group_json")),
                c.get("window_start_ms").longValue(), 0, BigDecimal.ONE, null, BigDecimal.ONE, catalog,
                c.get("window_size_ms").longValue(), c.get("watermark_ms").longValue(), 0L));
    }

    private static String eval(RateLineItem rate, JsonNode c, StringData catalog, long emittedAt) {
        return rate.correctionLine(text(c.get("tenant_id")), text(c.get("customer_id")), text(c.get("meter")),
                text(c.get("group_json")), c.get("window_start_ms").longValue(), c.get("corrections").longValue(),
                decimal(c.get("quantity")), decimal(c.get("period_quantity_before")),
                decimal(c.get("period_quantity")), catalog, c.get("window_size_ms").longValue(),
                c.get("watermark_ms").longValue(), emittedAt);
    }
}
