package io.meterstream.rating;

import java.io.IOException;
import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import io.meterstream.periods.BillingPeriodStart;
import io.meterstream.pricing.PriceEntry;
import io.meterstream.rules.Rules;
import io.meterstream.validation.ConstantArgumentCache;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The rating view of the price catalog, as written by {@code udfs.rating_catalog.rating_catalog_json}:
 * {@code {"format": "rating-v1", "tenants": {tenant: {currency, amount_precision, anchor_day, time_zone,
 * meters: {meter: {aggregation, unique_dimension}}, prices: {meter: [{id, match, model, ...parameters}]}}}}},
 * every decimal a string.
 *
 * <p>Parsed once per distinct text and shared by every task of the JVM (the text is a SQL constant). A text of
 * the wrong shape is a deployment error and fails the job (IllegalArgumentException). The Python loader
 * ({@code udfs.catalog}) validated the catalog; this class trusts its invariants (a catch-all entry per meter,
 * no equally specific ties, ordered tiers with an open-ended last one).
 */
final class RatingCatalog {
    static final String FORMAT = Rules.RATING_CATALOG_FORMAT;
    private static final ConstantArgumentCache<RatingCatalog> CACHE =
            new ConstantArgumentCache<>("BILLING_LINE_ITEM_JAVA", RatingCatalog::parse);
    private static final ObjectMapper MAPPER = new ObjectMapper();

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

    static RatingCatalog of(String json) {
        return CACHE.get(json);
    }

    static RatingCatalog parse(String json) {
        try {
            JsonNode root = MAPPER.readTree(json);
            if (!FORMAT.equals(text(root, "format"))) {
                throw new IllegalArgumentException("format must be '" + FORMAT + "'");
            }
            Map<String, Tenant> tenants = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = object(root, "tenants").fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                tenants.put(e.getKey(), parseTenant(e.getValue(), e.getKey()));
            }
            return new RatingCatalog(tenants);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(
                    "BILLING_LINE_ITEM_JAVA: catalog_json is not udfs.rating_catalog.rating_catalog_json(...): "
                            + e.getMessage(),
                    e);
        }
    }

    private static Tenant parseTenant(JsonNode node, String where) {
        JsonNode prices = object(node, "prices");
        Map<String, Meter> meters = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = object(node, "meters").fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode entries = prices.get(name);
            if (entries == null || !entries.isArray() || entries.size() == 0) {
                throw new IllegalArgumentException(where + ".prices." + name + ": a non-empty list is required");
            }
            List<PriceEntry> list = new ArrayList<>();
            for (JsonNode entry : entries) {
                list.add(PriceEntry.parse(entry, where + ".prices." + name));
            }
            PriceEntry[] sorted = list.toArray(new PriceEntry[0]);
            Arrays.sort(sorted, Comparator.comparingInt((PriceEntry p) -> p.matchKeys.length).reversed());
            meters.put(name, new Meter(text(e.getValue(), "aggregation"), sorted));
        }
        JsonNode precision = node.get("amount_precision");
        JsonNode anchor = node.get("anchor_day");
        if (precision == null || !precision.isInt() || precision.intValue() < 0
                || precision.intValue() > Rules.MAX_AMOUNT_PRECISION
                || anchor == null || !anchor.isInt() || anchor.intValue() < Rules.ANCHOR_DAY_MIN
                || anchor.intValue() > Rules.ANCHOR_DAY_MAX) {
            throw new IllegalArgumentException(where + ": amount_precision 0.." + Rules.MAX_AMOUNT_PRECISION
                    + " and anchor_day " + Rules.ANCHOR_DAY_MIN + ".." + Rules.ANCHOR_DAY_MAX + " required");
        }
        return new Tenant(text(node, "currency"), precision.intValue(), anchor.intValue(),
                ZoneId.of(text(node, "time_zone")), meters);
    }

    private static JsonNode object(JsonNode node, String field) {
        JsonNode v = node.get(field);
        if (v == null || !v.isObject()) {
            throw new IllegalArgumentException(field + ": an object is required");
        }
        return v;
    }

    private static String text(JsonNode node, String field) {
        JsonNode v = node.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(field + ": a string is required");
        }
        return v.textValue();
    }
}
