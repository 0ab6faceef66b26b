package io.meterstream.rating;

import java.math.BigDecimal;
import java.util.Arrays;

import io.meterstream.routing.WindowedUsage;

/**
 * All a billed series (one {@link MeterKey}) keeps between records: who it is (written once, read when a window
 * fires), its period to date after its latest fired window, and its open windows (usually one or two, as parallel
 * arrays in no particular order). One state value per key, so a record costs one state read and one write, and a
 * checkpoint writes the identity once per series instead of once per open window ({@link SeriesStore}).
 */
public final class Series {
    static final long NO_PERIOD = Long.MIN_VALUE;

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

    int windows;
    long[] windowStarts = new long[2];
    long[] eventCounts = new long[2];
    BigDecimal[] quantities = new BigDecimal[2];
    String[] lastKeys = new String[2];

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

    /** A new, empty open window; returns its index. */
    public int openWindow(long start) {
        if (windows == windowStarts.length) {
            int size = windows * 2;
            windowStarts = Arrays.copyOf(windowStarts, size);
            eventCounts = Arrays.copyOf(eventCounts, size);
            quantities = Arrays.copyOf(quantities, size);
            lastKeys = Arrays.copyOf(lastKeys, size);
        }
        windowStarts[windows] = start;
        eventCounts[windows] = 0;
        quantities[windows] = null;
        lastKeys[windows] = null;
        return windows++;
    }

    /** Drops open window {@code i} (the last one takes its place). */
    void closeWindow(int i) {
        int last = --windows;
        windowStarts[i] = windowStarts[last];
        eventCounts[i] = eventCounts[last];
        quantities[i] = quantities[last];
        lastKeys[i] = lastKeys[last];
        quantities[last] = null;
        lastKeys[last] = null;
    }

    /** For error messages and tests: every field, open windows in their array order. */
    @Override
    public String toString() {
        StringBuilder text = new StringBuilder("Series{").append(tenantId).append('|').append(customerId).append('|')
                .append(meter).append('|').append(groupJson).append('|').append(WindowedUsage.name(aggregation))
                .append(", period ").append(periodStartMs).append(' ').append(periodQuantity).append(' ')
                .append(periodLastKey).append(", windows");
        for (int i = 0; i < windows; i++) {
            text.append(" [").append(windowStarts[i]).append(' ').append(eventCounts[i]).append(' ')
                    .append(quantities[i]).append(' ').append(lastKeys[i]).append(']');
        }
        return text.append(", written ").append(lastWriteMs).append('}').toString();
    }
}
