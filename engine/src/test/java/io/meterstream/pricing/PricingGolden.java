package io.meterstream.pricing;

import static io.meterstream.golden.GoldenVectors.decimal;
import static io.meterstream.golden.GoldenVectors.text;
import static io.meterstream.golden.GoldenVectors.wire;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.function.BiFunction;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

/** Replays {@code pricing-<model>.json} through one price model's class (and {@link Rate}, which dispatches). */
final class PricingGolden {
    private PricingGolden() {}

    static void replay(PriceModel model, BiFunction<BigDecimal, PriceEntry, Priced> price) {
        JsonNode golden = GoldenVectors.load("pricing-" + model.wireName + ".json");
        assertEquals(model.wireName, golden.get("model").textValue());
        int cases = 0;
        for (JsonNode entry : golden.get("entries")) {
            PriceEntry spec = PriceEntry.parse(entry.get("spec"), "golden");
            assertEquals(model, spec.model);
            for (JsonNode c : entry.get("cases")) {
                BigDecimal quantity = decimal(c.get("quantity"));
                String where = spec.id + " at " + c.get("quantity").textValue();
                if (c.has("error")) {
                    assertThrows(ArithmeticException.class, () -> price.apply(quantity, spec), where);
                    assertThrows(ArithmeticException.class, () -> Rate.price(quantity, spec), where);
                    cases++;
                    continue;
                }
                check(c, price.apply(quantity, spec), where);
                check(c, Rate.price(quantity, spec), where + " (Rate)");
                cases++;
            }
        }
        assertTrue(cases >= 100, "golden vectors too small: " + cases);
    }

    private static void check(JsonNode expected, Priced actual, String where) {
        assertEquals(expected.get("amount").textValue(), wire(actual.amount), where + ": amount");
        JsonNode tiers = expected.get("tiers");
        assertEquals(tiers.size(), actual.tiers.length, where + ": tiers");
        for (int i = 0; i < actual.tiers.length; i++) {
            JsonNode t = tiers.get(i);
            TierCharge a = actual.tiers[i];
            String at = where + ": tier " + i;
            assertEquals(text(t.get("lower_bound")), wire(a.lowerBound), at + " lower_bound");
            assertEquals(text(t.get("up_to")), wire(a.upTo), at + " up_to");
            assertEquals(text(t.get("quantity")), wire(a.quantity), at + " quantity");
            assertEquals(text(t.get("unit_price")), wire(a.unitPrice), at + " unit_price");
            assertEquals(text(t.get("flat_fee")), wire(a.flatFee), at + " flat_fee");
            assertEquals(text(t.get("amount")), wire(a.amount), at + " amount");
        }
    }
}
