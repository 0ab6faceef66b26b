package io.meterstream.invoices;

import java.io.IOException;

import io.meterstream.validation.ParseUsageEvent;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

/**
 * The invoice stage's key, {@code tenant_id + U+001F + customer_id}, read from a line item's or a drawdown's wire
 * JSON (reading stops once both are found: they come early in both records). The credits ledger keys alike
 * ({@code jobs.credits.customer_key}).
 */
public final class InvoiceKey implements KeySelector<String, String> {
    private static final long serialVersionUID = 1L;
    static final char SEPARATOR = '\u001f';

    /**
     * The last record keyed on this thread and its key: a record is keyed twice in the same thread, by the shuffle
     * to the invoice stage and by its Kafka sink's serializer ({@code WriteTimeSerializer}), each with its own
     * instance; the second finds the same String here (compared by identity, so never another record's key).
     */
    private static final ThreadLocal<Object[]> LAST_KEYED = ThreadLocal.withInitial(() -> new Object[2]);

    @Override
    public String getKey(String json) {
        Object[] last = LAST_KEYED.get();
        if (last[0] == json) {
            return (String) last[1];
        }
        String key = readKey(json);
        last[0] = json;
        last[1] = key;
        return key;
    }

    /**
     * Our writers put both ids early, without spaces: read them straight from the text when both are plainly at the
     * top level and neither holds an escape (a parser cost 3 % of the job's CPU); else parse.
     */
    static String readKey(String json) {
        int tenantAt = json.indexOf(TENANT_MARKER);
        int customerAt = tenantAt < 0 ? -1 : json.indexOf(CUSTOMER_MARKER);
        if (customerAt < 0 || opensBefore(json, Math.max(tenantAt, customerAt))) {
            return parsedKey(json);
        }
        String tenant = plainValue(json, tenantAt + TENANT_MARKER.length());
        String customer = tenant == null ? null : plainValue(json, customerAt + CUSTOMER_MARKER.length());
        return customer == null ? parsedKey(json) : tenant + SEPARATOR + customer;
    }

    private static final String TENANT_MARKER = "\"tenant_id\":\"";
    private static final String CUSTOMER_MARKER = "\"customer_id\":\"";

    /** Whether an object or array opens before {@code at} (after the record's own brace): then a marker found there
     * is not surely a top-level field. */
    private static boolean opensBefore(String json, int at) {
        for (int i = 1; i < at; i++) {
            char c = json.charAt(i);
            if (c == '{' || c == '[') {
                return true;
            }
        }
        return false;
    }

    /** The string value starting at {@code start} up to the next quote, or null when it holds a backslash (an
     * escape: then the parser decides) or does not end. */
    static String plainValue(String json, int start) {
        int end = json.indexOf('"', start);
        int slash = json.indexOf('\\', start);
        if (end < 0 || (slash >= 0 && slash < end)) {
            return null;
        }
        return json.substring(start, end);
    }

    static String parsedKey(String json) {
        String tenant = null;
        String customer = null;
        try (JsonParser p = ParseUsageEvent.JSON.createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IllegalArgumentException("not a JSON object: " + json);
            }
            while ((tenant == null || customer == null) && p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                if ("tenant_id".equals(name)) {
                    tenant = p.getText();
                } else if ("customer_id".equals(name)) {
                    customer = p.getText();
                } else {
                    p.skipChildren();
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("unreadable record: " + json, e);
        }
        if (tenant == null || customer == null) {
            throw new IllegalArgumentException("record without tenant_id and customer_id: " + json);
        }
        return tenant + SEPARATOR + customer;
    }

    public TypeInformation<String> getProducedType() {
        return Types.STRING;
    }

    /** The (tenant, customer) of a key. */
    static String[] owner(String key) {
        int at = key.indexOf(SEPARATOR);
        return new String[] {key.substring(0, at), key.substring(at + 1)};
    }
}
