package io.meterstream.rating;

import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;

import io.meterstream.routing.WindowedUsage;
import io.meterstream.udf.RateLineItem;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.metrics.Counter;
import org.apache.flink.core.memory.DataInputViewStreamWrapper;
import org.apache.flink.core.memory.DataOutputViewStreamWrapper;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyGroupStatePartitionStreamProvider;
import org.apache.flink.runtime.state.KeyedStateCheckpointOutputStream;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.table.data.StringData;

/**
 * Tumbling event-time windows, period to date and rating in one keyed operator: keyed by {@link MeterKey}
 * (tenant, customer, meter, group), it aggregates each window of the windowed usage records, and when the watermark
 * passes the window's end, combines it into the billing period and emits the line item JSON of
 * {@link RateLineItem} (the function the rating parity test holds byte-identical to the Python reference).
 *
 * <p>Window rule per aggregation: sum adds values, count counts, max and min keep the extreme, last keeps the
 * greatest {@link RateLineItem#lastKey} (latest event time, then event id). Period rule: sum and count add window
 * quantities, max and min keep the extreme, last takes the latest window's key. unique_count meters never come here
 * (their period needs the set of distinct values: Python, fed by the SQL window).
 *
 * <p>Why one Java operator and not SQL (a TUMBLE aggregate, then running SUM/MAX/MIN and LAG as OVER aggregates):
 * this workload has a window row per three to ten events, and the SQL path hashed each record's and each window
 * row's composite string key several times (state, timers, buffers, key groups; 15 % of the job's CPU in a JFR
 * profile), buffered every window row in state with a timer until the watermark passed it, twice, and moved it
 * through two more shuffles. Here the key is a 128-bit hash and a fired window is rated at once.
 *
 * <p>Order and lateness: timers fire in time order, so a key's windows close in window order and the period state
 * moves forward only; a window of a new period starts the period from nothing. No record arrives for a window that
 * has fired: the routing operator upstream sends such records to the late topic, judged by a watermark at or above
 * this operator's (it forwards no watermark before the records it precedes).
 *
 * <p>State: one {@link Series} per key (identity, period to date after its latest fired window, open windows),
 * with a TTL (processing time, from the last write) that outlives a billing period, kept by {@link SeriesStore} in
 * a plain map and checkpointed as raw keyed state per key group (see there why not a managed ValueState). One value
 * per key: a record reads it once and changes it in place, and a checkpoint writes a series' identity once, not once
 * per open window. Window timers stay in Flink's timer service (managed, restored with their key groups).
 */
