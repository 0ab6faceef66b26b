package io.meterstream.rating;

import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.HashMap;
import java.util.Map;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.periods.BillingPeriodStart;
import io.meterstream.pricing.PriceEntry;

/**
 * The rating's view of the price catalog: per tenant, the parsed {@link JavaCatalog.Tenant} (currency, amount
 * precision, billing period's anchor day and time zone, meters with their aggregation and price entries, read from
 * it, never copied) and a cache of the last billing period computed. Built once per catalog from {@link JavaCatalog}
 * (the one JSON form of the catalog, {@code udfs.java_catalog.java_catalog_json}, parsed once per JVM) and shared by
 * every task of the JVM.
 */
final class RatingCatalog {
    /** A billing period [startMs, endMs) in UTC epoch ms. Immutable, so it can be cached across threads. */
    static final class Period {
        final long startMs;
        final long endMs;

        Period(long startMs, long endMs) {
            this.startMs = startMs;
            this.endMs = endMs;
        }
    }

    static final class Tenant {
        /** The tenant as the catalog was parsed: its settings and meters are read here, the one place they live. */
        final JavaCatalog.Tenant settings;
        /** The last period computed: windows of one tenant mostly fall in the same period. */
        private volatile Period lastPeriod;

        Tenant(JavaCatalog.Tenant settings) {
            this.settings = settings;
        }

        /** The meter of this name, or null when the tenant has none. */
        JavaCatalog.Meter meter(String name) {
            return settings.meters.get(name);
        }

        /** Python's {@code udfs.periods.billing_period}, with {@link BillingPeriodStart}'s rules. */
        Period period(long instantMs) {
            Period cached = lastPeriod;
            if (cached != null && cached.startMs <= instantMs && instantMs < cached.endMs) {
                return cached;
            }
            ZoneId zone = settings.zone;
            int anchorDay = settings.anchorDay;
            Instant instant = Instant.ofEpochMilli(instantMs);
            ZonedDateTime local = instant.atZone(zone);
            YearMonth month = YearMonth.of(local.getYear(), local.getMonthValue());
            Instant start = BillingPeriodStart.startOf(month, anchorDay, zone);
            if (instant.isBefore(start)) {
                month = month.minusMonths(1);
                start = BillingPeriodStart.startOf(month, anchorDay, zone);
            }
            Instant end = BillingPeriodStart.startOf(month.plusMonths(1), anchorDay, zone);
            Period period = new Period(start.toEpochMilli(), end.toEpochMilli());
            lastPeriod = period;
            return period;
        }
    }

    /**
     * The price entry of {@code meter} for a group (its keys and values, {@code n} of them): the first that matches,
     * its entries being ordered by descending specificity, which is Python's most specific match.
     */
    static PriceEntry priceFor(JavaCatalog.Meter meter, String[] keys, String[] values, int n) {
        for (PriceEntry entry : meter.prices) {
            if (entry.matches(keys, values, n)) {
                return entry;
            }
        }
        throw new IllegalStateException("no price entry matches (the catalog must have a catch-all)");
    }

    private final Map<String, Tenant> tenants;

    private RatingCatalog(Map<String, Tenant> tenants) {
        this.tenants = tenants;
    }

    Tenant tenant(String tenantId) {
        Tenant t = tenants.get(tenantId);
        if (t == null) {
            throw new IllegalArgumentException("unknown tenant '" + tenantId + "'");
        }
        return t;
    }

    /** The view of the catalog of this text: the text parsed once per JVM, the view built once per catalog. */
    static RatingCatalog of(String json) {
        return JavaCatalog.of(json).view(RatingCatalog.class, RatingCatalog::from);
    }

    static RatingCatalog from(JavaCatalog catalog) {
        Map<String, Tenant> tenants = new HashMap<>();
        for (Map.Entry<String, JavaCatalog.Tenant> e : catalog.tenants().entrySet()) {
            tenants.put(e.getKey(), new Tenant(e.getValue()));
        }
        return new RatingCatalog(tenants);
    }
}
