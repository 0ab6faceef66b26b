package io.meterstream.golden;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The golden vectors the Python specification writes ({@code python -m udfs.golden --write}, from {@code udfs/};
 * the test command fails when they are stale), read from {@code src/test/resources/golden/}.
 */
public final class GoldenVectors {
    private GoldenVectors() {}

    public static JsonNode load(String name) {
        try (InputStream in = GoldenVectors.class.getResourceAsStream("/golden/" + name)) {
            assertNotNull(in, name + ": run python -m udfs.golden --write");
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A decimal written as a string (wire form), or null for JSON null / absent. */
    public static BigDecimal decimal(JsonNode node) {
        return node == null || node.isNull() ? null : new BigDecimal(node.textValue());
    }

    /** The text of a string field, or null for JSON null / absent. */
    public static String text(JsonNode node) {
        return node == null || node.isNull() ? null : node.textValue();
    }

    /** {@code udfs.money.to_wire}: plain, no trailing fractional zeros, "0" for zero. */
    public static String wire(BigDecimal value) {
        if (value == null) {
            return null;
        }
        return value.signum() == 0 ? "0" : value.stripTrailingZeros().toPlainString();
    }
}
