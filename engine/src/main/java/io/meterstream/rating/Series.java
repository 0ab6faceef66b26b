package io.meterstream.rating;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.TreeMap;

import io.meterstream.routing.WindowedUsage;

/**
 * All a billed series (one {@link MeterKey}) keeps between records: who it is (written once, read when a window
 * fires), its period to date after its latest fired window and that window's start (what makes a record late), the
 * earlier periods late usage can still reach, and its open windows (usually one or two, as parallel arrays in no particular order; unique_count meters keep each
 * window's distinct tokens, their period is Python's). One state value per key, so a record costs one state read and one write, and a
 * checkpoint writes the identity once per series instead of once per open window ({@link SeriesStore}).
 */
public final class Series {
    static final long NO_PERIOD = Long.MIN_VALUE;
    /** No window fired yet. */
    static final long NONE_FIRED = Long.MIN_VALUE;
    /**
     * Restored from a format that did not record it: treated as "every window fired", so a record that came past
     * the watermark is late, as it was under that format, until the series fires its next window.
     */
    static final long FIRED_UNKNOWN = Long.MAX_VALUE;

    /** Processing time of the latest write (the TTL's clock). */
    long lastWriteMs;

    String tenantId;
    String customerId;
    String meter;
    String groupJson;
    /** A {@link WindowedUsage} aggregation code. */
    byte aggregation;

    long periodStartMs = NO_PERIOD;
    BigDecimal periodQuantity;
    String periodLastKey;
    /**
     * Earlier periods late usage can still reach ({@code udfs.line_items.SeriesPeriods}), in no particular order:
     * each period's start, quantity and (last meters) last key. Usually none; at most the periods of the max age.
     */
    int priors;
    long[] priorStarts;
    BigDecimal[] priorQuantities;
    String[] priorLastKeys;
    /** Start of the latest window this series fired (windows fire in order): a record for it or an earlier one is
     * late. */
    long lastFiredStartMs = NONE_FIRED;

    int windows;
    long[] windowStarts = new long[2];
    /** When each open window fires (its timer): its end - 1, or later for a window opened past the watermark. */
    long[] fireAts = new long[2];
    long[] eventCounts = new long[2];
    BigDecimal[] quantities = new BigDecimal[2];
    String[] lastKeys = new String[2];
    /** unique_count meters: the distinct tokens of each open window (null for other meters). */
    HashSet<String>[] uniqueTokens;
    /** Records that came past the watermark, waiting until every record before them has arrived (arrival order). */
    ArrayList<WindowedUsage> pending;
    /**
     * max, min and last series while corrections are on: each window's retained contents by window start (open and
     * fired windows, until their period is forgotten), what a correction of one of its events needs. Null: not
     * retaining (corrections off, or not yet: {@code WindowRating} begins on the series' next record, freezing
     * what it held then).
     */
    TreeMap<Long, WindowContents> contents;
    /** While retaining: each period's frozen part (windows fired before retaining began), by period start. */
    TreeMap<Long, BigDecimal> frozenPeriodQuantities;
    TreeMap<Long, String> frozenPeriodKeys;
    /** While retaining: the series' clock ({@code udfs.corrections.tick}), which times its retained windows, and the
     * processing time it was last ticked at ({@link #NO_WALL}: not yet). */
    long clockMs;
    long wallMs = NO_WALL;
    static final long NO_WALL = Long.MIN_VALUE;
    /** The identity's strings as a snapshot writes them ({@code SeriesStore}; made at the first write). */
    transient byte[] identityBytes;
    /** With a backing store ({@link SeriesStore.Backing}): read or written since the last checkpoint stored it, and
     * how many checkpoints in a row found it untouched (not in snapshots). */
    transient boolean touched;
    transient byte untouchedCheckpoints;
    /** The series' clock before which {@code WindowRating} does not look for fired windows to freeze again (not in
     * snapshots: a restored series looks at its next firing). */
    transient long settleCheckAtMs;

    /** An empty series, for restore. */
    public Series() {
    }

    /** A new series of this identity: no period yet, no open window. */
    public Series(String tenantId, String customerId, String meter, String groupJson, String aggregation) {
        this.tenantId = tenantId;
        this.customerId = customerId;
        this.meter = meter;
        this.groupJson = groupJson;
        this.aggregation = WindowedUsage.code(aggregation);
    }

    /** The open window starting at {@code start}, or -1. */
    int window(long start) {
        for (int i = 0; i < windows; i++) {
            if (windowStarts[i] == start) {
                return i;
            }
        }
        return -1;
    }

