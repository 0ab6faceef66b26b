package io.meterstream.validation;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.rules.Rules;

/**
 * The usage parser's view of the price catalog: per tenant, per meter, the aggregation, the group_by dimensions
 * (sorted by code point) and the unique dimension. Built once per catalog from {@link JavaCatalog} (the one JSON
 * form of the catalog, {@code udfs.java_catalog.java_catalog_json}, parsed once per JVM) and shared by every task
 * of the JVM.
 */
final class MeterCatalog {
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

    /** The view of the catalog of this text: the text parsed once per JVM, the view built once per catalog. */
    static MeterCatalog of(String json) {
        return JavaCatalog.of(json).view(MeterCatalog.class, MeterCatalog::from);
    }

    /** Without the caches (tests). */
    static MeterCatalog parse(String json) {
        return from(JavaCatalog.parse(json));
    }

    static MeterCatalog from(JavaCatalog catalog) {
        Map<String, Map<String, Meter>> tenants = new HashMap<>();
        for (Map.Entry<String, JavaCatalog.Tenant> tenant : catalog.tenants().entrySet()) {
            Map<String, Meter> meters = new HashMap<>();
            for (Map.Entry<String, JavaCatalog.Meter> meter : tenant.getValue().meters.entrySet()) {
                JavaCatalog.Meter m = meter.getValue();
                String[] sorted = m.groupBy.stream().distinct().toArray(String[]::new);
                Arrays.sort(sorted, CanonicalJson.CODE_POINT_ORDER);
                meters.put(meter.getKey(), new Meter(m.aggregation, sorted, m.uniqueDimension));
            }
            tenants.put(tenant.getKey(), meters);
        }
        return new MeterCatalog(tenants);
    }
}
