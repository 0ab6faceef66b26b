package io.meterstream.windows;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meterstream.golden.GoldenVectors;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** {@link TumblingWindows} against {@code udfs.windows.window_bounds} ({@code golden/windows.json}). */
class TumblingWindowsGoldenTest {
    @Test
    void everyWindowEqualsPython() {
        int cases = 0;
        for (JsonNode c : GoldenVectors.load("windows.json").get("cases")) {
            long ts = c.get(0).longValue();
            long size = c.get(1).longValue();
            String where = ts + " in windows of " + size + " ms";
            assertEquals(c.get(2).longValue(), TumblingWindows.start(ts, size), where);
            assertEquals(c.get(3).longValue(), TumblingWindows.end(ts, size), where);
            cases++;
        }
        assertTrue(cases >= 300, "golden vectors too small: " + cases);
    }
}
