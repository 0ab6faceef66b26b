package io.meterstream.rating;

import static io.meterstream.golden.GoldenVectors.decimal;
import static io.meterstream.golden.GoldenVectors.text;
import static io.meterstream.golden.GoldenVectors.wire;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.HashSet;
import java.util.Set;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.routing.WindowedUsage;
import io.meterstream.rules.Rules;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * The window and period folds against {@code udfs.aggregations} ({@code golden/aggregations.json}): per series of
 * windows of one period, each window's events folded as {@link WindowRating} folds them (sum/max/min by
 * {@link PeriodFold}, count by counting, last by the greatest {@link RateLineItem#lastKey}), then each window's
 * quantity into the period (PeriodFold, which WindowRating calls for both; last takes the latest window's).
 */
class PeriodFoldGoldenTest {
    @Test
    void everyWindowAndPeriodQuantityEqualsPython() {
        Set<String> kinds = new HashSet<>();
        int windows = 0;
        for (JsonNode series : GoldenVectors.load("aggregations.json").get("series")) {
            String aggregation = series.get("aggregation").textValue();
            kinds.add(aggregation);
            byte rule = WindowedUsage.code(aggregation);
            BigDecimal period = null;
            String periodLast = null;
            int w = 0;
            for (JsonNode window : series.get("windows")) {
                String where = aggregation + " " + series.get("windows") + " window " + w;
                BigDecimal quantity = null;
                String lastKey = null;
                long count = 0;
                for (JsonNode event : window.get("events")) {
                    BigDecimal value = decimal(event.get(2));
                    count++;
                    if (rule == WindowedUsage.LAST) {
                        if (value != null) {
                            lastKey = RateLineItem.laterLastKey(lastKey,
                                    RateLineItem.lastKey(event.get(0).longValue(), event.get(1).textValue(), value));
                        }
                    } else if (rule != WindowedUsage.COUNT) {
                        BigDecimal next = PeriodFold.combine(rule, quantity, value);
                        quantity = next;
                    }
                }
                assertEquals(window.get("event_count").longValue(), count, where);
                BigDecimal windowQuantity;
                if (rule == WindowedUsage.LAST) {
                    windowQuantity = lastKey == null ? BigDecimal.ZERO : lastValue(lastKey);
                    if (lastKey != null) {
                        periodLast = lastKey; // windows come in order: the latest window with a value wins
                    }
                    period = periodLast == null ? BigDecimal.ZERO : lastValue(periodLast);
                } else {
                    windowQuantity = rule == WindowedUsage.COUNT ? BigDecimal.valueOf(count)
                            : quantity == null ? BigDecimal.ZERO : quantity;
                    BigDecimal folded = rule == WindowedUsage.COUNT ? windowQuantity : quantity;
                    BigDecimal next = PeriodFold.combine(rule, period, folded);
                    period = next;
                }
                assertEquals(text(window.get("window_quantity")), wire(windowQuantity), where + ": window");
                assertEquals(text(window.get("period_quantity")), wire(period == null ? BigDecimal.ZERO : period),
                        where + ": period");
                w++;
                windows++;
            }
        }
        assertEquals(Set.of(Rules.AGGREGATION_SUM, Rules.AGGREGATION_COUNT, Rules.AGGREGATION_MAX,
                Rules.AGGREGATION_MIN, Rules.AGGREGATION_LAST), kinds);
        assertTrue(windows >= 200, "golden vectors too small: " + windows);
    }

    private static BigDecimal lastValue(String key) {
        return new BigDecimal(key.substring(key.lastIndexOf(Rules.LAST_KEY_SEPARATOR) + 1));
    }
}
