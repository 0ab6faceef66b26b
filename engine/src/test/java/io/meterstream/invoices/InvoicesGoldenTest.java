package io.meterstream.invoices;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.rating.RateLineItem;
import io.meterstream.rating.RatingPeriods;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * {@link CustomerInvoices} against {@code udfs.invoices} ({@code golden/invoices.json}): one customer's line items
 * (every kind, prior-period adjustments naming a later invoice, tricky groups and ids), credit drawdowns of every
 * kind (of the open period, of closed ones, of no line) and the clock advancing to, just before and just after each
 * close, then the end of the input. The invoices must be identical, byte for byte; a line for a closed invoice must
 * be refused. The state is written and read back between steps (its format restores what it held).
 */
class InvoicesGoldenTest {
    @Test
    void everyInvoiceIsThePythonOneByteForByte() throws Exception {
        JsonNode golden = GoldenVectors.load("invoices.json");
        RatingPeriods periods = RatingPeriods.of(golden.get("java_catalog_json").textValue());
        long emittedAt = golden.get("emitted_at_ms").longValue();
        RateLineItem ids = new RateLineItem();
        int invoices = 0;
        int refused = 0;
        for (JsonNode c : golden.get("cases")) {
            CustomerInvoices state = new CustomerInvoices(c.get("tenant_id").textValue(),
                    c.get("customer_id").textValue());
            int step = 0;
            for (JsonNode s : c.get("steps")) {
                String where = c.get("tenant_id").textValue() + " step " + step++ + ": " + s;
                if (s.has("line")) {
                    String line = s.get("line").textValue();
                    long clock = s.get("clock_ms").longValue();
                    if (s.has("error")) {
                        CustomerInvoices current = state;
                        assertThrows(IllegalStateException.class, () -> current.addLine(line, periods, ids, clock),
                                where);
                        refused++;
                        state = roundTrip(current);  // a refused line changed nothing the Python state holds
                        continue;
                    }
                    state.addLine(line, periods, ids, clock);
                } else if (s.has("drawdown")) {
                    state.addDrawdown(s.get("drawdown").textValue(), periods, ids, s.get("clock_ms").longValue());
                } else {
                    List<String> out = s.has("close_ms")
                            ? state.closeDue(s.get("close_ms").longValue(), emittedAt)
                            : state.endOfInput(emittedAt);
                    List<String> expected = new ArrayList<>();
                    s.get("invoices").forEach(i -> expected.add(i.textValue()));
                    assertEquals(expected, out, where);
                    invoices += out.size();
                }
                state = roundTrip(state);
            }
            assertTrue(state.isEmpty(), "the end of the input leaves nothing open");
        }
        assertTrue(invoices >= 200 && refused >= 20, "golden vectors too small: " + invoices + ", " + refused);
    }

    private static CustomerInvoices roundTrip(CustomerInvoices state) throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(64);
        state.write(out);
        return CustomerInvoices.read(new DataInputDeserializer(out.getCopyOfBuffer()));
    }
}
