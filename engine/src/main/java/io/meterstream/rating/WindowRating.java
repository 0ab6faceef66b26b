package io.meterstream.rating;

import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

import io.meterstream.routing.CountingOperator;
import io.meterstream.routing.UsageRouting;
import io.meterstream.routing.WindowedUsage;
import io.meterstream.rules.Rules;
import io.meterstream.validation.CanonicalJson;
import io.meterstream.windows.TumblingWindows;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
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
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;

/**
 * Tumbling event-time windows, period to date and rating in one keyed operator: keyed by {@link MeterKey}
 * (tenant, customer, meter, group), it aggregates each window of the windowed usage records, and when the watermark
 * passes the window's end, combines it into the billing period and emits the line item JSON of
 * {@link RateLineItem} (the function the rating parity test holds byte-identical to the Python reference).
 *
 * <p>Window rule per aggregation: sum adds values, count counts, max and min keep the extreme, last keeps the
 * greatest {@link RateLineItem#lastKey} (latest event time, then event id), unique_count keeps the distinct tokens.
 * Period rule: sum and count add window quantities, max and min keep the extreme, last takes the latest window's
 * key. unique_count windows are not rated here: their period needs the set of distinct values of the whole period,
 * kept by the keyed Python accumulator, to which a fired window goes as a {@link #UNIQUE_COUNT_WINDOW_TYPE} row
 * (side output); with corrections, with each value's multiplicity, and the corrections of a fired window go there
 * too (the accumulator retains its fired windows' contents).
 *
 * <p>Why one Java operator and not SQL (a TUMBLE aggregate, then running SUM/MAX/MIN and LAG as OVER aggregates):
 * this workload has a window row per three to ten events, and the SQL path hashed each record's and each window
 * row's composite string key several times (state, timers, buffers, key groups; 15 % of the job's CPU in a JFR
 * profile), buffered every window row in state with a timer until the watermark passed it, twice, and moved it
 * through two more shuffles. Here the key is a 128-bit hash and a fired window is rated at once.
 *
 * <p>Order and lateness, per series (the rule's specification is {@code udfs/lateness.py}; the whole order over a stream
 * with corrections is {@code udfs/rating_stream.py}, bound by {@code golden/rating-stream.json}): a series' windows fire
 * in window order; a window of a new period starts the period from nothing (or from what late usage put there), and
 * the period it leaves is kept for late usage. A first-seen record is late when its series has already fired its
 * window or a later one ({@link Series#fired}); it is billed as a late adjustment ({@link #billLate},
 * {@code udfs.line_items.accumulate_late}): the late records of one window decided together fold into the state of
 * the window's period by the order-free period rules, and make one line when they move its quantity. Every other
 * record is billed in its window, even one whose window the watermark has passed (a new series, or one that has not
 * reached that window yet). So a record's outcome depends only on its own series' history, never on another
 * tenant's or customer's clock.
 *
 * <p>Made independent of timing and parallelism: each record carries the watermark the routing operator had
 * forwarded before it ({@link WindowedUsage#floorMs}, its place in the stream's time). A window opened by a record
 * routed after the watermark had passed it fires at that watermark + 1 ms (the first watermark after it), not at its
 * end; every other window at its end - 1. A record whose window the watermark had passed at routing (only such a
 * record can be late; routing marks it, with what a late event is written out with, {@link
 * WindowedUsage.PastWatermark}) is decided only once this operator's watermark is past the one it came after: then
 * every record routed before it, or after the same watermark, has arrived, whichever routing subtask it came
 * through; until then it waits in its series' state with a timer at that watermark + 1. The records that came after
 * watermark f are decided together, after the windows due by f have fired and before those due at f + 1 (so against
 * exactly the windows that had to fire by the watermark they came after). A record that was not past the
 * watermark at routing cannot find its window fired; if one does, an invariant in money is broken and the job fails,
 * loudly. Corrections (with {@code --corrections}; max, min, last and unique_count series retain their open windows'
 * contents for them, {@link WindowContents}, and max, min and last ones their fired windows' too) come as records of their own
 * ({@link WindowedUsage#correction}: remove, add or amend of one event's contribution to this series) after the
 * watermark the correction came after, and are decided like records that came past it, after the usage of the same
 * watermark ({@link #correct}, {@code udfs.corrections.correct_window}): an open window changes, a fired one gets
 * a {@code correction} line (a prior-period adjustment once its period had closed). Late records are also written
 * to the {@code late} side output (the audit trail); both outcomes of the
 * records that came past the watermark are counted on the {@code accounting} side output (the routing operator counts
 * the rest).
 *
 * <p>State: one {@link Series} per key (identity, period to date after its latest fired window, earlier periods late
 * usage can reach, open windows),
 * with a TTL (processing time, from the last write) that outlives the oldest event validation accepts plus a billing
 * period (a late record must never find its series forgotten while its period can still be billed), kept by
 * {@link SeriesStore} in
 * a plain map. With the heap backend (local runs) it is checkpointed as raw keyed state per key group, whole (see
 * there why not a managed ValueState); with any other (RocksDB: the cluster's) each checkpoint stores the series
 * touched since the last one in managed state ({@link #SERIES_STATE}, one value per series key), so what it writes
 * grows with the series touched, not with those held, and series untouched for two checkpoints leave the heap (read
 * back when a record or timer needs them). One value
 * per key: a record reads it once and changes it in place, and a checkpoint writes a series' identity once, not once
 * per open window. Window timers stay in Flink's timer service (managed, restored with their key groups).
 */
