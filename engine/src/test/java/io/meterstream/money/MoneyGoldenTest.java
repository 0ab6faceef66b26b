package io.meterstream.money;

import static io.meterstream.golden.GoldenVectors.decimal;
import static io.meterstream.golden.GoldenVectors.wire;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** {@link Money#roundAmount} against {@code udfs.money.round_amount} ({@code golden/rounding.json}). */
class MoneyGoldenTest {
    @Test
    void everyRoundingEqualsPython() {
        int cases = 0;
        for (JsonNode c : GoldenVectors.load("rounding.json").get("cases")) {
            BigDecimal amount = decimal(c.get("amount"));
            int precision = c.get("precision").intValue();
            String where = c.get("amount").textValue() + " to " + precision;
            if (c.has("error")) {
                assertEquals("precision", c.get("error").textValue(), where);
                assertThrows(IllegalArgumentException.class, () -> Money.roundAmount(amount, precision), where);
            } else {
                BigDecimal rounded = Money.roundAmount(amount, precision);
                assertEquals(c.get("rounded").textValue(), wire(rounded), where);
                assertTrue(rounded.scale() == precision, where + ": scale");
            }
            cases++;
        }
        assertTrue(cases >= 500, "golden vectors too small: " + cases);
    }

    @Test
    void exactRefusesWhatPythonsContextWouldRound() {
        BigDecimal fifty = new BigDecimal("1" + "0".repeat(48) + "1"); // 50 significant digits
        assertEquals(fifty, Money.exact(fifty));
        assertEquals(fifty.movePointRight(3), Money.exact(fifty.movePointRight(3))); // trailing zeros: exact
        assertThrows(ArithmeticException.class, () -> Money.add(fifty.movePointRight(1), BigDecimal.ONE));
        assertThrows(ArithmeticException.class, () -> Money.multiply(fifty, new BigDecimal("1.1")));
    }
}