    /** A new, empty open window that fires at {@code fireAt}; returns its index. */
    public int openWindow(long start, long fireAt) {
        if (windows == windowStarts.length) {
            int size = windows * 2;
            windowStarts = Arrays.copyOf(windowStarts, size);
            fireAts = Arrays.copyOf(fireAts, size);
            eventCounts = Arrays.copyOf(eventCounts, size);
            quantities = Arrays.copyOf(quantities, size);
            lastKeys = Arrays.copyOf(lastKeys, size);
            if (uniqueTokens != null) {
                uniqueTokens = Arrays.copyOf(uniqueTokens, size);
            }
        }
        windowStarts[windows] = start;
        fireAts[windows] = fireAt;
        eventCounts[windows] = 0;
        quantities[windows] = null;
        lastKeys[windows] = null;
        if (aggregation == WindowedUsage.UNIQUE_COUNT) {
            if (uniqueTokens == null) {
                uniqueTokens = newTokenSets(windowStarts.length);
            }
            uniqueTokens[windows] = new HashSet<>();
        }
        return windows++;
    }

    /** Drops open window {@code i} (the last one takes its place). */
    void closeWindow(int i) {
        int last = --windows;
        windowStarts[i] = windowStarts[last];
        fireAts[i] = fireAts[last];
        eventCounts[i] = eventCounts[last];
        quantities[i] = quantities[last];
        lastKeys[i] = lastKeys[last];
        quantities[last] = null;
        lastKeys[last] = null;
        if (uniqueTokens != null) {
            uniqueTokens[i] = uniqueTokens[last];
            uniqueTokens[last] = null;
        }
    }

    /** The open window that fires first at or before {@code time} (earliest start first), or -1. */
    int dueWindow(long time) {
        int due = -1;
        for (int i = 0; i < windows; i++) {
            if (fireAts[i] <= time && (due < 0 || windowStarts[i] < windowStarts[due])) {
                due = i;
            }
        }
        return due;
    }

    /** The earlier period starting at {@code start}, or -1. */
    int prior(long start) {
        for (int i = 0; i < priors; i++) {
            if (priorStarts[i] == start) {
                return i;
            }
        }
        return -1;
    }

    /** Keeps an earlier period (replacing the one of the same start). */
    void putPrior(long start, BigDecimal quantity, String lastKey) {
        int i = prior(start);
        if (i < 0) {
            if (priorStarts == null) {
                priorStarts = new long[2];
                priorQuantities = new BigDecimal[2];
                priorLastKeys = new String[2];
            } else if (priors == priorStarts.length) {
                priorStarts = Arrays.copyOf(priorStarts, priors * 2);
                priorQuantities = Arrays.copyOf(priorQuantities, priors * 2);
                priorLastKeys = Arrays.copyOf(priorLastKeys, priors * 2);
            }
            i = priors++;
        }
        priorStarts[i] = start;
        priorQuantities[i] = quantity;
        priorLastKeys[i] = lastKey;
    }

    /** Forgets earlier period {@code i} (the last one takes its place). */
    void dropPrior(int i) {
        int last = --priors;
        priorStarts[i] = priorStarts[last];
        priorQuantities[i] = priorQuantities[last];
        priorLastKeys[i] = priorLastKeys[last];
        priorQuantities[last] = null;
        priorLastKeys[last] = null;
    }

    /** Whether a record of window {@code start} comes after this series fired it (or a later window). */
    boolean fired(long start) {
        return start <= lastFiredStartMs;
    }

    @SuppressWarnings("unchecked")
    private static HashSet<String>[] newTokenSets(int size) {
        return (HashSet<String>[]) new HashSet<?>[size];
    }

    /** For error messages and tests: every field, open windows in their array order. */
    @Override
    public String toString() {
        StringBuilder text = new StringBuilder("Series{").append(tenantId).append('|').append(customerId).append('|')
                .append(meter).append('|').append(groupJson).append('|').append(WindowedUsage.name(aggregation))
                .append(", period ").append(periodStartMs).append(' ').append(periodQuantity).append(' ')
                .append(periodLastKey);
        for (int i = 0; i < priors; i++) {
            text.append(", prior ").append(priorStarts[i]).append(' ').append(priorQuantities[i]).append(' ')
                    .append(priorLastKeys[i]);
        }
        text.append(", fired ").append(lastFiredStartMs).append(", windows");
        for (int i = 0; i < windows; i++) {
            text.append(" [").append(windowStarts[i]).append(" at ").append(fireAts[i]).append(' ')
                    .append(eventCounts[i]).append(' ')
                    .append(quantities[i]).append(' ').append(lastKeys[i]);
            if (uniqueTokens != null) {
                text.append(' ').append(new java.util.TreeSet<>(uniqueTokens[i]));
            }
            text.append(']');
        }
        if (pending != null) {
            text.append(", pending");
            for (WindowedUsage record : pending) {
                text.append(' ').append(record.eventTimeMs).append('@').append(record.floorMs);
            }
        }
        return text.append(", written ").append(lastWriteMs).append('}').toString();
    }
}
