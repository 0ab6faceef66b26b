package io.meterstream.invoices;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

/**
 * {@link InvoiceFolding} in a keyed operator harness, driven by {@code golden/invoices.json}: line items and
 * drawdowns as records, each close as a watermark (the stage's clock), the end of the input as the maximum watermark.
 * It writes the invoices {@code udfs.invoices} writes (emitted_at aside: wall-clock time), in order; refuses a line
 * for a closed invoice (the job fails loudly); and gives the same after a snapshot and restore in the middle (timers
 * and open invoices travel in the snapshot; the restored operator starts without a watermark until the next one).
 */
class InvoiceFoldingHarnessTest {
    private static final JsonNode VECTORS = GoldenVectors.load("invoices.json");

    @Test
    void theOperatorWritesTheSpecifiedInvoicesAtEachCloseAndPreviewsAtTheEnd() throws Exception {
        int invoices = 0;
        for (JsonNode c : VECTORS.get("cases")) {
            invoices += replay(c, -1);
        }
        assertTrue(invoices >= 200, "golden vectors too small: " + invoices);
    }

    @Test
    void aSnapshotAndRestoreInTheMiddleChangesNothing() throws Exception {
        for (JsonNode c : VECTORS.get("cases")) {
            replay(c, c.get("steps").size() / 2);
        }
    }

    private static int replay(JsonNode c, int restoreAt) throws Exception {
        var harness = open(null);
        long watermark = Long.MIN_VALUE;
        List<String> expected = new ArrayList<>();
        List<String> out = new ArrayList<>();
        int step = 0;
        for (JsonNode s : c.get("steps")) {
            String where = c.get("tenant_id").textValue() + " step " + step + ": " + s;
            if (step++ == restoreAt) {
                OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
                out.addAll(values(harness));
                harness.close();
                harness = open(snapshot);
                if (watermark != Long.MIN_VALUE) {
                    harness.processWatermark(watermark);  // the source's clock comes again after a restore
                }
                assertTrue(values(harness).isEmpty(), where + ": nothing closes twice");
            }
            if (s.has("line") || s.has("drawdown")) {
                long clock = s.get("clock_ms").longValue();
                if (clock > watermark) {
                    harness.processWatermark(clock);
                    watermark = clock;
                }
                String record = s.has("line") ? s.get("line").textValue() : s.get("drawdown").textValue();
                if (s.has("error")) {
                    var h = harness;
                    assertThrows(IllegalStateException.class, () -> h.processElement(new StreamRecord<>(record, 0L)),
                            where);
                } else {
                    harness.processElement(new StreamRecord<>(record, 0L));
                }
            } else {
                long to = s.has("close_ms") ? s.get("close_ms").longValue() : Long.MAX_VALUE;
                if (to > watermark) {
                    harness.processWatermark(to);
                    watermark = to;
                }
                for (JsonNode i : s.get("invoices")) {
                    expected.add(withoutEmittedAt(i.textValue()));
                }
            }
        }
        out.addAll(values(harness));
        harness.close();
        assertEquals(expected, out, c.get("tenant_id").textValue() + "/" + c.get("customer_id").textValue());
        return out.size();
    }

    private static List<String> values(KeyedOneInputStreamOperatorTestHarness<String, String, String> harness) {
        List<String> out = new ArrayList<>();
        for (String invoice : harness.extractOutputValues()) {
            out.add(withoutEmittedAt(invoice));
        }
        return out;
    }

    private static String withoutEmittedAt(String invoice) {
        return invoice.replaceFirst(",\"emitted_at\":\"[^\"]*\"}$", "}");
    }

    private static KeyedOneInputStreamOperatorTestHarness<String, String, String> open(
            OperatorSubtaskState restored) throws Exception {
        InvoiceFolding operator = new InvoiceFolding(VECTORS.get("java_catalog_json").textValue(),
                400L * 86_400_000L);
        InvoiceKey key = new InvoiceKey();
        var harness = new KeyedOneInputStreamOperatorTestHarness<>(operator, key, key.getProducedType());
        if (restored != null) {
            harness.initializeState(restored);
        }
        harness.open();
        return harness;
    }
}
