package io.meterstream.periods;

import java.time.Instant;
import java.time.LocalDate;
import java.time.YearMonth;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code BILLING_PERIOD_START(instant_ms BIGINT, anchor_day INT, time_zone STRING) -> BIGINT}: the start (epoch ms)
 * of the monthly billing period that contains {@code instant_ms}, with exactly the rules of Python's
 * {@code udfs.periods.billing_period}: the period starts at the first instant of the anchor day (clamped to the
 * month's length) in the customer's zone; where local midnight falls in a DST gap the day starts at the end of the
 * gap, where it happens twice the earlier one counts ({@link LocalDate#atStartOfDay(ZoneId)} has both rules).
 *
 * <p>Runs per fired window, in Java, so that the period-to-date aggregation can be partitioned by period without a
 * Python call. A parity test compares it with the Python function across zones, DST changes and anchors.
 */
public class BillingPeriodStart extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    private static final ConcurrentHashMap<String, ZoneId> ZONES = new ConcurrentHashMap<>();

    public Long eval(Long instantMs, Integer anchorDay, String timeZone) {
        if (instantMs == null || anchorDay == null || timeZone == null) {
            return null;
        }
        ZoneId zone = ZONES.computeIfAbsent(timeZone, ZoneId::of);
        Instant instant = Instant.ofEpochMilli(instantMs);
        ZonedDateTime local = instant.atZone(zone);
        YearMonth month = YearMonth.of(local.getYear(), local.getMonthValue());
        Instant start = startOf(month, anchorDay, zone);
        if (instant.isBefore(start)) {
            start = startOf(month.minusMonths(1), anchorDay, zone);
        }
        return start.toEpochMilli();
    }

    public static Instant startOf(YearMonth month, int anchorDay, ZoneId zone) {
        LocalDate day = month.atDay(Math.min(anchorDay, month.lengthOfMonth()));
        return day.atStartOfDay(zone).toInstant();
    }
}
