package io.meterstream.validation;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import io.meterstream.rules.Rules;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

/**
 * The UDF's view of the price catalog: {@code {"<tenant>": {"<meter>": {"aggregation": "sum",
 * "group_by": ["model"], "unique_dimension": null}}}}, as built by {@code udfs.grouping.catalog_json}.
 *
 * <p>Parsed once per distinct text and shared by every task in the JVM (the text is a SQL constant).
 * A catalog that does not have this shape is a deployment error and fails the job (IllegalArgumentException).
 */
final class MeterCatalog {
    private static final ConstantArgumentCache<MeterCatalog> CACHE =
            new ConstantArgumentCache<>("PARSE_USAGE_EVENT", MeterCatalog::parse);

    /** One meter: its aggregation, its group_by dimensions (sorted by code point), its unique dimension. */
    static final class Meter {
        final String aggregation;
        final boolean valueOptional;
        final String[] groupBy;
        final String uniqueDimension;

        Meter(String aggregation, String[] groupBy, String uniqueDimension) {
            this.aggregation = aggregation;
            this.valueOptional = Rules.valueOptional(aggregation);
            this.groupBy = groupBy;
            this.uniqueDimension = Rules.AGGREGATION_UNIQUE_COUNT.equals(aggregation) ? uniqueDimension : null;
        }
    }

    private final Map<String, Map<String, Meter>> tenants;

    private MeterCatalog(Map<String, Map<String, Meter>> tenants) {
        this.tenants = tenants;
    }

    /** The tenant's meters, or null when the tenant is not in the catalog. */
    Map<String, Meter> tenant(String tenantId) {
        return tenants.get(tenantId);
    }

    static MeterCatalog of(String json) {
        return CACHE.get(json);
    }

    static MeterCatalog parse(String json) {
        try (JsonParser p = ParseUsageEvent.JSON.createParser(json)) {
            Map<String, Map<String, Meter>> tenants = new HashMap<>();
            expect(p.nextToken(), JsonToken.START_OBJECT, "the catalog");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String tenant = p.currentName();
                expect(p.nextToken(), JsonToken.START_OBJECT, "tenant " + tenant);
                Map<String, Meter> meters = new HashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String meter = p.currentName();
                    meters.put(meter, parseMeter(p, tenant + "." + meter));
                }
                tenants.put(tenant, meters);
            }
            if (p.nextToken() != null) {
                throw new IllegalArgumentException("trailing data after the catalog object");
            }
            return new MeterCatalog(tenants);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(
                    "PARSE_USAGE_EVENT: catalog_json is not {tenant: {meter: {aggregation, group_by, "
                            + "unique_dimension}}}: " + e.getMessage(),
                    e);
        }
    }

    private static Meter parseMeter(JsonParser p, String where) throws IOException {
        expect(p.nextToken(), JsonToken.START_OBJECT, where);
        String aggregation = null;
        List<String> groupBy = new ArrayList<>();
        String unique = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken t = p.nextToken();
            switch (name) {
                case "aggregation":
                    expect(t, JsonToken.VALUE_STRING, where + ".aggregation");
                    aggregation = p.getText();
                    break;
                case "group_by":
                    groupBy.clear();
                    if (t == JsonToken.VALUE_NULL) {
                        break;
                    }
                    expect(t, JsonToken.START_ARRAY, where + ".group_by");
                    while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
                        expect(t, JsonToken.VALUE_STRING, where + ".group_by[]");
                        groupBy.add(p.getText());
                    }
                    break;
                case "unique_dimension":
                    if (t != JsonToken.VALUE_NULL) {
                        expect(t, JsonToken.VALUE_STRING, where + ".unique_dimension");
                        unique = p.getText();
                    }
                    break;
                default:
                    p.skipChildren(); // forward compatible: more meter attributes may come
            }
        }
        if (aggregation == null) {
            throw new IllegalArgumentException(where + ": aggregation is required");
        }
        String[] sorted = groupBy.stream().distinct().toArray(String[]::new);
        Arrays.sort(sorted, CanonicalJson.CODE_POINT_ORDER);
        return new Meter(aggregation, sorted, unique);
    }

    private static void expect(JsonToken actual, JsonToken expected, String where) {
        if (actual != expected) {
            throw new IllegalArgumentException(where + ": expected " + expected + ", got " + actual);
        }
    }
}