public final class WindowRating extends CountingOperator<String>
        implements OneInputStreamOperator<WindowedUsage, String>, Triggerable<Tuple2<Long, Long>, VoidNamespace> {
    private static final long serialVersionUID = 1L;

    /**
     * A fired unique_count window for the Python period accumulator (tokens: comma-joined, sorted; NULL: none), or
     * the late events of one that came after the same watermark ({@code late_watermark_ms}; NULL: the window itself;
     * {@code opened_after_ms}: for a window, the watermark its first record came after if that had passed it). With
     * corrections: {@code unique_token_counts}, each token's multiplicity (events carrying it) in the same order, and
     * a fired window's corrections that came after watermark {@code late_watermark_ms} as {@code corrections}, a JSON
     * array of {@code [event_id, "remove" | "add", token | null]} in arrival order ({@code udfs.window_rows}).
     */
    public static final RowType UNIQUE_COUNT_WINDOW_TYPE = new RowType(List.of(
            new RowType.RowField("tenant_id", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("customer_id", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("meter", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("group_json", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("aggregation", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("window_start_ms", new BigIntType(false)),
            new RowType.RowField("window_end_ms", new BigIntType(false)),
            new RowType.RowField("event_count", new BigIntType(false)),
            new RowType.RowField("unique_tokens", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("late_watermark_ms", new BigIntType(true)),
            new RowType.RowField("opened_after_ms", new BigIntType(true)),
            new RowType.RowField("unique_token_counts", new VarCharType(true, VarCharType.MAX_LENGTH)),
            new RowType.RowField("corrections", new VarCharType(true, VarCharType.MAX_LENGTH))));

    /**
     * The highest watermark below the maximum this operator has seen, kept across restores (a restore after the last
     * finite watermark sees none again before the maximum, and the corrections after the end are named by it).
     */
    private transient long lastFiniteWatermark = RateLineItem.NO_WATERMARK;
    private transient ListState<Long> lastFiniteWatermarkState;
    private final boolean retainContents;
    private final long retainForMs;
    private final String catalogJson;
    private final long windowSizeMs;
    private final long stateTtlMs;
    private final long maxEventAgeMs;
    private final OutputTag<Row> uniqueCountWindows;
    private final OutputTag<Row> late;
    private final OutputTag<Row> accounting;

    /** The managed state of the series with a backend other than the heap's (one value per series key: its
     * {@link SeriesStore#stored} bytes). */
    public static final String SERIES_STATE = "series-v1";

    private transient SeriesStore series;
    private transient org.apache.flink.api.common.state.ValueState<byte[]> seriesState;
    private transient InternalTimerService<VoidNamespace> windowEnds;
    private transient Counter windowsRated;
    private transient RateLineItem rate;
    private transient StringData catalog;
    private transient long pendingWindowed;  // records that came past the watermark, since the last flush
    private transient long pendingBilledLate;

    /**
     * @param catalogJson {@code udfs.java_catalog.java_catalog_json(catalog)} (its rating view: {@code RatingCatalog})
     * @param windowSizeMs      the tumbling window size
     * @param stateTtlMs        TTL of the series state (longer than the max event age plus a billing period)
     * @param maxEventAgeMs     the oldest event validation accepts: an earlier period is kept for late usage until it
     *                          ended this much (plus a day) before the series' latest period began
     * @param uniqueCountWindows side output of fired unique_count windows ({@link #UNIQUE_COUNT_WINDOW_TYPE})
     * @param late              side output of late records ({@code UsageRouting.lateType} of the parsed input)
     * @param accounting        side output of outcome counts ({@code UsageRouting.ACCOUNTING_TYPE})
     */
    public WindowRating(String catalogJson, long windowSizeMs, long stateTtlMs, long maxEventAgeMs,
            OutputTag<Row> uniqueCountWindows, OutputTag<Row> late, OutputTag<Row> accounting) {
        this(catalogJson, windowSizeMs, stateTtlMs, maxEventAgeMs, uniqueCountWindows, late, accounting, false);
    }

    /**
     * @param retainContents with corrections: max, min and last series retain their windows' contents
     *                       ({@link WindowContents}), which their corrections need
     */
    public WindowRating(String catalogJson, long windowSizeMs, long stateTtlMs, long maxEventAgeMs,
            OutputTag<Row> uniqueCountWindows, OutputTag<Row> late, OutputTag<Row> accounting,
            boolean retainContents) {
        this(catalogJson, windowSizeMs, stateTtlMs, maxEventAgeMs, uniqueCountWindows, late, accounting,
                retainContents, Long.MAX_VALUE);
    }

    /**
     * @param retainForMs how long a fired window keeps its contents after its latest contribution, on its series'
     *                    clock ({@link #tick}; {@code udfs.corrections.retained_for_ms} of the correction horizon):
     *                    then it is folded into its period's frozen part, since no correction can reach its events
     *                    any more
     */
    public WindowRating(String catalogJson, long windowSizeMs, long stateTtlMs, long maxEventAgeMs,
            OutputTag<Row> uniqueCountWindows, OutputTag<Row> late, OutputTag<Row> accounting,
            boolean retainContents, long retainForMs) {
        if (retainForMs <= 0) {
            throw new IllegalArgumentException("retainForMs must be > 0, got " + retainForMs);
        }
        this.retainContents = retainContents;
        this.retainForMs = retainForMs;
        this.catalogJson = catalogJson;
        this.windowSizeMs = windowSizeMs;
        this.stateTtlMs = stateTtlMs;
        this.maxEventAgeMs = maxEventAgeMs;
        this.uniqueCountWindows = uniqueCountWindows;
        this.late = late;
        this.accounting = accounting;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        series = new SeriesStore(stateTtlMs, windowSizeMs);
        org.apache.flink.api.common.state.ValueStateDescriptor<byte[]> stored =
                new org.apache.flink.api.common.state.ValueStateDescriptor<>(SERIES_STATE,
                        org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
        // A safety net for series that leave the heap and never come back: the store's own rule (processing time
        // from the series' last write) decides first; the day's margin covers a restore's clock against the
        // processing time it ran on.
        stored.enableTimeToLive(org.apache.flink.api.common.state.StateTtlConfig.newBuilder(
                java.time.Duration.ofMillis(stateTtlMs).plusDays(1)).build());
        seriesState = getKeyedStateBackend().getPartitionedState(VoidNamespace.INSTANCE,
                VoidNamespaceSerializer.INSTANCE, stored);
        boolean heap = getKeyedStateBackend() instanceof org.apache.flink.runtime.state.heap.HeapKeyedStateBackend;
        SeriesStore.Backing backing = heap ? null : new ManagedSeries();
        if (context.isRestored()) {
            for (KeyGroupStatePartitionStreamProvider keyGroup : context.getRawKeyedStateInputs()) {
                try (InputStream in = keyGroup.getStream()) {
                    series.readKeyGroup(new DataInputViewStreamWrapper(in), keyGroup.getKeyGroupId());
                }
            }
            if (heap) {
                // written with another backend: its series to the heap, whose checkpoints write them whole
                ManagedSeries managed = new ManagedSeries();
                List<long[]> keys = new ArrayList<>();
                managed.forEachStoredKey((hi, lo) -> keys.add(new long[] {hi, lo}));
                for (long[] key : keys) {
                    managed.select(key[0], key[1]);
                    byte[] bytes = managed.load();
                    if (bytes != null) {
                        series.restore(key[0], key[1], bytes);
                    }
                    managed.remove();
                }
            } else {
                series.touchAll();  // raw keyed state (the heap backend's, or a release before): stored next time
            }
        }
        series.backWith(backing);
        rate = new RateLineItem();
        catalog = StringData.fromString(catalogJson);
        // union: every subtask saw the same watermarks (the minimum over the routing subtasks), and any may restore
        lastFiniteWatermarkState = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("last-finite-watermark", Long.class));
        for (Long restored : lastFiniteWatermarkState.get()) {
            lastFiniteWatermark = Math.max(lastFiniteWatermark, restored);
        }
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
        lastFiniteWatermarkState.update(List.of(lastFiniteWatermark));
        int maxParallelism = getRuntimeContext().getTaskInfo().getMaxNumberOfParallelSubtasks();
        KeyGroupRange range = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism,
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks(),
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
        KeyedStateCheckpointOutputStream out = context.getRawKeyedOperatorStateOutput();
        try {
            if (series.backed()) {
                series.checkpointToBacking(now());  // before the backend's snapshot, which then holds them
            }
            // backed: an empty block per key group (its series are in managed state)
            int[][] slots = series.backed() ? new int[range.getNumberOfKeyGroups()][0]
                    : series.slotsByKeyGroup(range, maxParallelism, now());
            DataOutputViewStreamWrapper view = new DataOutputViewStreamWrapper(out);
            for (int keyGroup : out.getKeyGroupList()) {
                out.startNewKeyGroup(keyGroup);
                series.writeKeyGroup(slots[keyGroup - range.getStartKeyGroup()], view);
            }
        } finally {
            out.close();  // closes this operator's part only: the checkpoint owns the underlying stream
        }
    }

    /** Series held in the heap (tests). */
    int seriesInHeap() {
        return series.size();
    }

    /** Whether the series are stored in managed state (a backend other than the heap's; tests). */
    boolean seriesStored() {
        return series.backed();
    }

    /** The series' managed state under the operator's current key ({@link SeriesStore.Backing}). */
    private final class ManagedSeries implements SeriesStore.Backing {
        @Override
        public byte[] load() throws Exception {
            return seriesState.value();
        }

        @Override
        public void store(byte[] bytes) throws Exception {
            seriesState.update(bytes);
        }

        @Override
        public void remove() {
            seriesState.clear();
        }

        @Override
        public void select(long hi, long lo) {
            setCurrentKey(Tuple2.of(hi, lo));
        }

        @Override
        public void forEachStoredKey(SeriesStore.Visitor visitor) throws Exception {
            List<Tuple2<Long, Long>> keys;
            @SuppressWarnings("unchecked")
            org.apache.flink.runtime.state.KeyedStateBackend<Tuple2<Long, Long>> backend =
                    (org.apache.flink.runtime.state.KeyedStateBackend<Tuple2<Long, Long>>) (Object)
                            getKeyedStateBackend();
            try (java.util.stream.Stream<Tuple2<Long, Long>> stored = backend.getKeys(SERIES_STATE,
                    VoidNamespace.INSTANCE)) {
                keys = stored.collect(java.util.stream.Collectors.toList());  // visited after: a visit may write
            }
            for (Tuple2<Long, Long> key : keys) {
                visitor.visit(key.f0, key.f1);
            }
        }
    }

    @Override
    protected void flushCounts() {
        if (pendingWindowed > 0) {
            output.collect(accounting, new StreamRecord<>(Row.of(UsageRouting.WINDOWED, "", pendingWindowed)));
            pendingWindowed = 0;
        }
        if (pendingBilledLate > 0) {
            output.collect(accounting, new StreamRecord<>(Row.of(UsageRouting.BILLED_LATE, "", pendingBilledLate)));
            pendingBilledLate = 0;
        }
    }

    private long now() {
        return getProcessingTimeService().getCurrentProcessingTime();
    }

    @Override
    public void processElement(StreamRecord<WindowedUsage> element) throws Exception {
        WindowedUsage record = element.getValue();
        long now = now();
        Series s = series.get(record.seriesHi, record.seriesLo, now);
        if (s == null) {
            s = series.add(record.seriesHi, record.seriesLo, new Series(string(record.tenantId),
                    string(record.customerId), string(record.meter), string(record.groupJson),
                    record.aggregationName()), now);
        }
        retaining(s);
        if (record.pastWatermark == null && record.correction == WindowedUsage.NOT_A_CORRECTION) {
            add(s, record);  // on time: its window cannot have fired (see the class comment)
        } else {
            // Decided once this operator's watermark is past the one it came after: then every record routed before
            // it, or after the same watermark, has arrived (whichever routing subtask it came through).
            if (s.pending == null) {
                s.pending = new ArrayList<>(2);
            }
            s.pending.add(record);
            // A correction after the end of the usage input (a bounded run: floor at the maximum) waits for the
            // timer at the maximum, which fires once every routing subtask has ended (each sends its corrections
            // before its maximum), before the windows' end of input goes on: all of them together, one line per
            // window ({@link #runDue}).
            windowEnds.registerEventTimeTimer(VoidNamespace.INSTANCE, decideAt(record.floorMs));
        }
        series.written(s, now);
    }

    /**
     * The corrections after the end of the usage input (floor at the maximum) count as decided after the later of
     * this operator's last watermark below the maximum (what the invoice stage last saw: a period it closed by then
     * gets a prior-period adjustment) and the first watermark that fired their window: their lines have a watermark
     * to be named by, and those of one window share it (one line per window).
     */
    private void afterTheEnd(Series s) {
        for (WindowedUsage record : s.pending) {
            if (record.floorMs == Long.MAX_VALUE) {
                record.floorMs = Math.max(lastFiniteWatermark, TumblingWindows.end(record.eventTimeMs, windowSizeMs) - 1);
            }
        }
    }

    /**
     * At the end of the input: a correction that came after this operator's maximum (none should: each routing
     * subtask sends its own before its maximum) is still decided, late for the invoice stage rather than lost.
     */
    @Override
    public void finish() throws Exception {
        long now = now();
        series.forEachKey((hi, lo) -> {
            setCurrentKey(Tuple2.of(hi, lo));
            Series s = series.get(hi, lo, now);
            if (s == null || s.pending == null) {
                return;
            }
            retaining(s);
            runDue(s, Long.MAX_VALUE);
            series.written(s, now);
        });
        super.finish();
    }

    @Override
    public void processWatermark(org.apache.flink.streaming.api.watermark.Watermark mark) throws Exception {
        if (mark.getTimestamp() != Long.MAX_VALUE && mark.getTimestamp() > lastFiniteWatermark) {
            lastFiniteWatermark = mark.getTimestamp();
        }
        super.processWatermark(mark);
    }

    /** When a record that came after watermark {@code floorMs} is decided: at the first watermark past it. */
    private static long decideAt(long floorMs) {
        return floorMs == Long.MAX_VALUE ? floorMs : floorMs + 1;
    }

    /**
     * The records that came past watermark {@code floor} ({@code batch}, in arrival order), once every window due by
     * that watermark has fired and none after: each joins its window if the series has not fired it (opening it if
     * need be), or is late. The late ones of one window make one late adjustment ({@link #billLate}).
     */
    private void decide(Series s, List<WindowedUsage> batch, long floor, long timestamp) {
        TreeMap<Long, LateGroup> lateByWindow = null;
        List<WindowedUsage> corrections = null;
        for (WindowedUsage record : batch) {
            if (record.correction != WindowedUsage.NOT_A_CORRECTION) {
                if (corrections == null) {
                    corrections = new ArrayList<>(2);
                }
                corrections.add(record);
                continue;
            }
            long windowStart = TumblingWindows.start(record.eventTimeMs, windowSizeMs);
            if (s.window(windowStart) < 0 && s.fired(windowStart)) {
                if (lateByWindow == null) {
                    lateByWindow = new TreeMap<>();
                }
                lateByWindow.computeIfAbsent(windowStart, LateGroup::new).add(record, s.aggregation);
            } else {
                pendingWindowed++;
                add(s, record);
            }
        }
        if (lateByWindow != null) {
            for (LateGroup group : lateByWindow.values()) {
                billLate(s, group, floor, timestamp);
            }
        }
        if (corrections != null) {
            correct(s, corrections, floor, timestamp);
        }
    }

    /**
     * The correction records of this series that came after watermark {@code floor} (after its usage that came after
     * the same watermark), {@code udfs.corrections.correct_window} (sum and count here; a series that retains window
     * contents, max, min, last or unique_count, in {@link #correctRetained}): one that meets its window
     * open changes the window (an add opens it, as a record would); those of a fired window make one line per window
     * ({@link #billCorrections}). A remove or amend whose window is neither open nor fired breaks an invariant in
     * money (the ledger only removes what was billed, and the event came through this series before): fail loudly.
     */
    private void correct(Series s, List<WindowedUsage> records, long floor, long timestamp) {
        if (s.contents != null) {
            correctRetained(s, records, floor, timestamp);
            return;
        }
        if (s.aggregation != WindowedUsage.SUM && s.aggregation != WindowedUsage.COUNT) {
            // max, min, last and unique_count series retain their windows' contents with corrections on.
            throw new IllegalStateException("a correction of a " + WindowedUsage.name(s.aggregation)
                    + " series that retains no window contents: " + s);
        }
        TreeMap<Long, CorrectionGroup> byWindow = null;
        for (WindowedUsage record : records) {
            long windowStart = TumblingWindows.start(record.eventTimeMs, windowSizeMs);
            int w = s.window(windowStart);
            if (w >= 0) {
                s.eventCounts[w] += CorrectionGroup.events(record);
                if (s.aggregation == WindowedUsage.SUM && record.value != null) {
                    s.quantities[w] = PeriodFold.combine(WindowedUsage.SUM, s.quantities[w],
                            record.correction == WindowedUsage.REMOVE ? record.value.negate() : record.value);
                }
            } else if (s.fired(windowStart)) {
                if (byWindow == null) {
                    byWindow = new TreeMap<>();
                }
                byWindow.computeIfAbsent(windowStart, CorrectionGroup::new).add(record, s.aggregation);
            } else if (record.correction == WindowedUsage.ADD) {
                add(s, record);
            } else {
                throw new IllegalStateException("a correction removes usage from a window its series neither holds "
                        + "open nor has fired (event time " + record.eventTimeMs + "): " + s);
            }
        }
        if (byWindow != null) {
            for (CorrectionGroup group : byWindow.values()) {
                billCorrections(s, group, floor, timestamp);
            }
        }
    }

    /** The corrections of one fired window that came after the same watermark (Python: one correct_window). */
    private static final class CorrectionGroup {
        final long windowStart;
        final List<WindowedUsage> records = new ArrayList<>(2);
        BigDecimal change = BigDecimal.ZERO;  // of the window's quantity

        CorrectionGroup(long windowStart) {
            this.windowStart = windowStart;
        }

        /** The change of the window's event count. */
        static int events(WindowedUsage record) {
            return record.correction == WindowedUsage.REMOVE ? -1 : record.correction == WindowedUsage.ADD ? 1 : 0;
        }

        void add(WindowedUsage record, byte aggregation) {
            records.add(record);
            if (aggregation == WindowedUsage.COUNT) {
                change = change.add(BigDecimal.valueOf(events(record)));
            } else if (record.value != null) {
                change = change.add(record.correction == WindowedUsage.REMOVE ? record.value.negate() : record.value);
            }
        }
    }

    /**
     * {@code udfs.line_items.bill_correction} for sum and count: the change of a fired window into the state of its
     * period (the series' latest or an earlier one; none yet: from nothing), and its correction line when the period
     * quantity moves ({@link RateLineItem#correctionLine}: a prior-period adjustment once the period had closed).
     */
    private void billCorrections(Series s, CorrectionGroup group, long floor, long timestamp) {
        long windowStart = group.windowStart;
        long periodStart = rate.periodStartMs(catalog, s.tenantId, windowStart);
        boolean latest = periodStart == s.periodStartMs;
        int prior = latest ? -1 : s.prior(periodStart);
        BigDecimal before = latest ? s.periodQuantity : prior < 0 ? null : s.priorQuantities[prior];
        BigDecimal change = RateLineItem.compact(group.change);
        BigDecimal after = PeriodFold.combine(s.aggregation, before, change);
        if (latest) {
            s.periodQuantity = after;
        } else {
            s.putPrior(periodStart, after, null);
        }
        if ((before == null ? BigDecimal.ZERO : before).compareTo(after) != 0) {
            output.collect(new StreamRecord<>(rate.correctionLine(s.tenantId, s.customerId, s.meter, s.groupJson,
                    windowStart, corrections(group.records), change, before, after, catalog, windowSizeMs, floor,
                    System.currentTimeMillis()), timestamp));
        }
    }

    /**
     * {@code udfs.corrections.correct_window} for max, min, last and unique_count series, which retain their windows'
     * contents: the corrections of each window that came after watermark {@code floor}. An open window's contents and
     * quantity change (no line: its usage line bills them); a fired one's change, its period is folded again over the
     * period's fired windows as they now stand and its frozen part ({@code accumulate_correction}), and the change of
     * the rounded period-to-date price is one correction line (a prior-period adjustment once the period had closed;
     * a unique_count window's go to the Python accumulator, {@link #sendUniqueCorrections}); a
     * window neither open nor fired is opened by its first add, as by a record (usage moved into the series by an
     * amend of a group-by dimension), and the rest change it as an open window (a cancel of the moved event, in the
     * same watermark step, used to fail the job here).
     */
    private void correctRetained(Series s, List<WindowedUsage> records, long floor, long timestamp) {
        for (Map.Entry<Long, List<WindowedUsage>> entry : byWindow(records).entrySet()) {
            long windowStart = entry.getKey();
            List<WindowedUsage> group = entry.getValue();
            boolean unique = s.aggregation == WindowedUsage.UNIQUE_COUNT;
            if (s.window(windowStart) < 0 && s.fired(windowStart)) {
                if (unique) {
                    sendUniqueCorrections(s, windowStart, group, floor, timestamp);
                } else {
                    billRetained(s, windowStart, group, floor, timestamp);
                }
                continue;
            }
            for (WindowedUsage record : group) {
                int w = s.window(windowStart);
                if (w < 0) {
                    openByAdd(s, record);  // usage moved into this series: what follows changes it as an open window
                    continue;
                }
                WindowContents c = s.contents.computeIfAbsent(windowStart, start -> new WindowContents());
                s.eventCounts[w] += CorrectionGroup.events(record);
                if (unique) {
                    applyToken(s, c, w, record);
                } else {
                    apply(s, c, record);
                    s.quantities[w] = s.aggregation == WindowedUsage.LAST ? null : c.quantity(s.aggregation);
                    s.lastKeys[w] = s.aggregation == WindowedUsage.LAST ? c.lastKey() : null;
                }
            }
        }
    }

    /** Correction records by the start of their window, windows in order, records in arrival order. */
    private TreeMap<Long, List<WindowedUsage>> byWindow(List<WindowedUsage> records) {
        TreeMap<Long, List<WindowedUsage>> byWindow = new TreeMap<>();
        for (WindowedUsage record : records) {
            byWindow.computeIfAbsent(TumblingWindows.start(record.eventTimeMs, windowSizeMs), k -> new ArrayList<>(2))
                    .add(record);
        }
        return byWindow;
    }

    /**
     * A correction of a window the series neither holds open nor has fired: an add opens it, as a record would; a
     * remove there breaks an invariant in money (the ledger removes only what this series billed): fail loudly.
     */
    private void openByAdd(Series s, WindowedUsage record) {
        if (record.correction != WindowedUsage.ADD) {
            throw new IllegalStateException("a correction removes usage from a window its series neither holds "
                    + "open nor has fired (event time " + record.eventTimeMs + "): " + s);
        }
        add(s, record);
    }

    /** One correction record into a window's retained contents (an amend travels as a remove and an add here). */
    private void apply(Series s, WindowContents c, WindowedUsage record) {
        boolean last = s.aggregation == WindowedUsage.LAST;
        String key = last ? RateLineItem.lastKey(record.eventTimeMs, string(record.eventId), record.value) : null;
        if (record.correction == WindowedUsage.ADD) {
            if (last) {
                c.addKey(key);
            } else {
                c.addValue(record.value);
            }
        } else if (record.correction != WindowedUsage.REMOVE || !(last ? c.removeKey(key)
                : c.removeValue(record.value))) {
            // The ledger removes only what it billed, into this series and window: a broken invariant in money
            // (or a correction that took longer than a correction horizon to get here: its window was frozen).
            throw new IllegalStateException("a correction (" + record.correction + ") of " + (last ? key
                    : record.value) + " that window " + record.eventTimeMs + "'s retained contents " + c
                    + " cannot take (nothing retained: frozen " + retainForMs + " ms after its latest "
                    + "contribution?): " + s);
        }
    }

    /** The corrections of one fired window of a retaining series (see {@link #correctRetained}). */
    private void billRetained(Series s, long windowStart, List<WindowedUsage> group, long floor, long timestamp) {
        boolean last = s.aggregation == WindowedUsage.LAST;
        WindowContents c = s.contents.computeIfAbsent(windowStart, start -> new WindowContents());
        c.seenMs = tick(s);
        BigDecimal windowBefore = windowQuantity(s, c);
        for (WindowedUsage record : group) {
            apply(s, c, record);
        }
        BigDecimal windowAfter = windowQuantity(s, c);
        long periodStart = rate.periodStartMs(catalog, s.tenantId, windowStart);
        long periodEnd = rate.periodEndMs(catalog, s.tenantId, windowStart);
        boolean latest = periodStart == s.periodStartMs;
        int prior = latest ? -1 : s.prior(periodStart);
        BigDecimal quantityBefore = latest ? s.periodQuantity : prior < 0 ? null : s.priorQuantities[prior];
        String keyBefore = latest ? s.periodLastKey : prior < 0 ? null : s.priorLastKeys[prior];
        // accumulate_correction: the period's fold again, over its frozen part and its fired windows as they stand
        BigDecimal quantity = s.frozenPeriodQuantities.get(periodStart);
        String key = s.frozenPeriodKeys.get(periodStart);
        for (Map.Entry<Long, WindowContents> window : s.contents.subMap(periodStart, true, periodEnd, false)
                .entrySet()) {
            if (s.window(window.getKey()) >= 0) {
                continue;  // open: not in the period to date yet
            }
            if (last) {
                key = RateLineItem.laterLastKey(key, window.getValue().lastKey());
            } else {
                quantity = PeriodFold.combine(s.aggregation, quantity, window.getValue().quantity(s.aggregation));
            }
        }
        if (last) {
            quantity = null;
        } else {
            key = null;
        }
        setPeriod(s, periodStart, quantity, key);
        BigDecimal before = last ? (keyBefore == null ? null : RateLineItem.lastValue(keyBefore)) : quantityBefore;
        BigDecimal after = last ? (key == null ? null : RateLineItem.lastValue(key)) : quantity;
        BigDecimal zero = BigDecimal.ZERO;
        if ((before == null ? zero : before).compareTo(after == null ? zero : after) != 0) {
            BigDecimal change = RateLineItem.compact((windowAfter == null ? zero : windowAfter)
                    .subtract(windowBefore == null ? zero : windowBefore));
            output.collect(new StreamRecord<>(rate.correctionLine(s.tenantId, s.customerId, s.meter, s.groupJson,
                    windowStart, corrections(group), change, before, after == null ? zero : after, catalog,
                    windowSizeMs, floor, System.currentTimeMillis()), timestamp));
        }
    }

    /**
     * How many corrections the records are ({@code udfs.rating_stream.corrections_in}): per event, the more of its
     * removes and its adds (an amend of a max, min or last event is its remove and its add; two amends, two of each).
     */
    private static long corrections(List<WindowedUsage> group) {
        Map<String, long[]> byEvent = new java.util.HashMap<>();
        for (WindowedUsage record : group) {
            long[] removesAndAdds = byEvent.computeIfAbsent(string(record.eventId), id -> new long[2]);
            if (record.correction == WindowedUsage.REMOVE || record.correction == WindowedUsage.AMEND) {
                removesAndAdds[0]++;
            }
            if (record.correction == WindowedUsage.ADD || record.correction == WindowedUsage.AMEND) {
                removesAndAdds[1]++;
            }
        }
        long corrections = 0;
        for (long[] removesAndAdds : byEvent.values()) {
            corrections += Math.max(removesAndAdds[0], removesAndAdds[1]);
        }
        return corrections;
    }

    /** The series' state of period {@code periodStart} (its latest, else an earlier one): quantity and last key. */
    private static void setPeriod(Series s, long periodStart, BigDecimal quantity, String lastKey) {
        if (periodStart == s.periodStartMs) {
            s.periodQuantity = quantity;
            s.periodLastKey = lastKey;
        } else {
            s.putPrior(periodStart, quantity, lastKey);
        }
    }

    /** A retained window's quantity by its series' rule: max/min over its values, last the value of its last key. */
    private static BigDecimal windowQuantity(Series s, WindowContents c) {
        if (s.aggregation == WindowedUsage.LAST) {
            String key = c.lastKey();
            return key == null ? null : RateLineItem.lastValue(key);
        }
        return c.quantity(s.aggregation);
    }

    /** The late events of one fired window that came after the same watermark (Python: one late WindowAggregate). */
    private static final class LateGroup {
        final long windowStart;
        final List<WindowedUsage> records = new ArrayList<>(2);
        BigDecimal quantity;
        String lastKey;
        TreeSet<String> tokens;

        LateGroup(long windowStart) {
            this.windowStart = windowStart;
        }

        /** The window rule of {@link #add}, over the late events. */
        void add(WindowedUsage record, byte aggregation) {
            records.add(record);
            switch (aggregation) {
                case WindowedUsage.SUM:
                case WindowedUsage.MAX:
                case WindowedUsage.MIN:
                    quantity = PeriodFold.combine(aggregation, quantity, record.value);
                    break;
                case WindowedUsage.LAST:
                    if (record.value != null) {
                        lastKey = RateLineItem.laterLastKey(lastKey,
                                RateLineItem.lastKey(record.eventTimeMs, string(record.eventId), record.value));
                    }
                    break;
                case WindowedUsage.UNIQUE_COUNT:
                    if (tokens == null) {
                        tokens = new TreeSet<>();
                    }
                    if (record.uniqueToken != null) {
                        tokens.add(string(record.uniqueToken));
                    }
                    break;
                default: // count
            }
        }
    }

    /**
     * {@code udfs.line_items.bill_late}: a late group into the state of its window's period (the series' latest or an
     * earlier one), and its late adjustment line when it changes the period quantity (else it is billed with no
     * line). unique_count groups go to the Python accumulator, which holds their periods' distinct values. Each late
     * event is also written to the {@code late} side output, the audit trail of late usage.
     */
    private void billLate(Series s, LateGroup group, long floor, long timestamp) {
        long windowStart = group.windowStart;
        long count = group.records.size();
        if (s.contents != null && s.aggregation != WindowedUsage.UNIQUE_COUNT) {
            WindowContents c = s.contents.computeIfAbsent(windowStart, start -> new WindowContents());
            c.seenMs = tick(s);
            for (WindowedUsage record : group.records) {
                if (record.value == null) {
                    continue;
                }
                if (s.aggregation == WindowedUsage.LAST) {
                    c.addKey(RateLineItem.lastKey(record.eventTimeMs, string(record.eventId), record.value));
                } else {
                    c.addValue(record.value);
                }
            }
        }
        pendingBilledLate += count;
        if (s.aggregation == WindowedUsage.UNIQUE_COUNT) {
            String tokens = group.tokens.isEmpty() ? null : String.join(",", group.tokens);
            String counts = null;
            if (s.contents != null) {
                TreeMap<String, Integer> carried = new TreeMap<>();
                for (WindowedUsage record : group.records) {
                    if (record.uniqueToken != null) {
                        carried.merge(string(record.uniqueToken), 1, Integer::sum);
                    }
                }
                counts = multiplicities(group.tokens, carried);
            }
            output.collect(uniqueCountWindows, new StreamRecord<>(Row.of(s.tenantId, s.customerId, s.meter,
                    s.groupJson, WindowedUsage.name(s.aggregation), windowStart, windowStart + windowSizeMs,
                    count, tokens, floor, null, counts, null), timestamp));
        } else {
            long periodStart = rate.periodStartMs(catalog, s.tenantId, windowStart);
            boolean latest = periodStart == s.periodStartMs;
            int prior = latest ? -1 : s.prior(periodStart);
            BigDecimal quantityBefore = latest ? s.periodQuantity : prior < 0 ? null : s.priorQuantities[prior];
            String lastKeyBefore = latest ? s.periodLastKey : prior < 0 ? null : s.priorLastKeys[prior];
            BigDecimal quantity = s.aggregation == WindowedUsage.COUNT ? BigDecimal.valueOf(count)
                    : RateLineItem.compact(group.quantity);
            BigDecimal quantityAfter;
            String lastKeyAfter;
            BigDecimal before;
            BigDecimal after;
            if (s.aggregation == WindowedUsage.LAST) {
                quantityAfter = null;
                lastKeyAfter = RateLineItem.laterLastKey(lastKeyBefore, group.lastKey);
                before = lastKeyBefore == null ? null : RateLineItem.lastValue(lastKeyBefore);
                after = lastKeyAfter == null ? null : RateLineItem.lastValue(lastKeyAfter);
            } else {
                quantityAfter = PeriodFold.combine(s.aggregation, quantityBefore, quantity);
                lastKeyAfter = null;
                before = quantityBefore;
                after = quantityAfter;
            }
            setPeriod(s, periodStart, quantityAfter, lastKeyAfter);
            // Python's unchanged period quantity (a period with no state has quantity 0): billed, no line.
            if ((before == null ? BigDecimal.ZERO : before).compareTo(after == null ? BigDecimal.ZERO : after) != 0) {
                output.collect(new StreamRecord<>(rate.lateAdjustment(s.tenantId, s.customerId, s.meter, s.groupJson,
                        windowStart, count, quantity, group.lastKey, before, after, catalog, windowSizeMs, floor,
                        System.currentTimeMillis()), timestamp));
            }
        }
        for (WindowedUsage record : group.records) {
            WindowedUsage.PastWatermark past = record.pastWatermark;
            output.collect(late, new StreamRecord<>(Row.of(past.payload, past.srcTopic, past.srcPartition,
                    past.srcOffset, windowStart + windowSizeMs, past.watermarkMs), record.eventTimeMs));
        }
    }

    /** A billed record into its window, which opens if it is not open (its series has not fired it). */
    private void add(Series s, WindowedUsage record) {
        long time = record.eventTimeMs;
        long windowStart = TumblingWindows.start(time, windowSizeMs);
        int w = s.window(windowStart);
        if (w < 0) {
            if (s.fired(windowStart)) {
                // An on-time record (its window end after the watermark at routing) cannot find its window fired: a
                // broken invariant in money. Fail loudly, lose nothing.
                throw new IllegalStateException("a record routed before the watermark passed its window found the "
                        + "window fired (watermark here " + windowEnds.currentWatermark() + ", at routing "
                        + record.floorMs + ", event time " + time + "): " + s);
            }
            // A window opened past the watermark fires at the first watermark after the one it came after, so that
            // whether it has fired, for a later record, depends on the watermark that record came after, not on
            // when watermarks reach this subtask.
            long fireAt = Math.max(windowStart + windowSizeMs - 1,
                    record.floorMs == Long.MIN_VALUE ? Long.MIN_VALUE : record.floorMs + 1);
            w = s.openWindow(windowStart, fireAt);
            windowEnds.registerEventTimeTimer(VoidNamespace.INSTANCE, fireAt);
        }
        s.eventCounts[w]++;
        BigDecimal amount = record.value;
        switch (record.aggregation) {  // the series' own (its key includes the meter)
            case WindowedUsage.SUM:
            case WindowedUsage.MAX:
            case WindowedUsage.MIN:
                s.quantities[w] = PeriodFold.combine(record.aggregation, s.quantities[w], amount);  // same rule as the period
                break;
            case WindowedUsage.LAST:
                if (amount != null) {
                    s.lastKeys[w] = RateLineItem.laterLastKey(
                            s.lastKeys[w], RateLineItem.lastKey(time, string(record.eventId), amount));
                }
                break;
            case WindowedUsage.UNIQUE_COUNT:
                if (record.uniqueToken != null) {
                    s.uniqueTokens[w].add(string(record.uniqueToken));
                }
                break;
            default: // count: the event count is the quantity
        }
        if (s.contents != null && record.aggregation == WindowedUsage.UNIQUE_COUNT) {
            if (record.uniqueToken != null) {
                s.contents.computeIfAbsent(windowStart, start -> new WindowContents())
                        .addKey(string(record.uniqueToken));
            }
        } else if (s.contents != null && amount != null) {
            WindowContents c = s.contents.computeIfAbsent(windowStart, start -> new WindowContents());
            if (record.aggregation == WindowedUsage.LAST) {
                c.addKey(RateLineItem.lastKey(time, string(record.eventId), amount));
            } else {
                c.addValue(amount);
            }
        }
    }

    /**
     * At time {@code t}, in time order: windows fire when the watermark reaches their fire time (in window order), and
     * the records that came past watermark f are decided at f + 1/2, after the windows due by f and before those due
     * at f + 1 (so against exactly the windows that had to fire by the watermark they came after, as
     * {@code udfs.lateness} decides them).
     */
    @Override
    public void onEventTime(InternalTimer<Tuple2<Long, Long>, VoidNamespace> timer) throws Exception {
        long now = now();
        Tuple2<Long, Long> key = timer.getKey();
        Series s = series.get(key.f0, key.f1, now);
        if (s == null) {
            return;
        }
        retaining(s);
        runDue(s, timer.getTimestamp());
        series.written(s, now);
    }

    /** What is due at time {@code t} (see {@link #onEventTime}). */
    private void runDue(Series s, long t) {
        if (t == Long.MAX_VALUE && s.pending != null) {
            afterTheEnd(s);
        }
        while (true) {
            long floor = Long.MAX_VALUE;
            boolean due = false;
            if (s.pending != null) {
                for (WindowedUsage record : s.pending) {
                    if (decideAt(record.floorMs) <= t && record.floorMs <= floor) {
                        floor = record.floorMs;
                        due = true;
                    }
                }
            }
            long fireBy = due ? floor : t;
            for (int w = s.dueWindow(fireBy); w >= 0; w = s.dueWindow(fireBy)) {
                fire(s, w, t);
            }
            if (!due) {
                break;
            }
            List<WindowedUsage> batch = new ArrayList<>(s.pending.size());
            ArrayList<WindowedUsage> waiting = null;
            for (WindowedUsage record : s.pending) {
                if (record.floorMs == floor) {
                    batch.add(record);
                } else {
                    if (waiting == null) {
                        waiting = new ArrayList<>(2);
                    }
                    waiting.add(record);
                }
            }
            s.pending = waiting;
            decide(s, batch, floor, t);
        }
        if (s.pending != null) {
            for (WindowedUsage record : s.pending) {
                // Idempotent; needed after a restore of format 2, whose records waited for a timer at their floor.
                windowEnds.registerEventTimeTimer(VoidNamespace.INSTANCE, decideAt(record.floorMs));
            }
        }
    }

    private void fire(Series s, int w, long timestamp) {
        long windowStart = s.windowStarts[w];
        long eventCount = s.eventCounts[w];
        s.lastFiredStartMs = windowStart;
        // A window opened by a record that came after the watermark had passed it fires at that watermark + 1: if its
        // period had closed by that watermark, its line is a prior-period adjustment (RateLineItem.windowLine).
        long openedAfter = s.fireAts[w] > windowStart + windowSizeMs - 1 ? s.fireAts[w] - 1 : RateLineItem.NO_WATERMARK;
        if (s.aggregation == WindowedUsage.UNIQUE_COUNT) {
            TreeSet<String> sorted = new TreeSet<>(s.uniqueTokens[w]);
            String tokens = sorted.isEmpty() ? null : String.join(",", sorted);
            // With corrections the accumulator retains the fired window's contents; this operator keeps none of it.
            WindowContents c = s.contents == null ? null : s.contents.remove(windowStart);
            String counts = c == null ? null : multiplicities(sorted, c.keys);
            s.closeWindow(w);
            output.collect(uniqueCountWindows, new StreamRecord<>(Row.of(s.tenantId, s.customerId, s.meter,
                    s.groupJson, WindowedUsage.name(s.aggregation), windowStart, windowStart + windowSizeMs,
                    eventCount, tokens, null, openedAfter == RateLineItem.NO_WATERMARK ? null : openedAfter, counts,
                    null), timestamp));
            return;
        }
        String lastKey = s.lastKeys[w];
        // Compact: period sums and prices of scale-18 decimals would all run on big integers (RateLineItem.compact).
        BigDecimal quantity = s.aggregation == WindowedUsage.COUNT ? BigDecimal.valueOf(eventCount)
                : RateLineItem.compact(s.quantities[w]);
        s.closeWindow(w);
        if (s.contents != null) {
            long now = tick(s);
            WindowContents fired = s.contents.get(windowStart);
            if (fired != null) {
                fired.seenMs = now;
            }
            freezeSettled(s, now);
        }
        long periodStart = rate.periodStartMs(catalog, s.tenantId, windowStart);
        if (periodStart != s.periodStartMs) {
            switchPeriod(s, periodStart);
        }
        BigDecimal quantityBefore = s.periodQuantity;
        String lastKeyBefore = s.periodLastKey;
        BigDecimal quantityAfter = PeriodFold.combine(s.aggregation, quantityBefore, quantity);
        // The period's last is the latest by (window, event time, event id): a window fired after every window late
        // usage went to, so its own last (when it has one) is the period's.
        String lastKeyAfter = RateLineItem.laterLastKey(lastKeyBefore, lastKey);
        String lineItem = rate.windowLine(s.tenantId, s.customerId, s.meter, s.groupJson,
                WindowedUsage.name(s.aggregation), windowStart, eventCount, quantity, lastKey, quantityBefore,
                quantityAfter, lastKeyBefore, catalog, windowSizeMs, null, openedAfter);
        s.periodQuantity = quantityAfter;
        s.periodLastKey = lastKeyAfter;
        output.collect(new StreamRecord<>(lineItem, timestamp));
        windowsRated.inc();
    }

    /**
     * The series' latest period becomes {@code periodStart} ({@code udfs.line_items.bill_window}): the one it leaves
     * is kept for late usage, the new one is taken from the earlier periods if late usage started it, else from
     * nothing; earlier periods that ended the max event age (plus a day) before the new one began are forgotten.
     */
    private void switchPeriod(Series s, long periodStart) {
        if (s.periodStartMs != Series.NO_PERIOD) {
            s.putPrior(s.periodStartMs, s.periodQuantity, s.periodLastKey);
        }
        int kept = s.prior(periodStart);
        if (kept >= 0) {
            s.periodQuantity = s.priorQuantities[kept];
            s.periodLastKey = s.priorLastKeys[kept];
            s.dropPrior(kept);
        } else {
            s.periodQuantity = null;
            s.periodLastKey = null;
        }
        s.periodStartMs = periodStart;
        long horizon = periodStart - maxEventAgeMs - Rules.PRIOR_PERIOD_MARGIN_MS;
        for (int i = s.priors - 1; i >= 0; i--) {
            if (rate.periodEndMs(catalog, s.tenantId, s.priorStarts[i]) <= horizon) {
                s.dropPrior(i);
            }
        }
        if (s.contents != null) {
            // The retained windows and frozen parts of forgotten periods go with them (no event can reach them).
            s.contents.keySet().removeIf(start -> !keptPeriod(s, rate.periodStartMs(catalog, s.tenantId, start)));
            s.frozenPeriodQuantities.keySet().removeIf(start -> !keptPeriod(s, start));
            s.frozenPeriodKeys.keySet().removeIf(start -> !keptPeriod(s, start));
        }
    }

    /**
     * {@code udfs.corrections.tick}: the series' clock at this processing time. It follows processing time, but one
     * tick moves it by at most {@link #retainForMs} / {@link Rules#CLOCK_STEP_DIVISOR}: a job stopped for days (or a
     * series silent for days) counts a quarter horizon, so a correction the ledger accepted before a stop and still
     * pending here after it finds its window retained.
     */
    private long tick(Series s) {
        long wall = now();
        if (s.wallMs != Series.NO_WALL) {
            s.clockMs += Math.min(Math.max(0, wall - s.wallMs), Math.max(1, retainForMs / Rules.CLOCK_STEP_DIVISOR));
        }
        s.wallMs = wall;
        return s.clockMs;
    }

    /**
     * {@code udfs.corrections.freeze_settled}: the fired windows whose latest contribution is {@link #retainForMs} or
     * more behind {@code now} (the series' clock, {@link #tick}) are folded into their period's frozen part (the period to date does not change: it is
     * the fold over both) and their contents are dropped, so a series retains contents for the correction horizon,
     * not until its period is forgotten. A late record for such a window is retained from then on, beside the frozen
     * part, as for windows fired before the series began to retain. Looked for at most every
     * {@link #retainForMs}/16 per series; a window restored without its time starts counting now.
     */
    private void freezeSettled(Series s, long now) {
        if (now < s.settleCheckAtMs) {
            return;
        }
        s.settleCheckAtMs = now + Math.max(1, retainForMs / 16);
        boolean last = s.aggregation == WindowedUsage.LAST;
        java.util.Iterator<Map.Entry<Long, WindowContents>> windows = s.contents.entrySet().iterator();
        while (windows.hasNext()) {
            Map.Entry<Long, WindowContents> window = windows.next();
            WindowContents c = window.getValue();
            if (s.window(window.getKey()) >= 0) {
                continue;  // open
            }
            if (c.seenMs == WindowContents.SEEN_UNKNOWN) {
                c.seenMs = now;
                continue;
            }
            if (now - c.seenMs < retainForMs) {
                continue;
            }
            long periodStart = rate.periodStartMs(catalog, s.tenantId, window.getKey());
            if (last) {
                String key = RateLineItem.laterLastKey(s.frozenPeriodKeys.get(periodStart), c.lastKey());
                if (key != null) {
                    s.frozenPeriodKeys.put(periodStart, key);
                }
            } else {
                BigDecimal quantity = PeriodFold.combine(s.aggregation, s.frozenPeriodQuantities.get(periodStart),
                        c.quantity(s.aggregation));
                if (quantity != null) {
                    s.frozenPeriodQuantities.put(periodStart, quantity);
                }
            }
            windows.remove();
        }
    }

    /** Whether the series keeps period {@code periodStart}: its latest, an earlier one, or a later one not fired yet. */
    private static boolean keptPeriod(Series s, long periodStart) {
        return periodStart >= s.periodStartMs || s.prior(periodStart) >= 0;
    }

    /**
     * With {@code retainContents}, a max, min or last series retains its windows' contents from now on; what it held
     * before (open windows' quantities, each period's quantity) is frozen: the ledger holds no correctable event of
     * it (restored from a release without contents, or billed while corrections were off).
     */
    private void retaining(Series s) {
        if (!retainContents || s.contents != null || s.aggregation == WindowedUsage.SUM
                || s.aggregation == WindowedUsage.COUNT) {
            return;
        }
        s.contents = new java.util.TreeMap<>();
        s.frozenPeriodQuantities = new java.util.TreeMap<>();
        s.frozenPeriodKeys = new java.util.TreeMap<>();
        if (s.periodStartMs != Series.NO_PERIOD) {
            freezePeriod(s, s.periodStartMs, s.periodQuantity, s.periodLastKey);
        }
        for (int i = 0; i < s.priors; i++) {
            freezePeriod(s, s.priorStarts[i], s.priorQuantities[i], s.priorLastKeys[i]);
        }
        for (int w = 0; w < s.windows; w++) {
            WindowContents c = new WindowContents();
            c.frozenQuantity = s.quantities[w];
            c.frozenKey = s.lastKeys[w];
            if (s.aggregation == WindowedUsage.UNIQUE_COUNT) {
                for (String token : s.uniqueTokens[w]) {
                    c.keys.put(token, WindowContents.FROZEN);
                }
            }
            s.contents.put(s.windowStarts[w], c);
        }
    }

    /** The multiplicities of {@code tokens} (sorted) in {@code carried}, comma-joined in the same order. */
    private static String multiplicities(java.util.SortedSet<String> tokens, Map<String, Integer> carried) {
        if (tokens.isEmpty()) {
            return null;
        }
        StringBuilder text = new StringBuilder();
        for (String token : tokens) {
            Integer n = carried.get(token);
            if (n == null) {
                throw new IllegalStateException("unique token " + token + " with no multiplicity in " + carried);
            }
            text.append(text.length() == 0 ? "" : ",").append(n);
        }
        return text.toString();
    }

    /**
     * The corrections of a fired unique_count window that came after watermark {@code floor}: to the Python
     * accumulator, which retains its fired windows and rates the period ({@code udfs.corrections.correct_retained}),
     * one row per window.
     */
    private void sendUniqueCorrections(Series s, long windowStart, List<WindowedUsage> group, long floor,
            long timestamp) {
        StringBuilder changes = new StringBuilder("[");
        for (WindowedUsage record : group) {
            changes.append(changes.length() == 1 ? "[" : ",[");
            CanonicalJson.appendString(changes, string(record.eventId));
            changes.append(record.correction == WindowedUsage.ADD ? ",\"add\"," : ",\"remove\",");
            String token = string(record.uniqueToken);
            if (token == null) {
                changes.append("null");
            } else {
                CanonicalJson.appendString(changes, token);
            }
            changes.append(']');
        }
        changes.append(']');
        output.collect(uniqueCountWindows, new StreamRecord<>(Row.of(s.tenantId, s.customerId, s.meter,
                s.groupJson, WindowedUsage.name(s.aggregation), windowStart, windowStart + windowSizeMs,
                corrections(group), null, floor, null, null, changes.toString()), timestamp));
    }

    /** One correction record into an open unique_count window's token multiplicities (a token at zero leaves). */
    private static void applyToken(Series s, WindowContents c, int w, WindowedUsage record) {
        String token = string(record.uniqueToken);
        if (token != null) {
            if (record.correction == WindowedUsage.ADD) {
                c.addKey(token);
            } else if (record.correction != WindowedUsage.REMOVE || !c.removeKey(token)) {
                throw new IllegalStateException("a correction (" + record.correction + ") of token " + token
                        + " that window " + s.windowStarts[w] + "'s retained contents " + c + " cannot take: " + s);
            }
        }
        s.uniqueTokens[w].retainAll(c.keys.keySet());
        s.uniqueTokens[w].addAll(c.keys.keySet());
    }

    private static void freezePeriod(Series s, long periodStart, BigDecimal quantity, String lastKey) {
        if (quantity != null) {
            s.frozenPeriodQuantities.put(periodStart, quantity);
        }
        if (lastKey != null) {
            s.frozenPeriodKeys.put(periodStart, lastKey);
        }
    }

    @Override
    public void onProcessingTime(InternalTimer<Tuple2<Long, Long>, VoidNamespace> timer) {
    }

    private static String string(byte[] utf8) {
        return utf8 == null ? null : new String(utf8, StandardCharsets.UTF_8);
    }
}
