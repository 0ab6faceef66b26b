package io.meterstream.rating;

import io.meterstream.catalog.JavaCatalog;

/**
 * The catalog's billing periods and tenant settings for stages outside rating (the invoice stage): the same
 * {@link RatingCatalog} view, so a period has one Java computation ({@code udfs.periods.billing_period}'s twin).
 */
public final class RatingPeriods {
    private final RatingCatalog catalog;

    private RatingPeriods(RatingCatalog catalog) {
        this.catalog = catalog;
    }

    /** The view of {@code udfs.java_catalog.java_catalog_json(catalog)}, parsed once per JVM. */
    public static RatingPeriods of(String catalogJson) {
        return new RatingPeriods(RatingCatalog.of(catalogJson));
    }

    /** The tenant's settings (currency, billing period's grace); unknown tenants are an error. */
    public JavaCatalog.Tenant tenant(String tenantId) {
        return catalog.tenant(tenantId).settings;
    }

    /** The start of the tenant's billing period containing {@code instantMs}. */
    public long startMs(String tenantId, long instantMs) {
        return catalog.tenant(tenantId).period(instantMs).startMs;
    }

    /** The end (exclusive) of the tenant's billing period containing {@code instantMs}. */
    public long endMs(String tenantId, long instantMs) {
        return catalog.tenant(tenantId).period(instantMs).endMs;
    }
}
