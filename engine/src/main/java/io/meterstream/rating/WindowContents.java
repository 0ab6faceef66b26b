package io.meterstream.rating;

import java.math.BigDecimal;
import java.util.Map;
import java.util.TreeMap;

import io.meterstream.routing.WindowedUsage;
import io.meterstream.validation.CanonicalJson;

/**
 * What one window of a max, min, last or unique_count series retains so that a correction of one of its events can be
 * billed ({@code udfs.corrections.WindowContents}): its values as a multiset (max, min), its events' last keys (last)
 * or its tokens (unique_count, while open: the Python accumulator retains fired ones), and a frozen part, what the window held before the series began to retain (restored from a state without contents, or
 * kept while corrections were off): those events cannot be corrected (the ledger does not hold them as correctable),
 * so their extreme stands. The window's quantity is the window rule over both ({@link #quantity}, {@link #lastKey}).
 */
final class WindowContents {
    /**
     * unique_count: the multiplicity of a token an open window held before its series began to retain (restored, or
     * billed while corrections were off): the ledger holds none of its events as correctable, so no correction can
     * take it out, and the accumulator that retains the fired window keeps it counted.
     */
    static final int FROZEN = 1 << 30;
    /** max/min: value -> multiplicity. */
    final TreeMap<BigDecimal, Integer> values = new TreeMap<>();
    /**
     * last: last key -> multiplicity (a key names one event, so 1; kept as a count for symmetry); unique_count (open
     * windows only): token -> how many of the window's events carry it.
     */
    final TreeMap<String, Integer> keys = new TreeMap<>(CanonicalJson.CODE_POINT_ORDER);
    /** max/min: the frozen part's quantity (null: none). */
    BigDecimal frozenQuantity;
    /** last: the frozen part's last key (null: none). */
    String frozenKey;
    /**
     * The series' clock ({@code udfs.corrections.tick}) at the latest contribution to the window once it fired (its
     * firing, a late record, a correction): the ledger holds none of its events as correctable once the correction
     * horizon has passed since then, and {@code WindowRating} folds the window into its period's frozen part
     * ({@code retained_for_ms} of {@code udfs.corrections}). {@link #SEEN_UNKNOWN}: open, or restored from a state
     * without it.
     */
    long seenMs = SEEN_UNKNOWN;
    static final long SEEN_UNKNOWN = Long.MIN_VALUE;

    void addValue(BigDecimal value) {
        values.merge(value, 1, Integer::sum);
    }

    void addKey(String key) {
        keys.merge(key, 1, Integer::sum);
    }

    /** Removes one occurrence; false when the window does not hold it (a broken invariant the caller reports). */
    boolean removeValue(BigDecimal value) {
        return remove(values, value);
    }

    boolean removeKey(String key) {
        return remove(keys, key);
    }

    private static <K> boolean remove(TreeMap<K, Integer> map, K key) {
        Integer count = map.get(key);
        if (count == null) {
            return false;
        }
        if (count == 1) {
            map.remove(key);
        } else {
            map.put(key, count - 1);
        }
        return true;
    }

    /** The window's max or min over the frozen part and the retained values; null when it holds none. */
    BigDecimal quantity(byte aggregation) {
        BigDecimal retained = values.isEmpty() ? null
                : aggregation == WindowedUsage.MAX ? values.lastKey() : values.firstKey();
        return PeriodFold.combine(aggregation, frozenQuantity, retained);
    }

    /** The window's last key over the frozen part and the retained keys; null when it holds none. */
    String lastKey() {
        return RateLineItem.laterLastKey(frozenKey, keys.isEmpty() ? null : keys.lastKey());
    }

    boolean isEmpty() {
        return values.isEmpty() && keys.isEmpty() && frozenQuantity == null && frozenKey == null;
    }

    int size() {
        return values.size() + keys.size();
    }

    @Override
    public String toString() {
        StringBuilder text = new StringBuilder("contents{");
        if (frozenQuantity != null || frozenKey != null) {
            text.append("frozen ").append(frozenQuantity != null ? frozenQuantity : frozenKey).append(' ');
        }
        for (Map.Entry<BigDecimal, Integer> e : values.entrySet()) {
            text.append(e.getKey()).append('x').append(e.getValue()).append(' ');
        }
        for (Map.Entry<String, Integer> e : keys.entrySet()) {
            text.append(e.getKey().replace('\0', '|')).append('x').append(e.getValue()).append(' ');
        }
        return text.append('}').toString();
    }
}
