package io.meterstream.routing;

import java.util.List;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.types.Row;

/**
 * Decides, for each first-seen usage event, whether its tumbling window can still count it ("windowed") or has
 * already fired ("late"), and remembers the watermark that decision is made against across restores.
 *
 * <p>Why an operator and not {@code CURRENT_WATERMARK} in SQL: Flink does not checkpoint watermarks. After a
 * restore the watermark starts from nothing (and, per Kafka partition, from records re-read after the checkpoint's
 * offsets), so for a while SQL saw no watermark at all and routed a late event "windowed". The window operator,
 * whose watermark had also restarted, then accepted it into a window that had already fired and fired it a second
 * time: a second line item with the same id. This operator keeps the highest watermark it has forwarded (operator
 * state) and judges lateness against it, so a window that fired before a failure stays closed after it.
 *
 * <p>Safety: a window downstream fires only after this operator forwarded a watermark past its end, so at a
 * checkpoint every fired window ends at or before the stored floor. On restore with other parallelism every
 * subtask takes the lowest floor of all (union state): still at or above every fired window's end.
 *
 * <p>Idleness stops here: this operator never forwards a watermark status. Source idleness (a partition without
 * traffic, a reader without a split) is needed upstream so that it does not hold every window back; downstream of
 * the shuffle it did harm. When usage paused past the idle timeout and resumed, one downstream channel became
 * active and moved its consumer's watermark before the others had caught up: at parallelism 2 an event-time
 * operator after the windows (period-to-date OVER, the credits ledger's expiry and void timers) then ran ahead of
 * line items still in flight on the other channel. Without idle statuses every channel keeps its last watermark
 * during a pause, and each consumer waits for the slowest; when every input is idle the watermark simply stays.
 *
 * <p>Rows come from the SQL view {@code usage_routed_plan} (named fields). A "first_seen" row becomes "late"
 * (with {@code watermark_at_routing_ms}) or "windowed" (then the columns only late and dead-lettered records need
 * are dropped, so they do not cross back into SQL). Other outcomes pass unchanged. The state is one long per
 * subtask, so it needs no TTL.
 */
public final class LateEventRouting extends AbstractStreamOperator<Row> implements OneInputStreamOperator<Row, Row> {
    private static final long serialVersionUID = 1L;

    public static final String FIRST_SEEN = "first_seen";
    public static final String LATE = "late";
    public static final String WINDOWED = "windowed";
    private static final long NO_WATERMARK = Long.MIN_VALUE;

    private final String[] lateOnlyColumns;
    private transient ListState<Long> floorState;
    private transient long watermarkFloor;

    /** @param lateOnlyColumns columns a windowed row does not need (payload, source coordinates, window end) */
    public LateEventRouting(String[] lateOnlyColumns) {
        this.lateOnlyColumns = lateOnlyColumns.clone();
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        floorState = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("late-routing-watermark-floor", Long.class));
        watermarkFloor = lowestRestoredFloor(floorState.get());
    }

    static long lowestRestoredFloor(Iterable<Long> restored) {
        long floor = NO_WATERMARK;
        boolean any = false;
        if (restored != null) {
            for (Long value : restored) {
                floor = any ? Math.min(floor, value) : value;
                any = true;
            }
        }
        return floor;
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        floorState.update(List.of(watermarkFloor));
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (mark.getTimestamp() > watermarkFloor) {
            watermarkFloor = mark.getTimestamp();
        }
        super.processWatermark(mark);
    }

    /** Never forwarded (see the class comment); this operator's outputs stay active. */
    @Override
    public void processWatermarkStatus(WatermarkStatus status) {
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        Row row = element.getValue();
        if (FIRST_SEEN.equals(row.getField("outcome"))) {
            route(row, watermarkFloor);
        }
        output.collect(element);
    }

    /** A window [start, end) fires when the watermark reaches end - 1 ms; from then on its events are late. */
    void route(Row row, long watermark) {
        Object windowEnd = row.getField("window_end_ms");
        if (windowEnd == null) {
            throw new IllegalStateException("a first-seen row must carry window_end_ms: " + row);
        }
        if (watermark != NO_WATERMARK && (Long) windowEnd - 1 <= watermark) {
            row.setField("outcome", LATE);
            row.setField("watermark_at_routing_ms", watermark);
        } else {
            row.setField("outcome", WINDOWED);
            for (String column : lateOnlyColumns) {
                row.setField(column, null);
            }
        }
    }
}
