package io.meterstream.rating;

import java.math.BigDecimal;

import io.meterstream.routing.Columns;
import io.meterstream.routing.StateTtl;
import io.meterstream.udf.RateLineItem;

import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.RowType;

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
 * through two more shuffles. Here the key is 16 bytes and a fired window is rated at once.
 *
 * <p>Order and lateness: timers fire in time order, so a key's windows close in window order and the period state
 * moves forward only; a window of a new period starts the period from nothing. No record arrives for a window that
 * has fired: the routing operator upstream sends such records to the late topic, judged by a watermark at or above
 * this operator's (it forwards no watermark before the records it precedes).
 *
 * <p>State: the open windows of a key (a value per window, namespaced by its start, as Flink's own window operator
 * keeps them; a map state with TTL cost twice as much) and the period to date after its latest fired window; both
 * with a TTL (processing time) that outlives a billing period; a fired window's value is cleared.
 */
public final class WindowRating extends AbstractStreamOperator<String>
        implements OneInputStreamOperator<RowData, String>, Triggerable<Tuple2<Long, Long>, VoidNamespace> {
    private static final long serialVersionUID = 1L;

    /** One open window of a key. Public fields: Flink's POJO serializer. */
    public static final class Window {
        public String tenantId;
        public String customerId;
        public String meter;
        public String groupJson;
        public String aggregation;
        public long eventCount;
        public BigDecimal quantity;
        public String lastKey;

        public Window() {
        }
    }

    /** The period to date after a key's latest fired window. Public fields: Flink's POJO serializer (nullable). */
    public static final class PeriodToDate {
        public long periodStartMs;
        public BigDecimal quantity;
        public String lastKey;

        public PeriodToDate() {
        }

        PeriodToDate(long periodStartMs, BigDecimal quantity, String lastKey) {
            this.periodStartMs = periodStartMs;
            this.quantity = quantity;
            this.lastKey = lastKey;
        }
    }

    private final int tenant, customer, meter, group, aggregation, eventId, eventTime, value;
    private final int valuePrecision, valueScale;
    private final String ratingCatalogJson;
    private final long windowSizeMs;
    private final long stateTtlMs;

    private transient ValueStateDescriptor<Window> windowDescriptor;
    private transient ValueState<PeriodToDate> periodToDate;
    private transient InternalTimerService<VoidNamespace> windowEnds;
    private transient Counter windowsRated;
    private transient RateLineItem rate;
    private transient StringData catalog;

    /**
     * @param rows              the windowed usage records' row type (the routing operator's main output)
     * @param ratingCatalogJson {@code udfs.rating_catalog.rating_catalog_json(catalog)}
     * @param windowSizeMs      the tumbling window size
     * @param stateTtlMs        TTL of window and period state (longer than a billing period)
     */
    public WindowRating(RowType rows, String ratingCatalogJson, long windowSizeMs, long stateTtlMs) {
        tenant = Columns.indexOf(rows, "tenant_id");
        customer = Columns.indexOf(rows, "customer_id");
        meter = Columns.indexOf(rows, "meter");
        group = Columns.indexOf(rows, "group_json");
        aggregation = Columns.indexOf(rows, "aggregation");
        eventId = Columns.indexOf(rows, "event_id");
        eventTime = Columns.indexOf(rows, "event_time_ms");
        value = Columns.indexOf(rows, "value");
        DecimalType decimal = (DecimalType) rows.getTypeAt(value);
        valuePrecision = decimal.getPrecision();
        valueScale = decimal.getScale();
        this.ratingCatalogJson = ratingCatalogJson;
        this.windowSizeMs = windowSizeMs;
        this.stateTtlMs = stateTtlMs;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        windowDescriptor = new ValueStateDescriptor<>("open-window", Window.class);
        windowDescriptor.enableTimeToLive(StateTtl.afterLastWrite(stateTtlMs));
        ValueStateDescriptor<PeriodToDate> periodDescriptor =
                new ValueStateDescriptor<>("period-to-date", PeriodToDate.class);
        periodDescriptor.enableTimeToLive(StateTtl.afterLastWrite(stateTtlMs));
        periodToDate = context.getKeyedStateStore().getState(periodDescriptor);
        rate = new RateLineItem();
        catalog = StringData.fromString(ratingCatalogJson);
    }

    @Override
    public void open() throws Exception {
        super.open();
        windowEnds = getInternalTimerService("window-ends", VoidNamespaceSerializer.INSTANCE, this);
        windowsRated = getMetricGroup().addGroup("meterstream").counter("windows_rated");
    }

    @Override
    public void processElement(StreamRecord<RowData> element) throws Exception {
        RowData row = element.getValue();
        long time = row.getLong(eventTime);
        long windowStart = time - Math.floorMod(time, windowSizeMs);
        ValueState<Window> state = window(windowStart);
        Window window = state.value();
        if (window == null) {
            long windowEnd = windowStart + windowSizeMs;
            if (windowEnd - 1 <= windowEnds.currentWatermark()) {
                // Routing sends such records to the late topic (see the class comment); billing it here would emit
                // a second line item for a fired window. A broken invariant in money: fail loudly, lose nothing.
                throw new IllegalStateException("a windowed record reached the window operator after its window "
                        + "[" + windowStart + ", " + windowEnd + ") fired (watermark " + windowEnds.currentWatermark()
                        + "): " + row);
            }
            window = new Window();
            window.tenantId = string(row, tenant);
            window.customerId = string(row, customer);
            window.meter = string(row, meter);
            window.groupJson = string(row, group);
            window.aggregation = string(row, aggregation);
            windowEnds.registerEventTimeTimer(VoidNamespace.INSTANCE, windowStart + windowSizeMs - 1);
        }
        window.eventCount++;
        BigDecimal amount = row.isNullAt(value) ? null : row.getDecimal(value, valuePrecision, valueScale).toBigDecimal();
        switch (window.aggregation) {
            case "sum":
            case "max":
            case "min":
                window.quantity = combine(window.aggregation, window.quantity, amount);  // same rule as the period
                break;
            case "last":
                if (amount != null) {
                    window.lastKey = RateLineItem.laterLastKey(
                            window.lastKey, RateLineItem.lastKey(time, string(row, eventId), amount));
                }
                break;
            default: // count: the event count is the quantity
        }
        state.update(window);
    }

    /** The open window starting at {@code windowStart} of the current key (a value state namespaced by its start). */
    private ValueState<Window> window(long windowStart) throws Exception {
        return getPartitionedState(windowStart, LongSerializer.INSTANCE, windowDescriptor);
    }

    @Override
    public void onEventTime(InternalTimer<Tuple2<Long, Long>, VoidNamespace> timer) throws Exception {
        long windowStart = timer.getTimestamp() + 1 - windowSizeMs;
        ValueState<Window> state = window(windowStart);
        Window window = state.value();
        if (window == null) {
            return;
        }
        state.clear();
        // Compact: period sums and prices of scale-18 decimals would all run on big integers (RateLineItem.compact).
        BigDecimal quantity = "count".equals(window.aggregation) ? BigDecimal.valueOf(window.eventCount)
                : RateLineItem.compact(window.quantity);
        long periodStart = rate.periodStartMs(catalog, window.tenantId, windowStart);
        PeriodToDate before = periodToDate.value();
        if (before != null && before.periodStartMs != periodStart) {
            before = null;  // a new period starts from nothing
        }
        BigDecimal quantityBefore = before == null ? null : before.quantity;
        BigDecimal quantityAfter = combine(window.aggregation, quantityBefore, quantity);
        String lineItem = rate.eval(window.tenantId, window.customerId, window.meter, window.groupJson,
                window.aggregation, windowStart, window.eventCount, quantity, window.lastKey, quantityBefore,
                quantityAfter, before == null ? null : before.lastKey, catalog, windowSizeMs, null);
        periodToDate.update(new PeriodToDate(periodStart, quantityAfter, window.lastKey));
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
    static BigDecimal combine(String aggregation, BigDecimal before, BigDecimal window) {
        switch (aggregation) {
            case "sum":
            case "count":
                return before == null ? window : window == null ? before : before.add(window);
            case "max":
                return extreme(before, window, true);
            case "min":
                return extreme(before, window, false);
            default:
                return null;
        }
    }

    private static String string(RowData row, int index) {
        return row.isNullAt(index) ? null : row.getString(index).toString();
    }
}
