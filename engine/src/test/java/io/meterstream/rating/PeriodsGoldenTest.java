package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.time.ZoneId;

import io.meterstream.catalog.Tenants;
import io.meterstream.golden.GoldenVectors;
import io.meterstream.periods.BillingPeriodStart;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * The billing period ({@link RatingCatalog.Tenant#period}, built on {@link BillingPeriodStart}) against
 * {@code udfs.periods.billing_period} ({@code golden/periods.json}: DST gaps and overlaps, anchor days 29-31 in
 * short months, zones with odd offsets, instants at and around period starts).
 */
class PeriodsGoldenTest {
    @Test
    void everyPeriodEqualsPython() {
        int cases = 0;
        for (JsonNode c : GoldenVectors.load("periods.json").get("cases")) {
            long instant = c.get(0).longValue();
            int anchor = c.get(1).intValue();
            ZoneId zone = ZoneId.of(c.get(2).textValue());
            String where = Instant.ofEpochMilli(instant) + " anchor " + anchor + " " + zone;
            // a fresh tenant per case: its one-period cache must not hide a wrong computation
            RatingCatalog.Tenant tenant = new RatingCatalog.Tenant(Tenants.settingsOnly("USD", 2, anchor, zone));
            RatingCatalog.Period period = tenant.period(instant);
            assertEquals(c.get(3).longValue(), period.startMs, where + ": start");
            assertEquals(c.get(4).longValue(), period.endMs, where + ": end");
            // the cache answers the same for a second instant of the same period
            assertEquals(period.startMs, tenant.period(period.startMs).startMs, where + ": cached start");
            cases++;
        }
        assertTrue(cases >= 1000, "golden vectors too small: " + cases);
    }

    @Test
    void theSqlFunctionGivesThePythonStart() {
        BillingPeriodStart function = new BillingPeriodStart();
        for (JsonNode c : GoldenVectors.load("periods.json").get("cases")) {
            assertEquals(c.get(3).longValue(),
                    function.eval(c.get(0).longValue(), c.get(1).intValue(), c.get(2).textValue()), c.toString());
        }
    }
}
