package io.meterstream.rating;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.money.Money;
import io.meterstream.periods.BillingPeriodStart;
import io.meterstream.pricing.PriceEntry;
import io.meterstream.pricing.Priced;
import io.meterstream.pricing.Rate;
import io.meterstream.pricing.TierCharge;
import io.meterstream.rules.Rules;
import io.meterstream.validation.CanonicalJson;
import io.meterstream.validation.ParseUsageEvent;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code BILLING_LINE_ITEM_JAVA(tenant_id, customer_id, meter, group_json, aggregation, window_start_ms BIGINT,
 * event_count BIGINT, quantity DECIMAL(38,18), last_key STRING, period_quantity_before DECIMAL(38,18),
 * period_quantity DECIMAL(38,18), last_key_before STRING, catalog_json STRING, window_size_ms BIGINT,
 * emitted_at_ms BIGINT) -> STRING}: one fired window with its period quantities before and after it -> the
 * {@code invoice-line-items} JSON.
 *
 * <p>The first twelve arguments are those of its Python reference
 * ({@code udfs.window_rows.line_item_from_period_row}), and the result is byte for byte
 * {@code udfs.line_items.rate_window(...).model_dump_json()} except {@code emitted_at} (the call's own clock):
 * the same price entry (most specific match), price models ({@code io.meterstream.pricing}), HALF_UP rounding of the period
 * totals, tier deltas, rounding adjustment, billing period ({@link BillingPeriodStart}'s rules, end = start of the
 * next period), uuid5 {@code line_item_id} over percent-encoded parts, and pydantic's compact JSON (fields in model
 * order, {@code group} keys in code point order, strings escaped as {@link CanonicalJson}). For {@code last} meters
 * the period quantities are the values inside {@code last_key} / {@code last_key_before}, as in Python.
 *
 * <ul>
 *   <li>{@code catalog_json}: {@code udfs.java_catalog.java_catalog_json(catalog)}, a constant; parsed once
 *       per JVM ({@code io.meterstream.catalog.JavaCatalog}, shared with the parser; its view {@link RatingCatalog}).
 *   <li>{@code window_size_ms}: the tumbling window size (window_end = window_start + size).
 *   <li>{@code emitted_at_ms}: NULL = the wall clock at each call.
 * </ul>
 *
 * <p>Failures are exceptions (they fail the job, as the Python function's would): unknown tenant or meter, a
 * {@code unique_count} meter (its distinct sets stay in Python), a NULL where Python has no default, an
 * arithmetic result that Python's 50-digit {@code exact} context would have to round.
 */
@FunctionHint(
        input = {
            @DataTypeHint("STRING"),
            @DataTypeHint("STRING"),
            @DataTypeHint("STRING"),
            @DataTypeHint("STRING"),
            @DataTypeHint("STRING"),
            @DataTypeHint("BIGINT"),
            @DataTypeHint("BIGINT"),
            @DataTypeHint("DECIMAL(38, 18)"),
            @DataTypeHint("STRING"),
            @DataTypeHint("DECIMAL(38, 18)"),
            @DataTypeHint("DECIMAL(38, 18)"),
            @DataTypeHint("STRING"),
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class),
            @DataTypeHint("BIGINT"),
            @DataTypeHint("BIGINT")
        },
        output = @DataTypeHint("STRING"))