public final class WindowRating extends AbstractStreamOperator<String>
        implements OneInputStreamOperator<WindowedUsage, String>, Triggerable<Tuple2<Long, Long>, VoidNamespace> {
    private static final long serialVersionUID = 1L;

    private final String ratingCatalogJson;
    private final long windowSizeMs;
    private final long stateTtlMs;

    private transient SeriesStore series;
    private transient InternalTimerService<VoidNamespace> windowEnds;
    private transient Counter windowsRated;
    private transient RateLineItem rate;
    private transient StringData catalog;

    /**
     * @param ratingCatalogJson {@code udfs.rating_catalog.rating_catalog_json(catalog)}
     * @param windowSizeMs      the tumbling window size
     * @param stateTtlMs        TTL of the series state (longer than a billing period)
     */
    public WindowRating(String ratingCatalogJson, long windowSizeMs, long stateTtlMs) {
        this.ratingCatalogJson = ratingCatalogJson;
        this.windowSizeMs = windowSizeMs;
        this.stateTtlMs = stateTtlMs;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        series = new SeriesStore(stateTtlMs);
        if (context.isRestored()) {
            for (KeyGroupStatePartitionStreamProvider keyGroup : context.getRawKeyedStateInputs()) {
                try (InputStream in = keyGroup.getStream()) {
                    series.readKeyGroup(new DataInputViewStreamWrapper(in), keyGroup.getKeyGroupId());
                }
            }
        }
        rate = new RateLineItem();
        catalog = StringData.fromString(ratingCatalogJson);
    }

    @Override
    public void open() throws Exception {
        super.open();
        windowEnds = getInternalTimerService("window-ends", VoidNamespaceSerializer.INSTANCE, this);
        windowsRated = getMetricGroup().addGroup("meterstream").counter("windows_rated");
    }

    /**
     * The raw keyed state is ours (the series): without this, Flink reads raw keyed state on restore as the timer
     * services' legacy snapshot (the timers are managed state here).
     */
    @Override
    protected boolean isUsingCustomRawKeyedState() {
        return true;
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        int maxParallelism = getRuntimeContext().getTaskInfo().getMaxNumberOfParallelSubtasks();
        KeyGroupRange range = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism,
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks(),
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
        KeyedStateCheckpointOutputStream out = context.getRawKeyedOperatorStateOutput();
        try {
            int[][] slots = series.slotsByKeyGroup(range, maxParallelism, now());
            DataOutputViewStreamWrapper view = new DataOutputViewStreamWrapper(out);
            for (int keyGroup : out.getKeyGroupList()) {
                out.startNewKeyGroup(keyGroup);
                series.writeKeyGroup(slots[keyGroup - range.getStartKeyGroup()], view);
            }
        } finally {
            out.close();  // closes this operator's part only: the checkpoint owns the underlying stream
        }
    }

    private long now() {
        return getProcessingTimeService().getCurrentProcessingTime();
    }

    @Override
    public void processElement(StreamRecord<WindowedUsage> element) throws Exception {
        WindowedUsage record = element.getValue();
        long time = record.eventTimeMs;
        long windowStart = time - Math.floorMod(time, windowSizeMs);
        long now = now();
        Series s = series.get(record.seriesHi, record.seriesLo, now);
        if (s == null) {
            s = series.add(record.seriesHi, record.seriesLo, new Series(string(record.tenantId),
                    string(record.customerId), string(record.meter), string(record.groupJson),
                    record.aggregationName()), now);
        }
        int w = s.window(windowStart);
        if (w < 0) {
            long windowEnd = windowStart + windowSizeMs;
            if (windowEnd - 1 <= windowEnds.currentWatermark()) {
                // Routing sends such records to the late topic (see the class comment); billing it here would emit
                // a second line item for a fired window. A broken invariant in money: fail loudly, lose nothing.
                throw new IllegalStateException("a windowed record reached the window operator after its window "
                        + "[" + windowStart + ", " + windowEnd + ") fired (watermark " + windowEnds.currentWatermark()
                        + "): " + string(record.tenantId) + " " + string(record.customerId) + " "
                        + string(record.meter) + " " + string(record.groupJson) + " at " + time);
            }
            w = s.openWindow(windowStart);
            windowEnds.registerEventTimeTimer(VoidNamespace.INSTANCE, windowEnd - 1);
        }
        s.eventCounts[w]++;
        BigDecimal amount = record.value;
        switch (record.aggregation) {  // the series' own (its key includes the meter)
            case WindowedUsage.SUM:
            case WindowedUsage.MAX:
            case WindowedUsage.MIN:
                s.quantities[w] = combine(record.aggregation, s.quantities[w], amount);  // same rule as the period
                break;
            case WindowedUsage.LAST:
                if (amount != null) {
                    s.lastKeys[w] = RateLineItem.laterLastKey(
                            s.lastKeys[w], RateLineItem.lastKey(time, string(record.eventId), amount));
                }
                break;
            default: // count: the event count is the quantity
        }
        series.written(s, now);
    }

    @Override
    public void onEventTime(InternalTimer<Tuple2<Long, Long>, VoidNamespace> timer) throws Exception {
        long windowStart = timer.getTimestamp() + 1 - windowSizeMs;
        long now = now();
        Tuple2<Long, Long> key = timer.getKey();
        Series s = series.get(key.f0, key.f1, now);
        int w = s == null ? -1 : s.window(windowStart);
        if (w < 0) {
            return;
        }
        long eventCount = s.eventCounts[w];
        String lastKey = s.lastKeys[w];
        // Compact: period sums and prices of scale-18 decimals would all run on big integers (RateLineItem.compact).
        BigDecimal quantity = s.aggregation == WindowedUsage.COUNT ? BigDecimal.valueOf(eventCount)
                : RateLineItem.compact(s.quantities[w]);
        s.closeWindow(w);
        long periodStart = rate.periodStartMs(catalog, s.tenantId, windowStart);
        boolean samePeriod = s.periodStartMs == periodStart;  // else a new period starts from nothing
        BigDecimal quantityBefore = samePeriod ? s.periodQuantity : null;
        BigDecimal quantityAfter = combine(s.aggregation, quantityBefore, quantity);
        String lineItem = rate.eval(s.tenantId, s.customerId, s.meter, s.groupJson,
                WindowedUsage.name(s.aggregation), windowStart, eventCount, quantity, lastKey, quantityBefore,
                quantityAfter, samePeriod ? s.periodLastKey : null, catalog, windowSizeMs, null);
        s.periodStartMs = periodStart;
        s.periodQuantity = quantityAfter;
        s.periodLastKey = lastKey;
        series.written(s, now);
        output.collect(new StreamRecord<>(lineItem, timer.getTimestamp()));
        windowsRated.inc();
    }

    @Override
    public void onProcessingTime(InternalTimer<Tuple2<Long, Long>, VoidNamespace> timer) {
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

    /**
     * Running SUM/MAX/MIN, NULLs ignored (none for last): a window's quantity over its values, and the period's
     * over its windows' quantities (count windows add as sums).
     */
    static BigDecimal combine(byte rule, BigDecimal before, BigDecimal window) {
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

    private static String string(byte[] utf8) {
        return utf8 == null ? null : new String(utf8, StandardCharsets.UTF_8);
    }
}
