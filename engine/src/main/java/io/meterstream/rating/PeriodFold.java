package io.meterstream.rating;

import java.math.BigDecimal;

import io.meterstream.routing.WindowedUsage;

/**
 * The window and period rules of {@code udfs.aggregations} for the quantity aggregations, on {@link WindowedUsage}'s
 * aggregation codes: a window's quantity over its values (sum adds, max and min keep the extreme; count counts
 * events, outside this), and the period's quantity over its windows' quantities (sum and count add, max and min keep
 * the extreme). NULLs are ignored; {@code last} is not a fold of quantities (its window keeps the greatest
 * {@code RateLineItem.lastKey}, its period the latest window's) and gives null here. Bound to Python by the golden
 * vectors ({@code aggregations.json}).
 *
 * <p>{@link WindowRating} folds windows, periods and late groups with it; {@code PeriodFoldGoldenTest} holds it to
 * the vectors.
 */
public final class PeriodFold {
    private PeriodFold() {}

    /** {@code before} combined with {@code window} under the rule of aggregation code {@code rule}. */
    public static BigDecimal combine(byte rule, BigDecimal before, BigDecimal window) {
        switch (rule) {
            case WindowedUsage.SUM:
            case WindowedUsage.COUNT:
                return before == null ? window : window == null ? before : before.add(window);
            case WindowedUsage.MAX:
                return extreme(before, window, true);
            case WindowedUsage.MIN:
                return extreme(before, window, false);
            default:
                return null;
        }
    }

    private static BigDecimal extreme(BigDecimal current, BigDecimal candidate, boolean max) {
        if (candidate == null) {
            return current;
        }
        if (current == null) {
            return candidate;
        }
        int order = candidate.compareTo(current);
        return (max ? order > 0 : order < 0) ? candidate : current;
    }
}
