package io.meterstream.routing;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;

/**
 * Gives every parsed usage record exactly one outcome: {@code dead_lettered}, {@code duplicate_same_payload},
 * {@code duplicate_conflicting_payload}, {@code late} or {@code windowed}. Keyed by {@link UsageDedupKey}
 * ((tenant_id, event_id) of a valid record), on Flink's internal rows: no per-record conversion on either side.
 *
 * <p>Dedup: the first record of a key wins. The state per key is one long, the first 64 bits of the first copy's
 * fingerprint (SHA-256 of the canonical event content), which tells a byte-for-byte retry from a conflicting reuse of
 * the idempotency key; a retry is dropped either way, the fingerprint only decides which count it lands in. TTL
 * (processing time, from the first copy) is the dedup horizon, 35 days by default. This replaced an SQL
 * {@code COUNT(*)}/{@code FIRST_VALUE} OVER aggregation whose accumulator rows, per-record Row conversions and full
 * snapshots were most of the job's CPU (measured with JFR).
 *
 * <p>Lateness: a first-seen record whose tumbling window has fired ({@code window_end - 1 <= watermark}) is
 * {@code late} and keeps its raw payload and coordinates; otherwise {@code windowed}, without them. The watermark it
 * judges by is the highest it has forwarded, kept in operator union-list state: Flink does not checkpoint
 * watermarks, and a check against the current watermark (SQL's {@code CURRENT_WATERMARK}) saw nothing right after a
 * restore and let a late event into a window that had already fired. At a checkpoint every fired window ends at or
 * before the stored floor; on restore at another parallelism every subtask takes the lowest stored value, still at
 * or above every fired window's end.
 *
 * <p>Idleness stops here: this operator never forwards a watermark status. Source idleness (a partition without
 * traffic) is needed upstream so that it does not hold every window back; downstream it did harm: when usage paused
 * past the idle timeout and resumed, the channel that resumed first moved its consumer's watermark (period-to-date
 * OVER, the credits ledger's expiry and void timers) past records still in flight on another channel. Without idle
 * statuses each consumer waits for its slowest channel, and during a pause the watermark simply stands.
 *
 * <p>Columns: the input is the SQL view {@code usage_parsed} (looked up by name); the output is
 * {@link #outputType(RowType)}: {@code outcome}, the event's fields, the raw record's columns for dead-lettered
 * and late records only, the reject reason for dead-lettered ones, {@code window_end_ms} and
 * {@code watermark_at_routing_ms} for late ones.
 */
public final class UsageRouting extends AbstractStreamOperator<RowData> implements OneInputStreamOperator<RowData, RowData> {
    private static final long serialVersionUID = 1L;

    public static final String DEAD_LETTERED = "dead_lettered";
    public static final String DUPLICATE_SAME_PAYLOAD = "duplicate_same_payload";
    public static final String DUPLICATE_CONFLICTING_PAYLOAD = "duplicate_conflicting_payload";
    public static final String LATE = "late";
    public static final String WINDOWED = "windowed";
    private static final String[] OUTCOME_NAMES = {
        DEAD_LETTERED, DUPLICATE_SAME_PAYLOAD, DUPLICATE_CONFLICTING_PAYLOAD, LATE, WINDOWED,
    };
    private static final int O_DEAD = 0, O_SAME = 1, O_CONFLICT = 2, O_LATE = 3, O_WINDOWED = 4;
    private static final long NO_WATERMARK = Long.MIN_VALUE;

    /** Input columns every valid record carries on. */
    static final String[] EVENT_COLUMNS = {
        "tenant_id", "customer_id", "meter", "event_id", "event_time_ms", "value", "aggregation", "group_json",
        "unique_token",
    };
    /** Input columns only dead-lettered and late records carry on (they are written out whole). */
    static final String[] RECORD_COLUMNS = {"payload", "src_topic", "src_partition", "src_offset"};
    /** Input columns only dead-lettered records carry on. */
    static final String[] REJECT_COLUMNS = {"reason", "detail"};
    public static final String OUTCOME = "outcome";
    public static final String WINDOW_END_MS = "window_end_ms";
    public static final String WATERMARK_AT_ROUTING_MS = "watermark_at_routing_ms";
    private static final int EVENT_AT = 1;
    private static final int RECORD_AT = EVENT_AT + EVENT_COLUMNS.length;
    private static final int REJECT_AT = RECORD_AT + RECORD_COLUMNS.length;
    private static final int WINDOW_END_AT = REJECT_AT + REJECT_COLUMNS.length;
    private static final int WATERMARK_AT = WINDOW_END_AT + 1;
    private static final int ARITY = WATERMARK_AT + 1;

    private final RowData.FieldGetter[] eventGetters;
    private final RowData.FieldGetter[] recordGetters;
    private final RowData.FieldGetter[] rejectGetters;
    private final int reasonIndex;
    private final int fingerprintIndex;
    private final int eventTimeIndex;
    private final long windowSizeMs;
    private final long dedupTtlMs;

