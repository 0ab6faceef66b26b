package io.meterstream.udf;

import java.io.IOException;
import java.math.BigDecimal;
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
    static final String FORMAT = "rating-v1";
    private static final ConstantArgumentCache<RatingCatalog> CACHE =
            new ConstantArgumentCache<>("BILLING_LINE_ITEM_JAVA", RatingCatalog::parse);
    private static final ObjectMapper MAPPER = new ObjectMapper();

    enum Model { PER_UNIT, PACKAGE, GRADUATED, VOLUME }

    static final class Tier {
        final BigDecimal lowerBound; // exclusive; 0 for the first tier, else the previous tier's up_to
        final BigDecimal upTo; // inclusive; null for the open-ended last tier
        final BigDecimal unitPrice;
        final BigDecimal flatFee;

        Tier(BigDecimal lowerBound, BigDecimal upTo, BigDecimal unitPrice, BigDecimal flatFee) {
            this.lowerBound = lowerBound;
            this.upTo = upTo;
            this.unitPrice = unitPrice;
            this.flatFee = flatFee;
        }
    }

    static final class PriceEntry {
        final String id;
        final String[] matchKeys;
        final String[] matchValues;
        final Model model;
        final BigDecimal unitPrice; // per_unit
        final BigDecimal packageSize; // package
        final BigDecimal packagePrice; // package
        final Tier[] tiers; // graduated, volume

        PriceEntry(String id, String[] matchKeys, String[] matchValues, Model model, BigDecimal unitPrice,
                BigDecimal packageSize, BigDecimal packagePrice, Tier[] tiers) {
            this.id = id;
            this.matchKeys = matchKeys;
            this.matchValues = matchValues;
            this.model = model;
            this.unitPrice = unitPrice;
            this.packageSize = packageSize;
            this.packagePrice = packagePrice;
            this.tiers = tiers;
        }

        /** Every match key present in the group (sorted keys/values of length n) with the same value. */
        boolean matches(String[] keys, String[] values, int n) {
            for (int m = 0; m < matchKeys.length; m++) {
                boolean found = false;
                for (int i = 0; i < n; i++) {
                    if (keys[i].equals(matchKeys[m])) {
                        found = values[i].equals(matchValues[m]);
                        break;
                    }
                }
                if (!found) {
                    return false;
                }
            }
            return true;
        }
    }

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
                list.add(parseEntry(entry, where + ".prices." + name));
            }
            PriceEntry[] sorted = list.toArray(new PriceEntry[0]);
            Arrays.sort(sorted, Comparator.comparingInt((PriceEntry p) -> p.matchKeys.length).reversed());
            meters.put(name, new Meter(text(e.getValue(), "aggregation"), sorted));
        }
        JsonNode precision = node.get("amount_precision");
        JsonNode anchor = node.get("anchor_day");
        if (precision == null || !precision.isInt() || precision.intValue() < 0 || precision.intValue() > 8
                || anchor == null || !anchor.isInt() || anchor.intValue() < 1 || anchor.intValue() > 31) {
            throw new IllegalArgumentException(where + ": amount_precision 0..8 and anchor_day 1..31 required");
        }
        return new Tenant(text(node, "currency"), precision.intValue(), anchor.intValue(),
                ZoneId.of(text(node, "time_zone")), meters);
    }

    private static PriceEntry parseEntry(JsonNode node, String where) {
        String id = text(node, "id");
        JsonNode match = object(node, "match");
        String[] keys = new String[match.size()];
        String[] values = new String[match.size()];
        int i = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = match.fields(); it.hasNext(); i++) {
            Map.Entry<String, JsonNode> e = it.next();
            keys[i] = e.getKey();
            if (!e.getValue().isTextual()) {
                throw new IllegalArgumentException(where + "." + id + ".match: values must be strings");
            }
            values[i] = e.getValue().textValue();
        }
        String model = text(node, "model");
        switch (model) {
            case "per_unit":
                return new PriceEntry(id, keys, values, Model.PER_UNIT, decimal(node, "unit_price"), null, null,
                        null);
            case "package":
                BigDecimal size = decimal(node, "package_size");
                if (size.signum() <= 0) {
                    throw new IllegalArgumentException(where + "." + id + ": package_size must be > 0");
                }
                return new PriceEntry(id, keys, values, Model.PACKAGE, null, size, decimal(node, "package_price"),
                        null);
            case "graduated":
            case "volume":
                JsonNode tiers = node.get("tiers");
                if (tiers == null || !tiers.isArray() || tiers.size() == 0) {
                    throw new IllegalArgumentException(where + "." + id + ": tiers required");
                }
                Tier[] out = new Tier[tiers.size()];
                BigDecimal lower = BigDecimal.ZERO;
                for (int t = 0; t < out.length; t++) {
                    JsonNode tier = tiers.get(t);
                    JsonNode upTo = tier.get("up_to");
                    BigDecimal up = upTo == null || upTo.isNull() ? null : decimal(tier, "up_to");
                    if ((up == null) != (t == out.length - 1)) {
                        throw new IllegalArgumentException(where + "." + id + ": only the last tier is open-ended");
                    }
                    out[t] = new Tier(lower, up, decimal(tier, "unit_price"), decimal(tier, "flat_fee"));
                    lower = up;
                }
                return new PriceEntry(id, keys, values, "graduated".equals(model) ? Model.GRADUATED : Model.VOLUME,
                        null, null, null, out);
            default:
                throw new IllegalArgumentException(where + "." + id + ": unknown model '" + model + "'");
        }
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

    /** Decimals travel as strings (never JSON numbers, which could pass through a double). */
    private static BigDecimal decimal(JsonNode node, String field) {
        return new BigDecimal(text(node, field));
    }
}
