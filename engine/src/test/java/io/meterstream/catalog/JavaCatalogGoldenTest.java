package io.meterstream.catalog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.pricing.PriceEntry;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * {@link JavaCatalog} reads the checked-in example of the one JSON form of the catalog ({@code golden/java-catalog.json},
 * written by {@code udfs.java_catalog.java_catalog_json} from the golden catalog) as Python says each consumer must
 * see it: the parser's fields (aggregation, group_by, unique dimension) and the rating's (tenant settings, price
 * entries most specific first); it parses a text once per JVM and builds each view once per catalog.
 */
class JavaCatalogGoldenTest {
    private static final JsonNode GOLDEN = GoldenVectors.load("java-catalog.json");
    private static final String TEXT = GOLDEN.get("java_catalog_json").textValue();

    @Test
    void everyTenantAndMeterAsPythonWroteThem() {
        JavaCatalog catalog = JavaCatalog.parse(TEXT);
        JsonNode parser = GOLDEN.get("parser_view");
        JsonNode rating = GOLDEN.get("rating_view");
        assertEquals(names(parser), catalog.tenants().keySet());
        int meters = 0;
        for (Map.Entry<String, JavaCatalog.Tenant> t : catalog.tenants().entrySet()) {
            JavaCatalog.Tenant tenant = t.getValue();
            JsonNode r = rating.get(t.getKey());
            assertEquals(r.get("currency").textValue(), tenant.currency);
            assertEquals(r.get("amount_precision").intValue(), tenant.amountPrecision);
            assertEquals(r.get("anchor_day").intValue(), tenant.anchorDay);
            assertEquals(r.get("time_zone").textValue(), tenant.zone.getId());
            assertEquals(names(parser.get(t.getKey())), tenant.meters.keySet());
            for (Map.Entry<String, JavaCatalog.Meter> m : tenant.meters.entrySet()) {
                String where = t.getKey() + "." + m.getKey();
                JavaCatalog.Meter meter = m.getValue();
                JsonNode p = parser.get(t.getKey()).get(m.getKey());
                assertEquals(p.get("aggregation").textValue(), meter.aggregation, where);
                assertEquals(texts(p.get("group_by")), meter.groupBy.stream().distinct().sorted().toList(), where);
                assertEquals(GoldenVectors.text(p.get("unique_dimension")), meter.uniqueDimension, where);
                List<String> ids = new ArrayList<>();
                for (PriceEntry entry : meter.prices) {
                    ids.add(entry.id);
                }
                assertEquals(texts(r.get("meters").get(m.getKey()).get("price_ids")), ids, where);
                meters++;
            }
        }
        assertTrue(meters >= 5, "meters read: " + meters);
        assertTrue(TEXT.contains("\"format\":\"" + JavaCatalog.FORMAT + "\""), TEXT);
    }

    @Test
    void parsedOncePerTextAndEachViewBuiltOnce() {
        JavaCatalog first = JavaCatalog.of(new String(TEXT));
        assertSame(first, JavaCatalog.of(new String(TEXT)), "one parse per distinct text");
        int[] builds = {0};
        Object view = first.view(StringBuilder.class, c -> {
            builds[0]++;
            return new StringBuilder();
        });
        assertSame(view, first.view(StringBuilder.class, c -> {
            builds[0]++;
            return new StringBuilder();
        }));
        assertEquals(1, builds[0]);
    }

    @Test
    void anotherFormatOrShapeFailsTheJob() {
        String older = TEXT.replace("\"format\":\"" + JavaCatalog.FORMAT + "\"", "\"format\":\"rating-v1\"");
        assertThrows(IllegalArgumentException.class, () -> JavaCatalog.parse(older));
        assertThrows(IllegalArgumentException.class, () -> JavaCatalog.parse("{\"acme-ai\": {}}"));
        assertThrows(IllegalArgumentException.class, () -> JavaCatalog.parse(TEXT.replace("\"group_by\":[", "\"group_by\":{\"x\":[")));
        assertThrows(IllegalArgumentException.class, () -> JavaCatalog.of(null));
    }

    private static java.util.Set<String> names(JsonNode object) {
        java.util.Set<String> out = new java.util.HashSet<>();
        for (Iterator<String> it = object.fieldNames(); it.hasNext();) {
            out.add(it.next());
        }
        return out;
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        for (JsonNode n : array) {
            out.add(n.textValue());
        }
        return out;
    }
}
