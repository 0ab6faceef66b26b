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
 * The rating's view of the price catalog: per tenant, currency, amount precision, billing period (anchor day, time
 * zone) and, per meter, the aggregation and the price entries. Built once per catalog from {@link JavaCatalog} (the
 * one JSON form of the catalog, {@code udfs.java_catalog.java_catalog_json}, parsed once per JVM) and shared by
 * every task of the JVM.
 */
final class RatingCatalog {
    static final class Meter {
        final String aggregation;
        /** Entries by descending specificity (stable): the first match is Python's most specific match. */
        final PriceEntry[] prices;

        Meter(String aggregation, PriceEntry[] prices) {
            this.aggregation = aggregation;
            this.prices = prices;
        }

        PriceEntry priceFor(String[] keys, String[] values, int n) {
            for (PriceEntry entry : prices) {
                if (entry.matches(keys, values, n)) {
                    return entry;
                }
            }
            throw new IllegalStateException("no price entry matches (the catalog must have a catch-all)");
        }
    }

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
        final String currency;
        final int amountPrecision;
        final int anchorDay;
        final ZoneId zone;
        final Map<String, Meter> meters;
        /** The last period computed: windows of one tenant mostly fall in the same period. */
        private volatile Period lastPeriod;

        Tenant(String currency, int amountPrecision, int anchorDay, ZoneId zone, Map<String, Meter> meters) {
            this.currency = currency;
            this.amountPrecision = amountPrecision;
            this.anchorDay = anchorDay;
            this.zone = zone;
            this.meters = meters;
        }

        /** Python's {@code udfs.periods.billing_period}, with {@link BillingPeriodStart}'s rules. */
        Period period(long instantMs) {
            Period cached = lastPeriod;
            if (cached != null && cached.startMs <= instantMs && instantMs < cached.endMs) {
                return cached;
            }
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
            JavaCatalog.Tenant t = e.getValue();
            Map<String, Meter> meters = new HashMap<>();
            for (Map.Entry<String, JavaCatalog.Meter> m : t.meters.entrySet()) {
                meters.put(m.getKey(), new Meter(m.getValue().aggregation, m.getValue().prices));
            }
            tenants.put(e.getKey(), new Tenant(t.currency, t.amountPrecision, t.anchorDay, t.zone, meters));
        }
        return new RatingCatalog(tenants);
    }
}
