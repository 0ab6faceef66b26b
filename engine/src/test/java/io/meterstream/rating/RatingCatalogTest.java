package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.golden.GoldenVectors;
import io.meterstream.pricing.PriceEntry;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * {@link RatingCatalog} holds the parsed {@link JavaCatalog} tenants and meters themselves (one home for currency,
 * amount precision, anchor day, zone, aggregation and price entries), adding only its period cache and the price
 * lookup; built once per catalog and shared.
 */
class RatingCatalogTest {
    private static final JsonNode GOLDEN = GoldenVectors.load("java-catalog.json");
    private static final String TEXT = GOLDEN.get("java_catalog_json").textValue();

    @Test
    void eachTenantIsTheParsedTenantAndEachMeterTheParsedMeter() {
        JavaCatalog parsed = JavaCatalog.of(TEXT);
        RatingCatalog rating = RatingCatalog.of(TEXT);
        assertSame(rating, RatingCatalog.of(new String(TEXT)), "one view per catalog");
        int meters = 0;
        for (Map.Entry<String, JavaCatalog.Tenant> t : parsed.tenants().entrySet()) {
            RatingCatalog.Tenant tenant = rating.tenant(t.getKey());
            assertSame(t.getValue(), tenant.settings, t.getKey() + ": referenced, not copied");
            assertSame(tenant, rating.tenant(t.getKey()), "one tenant (and period cache) per view");
            for (Map.Entry<String, JavaCatalog.Meter> m : t.getValue().meters.entrySet()) {
                assertSame(m.getValue(), tenant.meter(m.getKey()), t.getKey() + "." + m.getKey());
                meters++;
            }
            assertNull(tenant.meter("no-such-meter"));
        }
        assertTrue(meters >= 5, "meters: " + meters);
        assertThrows(IllegalArgumentException.class, () -> rating.tenant("no-such-tenant"));
    }

    @Test
    void thePriceOfAGroupIsItsMostSpecificEntryAndTheCatchAllOtherwise() {
        JsonNode view = GOLDEN.get("rating_view");
        JavaCatalog parsed = JavaCatalog.of(TEXT);
        int checked = 0;
        for (Map.Entry<String, JavaCatalog.Tenant> t : parsed.tenants().entrySet()) {
            for (Map.Entry<String, JavaCatalog.Meter> m : t.getValue().meters.entrySet()) {
                PriceEntry[] prices = m.getValue().prices;
                // every entry's own match keys pick it (entries are ordered most specific first)
                for (PriceEntry entry : prices) {
                    PriceEntry found = RatingCatalog.priceFor(m.getValue(), entry.matchKeys, entry.matchValues,
                            entry.matchKeys.length);
                    assertEquals(entry.id, found.id, t.getKey() + "." + m.getKey());
                    checked++;
                }
                PriceEntry catchAll = RatingCatalog.priceFor(m.getValue(), new String[0], new String[0], 0);
                assertEquals(0, catchAll.matchKeys.length, "no group: the catch-all");
                assertEquals(view.get(t.getKey()).get("meters").get(m.getKey()).get("price_ids")
                        .get(prices.length - 1).textValue(), catchAll.id);
            }
        }
        assertTrue(checked >= 5, "entries: " + checked);
    }
}