public class RateLineItem extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    /** uuid5(NAMESPACE_URL, "urn:meterstream:invoice-line-item"): {@code udfs.line_items.LINE_ITEM_NAMESPACE}. */
    static final byte[] LINE_ITEM_NAMESPACE = uuidBytes(Rules.LINE_ITEM_NAMESPACE);
    /** uuid5(NAMESPACE_URL, "urn:meterstream:invoice"): {@code udfs.invoices.INVOICE_NAMESPACE}. */
    static final byte[] INVOICE_NAMESPACE = uuidBytes(Rules.INVOICE_NAMESPACE);
    static final String LINE_ITEM_ID_VERSION = Rules.LINE_ITEM_ID_VERSION;
    static final int LAST_KEY_TIME_DIGITS = Rules.LAST_KEY_TIME_DIGITS;
    private static final char[] HEX_LOWER = "0123456789abcdef".toCharArray();
    private static final char[] HEX_UPPER = "0123456789ABCDEF".toCharArray();

    private transient StringData lastCatalogArg;
    private transient StringData lastCatalogCopy;
    private transient RatingCatalog lastCatalog;

    /** A group_json parsed: its keys and values in code point order, its line item id text and its wire JSON. */
    private static final class ParsedGroup {
        final String[] keys;
        final String[] values;
        final int size;
        final String idText;
        final String wire;

        ParsedGroup(String[] keys, String[] values, int size, String idText, String wire) {
            this.keys = keys;
            this.values = values;
            this.size = size;
            this.idText = idText;
            this.wire = wire;
        }
    }

    /**
     * Groups parsed so far: a window fires its series in no useful order, so remembering only the previous call's
     * group missed nearly every time (1.5 % of the billing job's CPU, JFR), while a catalog's distinct groups are
     * few. Cleared when it reaches {@link #MAX_GROUPS}, so a high-cardinality group_by cannot grow it unbounded.
     */
    private static final int MAX_GROUPS = 4096;
    private transient Map<String, ParsedGroup> groups;
    /** The group of the current call. */
    private transient ParsedGroup group;

    private transient MessageDigest sha1;
    private transient StringBuilder out;
    private transient StringBuilder name;

    public String eval(String tenantId, String customerId, String meterName, String groupJson, String aggregation,
            Long windowStartMs, Long eventCount, BigDecimal quantity, String lastKey,
            BigDecimal periodQuantityBefore, BigDecimal periodQuantityAfter, String lastKeyBefore,
            StringData catalogJson, Long windowSizeMs, Long emittedAtMs) {
        return windowLine(tenantId, customerId, meterName, groupJson, aggregation, windowStartMs, eventCount, quantity,
                lastKey, periodQuantityBefore, periodQuantityAfter, lastKeyBefore, catalogJson, windowSizeMs,
                emittedAtMs, NO_WATERMARK);
    }

    /**
     * {@link #eval}'s line of a fired window, and {@code openedAfterMs}: the watermark its first record came after,
     * when that had passed the window already ({@link #NO_WATERMARK}: it had not). If the window's period had closed
     * by then (that watermark at or after its end + the tenant's grace), the line is a prior-period adjustment on
     * the customer's next open invoice ({@code udfs.line_items.line_kind}).
     */
    public String windowLine(String tenantId, String customerId, String meterName, String groupJson,
            String aggregation, Long windowStartMs, Long eventCount, BigDecimal quantity, String lastKey,
            BigDecimal periodQuantityBefore, BigDecimal periodQuantityAfter, String lastKeyBefore,
            StringData catalogJson, Long windowSizeMs, Long emittedAtMs, long openedAfterMs) {
        RatingCatalog catalog = catalog(catalogJson);
        require(tenantId != null && !tenantId.isEmpty(), "tenant_id must be a non-empty string");
        require(customerId != null && !customerId.isEmpty(), "customer_id must be a non-empty string");
        require(meterName != null && !meterName.isEmpty(), "meter must be a non-empty string");
        require(aggregation != null, "aggregation must not be NULL");
        require(windowStartMs != null && eventCount != null, "window_start_ms and event_count must not be NULL");
        require(windowSizeMs != null && windowSizeMs > 0, "window_size_ms must be > 0");
        require(eventCount >= 0, "event_count must be >= 0");
        RatingCatalog.Tenant tenant = catalog.tenant(tenantId);
        JavaCatalog.Meter meter = tenant.meter(meterName);
        require(meter != null, "unknown meter '" + meterName + "' of tenant '" + tenantId + "'");
        require(!Rules.AGGREGATION_UNIQUE_COUNT.equals(aggregation)
                && !Rules.AGGREGATION_UNIQUE_COUNT.equals(meter.aggregation),
                "unique_count windows are rated in Python (BILLING_LINE_ITEM)");
        group(groupJson);

        // window_aggregate_from_row (payload by the row's aggregation), then the meter's window_quantity.
        boolean rowLast = Rules.AGGREGATION_LAST.equals(aggregation);
        BigDecimal windowQuantity;
        if (Rules.AGGREGATION_LAST.equals(meter.aggregation)) {
            windowQuantity = rowLast && lastKey != null && !lastKey.isEmpty() ? lastValue(lastKey) : BigDecimal.ZERO;
        } else if (Rules.AGGREGATION_COUNT.equals(aggregation)) {
            windowQuantity = BigDecimal.valueOf(eventCount);
        } else if (rowLast || quantity == null) {
            windowQuantity = BigDecimal.ZERO;
        } else {
            windowQuantity = quantity;
        }
        BigDecimal before = periodQuantityBefore;
        BigDecimal after = periodQuantityAfter;
        // A window its corrections emptied while it was open (event_count 0) fires as udfs' accumulate_window bills
        // an empty window: a max/min/last window has no quantity, so the period keeps what it had (period_combine),
        // and a period without any is at 0 (period_quantity of nothing).
        boolean emptied = eventCount == 0;
        if (rowLast) {
            before = lastKeyBefore != null && !lastKeyBefore.isEmpty() ? lastValue(lastKeyBefore) : null;
            if (emptied && lastKey == null) {
                after = before;
            } else {
                require(lastKey != null, "last_key must not be NULL for a last meter");
                after = lastValue(lastKey);
            }
        }
        if (emptied && after == null) {
            after = BigDecimal.ZERO;
        }
        require(after != null, "period_quantity must not be NULL");

        return write(tenantId, customerId, meterName, tenant, meter, windowStartMs, eventCount, windowQuantity, before,
                after, windowSizeMs, emittedAtMs == null ? System.currentTimeMillis() : emittedAtMs, openedAfterMs,
                false, false);
    }

    /** No watermark: a window whose first record came before the watermark passed it. */
    public static final long NO_WATERMARK = Long.MIN_VALUE;

    /**
     * The late adjustment line of {@code udfs.line_items.accumulate_late}: the late events of one fired window that
     * came after watermark {@code watermarkMs} ({@code eventCount} of them, their window-rule {@code quantity}, or
     * for a last meter their {@code lastKey}), with the quantities of the window's period before and after them
     * (for a last meter: the values inside the period's last keys). The caller leaves out a group that changed
     * nothing (no line, as in Python).
     */
    public String lateAdjustment(String tenantId, String customerId, String meterName, String groupJson,
            long windowStartMs, long eventCount, BigDecimal quantity, String lastKey, BigDecimal periodQuantityBefore,
            BigDecimal periodQuantityAfter, StringData catalogJson, long windowSizeMs, long watermarkMs,
            long emittedAtMs) {
        RatingCatalog.Tenant tenant = catalog(catalogJson).tenant(tenantId);
        JavaCatalog.Meter meter = adjustedMeter(tenant, tenantId, meterName);
        require(periodQuantityAfter != null, "period_quantity must not be NULL");
        group(groupJson);
        BigDecimal windowQuantity;
        if (Rules.AGGREGATION_LAST.equals(meter.aggregation)) {
            windowQuantity = lastKey == null ? BigDecimal.ZERO : lastValue(lastKey);
        } else if (Rules.AGGREGATION_COUNT.equals(meter.aggregation)) {
            windowQuantity = BigDecimal.valueOf(eventCount);
        } else {
            windowQuantity = quantity == null ? BigDecimal.ZERO : quantity;
        }
        return write(tenantId, customerId, meterName, tenant, meter, windowStartMs, eventCount, windowQuantity,
                periodQuantityBefore, periodQuantityAfter, windowSizeMs, emittedAtMs, watermarkMs, true, false);
    }

    /** The meter of a late or correction line: in the tenant's catalog, and not unique_count (rated in Python). */
    private static JavaCatalog.Meter adjustedMeter(RatingCatalog.Tenant tenant, String tenantId, String meterName) {
        JavaCatalog.Meter meter = tenant.meter(meterName);
        require(meter != null, "unknown meter '" + meterName + "' of tenant '" + tenantId + "'");
        require(!Rules.AGGREGATION_UNIQUE_COUNT.equals(meter.aggregation),
                "unique_count windows are rated in Python (BILLING_LINE_ITEM)");
        return meter;
    }

    /**
     * The line of {@code udfs.line_items.accumulate_correction}: {@code corrections} corrections of one fired window
     * that came after watermark {@code watermarkMs}, {@code windowQuantityChange} the change of the window's quantity
     * (after minus before, by the meter's window rule), with the quantities of the window's period before them
     * ({@code null}: the series had no state in that period) and after them (for a last meter: the values inside the
     * period's last keys). A {@code correction} line, or a prior-period adjustment on the next open invoice once the
     * period had closed by that watermark; its id names the kind {@code correction} either way. The caller leaves
     * out corrections that left the period quantity unchanged (no line, as in Python).
     */
    public String correctionLine(String tenantId, String customerId, String meterName, String groupJson,
            long windowStartMs, long corrections, BigDecimal windowQuantityChange, BigDecimal periodQuantityBefore,
            BigDecimal periodQuantityAfter, StringData catalogJson, long windowSizeMs, long watermarkMs,
            long emittedAtMs) {
        RatingCatalog.Tenant tenant = catalog(catalogJson).tenant(tenantId);
        JavaCatalog.Meter meter = adjustedMeter(tenant, tenantId, meterName);
        require(periodQuantityAfter != null && windowQuantityChange != null,
                "period_quantity and the window's change must not be NULL");
        require(watermarkMs != NO_WATERMARK, "a correction line needs the watermark its corrections came after");
        require(corrections > 0, "a correction line bills at least one correction");
        group(groupJson);
        return write(tenantId, customerId, meterName, tenant, meter, windowStartMs, corrections, windowQuantityChange,
                periodQuantityBefore, periodQuantityAfter, windowSizeMs, emittedAtMs, watermarkMs, true, true);
    }

    /**
     * The line item JSON ({@code udfs.line_items.build_line_item}); {@code before} null: the period's first line.
     * {@code decidedAfterMs}: the watermark the billed events came after ({@link #NO_WATERMARK}: a window's on-time
     * usage); {@code late}: they came after the series had fired the window; {@code correction}: the line bills
     * corrections of a fired window (its id names the kind {@code correction}, also as a prior-period adjustment).
     */
    private String write(String tenantId, String customerId, String meterName, RatingCatalog.Tenant tenant,
            JavaCatalog.Meter meter, long windowStart, long eventCount, BigDecimal windowQuantity,
            BigDecimal before, BigDecimal after, long windowSizeMs, long emittedAt, long decidedAfterMs,
            boolean late, boolean correction) {
        PriceEntry entry = RatingCatalog.priceFor(meter, group.keys, group.values, group.size);
        Priced pricedBefore;
        BigDecimal amountBefore;
        if (before == null) {
            pricedBefore = Priced.NOTHING;
            amountBefore = BigDecimal.ZERO;
        } else {
            pricedBefore = Rate.price(before, entry);
            amountBefore = Money.roundAmount(pricedBefore.amount, tenant.settings.amountPrecision);
        }
        Priced pricedAfter = Rate.price(after, entry);
        BigDecimal amountAfter = Money.roundAmount(pricedAfter.amount, tenant.settings.amountPrecision);
        BigDecimal amount = Money.subtract(amountAfter, amountBefore);

        long windowEnd = Math.addExact(windowStart, windowSizeMs);
        RatingCatalog.Period period = tenant.period(windowStart);
        long periodStart = period.startMs;
        long periodEnd = period.endMs;
        // udfs.line_items.line_kind: usage of a period whose invoice is final goes on the next open one.
        String kind;
        long invoicePeriodStart;
        long grace = tenant.settings.periodGraceMs;
        if (decidedAfterMs != NO_WATERMARK && decidedAfterMs - grace >= periodEnd) {
            kind = Rules.LINE_KIND_PRIOR_PERIOD_ADJUSTMENT;
            invoicePeriodStart = tenant.period(decidedAfterMs - grace).startMs;
        } else {
            kind = correction ? Rules.LINE_KIND_CORRECTION
                    : late ? Rules.LINE_KIND_LATE_ADJUSTMENT : Rules.LINE_KIND_USAGE;
            invoicePeriodStart = periodStart;
        }
        boolean usage = kind.equals(Rules.LINE_KIND_USAGE);

        StringBuilder sb = out == null ? (out = new StringBuilder(1024)) : out;
        sb.setLength(0);
        sb.append("{\"line_item_id\":\"");
        lineItemId(sb, tenantId, customerId, meterName, windowStart,
                usage ? null : correction ? Rules.LINE_KIND_CORRECTION : kind, decidedAfterMs);
        sb.append("\",\"kind\":\"").append(kind);
        if (usage) {
            sb.append("\",\"adjusts_line_item_id\":null,\"decided_after\":null");
        } else {
            sb.append("\",\"adjusts_line_item_id\":\"");
            lineItemId(sb, tenantId, customerId, meterName, windowStart, null, NO_WATERMARK);
            sb.append("\",\"decided_after\":");
            instant(sb, decidedAfterMs);
        }
        sb.append(",\"invoice_id\":\"");
        invoiceId(sb, tenantId, customerId, invoicePeriodStart, tenant.settings.currency);
        sb.append("\",\"tenant_id\":");
        CanonicalJson.appendString(sb, tenantId);
        sb.append(",\"customer_id\":");
        CanonicalJson.appendString(sb, customerId);
        sb.append(",\"meter\":");
        CanonicalJson.appendString(sb, meterName);
        sb.append(",\"group\":").append(group.wire);
        sb.append(",\"window_start\":");
        instant(sb, windowStart);
        sb.append(",\"window_end\":");
        instant(sb, windowEnd);
        sb.append(",\"period_start\":");
        instant(sb, periodStart);
        sb.append(",\"period_end\":");
        instant(sb, periodEnd);
        sb.append(",\"quantity\":");
        decimal(sb, windowQuantity);
        sb.append(",\"period_quantity_to_date\":");
        decimal(sb, after);
        sb.append(",\"amount\":");
        decimal(sb, amount);
        sb.append(",\"period_amount_to_date\":");
        decimal(sb, amountAfter);
        sb.append(",\"currency\":");
        CanonicalJson.appendString(sb, tenant.settings.currency);
        sb.append(",\"tiers\":[");
        BigDecimal tierSum = tierDeltas(sb, pricedBefore, pricedAfter);
        sb.append("],\"rounding_adjustment\":");
        decimal(sb, Money.subtract(amount, tierSum));
        sb.append(",\"event_count\":").append(eventCount);
        sb.append(",\"emitted_at\":");
        instant(sb, emittedAt);
        sb.append(",\"price_ref\":");
        CanonicalJson.appendString(sb, entry.id);
        sb.append('}');
        return sb.toString();
    }

    /**
     * {@code udfs.line_items.tier_deltas}, written straight to the output; returns the sum of the tier amounts.
     * Before and after are priced with the same entry, so they have the same tiers (or before has none).
     */
    private static BigDecimal tierDeltas(StringBuilder sb, Priced before, Priced after) {
        BigDecimal sum = BigDecimal.ZERO;
        boolean first = true;
        int n = Math.max(before.tiers.length, after.tiers.length);
        for (int i = 0; i < n; i++) {
            TierCharge was = i < before.tiers.length ? before.tiers[i] : null;
            TierCharge now = i < after.tiers.length ? after.tiers[i] : null;
            TierCharge shape = now != null ? now : was;
            BigDecimal quantity = Money.subtract(now == null ? BigDecimal.ZERO : now.quantity,
                    was == null ? BigDecimal.ZERO : was.quantity);
            BigDecimal amount = Money.subtract(now == null ? BigDecimal.ZERO : now.amount,
                    was == null ? BigDecimal.ZERO : was.amount);
            if (quantity.signum() == 0 && amount.signum() == 0) {
                continue;
            }
            sum = Money.add(sum, amount);
            if (!first) {
                sb.append(',');
            }
            first = false;
            sb.append("{\"tier_index\":").append(i).append(",\"lower_bound\":");
            decimal(sb, shape.lowerBound);
            sb.append(",\"up_to\":");
            if (shape.upTo == null) {
                sb.append("null");
            } else {
                decimal(sb, shape.upTo);
            }
            sb.append(",\"unit_price\":");
            decimal(sb, shape.unitPrice);
            sb.append(",\"flat_fee\":");
            decimal(sb, shape.flatFee);
            sb.append(",\"quantity\":");
            decimal(sb, quantity);
            sb.append(",\"amount\":");
            decimal(sb, amount);
            sb.append('}');
        }
        return sum;
    }

    /**
     * The start of the billing period {@code instantMs} falls in, for the tenant (its anchor day and time zone in
     * the catalog): what {@code BILLING_PERIOD_START} gives, and the period this function writes into line items.
     */
    public long periodStartMs(StringData catalogJson, String tenantId, long instantMs) {
        return catalog(catalogJson).tenant(tenantId).period(instantMs).startMs;
    }

    /** The end (exclusive) of the billing period starting at or containing {@code instantMs}, for the tenant. */
    public long periodEndMs(StringData catalogJson, String tenantId, long instantMs) {
        return catalog(catalogJson).tenant(tenantId).period(instantMs).endMs;
    }

    /**
     * The key that orders a `last` meter's events (Python: `udfs.window_rows.last_key`): the event time as 15
     * digits, the event id, NUL, the value; the latest event is the greatest key ({@link #laterLastKey}).
     */
    public static String lastKey(long eventTimeMs, String eventId, BigDecimal value) {
        String time = Long.toString(eventTimeMs);
        StringBuilder key = new StringBuilder(LAST_KEY_TIME_DIGITS + eventId.length() + 24);
        for (int pad = time.length(); pad < LAST_KEY_TIME_DIGITS; pad++) {
            key.append('0');
        }
        return key.append(time).append(eventId).append(Rules.LAST_KEY_SEPARATOR).append(value.toPlainString())
                .toString();
    }

    /** The greater of two last keys (either may be null) in code point order, which is SQL's MAX on strings. */
    public static String laterLastKey(String a, String b) {
        if (a == null) {
            return b;
        }
        if (b == null) {
            return a;
        }
        return CanonicalJson.CODE_POINT_ORDER.compare(a, b) >= 0 ? a : b;
    }

    /** {@code parse_last_key(key).value}: 15-digit time, event id, NUL, value (split at the last NUL). */
    public static BigDecimal lastValue(String key) {
        int nul = key.lastIndexOf(Rules.LAST_KEY_SEPARATOR);
        if (key.length() < LAST_KEY_TIME_DIGITS || nul < LAST_KEY_TIME_DIGITS) {
            throw new IllegalArgumentException("not a last_key: " + key);
        }
        Long.parseLong(key.substring(0, LAST_KEY_TIME_DIGITS)); // Python's int() would reject it too
        return new BigDecimal(key.substring(nul + 1).trim());
    }

    private static final BigInteger[] POWERS_OF_TEN = new BigInteger[39];

    static {
        for (int i = 0; i < POWERS_OF_TEN.length; i++) {
            POWERS_OF_TEN[i] = BigInteger.TEN.pow(i);
        }
    }

    /**
     * The same value without trailing fractional zeros, in at most two big-integer divisions. Why: DECIMAL(38, 18)
     * values have scale 18, so a token count of 1,500 is 1500 * 10^18 unscaled, beyond a long; every sum, product
     * and rendering of it then runs on {@link BigInteger}s, and {@link BigDecimal#stripTrailingZeros} divides by ten
     * once per zero. Stripped, it is a long again. Only the representation changes: every result computed from it
     * is equal in value, and written in the same wire form.
     */
    public static BigDecimal compact(BigDecimal value) {
        if (value == null || value.scale() <= 0) {
            return value;
        }
        if (value.signum() == 0) {
            return BigDecimal.ZERO;
        }
        int scale = value.scale();
        BigInteger unscaled = value.unscaledValue();
        if (scale >= POWERS_OF_TEN.length) {
            return value.stripTrailingZeros();
        }
        BigInteger[] parts = unscaled.divideAndRemainder(POWERS_OF_TEN[scale]);
        if (parts[1].signum() == 0) {
            return new BigDecimal(parts[0]);
        }
        // The trailing zeros of the unscaled value are those of its fractional digits.
        BigInteger fraction = parts[1].abs();
        if (fraction.bitLength() >= 63) {
            return value.stripTrailingZeros();
        }
        int zeros = 0;
        for (long digits = fraction.longValue(); digits % 10 == 0; digits /= 10) {
            zeros++;
        }
        return zeros == 0 ? value : new BigDecimal(unscaled.divide(POWERS_OF_TEN[zeros]), scale - zeros);
    }

    /** The wire decimal ({@code schemas.wire.decimal_to_wire}): plain, no trailing fractional zeros, "0". */
    public static void decimal(StringBuilder sb, BigDecimal value) {
        sb.append('"').append(CanonicalJson.wireDecimal(value)).append('"');
    }

    /** {@code "yyyy-MM-ddTHH:mm:ss.SSSZ"} in UTC, quoted (Python's datetime range: years 1..9999). */
    public static void instant(StringBuilder sb, long epochMs) {
        sb.append('"');
        appendInstant(sb, epochMs);
        sb.append('"');
    }

    /** One formatted instant; final fields, so a slot read by another thread is either complete or stale. */
    private static final class FormattedInstant {
        final long epochMs;
        final String text;

        FormattedInstant(long epochMs, String text) {
            this.epochMs = epochMs;
            this.text = text;
        }
    }

    /**
     * Recently formatted instants, direct-mapped: a window's line items all carry the same window and period bounds,
     * and formatting them digit by digit was 2 % of the billing job's CPU (JFR). A race only costs a miss.
     */
    private static final FormattedInstant[] INSTANTS = new FormattedInstant[64];

    static void appendInstant(StringBuilder sb, long epochMs) {
        int slot = (int) ((epochMs * 0x9E3779B97F4A7C15L) >>> 58);
        FormattedInstant cached = INSTANTS[slot];
        if (cached == null || cached.epochMs != epochMs) {
            StringBuilder text = new StringBuilder(24);
            formatInstant(text, epochMs);
            cached = new FormattedInstant(epochMs, text.toString());
            INSTANTS[slot] = cached;
        }
        sb.append(cached.text);
    }

    private static void formatInstant(StringBuilder sb, long epochMs) {
        long days = Math.floorDiv(epochMs, 86_400_000L);
        long msOfDay = Math.floorMod(epochMs, 86_400_000L);
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian as Python's).
        long z = days + 719_468;
        long era = Math.floorDiv(z, 146_097);
        long doe = z - era * 146_097;
        long yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        long day = doy - (153 * mp + 2) / 5 + 1;
        long month = mp < 10 ? mp + 3 : mp - 9;
        long year = yoe + era * 400 + (month <= 2 ? 1 : 0);
        if (year < 1 || year > 9999) {
            throw new IllegalArgumentException("instant outside years 1..9999: " + epochMs);
        }
        pad(sb, year, 4);
        sb.append('-');
        pad(sb, month, 2);
        sb.append('-');
        pad(sb, day, 2);
        sb.append('T');
        pad(sb, msOfDay / 3_600_000, 2);
        sb.append(':');
        pad(sb, msOfDay / 60_000 % 60, 2);
        sb.append(':');
        pad(sb, msOfDay / 1000 % 60, 2);
        sb.append('.');
        pad(sb, msOfDay % 1000, 3);
        sb.append('Z');
    }

    private static void pad(StringBuilder sb, long value, int width) {
        String s = Long.toString(value);
        for (int i = s.length(); i < width; i++) {
            sb.append('0');
        }
        sb.append(s);
    }

    /**
     * {@code udfs.line_items.line_item_id}: uuid5 over {@code v1|tenant|customer|meter|k=v,...|window_start}, and
     * for an adjustment ({@code kind} not null) {@code |kind|watermark}.
     */
    private void lineItemId(StringBuilder sb, String tenantId, String customerId, String meter, long windowStart,
            String kind, long watermarkMs) {
        StringBuilder n = name == null ? (name = new StringBuilder(256)) : name;
        n.setLength(0);
        n.append(LINE_ITEM_ID_VERSION).append('|');
        percentEncode(n, tenantId);
        n.append('|');
        percentEncode(n, customerId);
        n.append('|');
        percentEncode(n, meter);
        n.append('|').append(group.idText).append('|');
        appendInstant(n, windowStart);
        if (kind != null) {
            n.append('|').append(kind).append('|');
            appendInstant(n, watermarkMs);
        }
        uuid5(sb, LINE_ITEM_NAMESPACE, n);
    }

    /** {@code udfs.invoices.invoice_id} as text (the invoice stage's). */
    public String invoiceId(String tenantId, String customerId, long periodStartMs, String currency) {
        StringBuilder sb = new StringBuilder(36);
        invoiceId(sb, tenantId, customerId, periodStartMs, currency);
        return sb.toString();
    }

    /** {@code udfs.invoices.invoice_id}: uuid5 over {@code v1|tenant|customer|period_start|currency}. */
    private void invoiceId(StringBuilder sb, String tenantId, String customerId, long periodStartMs, String currency) {
        StringBuilder n = name == null ? (name = new StringBuilder(256)) : name;
        n.setLength(0);
        n.append(Rules.INVOICE_ID_VERSION).append('|');
        percentEncode(n, tenantId);
        n.append('|');
        percentEncode(n, customerId);
        n.append('|');
        appendInstant(n, periodStartMs);
        n.append('|');
        percentEncode(n, currency);
        uuid5(sb, INVOICE_NAMESPACE, n);
    }

    /** RFC 4122 version 5 (SHA-1) of {@code name} in {@code namespace}, appended in its text form. */
    private void uuid5(StringBuilder sb, byte[] namespace, CharSequence name) {
        MessageDigest md = sha1();
        md.update(namespace);
        byte[] hash = md.digest(name.toString().getBytes(StandardCharsets.UTF_8));
        hash[6] = (byte) ((hash[6] & 0x0f) | 0x50); // version 5
        hash[8] = (byte) ((hash[8] & 0x3f) | 0x80); // RFC 4122 variant
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10) {
                sb.append('-');
            }
            sb.append(HEX_LOWER[(hash[i] >> 4) & 0xF]).append(HEX_LOWER[hash[i] & 0xF]);
        }
    }

    /**
     * Python's {@code urllib.parse.quote(text, safe="")}: UTF-8 bytes, {@code A-Za-z0-9_.-~} kept, everything
     * else {@code %XX} (upper-case hex). A lone surrogate cannot be encoded (Python raises; so do we).
     */
    static void percentEncode(StringBuilder sb, String text) {
        int n = text.length();
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '_' || c == '.' || c == '-' || c == '~') {
                sb.append(c);
                continue;
            }
            int cp = c;
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                    cp = Character.toCodePoint(c, text.charAt(++i));
                } else {
                    throw new IllegalArgumentException("lone surrogate in " + text);
                }
            }
            if (cp < 0x80) {
                pct(sb, cp);
            } else if (cp < 0x800) {
                pct(sb, 0xC0 | (cp >> 6));
                pct(sb, 0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                pct(sb, 0xE0 | (cp >> 12));
                pct(sb, 0x80 | ((cp >> 6) & 0x3F));
                pct(sb, 0x80 | (cp & 0x3F));
            } else {
                pct(sb, 0xF0 | (cp >> 18));
                pct(sb, 0x80 | ((cp >> 12) & 0x3F));
                pct(sb, 0x80 | ((cp >> 6) & 0x3F));
                pct(sb, 0x80 | (cp & 0x3F));
            }
        }
    }

    private static void pct(StringBuilder sb, int b) {
        sb.append('%').append(HEX_UPPER[(b >> 4) & 0xF]).append(HEX_UPPER[b & 0xF]);
    }

    /**
     * Parse {@code group_json} (a JSON object of strings, as {@code json.loads}: the last of duplicate keys wins)
     * into pairs sorted by key in code point order ({@code normalize_group}), with the two renderings the output
     * needs: the line-item id's {@code k=v,...} text and the {@code group} JSON object.
     */
    private void group(String groupJson) {
        require(groupJson != null, "group_json must not be NULL");
        if (groups == null) {
            groups = new HashMap<>();
        }
        ParsedGroup parsed = groups.get(groupJson);
        if (parsed == null) {
            parsed = parseGroup(groupJson);
            if (groups.size() >= MAX_GROUPS) {
                groups.clear();
            }
            groups.put(groupJson, parsed);
        }
        group = parsed;
    }

    private static ParsedGroup parseGroup(String groupJson) {
        String[] keys = new String[4];
        String[] values = new String[4];
        int size = 0;
        try (JsonParser p = ParseUsageEvent.JSON.createParser(groupJson)) {
            require(p.nextToken() == JsonToken.START_OBJECT, "group_json must be a JSON object");
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                require(p.nextToken() == JsonToken.VALUE_STRING, "group_json values must be strings");
                String value = p.getText();
                int at = -1;
                for (int i = 0; i < size; i++) {
                    if (keys[i].equals(key)) {
                        at = i;
                        break;
                    }
                }
                if (at < 0) {
                    if (size == keys.length) {
                        keys = Arrays.copyOf(keys, size * 2);
                        values = Arrays.copyOf(values, size * 2);
                    }
                    at = size++;
                    keys[at] = key;
                }
                values[at] = value;
            }
            require(t == JsonToken.END_OBJECT && p.nextToken() == null, "group_json must be one JSON object");
        } catch (IOException e) {
            throw new IllegalArgumentException("group_json is not valid JSON: " + groupJson, e);
        }
        // Insertion sort by code point: groups have a handful of keys.
        for (int i = 1; i < size; i++) {
            String k = keys[i];
            String v = values[i];
            int j = i - 1;
            while (j >= 0 && CanonicalJson.compareCodePoints(keys[j], k) > 0) {
                keys[j + 1] = keys[j];
                values[j + 1] = values[j];
                j--;
            }
            keys[j + 1] = k;
            values[j + 1] = v;
        }
        StringBuilder id = new StringBuilder();
        for (int i = 0; i < size; i++) {
            if (i > 0) {
                id.append(',');
            }
            percentEncode(id, keys[i]);
            id.append('=');
            percentEncode(id, values[i]);
        }
        StringBuilder wire = new StringBuilder();
        CanonicalJson.appendObject(wire, keys, values, size);
        return new ParsedGroup(keys, values, size, id.toString(), wire.toString());
    }

    /** The argument is meant to be a literal: the same instance each call, so the check is one comparison. */
    private RatingCatalog catalog(StringData arg) {
        if (arg == null) {
            throw new IllegalArgumentException("BILLING_LINE_ITEM_JAVA: catalog_json must not be NULL");
        }
        if (arg != lastCatalogArg) {
            if (lastCatalogCopy == null || !lastCatalogCopy.equals(arg)) {
                String text = arg.toString();
                lastCatalog = RatingCatalog.of(text);
                lastCatalogCopy = StringData.fromString(text);
            }
            lastCatalogArg = arg;
        }
        return lastCatalog;
    }

    private MessageDigest sha1() {
        if (sha1 == null) {
            try {
                sha1 = MessageDigest.getInstance("SHA-1");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-1 is required of every JVM", e);
            }
        }
        return sha1;
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("BILLING_LINE_ITEM_JAVA: " + message);
        }
    }

    private static byte[] uuidBytes(String uuid) {
        String hex = uuid.replace("-", "");
        byte[] out = new byte[16];
        for (int i = 0; i < 16; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }
}
