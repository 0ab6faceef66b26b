package io.meterstream.validation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Arrays;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * {@link CanonicalJson} against {@code udfs.grouping.canonical_json} (flat string maps: keys in code point order,
 * where UTF-16 order differs for characters above U+FFFF; Python's escapes) and {@code udfs.money.to_wire}
 * ({@code golden/canonical.json}).
 */
class CanonicalJsonGoldenTest {
    @Test
    void everyObjectIsThePythonText() {
        int cases = 0;
        for (JsonNode c : GoldenVectors.load("canonical.json").get("objects")) {
            JsonNode pairs = c.get("pairs");
            String[][] sorted = new String[pairs.size()][];
            for (int i = 0; i < sorted.length; i++) {
                sorted[i] = new String[] {pairs.get(i).get(0).textValue(), pairs.get(i).get(1).textValue()};
            }
            Arrays.sort(sorted, (a, b) -> CanonicalJson.CODE_POINT_ORDER.compare(a[0], b[0]));
            String[] keys = new String[sorted.length];
            String[] values = new String[sorted.length];
            for (int i = 0; i < sorted.length; i++) {
                keys[i] = sorted[i][0];
                values[i] = sorted[i][1];
            }
            StringBuilder out = new StringBuilder();
            CanonicalJson.appendObject(out, keys, values, keys.length);
            assertEquals(c.get("json").textValue(), out.toString(), pairs.toString());
            cases++;
        }
        assertTrue(cases >= 300, "golden vectors too small: " + cases);
    }

    @Test
    void everyDecimalHasThePythonWireText() {
        for (JsonNode c : GoldenVectors.load("canonical.json").get("decimals")) {
            assertEquals(c.get(1).textValue(), CanonicalJson.wireDecimal(new BigDecimal(c.get(0).textValue())),
                    c.toString());
        }
    }
}
