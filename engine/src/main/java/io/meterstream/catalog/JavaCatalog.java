package io.meterstream.catalog;

import java.io.IOException;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

import io.meterstream.pricing.PriceEntry;
import io.meterstream.rules.Rules;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The price catalog as the Java code reads it: the one JSON document {@code udfs.java_catalog.java_catalog_json}
 * writes (format {@link #FORMAT}, described in that module; example: {@code golden/java-catalog.json}), parsed
 * once per JVM per distinct text ({@link #of}) and shared by every task: the usage parser's view
 * ({@code io.meterstream.validation.MeterCatalog}) and the rating's ({@code io.meterstream.rating.RatingCatalog})
 * are built from it, each once per catalog ({@link #view}).
 *
 * <p>A document of another format or the wrong shape is a deployment error and fails the job
 * (IllegalArgumentException). The Python loader ({@code udfs.catalog}) validated the catalog; this class trusts its
 * invariants (a catch-all price entry per meter, no equally specific ties, ordered tiers with an open-ended last
 * one).
 */
public final class JavaCatalog {
    public static final String FORMAT = Rules.JAVA_CATALOG_FORMAT;
    /** Bounded, in case a SQL function is called with a column instead of a constant. */
    private static final int MAX_CACHED = 16;
    private static final Map<String, JavaCatalog> CACHE = new ConcurrentHashMap<>();
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** One meter: its aggregation, group_by (catalog order), unique dimension and price entries. */
    public static final class Meter {
        public final String aggregation;
        public final List<String> groupBy;
        /** Null unless the meter is unique_count. */
        public final String uniqueDimension;
        /** By descending specificity (stable): the first match is Python's most specific match. */
        public final PriceEntry[] prices;

        Meter(String aggregation, List<String> groupBy, String uniqueDimension, PriceEntry[] prices) {
            this.aggregation = aggregation;
            this.groupBy = groupBy;
            this.uniqueDimension = Rules.AGGREGATION_UNIQUE_COUNT.equals(aggregation) ? uniqueDimension : null;
            this.prices = prices;
        }
    }

    public static final class Tenant {
        public final String currency;
        public final int amountPrecision;
        public final int anchorDay;
        public final ZoneId zone;
        /** A period closes (its invoice is final) once the event-time clock reaches its end + this. */
        public final long periodGraceMs;
        public final Map<String, Meter> meters;

        Tenant(String currency, int amountPrecision, int anchorDay, ZoneId zone, long periodGraceMs,
                Map<String, Meter> meters) {
            this.currency = currency;
            this.amountPrecision = amountPrecision;
            this.anchorDay = anchorDay;
            this.zone = zone;
            this.periodGraceMs = periodGraceMs;
            this.meters = meters;
        }
    }

    private final Map<String, Tenant> tenants;
    private final Map<Class<?>, Object> views = new ConcurrentHashMap<>();

    private JavaCatalog(Map<String, Tenant> tenants) {
        this.tenants = Collections.unmodifiableMap(tenants);
    }

    public Map<String, Tenant> tenants() {
        return tenants;
    }

    /** The catalog of this text, parsed on its first use in this JVM and shared from then on. */
    public static JavaCatalog of(String json) {
        if (json == null) {
            throw new IllegalArgumentException("the catalog JSON must not be NULL");
        }
        JavaCatalog cached = CACHE.get(json);
        if (cached == null) {
            cached = parse(json);
            if (CACHE.size() >= MAX_CACHED) {
                CACHE.clear();
            }
            CACHE.put(json, cached);
        }
        return cached;
    }

    /**
     * A view of this catalog (a consumer's own index of it), built by {@code build} on first use and shared from then
     * on, one per view class.
     */
    public <T> T view(Class<T> type, Function<JavaCatalog, T> build) {
        return type.cast(views.computeIfAbsent(type, t -> build.apply(this)));
    }

    /** Parse without the cache (tests). */
    public static JavaCatalog parse(String json) {
        try {
            JsonNode root = MAPPER.readTree(json);
            if (root == null || !root.isObject()) {
                throw new IllegalArgumentException("an object is required");
            }
            if (!FORMAT.equals(text(root, "format"))) {
                throw new IllegalArgumentException("format must be '" + FORMAT + "'");
            }
            Map<String, Tenant> tenants = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = object(root, "tenants").fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                tenants.put(e.getKey(), parseTenant(e.getValue(), e.getKey()));
            }
            return new JavaCatalog(tenants);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(
                    "the catalog JSON is not udfs.java_catalog.java_catalog_json(...): " + e.getMessage(), e);
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
            meters.put(name, parseMeter(e.getValue(), where + ".meters." + name, sorted));
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
        JsonNode grace = node.get("period_grace_ms");
        if (grace == null || !grace.canConvertToLong() || grace.longValue() < 0) {
            throw new IllegalArgumentException(where + ".period_grace_ms: a whole number >= 0 is required");
        }
        return new Tenant(text(node, "currency"), precision.intValue(), anchor.intValue(),
                ZoneId.of(text(node, "time_zone")), grace.longValue(), Collections.unmodifiableMap(meters));
    }

    private static Meter parseMeter(JsonNode node, String where, PriceEntry[] prices) {
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(where + ": an object is required");
        }
        List<String> groupBy = new ArrayList<>();
        JsonNode group = node.get("group_by");
        if (group == null || !group.isArray()) {
            throw new IllegalArgumentException(where + ".group_by: a list is required");
        }
        for (JsonNode dimension : group) {
            if (!dimension.isTextual()) {
                throw new IllegalArgumentException(where + ".group_by: strings are required");
            }
            groupBy.add(dimension.textValue());
        }
        JsonNode unique = node.get("unique_dimension");
        if (unique != null && !unique.isNull() && !unique.isTextual()) {
            throw new IllegalArgumentException(where + ".unique_dimension: a string or null is required");
        }
        return new Meter(text(node, "aggregation"), Collections.unmodifiableList(groupBy),
                unique == null || unique.isNull() ? null : unique.textValue(), prices);
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
