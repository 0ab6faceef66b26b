package io.meterstream.rating;

import java.math.BigDecimal;

import io.meterstream.routing.StateTtl;
import io.meterstream.udf.RateLineItem;

import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.RowType;

/**
 * Period to date and rating, per fired window: keyed by {@link PeriodKey} (tenant, customer, meter, group, billing
 * period), it keeps the period quantity after the key's latest window and that window's {@code last_key}, combines
 * the new window into the period by the meter's rule and rates it with {@link RateLineItem} (the same function
 * the parity test holds byte-identical to the Python reference). Emits the line item JSON.
 *
 * <p>Rule per aggregation (what {@code udfs.aggregations} does for a period): sum and count add window quantities,
 * max and min keep the extreme, last reads the latest window's {@code last_key} (carried as "before" for the next
 * window); unique_count meters never come here (their period needs the set of distinct values: Python).
 *
 * <p>Why an operator and not SQL: running SUM/MAX/MIN and LAG as event-time OVER aggregates buffered every window
 * row in state with a timer until the watermark passed it, twice, behind two shuffles; this workload has one window
 * row per three to ten events. Arrival order is window order here: a key's windows all come from one window
 * subtask, which fires them in watermark order, over one FIFO channel; no window fires late (late events are
 * routed out before the windows).
 *
 * <p>State: one small value per key with a TTL (processing time) that outlives a billing period; a new period is a
 * new key and starts from nothing.
 */
public final class PeriodToDateRating extends AbstractStreamOperator<String> implements OneInputStreamOperator<RowData, String> {
    private static final long serialVersionUID = 1L;

    /** The state per key: after the key's latest window. Public fields: Flink's POJO serializer (nullable). */
    public static final class PeriodToDate {
        public BigDecimal quantity;
        public String lastKey;

        public PeriodToDate() {
        }

        PeriodToDate(BigDecimal quantity, String lastKey) {
            this.quantity = quantity;
            this.lastKey = lastKey;
        }
    }

    private final int tenant, customer, meter, group, aggregation, windowStart, eventCount, quantity, lastKey;
    private final int quantityPrecision, quantityScale;
    private final String ratingCatalogJson;
    private final long windowSizeMs;
    private final long stateTtlMs;

    private transient ValueState<PeriodToDate> periodToDate;
    private transient RateLineItem rate;
    private transient StringData catalog;

    public PeriodToDateRating(RowType windows, String ratingCatalogJson, long windowSizeMs, long stateTtlMs) {
        tenant = indexOf(windows, "tenant_id");
        customer = indexOf(windows, "customer_id");
        meter = indexOf(windows, "meter");
        group = indexOf(windows, "group_json");
        aggregation = indexOf(windows, "aggregation");
        windowStart = indexOf(windows, "window_start_ms");
        eventCount = indexOf(windows, "event_count");
        quantity = indexOf(windows, "quantity");
        lastKey = indexOf(windows, "last_key");
        DecimalType decimal = (DecimalType) windows.getTypeAt(quantity);
        quantityPrecision = decimal.getPrecision();
        quantityScale = decimal.getScale();
        this.ratingCatalogJson = ratingCatalogJson;
        this.windowSizeMs = windowSizeMs;
        this.stateTtlMs = stateTtlMs;
    }

    static int indexOf(RowType type, String column) {
        int index = type.getFieldIndex(column);
        if (index < 0) {
            throw new IllegalArgumentException("the window rows have no column " + column + ": " + type);
        }
        return index;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        ValueStateDescriptor<PeriodToDate> descriptor = new ValueStateDescriptor<>("period-to-date", PeriodToDate.class);
        descriptor.enableTimeToLive(StateTtl.afterLastWrite(stateTtlMs));
        periodToDate = context.getKeyedStateStore().getState(descriptor);
        rate = new RateLineItem();
        catalog = StringData.fromString(ratingCatalogJson);
    }

    @Override
    public void processElement(StreamRecord<RowData> element) throws Exception {
        RowData row = element.getValue();
        String rowAggregation = string(row, aggregation);
        BigDecimal windowQuantity = row.isNullAt(quantity)
                ? null : row.getDecimal(quantity, quantityPrecision, quantityScale).toBigDecimal();
        String windowLastKey = string(row, lastKey);
        PeriodToDate before = periodToDate.value();
        BigDecimal quantityBefore = before == null ? null : before.quantity;
        BigDecimal quantityAfter = combine(rowAggregation, quantityBefore, windowQuantity);
        String lineItem = rate.eval(string(row, tenant), string(row, customer), string(row, meter), string(row, group),
                rowAggregation, row.getLong(windowStart), row.getLong(eventCount), windowQuantity, windowLastKey,
                quantityBefore, quantityAfter, before == null ? null : before.lastKey, catalog, windowSizeMs, null);
        periodToDate.update(new PeriodToDate(quantityAfter, windowLastKey));
        output.collect(element.replace(lineItem));
    }

    /** The period quantity after a window: what SQL's running SUM/MAX/MIN gave (NULLs ignored; none for last). */
    static BigDecimal combine(String aggregation, BigDecimal before, BigDecimal window) {
        if (window == null || before == null) {
            return isRunning(aggregation) ? (window == null ? before : window) : null;
        }
        switch (aggregation) {
            case "sum":
            case "count":
                return before.add(window);
            case "max":
                return before.max(window);
            case "min":
                return before.min(window);
            default:
                return null;
        }
    }

    private static boolean isRunning(String aggregation) {
        switch (aggregation) {
            case "sum":
            case "count":
            case "max":
            case "min":
                return true;
            default:
                return false;
        }
    }

    private static String string(RowData row, int index) {
        return row.isNullAt(index) ? null : row.getString(index).toString();
    }
}