    private transient StringData[] outcomes;  // per subtask: string data materialises lazily, not thread-safe
    private transient ValueState<Long> firstFingerprint;
    private transient ListState<Long> floorState;
    private transient long watermarkFloor;

    /**
     * @param input       the row type of {@code usage_parsed}
     * @param windowSizeMs the tumbling window size (for a record's window end)
     * @param dedupTtlMs  how long a (tenant_id, event_id) is remembered
     */
    public UsageRouting(RowType input, long windowSizeMs, long dedupTtlMs) {
        this.eventGetters = getters(input, EVENT_COLUMNS);
        this.recordGetters = getters(input, RECORD_COLUMNS);
        this.rejectGetters = getters(input, REJECT_COLUMNS);
        this.reasonIndex = indexOf(input, "reason");
        this.fingerprintIndex = indexOf(input, "fingerprint");
        this.eventTimeIndex = indexOf(input, "event_time_ms");
        this.windowSizeMs = windowSizeMs;
        this.dedupTtlMs = dedupTtlMs;
    }

    /** The output row type: outcome, EVENT_COLUMNS, RECORD_COLUMNS, REJECT_COLUMNS (input types), then the two longs. */
    public static RowType outputType(RowType input) {
        List<RowType.RowField> fields = new ArrayList<>();
        fields.add(new RowType.RowField(OUTCOME, new VarCharType(false, VarCharType.MAX_LENGTH)));
        for (String[] columns : new String[][] {EVENT_COLUMNS, RECORD_COLUMNS, REJECT_COLUMNS}) {
            for (String column : columns) {
                fields.add(new RowType.RowField(column, input.getTypeAt(indexOf(input, column)).copy(true)));
            }
        }
        fields.add(new RowType.RowField(WINDOW_END_MS, new BigIntType(true)));
        fields.add(new RowType.RowField(WATERMARK_AT_ROUTING_MS, new BigIntType(true)));
        return new RowType(fields);
    }

    static int indexOf(RowType type, String column) {
        int index = type.getFieldIndex(column);
        if (index < 0) {
            throw new IllegalArgumentException("usage_parsed has no column " + column + ": " + type);
        }
        return index;
    }

    private static RowData.FieldGetter[] getters(RowType input, String[] columns) {
        RowData.FieldGetter[] getters = new RowData.FieldGetter[columns.length];
        for (int i = 0; i < columns.length; i++) {
            int index = indexOf(input, columns[i]);
            LogicalType type = input.getTypeAt(index);
            getters[i] = RowData.createFieldGetter(type, index);
        }
        return getters;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        outcomes = new StringData[OUTCOME_NAMES.length];
        for (int i = 0; i < OUTCOME_NAMES.length; i++) {
            outcomes[i] = StringData.fromString(OUTCOME_NAMES[i]);
        }
        ValueStateDescriptor<Long> descriptor = new ValueStateDescriptor<>("usage-dedup-first-fingerprint", Long.class);
        descriptor.enableTimeToLive(StateTtl.afterLastWrite(dedupTtlMs));
        firstFingerprint = context.getKeyedStateStore().getState(descriptor);
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
    public void processElement(StreamRecord<RowData> element) throws Exception {
        RowData in = element.getValue();
        GenericRowData out = new GenericRowData(ARITY);
        int outcome;
        if (!in.isNullAt(reasonIndex)) {
            outcome = O_DEAD;
            copy(in, recordGetters, out, RECORD_AT);
            copy(in, rejectGetters, out, REJECT_AT);
        } else {
            long fingerprint = fingerprint64(in.getString(fingerprintIndex));
            Long first = firstFingerprint.value();
            if (first != null) {
                outcome = first == fingerprint ? O_SAME : O_CONFLICT;
            } else {
                firstFingerprint.update(fingerprint);
                long eventTime = in.getLong(eventTimeIndex);
                long windowEnd = eventTime - Math.floorMod(eventTime, windowSizeMs) + windowSizeMs;
                if (watermarkFloor != NO_WATERMARK && windowEnd - 1 <= watermarkFloor) {
                    outcome = O_LATE;
                    copy(in, recordGetters, out, RECORD_AT);
                    out.setField(WINDOW_END_AT, windowEnd);
                    out.setField(WATERMARK_AT, watermarkFloor);
                } else {
                    outcome = O_WINDOWED;
                }
            }
        }
        if (outcome != O_DEAD) {
            copy(in, eventGetters, out, EVENT_AT);
        }
        out.setField(0, outcomes[outcome]);
        output.collect(element.replace(out));
    }

    private static void copy(RowData in, RowData.FieldGetter[] getters, GenericRowData out, int at) {
        for (int i = 0; i < getters.length; i++) {
            out.setField(at + i, getters[i].getFieldOrNull(in));
        }
    }

    /** The first 64 bits of the hex SHA-256 fingerprint (a valid record always has one). */
    static long fingerprint64(StringData hex) {
        if (hex == null) {
            throw new IllegalStateException("a valid usage record must carry a fingerprint");
        }
        return Long.parseUnsignedLong(hex.toString().substring(0, 16), 16);
    }
}
