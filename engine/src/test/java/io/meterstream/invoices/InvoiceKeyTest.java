package io.meterstream.invoices;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** {@link InvoiceKey}: the key read straight from the text is the parsed one, escapes and nested names included. */
class InvoiceKeyTest {
    @Test
    void theKeyOfEveryGoldenLineAndDrawdownIsTheParsedOne() {
        InvoiceKey key = new InvoiceKey();
        int records = 0;
        for (JsonNode c : GoldenVectors.load("invoices.json").get("cases")) {
            String expected = c.get("tenant_id").textValue() + InvoiceKey.SEPARATOR + c.get("customer_id").textValue();
            for (JsonNode s : c.get("steps")) {
                for (String field : new String[] {"line", "drawdown"}) {
                    if (s.has(field)) {
                        String json = s.get(field).textValue();
                        assertEquals(expected, key.getKey(json), json);
                        assertEquals(expected, InvoiceKey.readKey(json), json);
                        assertEquals(expected, InvoiceKey.parsedKey(json), json);
                        records++;
                    }
                }
            }
        }
        assertTrue(records > 1000);
    }

    @Test
    void aRecordKeyedAgainOnTheSameThreadGetsItsOwnKeyNeverTheLastRecordsOne() {
        InvoiceKey shuffle = new InvoiceKey();
        InvoiceKey sink = new InvoiceKey();
        String first = "{\"tenant_id\":\"t1\",\"customer_id\":\"c1\"}";
        String second = "{\"tenant_id\":\"t2\",\"customer_id\":\"c2\"}";
        assertEquals("t1" + InvoiceKey.SEPARATOR + "c1", shuffle.getKey(first));
        assertEquals("t1" + InvoiceKey.SEPARATOR + "c1", sink.getKey(first));
        assertEquals("t2" + InvoiceKey.SEPARATOR + "c2", sink.getKey(second));
        // an equal record in another String instance is read again, not taken from the last one by content
        String equalToSecond = new String(second.toCharArray());
        assertEquals("t2" + InvoiceKey.SEPARATOR + "c2", shuffle.getKey(equalToSecond));
        assertEquals("t1" + InvoiceKey.SEPARATOR + "c1", shuffle.getKey(first));
    }

    @Test
    void escapesAndNestedNamesAreLeftToTheParser() {
        InvoiceKey key = new InvoiceKey();
        String escaped = "{\"tenant_id\":\"a\\\"b\",\"customer_id\":\"c\\u00e9\"}";
        assertEquals("a\"b" + InvoiceKey.SEPARATOR + "c\u00e9", key.getKey(escaped));
        String nestedFirst = "{\"group\":{\"tenant_id\":\"x\"},\"tenant_id\":\"t\",\"customer_id\":\"c\"}";
        assertEquals("t" + InvoiceKey.SEPARATOR + "c", InvoiceKey.parsedKey(nestedFirst));
        assertEquals("t" + InvoiceKey.SEPARATOR + "c", key.getKey(nestedFirst));
        String customerNested = "{\"tenant_id\":\"t\",\"group\":{\"customer_id\":\"x\"},\"customer_id\":\"c\"}";
        assertEquals("t" + InvoiceKey.SEPARATOR + "c", key.getKey(customerNested));
    }
}
