package io.meterstream.routing;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.corrections.CorrectionLedger;
import io.meterstream.rating.RateLineItem;
import io.meterstream.rules.Rules;
import io.meterstream.validation.UniqueToken;
import io.meterstream.windows.TumblingWindows;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
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
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;

/**
 * Gives every parsed usage record exactly one outcome: {@code dead_lettered}, {@code duplicate_same_payload},
 * {@code duplicate_conflicting_payload}, {@code late} or {@code windowed} (the last two, for a record that came past
 * the watermark, with the window operator: see Lateness below). Keyed by {@link UsageDedupKey}
 * ((tenant_id, event_id) of a valid record), on Flink's internal rows: no per-record conversion on either side.
 *
 * <p>Dedup: the first record of a key wins. What is remembered per event key is one long, the first 64 bits of the
 * first copy's fingerprint (SHA-256 of the canonical event content), which tells a byte-for-byte retry from a
 * conflicting reuse of the idempotency key; a retry is dropped either way, the fingerprint only decides which count
 * it lands in. The horizon (processing time, from the first copy) is the dedup TTL, 35 days by default: each id
 * expires on its own, exactly as Flink's state TTL would expire it. Recent event keys live in a {@link DedupTable}
 * per bucket of keys (the keyed stream's key), kept in a plain array and checkpointed as raw keyed state: per key
 * group, its buckets' live entries as bytes. Once a key group's tables hold {@link #SEAL_AT_IDS} ids (or, at a
 * checkpoint, the oldest is {@link #SEAL_AFTER_MS} old; and at every restore) they are sealed ({@link SealedDedup}):
 * sorted into an immutable run of 23-byte records ({@link DedupRuns}), found again through an in-heap index of 8
 * bytes per slot that a restore rebuilds from the blocks. With RocksDB (the cluster's backend) the blocks are managed
 * value state ({@link #SEALED_BLOCKS}: one value per block, its block key the namespace, under the key group's anchor
 * key, its first bucket): a block is written once and an incremental checkpoint uploads it once, what a checkpoint
 * copies in its synchronous phase is bounded (the unsealed tables), and the heap holds 8 to 16 bytes per remembered
 * id instead of 43 to 85. With the heap backend (local runs) they are plain byte arrays written as raw keyed state
 * beside the tables: one copy of 23 bytes per id in the synchronous phase (the heap backend's managed state copied
 * blocks on access during asynchronous snapshots and serialised each one every time: slower). Why not one
 * managed entry per event id: it cost a sixth of the CPU in checkpoints, and one value per bucket still spent a tenth
 * on TTL wrappers, copy-on-write and incremental cleanup per record (JFR); RocksDB as the per-record index cost 7x the
 * tables ({@code benchmarks/DedupStoreBench.java}). A table with no live entry is dropped at a checkpoint, and a run
 * whose every id has expired is dropped with its blocks, so after the horizon nothing is written and nothing held.
 * Both are redistributed by key group on a rescale. This replaced an SQL {@code COUNT(*)}/{@code FIRST_VALUE} OVER
 * aggregation whose accumulator rows, per-record Row conversions and full snapshots were most of the job's CPU
 * (measured with JFR).
 *
 * <p>Lateness is decided downstream, per series: a first-seen record goes on to the window operator
 * ({@code io.meterstream.rating.WindowRating}), which bills it unless its own series (tenant, customer, meter, group)
 * has already fired the record's window or a later one; then it is {@code late} and billed as a late adjustment. So whether a record is late never
 * depends on another series' (another tenant's, another customer's) records, only on its own series' history. What
 * this operator adds: a record whose window the watermark has passed ({@code window_end - 1 <= watermark}) carries
 * its raw payload and coordinates ({@link WindowedUsage.PastWatermark}) so that it can be written to the late audit trail if it is late;
 * only such a record can be (a series fires a window only once the watermark passes it, and no watermark overtakes a
 * record). The watermark it judges by is the highest it has forwarded, kept in operator union-list state: Flink does
 * not checkpoint watermarks, and a check against the current watermark saw nothing right after a restore. At a
 * checkpoint every fired window ends at or before the stored floor; on restore at another parallelism every subtask
 * takes the lowest stored value, still at or above every fired window's end.
 *
 * <p>Idleness stops here: this operator never forwards a watermark status. Source idleness (a partition without
 * traffic) is needed upstream so that it does not hold every window back; downstream it did harm: when usage paused
 * past the idle timeout and resumed, the channel that resumed first moved its consumer's watermark (the windows
 * then, and the credits ledger's expiry and void timers) past records still in flight on another channel. Without idle
 * statuses each consumer waits for its slowest channel, and during a pause the watermark simply stands.
 *
 * <p>Outputs: each record goes to exactly one (no copies for several chained consumers, no filter per consumer).
 * The input is the parsed usage records ({@code UsageEventDeserializer.rowType()}: Kafka, or the job tests' file;
 * columns looked up by name).
 * <ul>
 *   <li>main: first-seen valid records of every meter, as {@link WindowedUsage} (timestamp: event time) for the
 *       window operator ({@code io.meterstream.rating.WindowRating}), which gives them their outcome, {@code
 *       windowed} or {@code late} (and writes late ones out as {@link #lateType} rows);</li>
 *   <li>side output {@code dead-lettered}, {@link #deadLetterType}: the raw record, its coordinates, reason and
 *       detail;</li>
 *   <li>side output {@code accounting}, {@link #ACCOUNTING_TYPE}: (outcome, detail, records) counts since the last
 *       flush, detail being the reject reason of dead-lettered records and "" otherwise: dead-lettered, duplicates
 *       and the windowed records that did not come past the watermark (the window operator counts those that did).
 *       Flushed before each checkpoint barrier and at the end of input, so the counts downstream of a checkpoint are
 *       exactly those of the records before it; duplicates, which leave no record, show up only here.</li>
 * </ul>
 * Side outputs carry external {@link Row}s (String, BigDecimal, byte[]): Python reads them.
 *
 * <p>Corrections (the job's {@code --corrections}; issue 17): built with a correction horizon, the operator also
 * keeps the correction ledger ({@link CorrectionLedger}, the twin of {@code udfs.corrections}) beside the dedup
 * memory, keyed alike: every first-seen valid record is observed, and a second input of accepted corrections
 * ({@link #CORRECTION_COLUMNS}: valid, first copies of their correction ids, keyed by the bucket of their
 * (tenant_id, event_id), {@link CorrectionKey}) is decided against it at the task's
 * processing time: on arrival in a streaming run; in a bounded run (a replay of recorded topics, which reads both
 * inputs at once) held in keyed state ({@link #HELD_CORRECTIONS}, checkpointed) until the usage input has ended
 * (the maximum watermark), then decided in arrival order per key, so each finds the events it names whichever input
 * was read faster; the maximum goes on only once the corrections input has ended too ({@link #endInput}), so every
 * correction reaches the window operator before its end. (Flink's {@code InputSelectable}, reading one input to its
 * end first, cannot be checkpointed.)
 * A rejection goes to the side output {@link #correctionRejectTag()} and is counted
 * {@code correction_rejected} by reason; an applied correction is counted {@code correction_applied}. Its remove/add
 * contributions go on to the window operator as correction records ({@link WindowedUsage#correction}) of their
 * series, after the watermark this operator had forwarded (every aggregation but unique_count, whose corrections
 * the ledger rejects: {@code aggregation_not_correctable}); after the end of the usage input (the maximum forwarded)
 * with the maximum, which the window operator decides at its own end. The corrections input
 * carries no watermarks and holds none back (its watermarks are ignored; the usage input's go on as above). Watermark
 * statuses of a two-input operator go through Flink's final combining methods: an idle status is forwarded when both
 * inputs are idle (a corrections subtask without a partition while usage pauses), which the one-input operator never
 * does (see Idleness above); not fixed yet. A dead-lettered usage record whose two ids are valid is keyed by them
 * ({@link UsageDedupKey}) and leaves a marker in the ledger, so a correction of it is {@code event_dead_lettered}
 * (with the record's reason); one without valid ids cannot be named by a correction. The ledger's entries are
 * sealed with the ids they belong to: when a key group's tables are sealed, each block's entries leave the ledger's
 * slots for the block's companion ({@link CorrectionLedger#sealEntries}, {@link SealedDedup#companionKey}), stored
 * beside it (managed state with RocksDB, written once; raw bytes with the heap backend) and dropped with its run; a
 * correction (or a dead letter with the same ids) finds an entry there through the dedup memory's index and brings it
 * back into a slot, where what it changes then lives. So what stays in the slots, written whole with the unsealed
 * tables at every checkpoint, is the unsealed ids' entries, dead-letter markers and corrected events. The slots are
 * written with the dedup tables, per key group, in format {@link #DEDUP_FORMAT_SEALED_LEDGER} (formats 1 to 4 are
 * read: the tables of formats 1 to 3, and their ledger entries, are sealed at the restore); state without a ledger
 * restores with an empty one, and a ledger restored into an operator without corrections is dropped (its companions
 * go with their runs).
 */
public final class UsageRouting extends CountingOperator<WindowedUsage>
        implements OneInputStreamOperator<RowData, WindowedUsage>, TwoInputStreamOperator<RowData, Row, WindowedUsage>,
        org.apache.flink.streaming.api.operators.BoundedMultiInput {
    private static final long serialVersionUID = 1L;

    // The accounting outcomes (udfs.accounting.Outcome, generated into Rules).
    public static final String DEAD_LETTERED = Rules.OUTCOME_DEAD_LETTERED;
    public static final String DUPLICATE_SAME_PAYLOAD = Rules.OUTCOME_DUPLICATE_SAME_PAYLOAD;
    public static final String DUPLICATE_CONFLICTING_PAYLOAD = Rules.OUTCOME_DUPLICATE_CONFLICTING_PAYLOAD;
    public static final String BILLED_LATE = Rules.OUTCOME_BILLED_LATE;
    public static final String WINDOWED = Rules.OUTCOME_WINDOWED;
    /** The outcomes this operator counts ({@link #BILLED_LATE} is the window operator's, as are windowed records that
     * came past the watermark). */
    private static final String[] OUTCOME_NAMES = {
        DEAD_LETTERED, DUPLICATE_SAME_PAYLOAD, DUPLICATE_CONFLICTING_PAYLOAD, WINDOWED,
    };
    private static final int O_DEAD = 0, O_SAME = 1, O_CONFLICT = 2, O_WINDOWED = 3;
    private static final long NO_WATERMARK = Long.MIN_VALUE;
    /**
     * Per key group: this version, then (bucket, live entries, their 32-byte slots) per table that has any, then
     * {@link #END_OF_TABLES}. Version 1 (each table's bytes whole, expired entries and empty slots included) is
     * still read.
     */
    private static final int DEDUP_FORMAT_VERSION = 2;
    private static final int DEDUP_FORMAT_WHOLE_TABLES = 1;
    /** Format 2 followed by the key group's correction ledger ({@link CorrectionLedger#write}). */
    static final int DEDUP_FORMAT_WITH_LEDGER = 3;
    /**
     * The unsealed ids' tables as in format 2, then the sealed blocks held on the heap (how many, then each: block
     * key, length, bytes; none with another backend: they are in managed keyed state, {@link #SEALED_BLOCKS}), then
     * a byte (1: the key group's correction ledger follows). A release before it would not read the sealed ids: it
     * refuses this format rather than forget them.
     */
    static final int DEDUP_FORMAT_SEALED = 4;
    /**
     * Format 4's layout, its sealed blocks now with companions ({@link SealedDedup#companionKey}: the correction
     * ledger's entries sealed with the ids, {@link CorrectionLedger#sealEntries}). A release before it would not
     * read those entries: it refuses this format rather than forget them.
     */
    static final int DEDUP_FORMAT_SEALED_LEDGER = 5;
    /**
     * The sealed dedup memory's blocks ({@link SealedDedup}): a value per block, its block key the namespace, under
     * each key group's anchor key (its first bucket).
     */
    static final String SEALED_BLOCKS = "dedup-sealed-blocks-v1";
    /** A key group's unsealed ids are sealed into a run once there are this many ({@link #seal})... */
    static final int SEAL_AT_IDS = 4096;
    /** ... or at a checkpoint once the oldest is this old (so a quiet key group's ids leave the heap too). */
    static final long SEAL_AFTER_MS = 10 * 60_000L;
    /** The accepted corrections' columns (Python's {@code jobs.corrections.LEDGER_ROW_TYPE}), by position. */
    public static final String[] CORRECTION_COLUMNS = {"tenant_id", "event_id", "correction_id", "action", "value",
        "dimensions", "payload", "src_topic", "src_partition", "src_offset"};
    private static final int CORRECTION_FIELDS = CORRECTION_COLUMNS.length;
    /** The keyed state of corrections held until the usage input ends (bounded runs), and its row type. */
    static final String HELD_CORRECTIONS = "corrections-held-until-usage-ends-v1";
    private static final org.apache.flink.api.common.typeinfo.TypeInformation<Row> HELD_CORRECTION_TYPE = Types.ROW(
            Types.STRING, Types.STRING, Types.STRING, Types.STRING, Types.STRING, Types.MAP(Types.STRING, Types.STRING),
            Types.PRIMITIVE_ARRAY(Types.BYTE), Types.STRING, Types.INT, Types.LONG);
    /** The rejected corrections' columns ({@link #correctionRejectTag()}). */
    public static final String[] CORRECTION_REJECT_COLUMNS = {"payload", "src_topic", "src_partition", "src_offset",
        "reason", "detail", "event_dead_letter_reason", "correction_id", "tenant_id", "event_id"};
    public static final String CORRECTION_REJECTED = Rules.OUTCOME_CORRECTION_REJECTED;
    public static final String CORRECTION_APPLIED = Rules.OUTCOME_CORRECTION_APPLIED;
    private static final int END_OF_TABLES = -1;

    /** Input columns dead-lettered and late records carry on (they are written out whole). */
    static final String[] RECORD_COLUMNS = {"payload", "src_topic", "src_partition", "src_offset"};
    /** Input columns dead-lettered records carry on besides. */
    static final String[] REJECT_COLUMNS = {"reason", "detail"};
    public static final String WINDOW_END_MS = "window_end_ms";
    public static final String WATERMARK_AT_ROUTING_MS = "watermark_at_routing_ms";
    public static final RowType ACCOUNTING_TYPE = new RowType(List.of(
            new RowType.RowField("outcome", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("detail", new VarCharType(false, VarCharType.MAX_LENGTH)),
            new RowType.RowField("records", new BigIntType(false))));

    private final RowData.FieldGetter[] recordGetters;
    private final RowData.FieldGetter[] rejectGetters;
    private final int reasonIndex;
    private final int keyHiIndex;
    private final int fingerprintIndex;
    private final int eventTimeIndex;
    private final int aggregationIndex;
    private final int tenantIndex, customerIndex, meterIndex, groupIndex, eventIdIndex, valueIndex, tokenIndex;
    private final int valuePrecision, valueScale;
    private final long windowSizeMs;
    private final long dedupTtlMs;
    private final UsageDedupKey dedupKey;
    private final OutputTag<Row> deadLettered;
    private final OutputTag<Row> accounting;
    private final String catalogJson;  // null: no corrections
    private final long correctionHorizonMs;  // 0: no corrections
    private final OutputTag<Row> correctionRejects;

    private transient byte[][] dedupTables;  // by bucket, null while empty; only this subtask's key groups' buckets
    private transient int[][] bucketsByKeyGroup;  // index: key group - first key group of this subtask
    private transient KeyGroupRange keyGroups;
    private transient DedupTable.Lookup lookup;
    private transient SealedDedup[] sealed;  // index: key group - first key group of this subtask
    private transient int[] keyGroupIndexOfBucket;  // -1: not this subtask's
    private transient int[] unsealedIds;  // per key group: ids recorded in its tables since its last seal (at most)
    private transient long[] unsealedSince;  // per key group: when the first of them was recorded
    private transient org.apache.flink.runtime.state.internal.InternalValueState<Integer, Long, byte[]> sealedBlocks;
    private transient AnchoredBlocks blocks;
    /**
     * With the heap state backend, each key group's blocks in a plain map, written as raw keyed state (null: with
     * RocksDB and the rest, in managed state). Why both: the heap backend copies a managed value read or written
     * while an asynchronous snapshot runs, and serialises every entry at every checkpoint (measured: GC 8 s -> 30 s,
     * checkpoint threads 2 s -> 29 s in the 5M run); raw bytes are one copy. RocksDB writes each block once.
     */
    private transient SealedDedup.InMemoryBlocks[] heapBlocks;
    private transient List<RestoredBlock> restoredRawBlocks;  // read from raw state, stored once all is read

    /** A sealed block read back from raw keyed state. */
    private static final class RestoredBlock {
        final int keyGroupIndex;
        final long blockKey;
        final byte[] bytes;

        RestoredBlock(int keyGroupIndex, long blockKey, byte[] bytes) {
            this.keyGroupIndex = keyGroupIndex;
            this.blockKey = blockKey;
            this.bytes = bytes;
        }
    }
    private transient SealedDedup.Found found;
    private transient SealedDedup.Found ledgerFound;  // the ledger's lookups ({@link #findSealedEntry})
    private transient DedupRuns.Entries sealing;
    /** {@link #SEAL_AT_IDS}; tests seal at every id. Not transient: the job ships the operator serialised. */
    int sealAtIds = SEAL_AT_IDS;
    private transient byte[] packed;  // a snapshot's scratch: one table's live entries
    private transient ListState<Long> floorState;
    private transient long watermarkFloor;
    private transient long[] pendingCounts;  // by outcome index, since the last flush
    private transient Map<String, long[]> pendingRejects;  // dead-lettered, by reason
    private final boolean holdCorrectionsUntilUsageEnds;
    /** Bounded runs with corrections: their input has ended; the usage's maximum waits for it ({@link #endInput}). */
    private transient boolean correctionsEnded;
    private transient boolean heldMaximum;
    /** Bounded runs: corrections read before the usage input ended, per key, in arrival order. */
    private transient ListState<Row> heldCorrections;
    private transient CorrectionLedger ledger;  // null: no corrections
    private transient JavaCatalog catalog;
    private transient long pendingApplied;
    private transient Map<String, long[]> pendingCorrectionRejects;  // by reason

    /**
     * @param input        the row type of the parsed usage records ({@code UsageEventDeserializer.rowType()})
     * @param windowSizeMs the tumbling window size (for a record's window end)
     * @param dedupTtlMs   how long a (tenant_id, event_id) is remembered
     * @param deadLettered side output of {@link #deadLetterType} rows
     * @param accounting   side output of {@link #ACCOUNTING_TYPE} rows
     */
    public UsageRouting(RowType input, long windowSizeMs, long dedupTtlMs, OutputTag<Row> deadLettered,
            OutputTag<Row> accounting) {
        this(input, windowSizeMs, dedupTtlMs, deadLettered, accounting, null, 0, null);
    }

    /**
     * With corrections (see the class comment).
     *
     * @param catalogJson         {@code udfs.java_catalog.java_catalog_json(catalog)}: the meters a correction reads
     * @param correctionHorizonMs processing time after an event's first copy within which it may be corrected, in
     *                            (0, dedupTtlMs]
     * @param correctionRejects   {@link #correctionRejectTag()}
     */
    public UsageRouting(RowType input, long windowSizeMs, long dedupTtlMs, OutputTag<Row> deadLettered,
            OutputTag<Row> accounting, String catalogJson, long correctionHorizonMs,
            OutputTag<Row> correctionRejects) {
        this(input, windowSizeMs, dedupTtlMs, deadLettered, accounting, catalogJson, correctionHorizonMs,
                correctionRejects, false);
    }

    /**
     * With corrections, and for a bounded run (a replay of recorded topics) {@code holdCorrectionsUntilUsageEnds}:
     * the corrections wait (in keyed state) until the usage input has ended, then are decided, so every correction
     * finds the events it names, whatever order the two topics are read in (see the class comment).
     */
    public UsageRouting(RowType input, long windowSizeMs, long dedupTtlMs, OutputTag<Row> deadLettered,
            OutputTag<Row> accounting, String catalogJson, long correctionHorizonMs,
            OutputTag<Row> correctionRejects, boolean holdCorrectionsUntilUsageEnds) {
        this.holdCorrectionsUntilUsageEnds = holdCorrectionsUntilUsageEnds;
        if (catalogJson != null) {
            new CorrectionLedger(windowSizeMs, correctionHorizonMs, dedupTtlMs);  // checks the horizon now
        }
        this.catalogJson = catalogJson;
        this.correctionHorizonMs = correctionHorizonMs;
        this.correctionRejects = correctionRejects;
        this.recordGetters = getters(input, RECORD_COLUMNS);
        this.rejectGetters = getters(input, REJECT_COLUMNS);
        this.reasonIndex = Columns.indexOf(input, "reason");
        this.keyHiIndex = Columns.indexOf(input, "event_key_hi");
        this.fingerprintIndex = Columns.indexOf(input, "fingerprint");
        this.eventTimeIndex = Columns.indexOf(input, "event_time_ms");
        this.aggregationIndex = Columns.indexOf(input, "aggregation");
        this.tenantIndex = Columns.indexOf(input, "tenant_id");
        this.customerIndex = Columns.indexOf(input, "customer_id");
        this.meterIndex = Columns.indexOf(input, "meter");
        this.groupIndex = Columns.indexOf(input, "group_json");
        this.eventIdIndex = Columns.indexOf(input, "event_id");
        this.valueIndex = Columns.indexOf(input, "value");
        this.tokenIndex = Columns.indexOf(input, "unique_token");
        DecimalType decimal = (DecimalType) input.getTypeAt(valueIndex);
        this.valuePrecision = decimal.getPrecision();
        this.valueScale = decimal.getScale();
        this.windowSizeMs = windowSizeMs;
        this.dedupTtlMs = dedupTtlMs;
        this.dedupKey = new UsageDedupKey(input);
        this.deadLettered = deadLettered;
        this.accounting = accounting;
    }

    /** The side output of rejected corrections: {@link #CORRECTION_REJECT_COLUMNS}. */
    public static OutputTag<Row> correctionRejectTag() {
        return new OutputTag<>("correction-rejects", Types.ROW_NAMED(CORRECTION_REJECT_COLUMNS,
                Types.PRIMITIVE_ARRAY(Types.BYTE), Types.STRING, Types.INT, Types.LONG, Types.STRING, Types.STRING,
                Types.STRING, Types.STRING, Types.STRING, Types.STRING));
    }

    /** Dead-lettered records: RECORD_COLUMNS and REJECT_COLUMNS with the input's types. */
    public static RowType deadLetterType(RowType input) {
        return fields(input, RECORD_COLUMNS, REJECT_COLUMNS);
    }

    /** Late records: RECORD_COLUMNS with the input's types, then window_end_ms and watermark_at_routing_ms. */
    public static RowType lateType(RowType input) {
        List<RowType.RowField> fields = new ArrayList<>(fields(input, RECORD_COLUMNS).getFields());
        fields.add(new RowType.RowField(WINDOW_END_MS, new BigIntType(false)));
        fields.add(new RowType.RowField(WATERMARK_AT_ROUTING_MS, new BigIntType(false)));
        return new RowType(fields);
    }

    private static RowType fields(RowType input, String[]... groups) {
        List<RowType.RowField> fields = new ArrayList<>();
        for (String[] columns : groups) {
            for (String column : columns) {
                fields.add(new RowType.RowField(column, input.getTypeAt(Columns.indexOf(input, column))));
            }
        }
        return new RowType(fields);
    }

    private static RowData.FieldGetter[] getters(RowType input, String[] columns) {
        RowData.FieldGetter[] getters = new RowData.FieldGetter[columns.length];
        for (int i = 0; i < columns.length; i++) {
            int index = Columns.indexOf(input, columns[i]);
            LogicalType type = input.getTypeAt(index);
            getters[i] = RowData.createFieldGetter(type, index);
        }
        return getters;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        pendingCounts = new long[OUTCOME_NAMES.length];
        pendingRejects = new HashMap<>();
        pendingCorrectionRejects = new HashMap<>();
        if (catalogJson != null) {
            ledger = new CorrectionLedger(windowSizeMs, correctionHorizonMs, dedupTtlMs);
            catalog = JavaCatalog.of(catalogJson);
            ListStateDescriptor<Row> held = new ListStateDescriptor<>(HELD_CORRECTIONS, HELD_CORRECTION_TYPE);
            held.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(dedupTtlMs)).build());
            heldCorrections = getKeyedStateBackend().getPartitionedState(VoidNamespace.INSTANCE,
                    VoidNamespaceSerializer.INSTANCE, held);
        }
        lookup = new DedupTable.Lookup();
        dedupTables = new byte[UsageDedupKey.BUCKETS][];
        int maxParallelism = getRuntimeContext().getTaskInfo().getMaxNumberOfParallelSubtasks();
        keyGroups = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism,
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks(),
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
        bucketsByKeyGroup = bucketsByKeyGroup(keyGroups, maxParallelism);
        int groups = keyGroups.getNumberOfKeyGroups();
        sealed = new SealedDedup[groups];
        unsealedIds = new int[groups];
        unsealedSince = new long[groups];
        keyGroupIndexOfBucket = new int[UsageDedupKey.BUCKETS];
        java.util.Arrays.fill(keyGroupIndexOfBucket, -1);
        for (int i = 0; i < groups; i++) {
            sealed[i] = new SealedDedup();
            for (int bucket : bucketsByKeyGroup[i]) {
                keyGroupIndexOfBucket[bucket] = i;
            }
        }
        found = new SealedDedup.Found();
        ledgerFound = new SealedDedup.Found();
        if (ledger != null) {
            ledger.readSealedFrom(this::findSealedEntry);
        }
        sealing = new DedupRuns.Entries();
        // One value per block, its key the namespace: each block is its own entry, so the heap backend's
        // copy-on-write never copies other blocks (one map per anchor key was copied whole whenever a block went in
        // during an asynchronous snapshot: the GC's time quintupled), and RocksDB keeps one row per block.
        org.apache.flink.api.common.state.ValueStateDescriptor<byte[]> blockState =
                new org.apache.flink.api.common.state.ValueStateDescriptor<>(SEALED_BLOCKS,
                        org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
        // A safety net: a block is created after every sighting it holds and dropped when its last id expires
        // (SealedDedup.expire); the day's margin covers a restore's clock against the processing time it ran on.
        blockState.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(dedupTtlMs).plusDays(1))
                .disableCleanupInBackground().cleanupFullSnapshot().build());
        @SuppressWarnings("unchecked")
        org.apache.flink.runtime.state.internal.InternalValueState<Integer, Long, byte[]> valueState =
                (org.apache.flink.runtime.state.internal.InternalValueState<Integer, Long, byte[]>)
                        getKeyedStateBackend().getPartitionedState(0L,
                                org.apache.flink.api.common.typeutils.base.LongSerializer.INSTANCE, blockState);
        sealedBlocks = valueState;
        blocks = new AnchoredBlocks();
        if (getKeyedStateBackend() instanceof org.apache.flink.runtime.state.heap.HeapKeyedStateBackend) {
            heapBlocks = new SealedDedup.InMemoryBlocks[groups];
            for (int i = 0; i < groups; i++) {
                heapBlocks[i] = new SealedDedup.InMemoryBlocks();
            }
        }
        restoredRawBlocks = new ArrayList<>();
        if (context.isRestored()) {
            long now = getProcessingTimeService().getCurrentProcessingTime();
            for (KeyGroupStatePartitionStreamProvider keyGroup : context.getRawKeyedStateInputs()) {
                try (InputStream in = keyGroup.getStream()) {
                    readTables(new DataInputViewStreamWrapper(in), keyGroup.getKeyGroupId());
                }
            }
            @SuppressWarnings("unchecked")
            org.apache.flink.runtime.state.KeyedStateBackend<Integer> backend =
                    (org.apache.flink.runtime.state.KeyedStateBackend<Integer>) (Object) getKeyedStateBackend();
            List<Tuple2<Integer, Long>> stored;
            try (java.util.stream.Stream<Tuple2<Integer, Long>> keys = backend.<Long>getKeysAndNamespaces(
                    SEALED_BLOCKS)) {
                stored = keys.collect(java.util.stream.Collectors.toList());  // read after: a read may expire one
            }
            for (Tuple2<Integer, Long> block : stored) {
                setCurrentKey(block.f0);
                sealedBlocks.setCurrentNamespace(block.f1);
                byte[] bytes = sealedBlocks.value();
                if (bytes != null) {
                    int i = keyGroupIndexOfBucket[block.f0];
                    if (!SealedDedup.isCompanion(block.f1)) {
                        sealed[i].restoreBlock(block.f1, bytes);
                    }
                    if (heapBlocks != null) {  // written with another backend: to the heap's map from now on
                        heapBlocks[i].put(block.f1, bytes);
                        sealedBlocks.clear();
                    }
                }
            }
            for (RestoredBlock block : restoredRawBlocks) {
                if (!SealedDedup.isCompanion(block.blockKey)) {
                    sealed[block.keyGroupIndex].restoreBlock(block.blockKey, block.bytes);
                }
                // the heap's map, or (written with the heap backend, restored into another) managed state
                storeOf(block.keyGroupIndex).put(block.blockKey, block.bytes);
            }
            restoredRawBlocks = null;
            for (int i = 0; i < groups; i++) {
                if (bucketsByKeyGroup[i].length == 0) {
                    continue;
                }
                // Tables restored (a state of format 3 or before holds every id in them): sealed now, so that they
                // leave the heap and the checkpoints from the first one on.
                for (int bucket : bucketsByKeyGroup[i]) {
                    unsealedIds[i] += dedupTables[bucket] == null ? 0 : DedupTable.occupied(dedupTables[bucket]);
                }
                if (unsealedIds[i] > 0) {
                    seal(i, now);
                }
            }
        }
        floorState = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("late-routing-watermark-floor", Long.class));
        watermarkFloor = lowestRestoredFloor(floorState.get());
    }

    /** The buckets of each key group in {@code range}, by the same key-to-key-group rule as the keyed stream's. */
    static int[][] bucketsByKeyGroup(KeyGroupRange range, int maxParallelism) {
        int[] counts = new int[range.getNumberOfKeyGroups()];
        int[] keyGroupOf = new int[UsageDedupKey.BUCKETS];
        for (int bucket = 0; bucket < UsageDedupKey.BUCKETS; bucket++) {
            keyGroupOf[bucket] = KeyGroupRangeAssignment.assignToKeyGroup(bucket, maxParallelism);
            if (range.contains(keyGroupOf[bucket])) {
                counts[keyGroupOf[bucket] - range.getStartKeyGroup()]++;
            }
        }
        int[][] buckets = new int[counts.length][];
        for (int i = 0; i < counts.length; i++) {
            buckets[i] = new int[counts[i]];
            counts[i] = 0;
        }
        for (int bucket = 0; bucket < UsageDedupKey.BUCKETS; bucket++) {
            if (range.contains(keyGroupOf[bucket])) {
                int i = keyGroupOf[bucket] - range.getStartKeyGroup();
                buckets[i][counts[i]++] = bucket;
            }
        }
        return buckets;
    }

    /**
     * One key group's tables as of {@code nowMs}: the format version, then each table's live entries
     * ({@code DEDUP_FORMAT_VERSION}). A table with no live entry left is forgotten here, in memory too: after the
     * horizon, the state is what it was before the first record. The per-record path never pays for expiry.
     */
    private void writeTables(DataOutputViewStreamWrapper out, int keyGroup, long nowMs) throws IOException {
        out.writeInt(DEDUP_FORMAT_SEALED_LEDGER);
        for (int bucket : bucketsByKeyGroup[keyGroup - keyGroups.getStartKeyGroup()]) {
            byte[] table = dedupTables[bucket];
            if (table == null) {
                continue;
            }
            if (packed == null || packed.length < table.length) {
                packed = new byte[table.length];
            }
            int live = DedupTable.packLive(table, nowMs, dedupTtlMs, packed);
            if (live == 0) {
                dedupTables[bucket] = null;
                continue;
            }
            out.writeInt(bucket);
            out.writeInt(live);
            out.write(packed, 0, live * DedupTable.SLOT_BYTES);
        }
        out.writeInt(END_OF_TABLES);
        int i = keyGroup - keyGroups.getStartKeyGroup();
        java.util.Map<Long, byte[]> held = heapBlocks == null ? java.util.Map.of() : heapBlocks[i].blocks;
        out.writeInt(held.size());
        for (Map.Entry<Long, byte[]> block : held.entrySet()) {
            out.writeLong(block.getKey());
            out.writeInt(block.getValue().length);
            out.write(block.getValue());
        }
        out.writeBoolean(ledger != null);
        if (ledger != null) {
            ledger.write(out, keyGroup);
        }
    }

    private void readTables(DataInputViewStreamWrapper in, int keyGroup) throws IOException {
        int version = in.readInt();
        if (version == DEDUP_FORMAT_WHOLE_TABLES) {
            for (int remaining = in.readInt(); remaining > 0; remaining--) {
                int bucket = restoredBucket(in.readInt(), keyGroup);
                byte[] table = new byte[in.readInt()];
                in.readFully(table);
                dedupTables[bucket] = table;
            }
            return;
        }
        boolean sealedFormat = version == DEDUP_FORMAT_SEALED || version == DEDUP_FORMAT_SEALED_LEDGER;
        if (version != DEDUP_FORMAT_VERSION && version != DEDUP_FORMAT_WITH_LEDGER && !sealedFormat) {
            throw new IOException("dedup state of key group " + keyGroup + " has format " + version
                    + ", this version reads " + DEDUP_FORMAT_WHOLE_TABLES + " to " + DEDUP_FORMAT_SEALED_LEDGER);
        }
        for (int next = in.readInt(); next != END_OF_TABLES; next = in.readInt()) {
            int bucket = restoredBucket(next, keyGroup);
            int live = in.readInt();
            if (live <= 0 || live > Integer.MAX_VALUE / (2 * DedupTable.SLOT_BYTES)) {
                throw new IOException("dedup bucket " + bucket + " restored with " + live + " entries");
            }
            byte[] entries = new byte[live * DedupTable.SLOT_BYTES];
            in.readFully(entries);
            dedupTables[bucket] = DedupTable.unpacked(entries, live);
        }
        if (sealedFormat) {
            int i = keyGroup - keyGroups.getStartKeyGroup();
            for (int n = in.readInt(); n > 0; n--) {
                long blockKey = in.readLong();
                int length = in.readInt();
                // a dedup block is at most 4 KB; a companion holds its events' strings (a group JSON may be long)
                if (length <= 0 || length > (SealedDedup.isCompanion(blockKey) ? 1 << 30 : 1 << 20)) {
                    throw new IOException("sealed dedup block " + blockKey + " restored with " + length + " bytes");
                }
                byte[] bytes = new byte[length];
                in.readFully(bytes);
                restoredRawBlocks.add(new RestoredBlock(i, blockKey, bytes));
            }
        }
        if (version == DEDUP_FORMAT_WITH_LEDGER || (sealedFormat && in.readBoolean())) {
            // Without corrections now, the restored ledger is read past and dropped.
            CorrectionLedger into = ledger != null ? ledger
                    : new CorrectionLedger(windowSizeMs, dedupTtlMs, dedupTtlMs);
            into.read(in);
        }
    }

    private int restoredBucket(int bucket, int keyGroup) throws IOException {
        if (bucket < 0 || bucket >= UsageDedupKey.BUCKETS || KeyGroupRangeAssignment.assignToKeyGroup(bucket,
                getRuntimeContext().getTaskInfo().getMaxNumberOfParallelSubtasks()) != keyGroup) {
            throw new IOException("dedup bucket " + bucket + " restored into key group " + keyGroup);
        }
        return bucket;
    }

    /** The ids this subtask remembers at {@code nowMs}, sealed or not (tests). */
    long liveIds(long nowMs) throws Exception {
        long live = 0;
        for (byte[] table : dedupTables) {
            live += DedupTable.live(table, nowMs, dedupTtlMs);
        }
        for (int i = 0; i < sealed.length; i++) {
            if (sealed[i].runs() > 0) {
                live += sealed[i].live(nowMs, dedupTtlMs, storeOf(i));
            }
        }
        return live;
    }

    /** The ids this subtask holds sealed, expired ones included until their runs are dropped (tests). */
    long sealedIds() {
        long ids = 0;
        for (SealedDedup keyGroup : sealed) {
            ids += keyGroup.ids();
        }
        return ids;
    }

    /**
     * A key group's unsealed ids (its buckets' tables, live at {@code nowMs}) into a new sealed run; the tables are
     * dropped. Keyed state is reached under the key group's anchor key; the current key is restored.
     */
    private void seal(int keyGroupIndex, long nowMs) throws Exception {
        sealing.clear();
        for (int bucket : bucketsByKeyGroup[keyGroupIndex]) {
            if (dedupTables[bucket] != null) {
                DedupTable.addLive(dedupTables[bucket], nowMs, dedupTtlMs, sealing);
                dedupTables[bucket] = null;
            }
        }
        sealed[keyGroupIndex].seal(sealing, storeOf(keyGroupIndex), ledger == null ? null
                : block -> ledgerCompanion(ledger, block, nowMs));
        unsealedIds[keyGroupIndex] = 0;
    }

    /**
     * The correction ledger's entries of a sealed block's ids, taken out of its slots: the block's companion
     * ({@link CorrectionLedger#sealEntries} on the block's keys and first sightings).
     */
    public static byte[] ledgerCompanion(CorrectionLedger ledger, byte[] block, long nowMs) throws IOException {
        int records = DedupRuns.records(block);
        long[] hi = new long[records];
        long[] lo = new long[records];
        long[] firstSeen = new long[records];
        for (int r = 0; r < records; r++) {
            hi[r] = DedupRuns.keyHi(block, r);
            lo[r] = DedupRuns.keyLo(block, r);
            firstSeen[r] = DedupRuns.firstSeen(block, r);
        }
        return ledger.sealEntries(hi, lo, firstSeen, records, nowMs);
    }

    /**
     * The ledger's sealed entry of an event key: its dedup record, sealed and remembered at {@code nowMs}, and the
     * companion of its block ({@link #ledgerCompanion}).
     */
    private boolean findSealedEntry(long keyHi, long keyLo, long nowMs, CorrectionLedger.SealedAt at) {
        int i = keyGroupIndexOfBucket[UsageDedupKey.bucket(keyHi)];
        try {
            if (i < 0 || sealed[i].runs() == 0
                    || !sealed[i].lookup(keyHi, keyLo, nowMs, dedupTtlMs, storeOf(i), ledgerFound)) {
                return false;
            }
            byte[] companion = storeOf(i).get(SealedDedup.companionKey(ledgerFound.blockKey));
            if (companion == null) {
                return false;  // sealed while corrections were off, or by a release before companions
            }
            at.companion = companion;
            at.record = ledgerFound.record;
            at.dedupFirstSeenMs = ledgerFound.firstSeenMs;
            return true;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (Exception e) {
            throw new IllegalStateException("reading a sealed correction ledger block failed", e);
        }
    }

    /** Where key group {@code keyGroupIndex}'s blocks live: the heap's map, or managed state under its anchor. */
    private SealedDedup.BlockStore storeOf(int keyGroupIndex) {
        if (heapBlocks != null) {
            return heapBlocks[keyGroupIndex];
        }
        blocks.anchor = bucketsByKeyGroup[keyGroupIndex][0];
        return blocks;
    }

    /** The sealed blocks of one key group: this operator's block state under the key group's anchor key. */
    private final class AnchoredBlocks implements SealedDedup.BlockStore {
        int anchor;

        private Object enter() {
            Object current = getCurrentKey();
            setCurrentKey(anchor);
            return current;
        }

        private void leave(Object previous) {
            if (previous != null) {
                setCurrentKey(previous);
            }
        }

        @Override
        public byte[] get(long blockKey) throws Exception {
            Object previous = enter();
            try {
                sealedBlocks.setCurrentNamespace(blockKey);
                return sealedBlocks.value();
            } finally {
                leave(previous);
            }
        }

        @Override
        public void put(long blockKey, byte[] block) throws Exception {
            Object previous = enter();
            try {
                sealedBlocks.setCurrentNamespace(blockKey);
                sealedBlocks.update(block);
            } finally {
                leave(previous);
            }
        }

        @Override
        public void remove(long blockKey) throws Exception {
            Object previous = enter();
            try {
                sealedBlocks.setCurrentNamespace(blockKey);
                sealedBlocks.clear();
            } finally {
                leave(previous);
            }
        }
    }

    /** The dedup tables this subtask holds (tests: after the horizon and a snapshot, none). */
    int tablesHeld() {
        int held = 0;
        for (byte[] table : dedupTables) {
            held += table == null ? 0 : 1;
        }
        return held;
    }

    /**
     * The raw keyed state is ours (the dedup tables): without this, Flink reads raw keyed state on restore as the
     * timer services' legacy snapshot (this operator has no timers).
     */
    @Override
    protected boolean isUsingCustomRawKeyedState() {
        return true;
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
        KeyedStateCheckpointOutputStream out = context.getRawKeyedOperatorStateOutput();
        try {
            DataOutputViewStreamWrapper view = new DataOutputViewStreamWrapper(out);
            long now = getProcessingTimeService().getCurrentProcessingTime();
            if (ledger != null) {
                int maxParallelism = getRuntimeContext().getTaskInfo().getMaxNumberOfParallelSubtasks();
                ledger.prepareSnapshot(now, hi -> KeyGroupRangeAssignment.assignToKeyGroup(
                        UsageDedupKey.bucket(hi), maxParallelism));
            }
            for (int i = 0; i < sealed.length; i++) {
                if (unsealedIds[i] > 0 && now - unsealedSince[i] >= SEAL_AFTER_MS) {
                    seal(i, now);
                }
                if (sealed[i].runs() > 0) {
                    sealed[i].expire(now, dedupTtlMs, storeOf(i));
                }
            }
            for (int keyGroup : out.getKeyGroupList()) {
                out.startNewKeyGroup(keyGroup);
                writeTables(view, keyGroup, now);
            }
        } finally {
            out.close();  // closes this operator's part only: the checkpoint owns the underlying stream
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (mark.getTimestamp() > watermarkFloor) {
            watermarkFloor = mark.getTimestamp();
        }
        if (holdCorrectionsUntilUsageEnds && heldCorrections != null && mark.getTimestamp() == Long.MAX_VALUE) {
            // A bounded run's usage ended: the held corrections are decided now (after the maximum, their floor),
            // and the maximum goes on only once the corrections input has ended too, so that every correction
            // reaches the window operator before its end of input (which it decides them at, before its own
            // maximum goes on to the invoice stage: a line after that would be for a closed invoice).
            releaseHeldCorrections();
            if (!correctionsEnded) {
                heldMaximum = true;
                return;
            }
        }
        super.processWatermark(mark);
    }

    /** The corrections input ended (a bounded run): a maximum held for it goes on. */
    @Override
    public void endInput(int inputId) throws Exception {
        if (inputId == 2) {
            correctionsEnded = true;
            if (heldMaximum) {
                heldMaximum = false;
                super.processWatermark(new Watermark(Long.MAX_VALUE));
            }
        }
    }

    /** The usage input has ended: the corrections held until then are decided, key by key, in arrival order. */
    private void releaseHeldCorrections() throws Exception {
        @SuppressWarnings("unchecked")
        org.apache.flink.runtime.state.KeyedStateBackend<Integer> backend =
                (org.apache.flink.runtime.state.KeyedStateBackend<Integer>) (Object) getKeyedStateBackend();
        List<Integer> keys;
        try (java.util.stream.Stream<Integer> held = backend.getKeys(HELD_CORRECTIONS, VoidNamespace.INSTANCE)) {
            keys = held.collect(java.util.stream.Collectors.toList());
        }
        for (Integer key : keys) {
            setCurrentKey(key);
            Iterable<Row> rows = heldCorrections.get();
            List<Row> copy = new ArrayList<>();
            if (rows != null) {
                rows.forEach(copy::add);
            }
            heldCorrections.clear();
            for (Row row : copy) {
                decideCorrection(row);
            }
        }
    }

    /** Never forwarded (see the class comment); this operator's outputs stay active. */
    @Override
    public void processWatermarkStatus(WatermarkStatus status) {
    }

    // ---- with corrections: input 1 is the usage records, input 2 the accepted corrections ----------------------

    @Override
    public void processElement1(StreamRecord<RowData> element) throws Exception {
        processElement(element);
    }

    @Override
    public void processWatermark1(Watermark mark) throws Exception {
        processWatermark(mark);
    }

    /** The corrections carry no event time: their input never holds the usage watermark back. */
    @Override
    public void processWatermark2(Watermark mark) {
    }

    @Override
    public void processElement2(StreamRecord<Row> element) throws Exception {
        Row in = element.getValue();
        if (holdCorrectionsUntilUsageEnds && watermarkFloor != Long.MAX_VALUE) {
            Row copy = new Row(CORRECTION_FIELDS);
            for (int i = 0; i < CORRECTION_FIELDS; i++) {
                copy.setField(i, in.getField(i));
            }
            heldCorrections.add(copy);
            return;
        }
        decideCorrection(in);
    }

    /** One accepted correction against the ledger: applied (its contributions go on) or rejected. */
    private void decideCorrection(Row in) {
        String tenant = (String) in.getField(0);
        String eventId = (String) in.getField(1);
        Tuple2<Long, Long> key = UsageDedupKey.eventKey(StringData.fromString(tenant), StringData.fromString(eventId));
        String value = (String) in.getField(4);
        @SuppressWarnings("unchecked")
        Map<String, String> dimensions = (Map<String, String>) in.getField(5);
        CorrectionLedger.Correction correction = new CorrectionLedger.Correction(tenant, eventId,
                (String) in.getField(3), value == null ? null : new BigDecimal(value), dimensions);
        JavaCatalog.Tenant meters = catalog.tenants().get(tenant);
        CorrectionLedger.Decision decision = ledger.decide(key.f0, key.f1,
                getProcessingTimeService().getCurrentProcessingTime(), correction,
                meters == null ? null : meters.meters);
        if (decision.applied()) {
            pendingApplied++;
            if (decision.changed()) {
                JavaCatalog.Meter meter = meters.meters.get(decision.remove != null ? decision.remove.meter
                        : decision.add.meter);
                sendCorrection(decision.remove, decision.add, WindowedUsage.code(meter.aggregation));
            }
            return;
        }
        pendingCorrectionRejects.computeIfAbsent(decision.rejection, reason -> new long[1])[0]++;
        output.collect(correctionRejects, new StreamRecord<>(Row.of(in.getField(6), in.getField(7), in.getField(8),
                in.getField(9), decision.rejection, decision.detail, decision.eventDeadLetterReason, in.getField(2),
                tenant, eventId)));
    }

    /**
     * An applied correction's contributions to the window operator, each keyed by its series, after the watermark
     * this operator had forwarded ({@code floorMs}): for sum and count a remove and an add of the same series and
     * window travel as one amend (the change of the value); otherwise each on its own (an amend of a group-by
     * dimension moves usage from one series to another; max, min, last and unique_count windows take the two on
     * their retained contents, unique_count ones by the counted value's token, as the parser encodes it).
     */
    private void sendCorrection(CorrectionLedger.Contribution remove, CorrectionLedger.Contribution add,
            byte aggregation) {
        boolean byDifference = aggregation == WindowedUsage.SUM || aggregation == WindowedUsage.COUNT;
        if (byDifference && remove != null && add != null && remove.sameSeriesAndWindow(add)) {
            BigDecimal change = aggregation == WindowedUsage.COUNT ? null
                    : RateLineItem.compact(orZero(add.value).subtract(orZero(remove.value)));
            output.collect(new StreamRecord<>(correctionRecord(add, aggregation, WindowedUsage.AMEND, change)));
            return;
        }
        // max, min, last and unique_count: a remove and an add (their window's retained contents take each); a last
        // meter's value as billed (its window keys carry it as written, RateLineItem.lastKey), the others' compact
        boolean asBilled = aggregation == WindowedUsage.LAST;
        if (remove != null) {
            output.collect(new StreamRecord<>(correctionRecord(remove, aggregation, WindowedUsage.REMOVE,
                    asBilled ? remove.value : RateLineItem.compact(remove.value))));
        }
        if (add != null) {
            output.collect(new StreamRecord<>(correctionRecord(add, aggregation, WindowedUsage.ADD,
                    asBilled ? add.value : RateLineItem.compact(add.value))));
        }
    }

    private static BigDecimal orZero(BigDecimal value) {
        return value == null ? BigDecimal.ZERO : value;
    }

    private WindowedUsage correctionRecord(CorrectionLedger.Contribution c, byte aggregation, byte kind,
            BigDecimal value) {
        WindowedUsage out = new WindowedUsage();
        StringData group = StringData.fromString(c.groupJson);
        Tuple2<Long, Long> series = new HashedKey().part(StringData.fromString(c.tenantId))
                .part(StringData.fromString(c.customerId)).part(StringData.fromString(c.meter)).part(group).key();
        out.seriesHi = series.f0;
        out.seriesLo = series.f1;
        out.tenantId = c.tenantId.getBytes(StandardCharsets.UTF_8);
        out.customerId = c.customerId.getBytes(StandardCharsets.UTF_8);
        out.meter = c.meter.getBytes(StandardCharsets.UTF_8);
        out.groupJson = group.toBytes();
        out.aggregation = aggregation;
        out.eventTimeMs = c.eventTimeMs;
        out.eventId = c.eventId.getBytes(StandardCharsets.UTF_8);  // last keys; one correction per event id
        out.value = aggregation == WindowedUsage.COUNT || aggregation == WindowedUsage.UNIQUE_COUNT ? null : value;
        if (aggregation == WindowedUsage.UNIQUE_COUNT && c.uniqueValue != null) {
            out.uniqueToken = UniqueToken.encode(c.uniqueValue).getBytes(StandardCharsets.UTF_8);
        }
        // After the end of the usage input (a bounded run) the watermark is at its maximum: the window operator decides
        // such corrections at its own end, all of them together (WindowRating.finish).
        out.floorMs = watermarkFloor;
        out.correction = kind;
        return out;
    }

    /** The correction ledger's keys held (tests). */
    int ledgerSize() {
        return ledger == null ? 0 : ledger.size();
    }

    @Override
    public void processElement(StreamRecord<RowData> element) throws Exception {
        RowData in = element.getValue();
        if (!in.isNullAt(reasonIndex)) {
            Row out = new Row(RECORD_COLUMNS.length + REJECT_COLUMNS.length);
            copyExternal(in, recordGetters, out, 0);
            copyExternal(in, rejectGetters, out, RECORD_COLUMNS.length);
            String reason = in.getString(reasonIndex).toString();
            pendingRejects.computeIfAbsent(reason, r -> new long[1])[0]++;
            if (ledger != null && !in.isNullAt(keyHiIndex)) {
                // Its ids are valid: a correction of it is event_dead_lettered (udfs.corrections.observe_dead_letter).
                Tuple2<Long, Long> eventKey = dedupKey.eventKey(in);
                ledger.observeDeadLetter(eventKey.f0, eventKey.f1, getProcessingTimeService()
                        .getCurrentProcessingTime(), reason);
            }
            output.collect(deadLettered, element.replace(out));
            return;
        }
        long fingerprint = fingerprint64(in.getString(fingerprintIndex));
        Tuple2<Long, Long> eventKey = dedupKey.eventKey(in);
        int bucket = UsageDedupKey.bucket(eventKey.f0);
        int keyGroupIndex = keyGroupIndexOfBucket[bucket];
        // The task's processing-time clock: the wall clock in a job (what System.currentTimeMillis() gives), the
        // harness's time in tests.
        long now = getProcessingTimeService().getCurrentProcessingTime();
        SealedDedup sealedIds = sealed[keyGroupIndex];
        if (sealedIds.runs() > 0) {
            if (sealedIds.lookup(eventKey.f0, eventKey.f1, now, dedupTtlMs, storeOf(keyGroupIndex), found)) {
                // A sealed id keeps the first 32 bits of its first copy's fingerprint (DedupRuns).
                pendingCounts[found.fingerprint32 == (int) (fingerprint >>> 32) ? O_SAME : O_CONFLICT]++;
                return;
            }
        }
        lookup.table = dedupTables[bucket];
        DedupTable.recordFirst(lookup, eventKey.f0, eventKey.f1, fingerprint, now, dedupTtlMs);
        if (lookup.seenBefore) {
            pendingCounts[lookup.firstFingerprint == fingerprint ? O_SAME : O_CONFLICT]++;
            return;
        }
        dedupTables[bucket] = lookup.table;
        // Decoded once for the ledger and the window operator (a DECIMAL(38, 18) is a BigInteger's bytes).
        BigDecimal value = in.isNullAt(valueIndex) ? null
                : in.getDecimal(valueIndex, valuePrecision, valueScale).toBigDecimal();
        // Stripped of the fraction's trailing zeros once (a BigInteger division), for the window operator and the
        // ledger (which keeps the scale it was billed at beside it).
        BigDecimal compact = RateLineItem.compact(value);
        WindowedUsage out = windowed(in, in.getString(aggregationIndex), value, compact);
        if (ledger != null) {
            observe(eventKey, now, in, out, compact, value == null ? 0 : value.scale());
        }
        if (unsealedIds[keyGroupIndex]++ == 0) {
            unsealedSince[keyGroupIndex] = now;
        }
        if (unsealedIds[keyGroupIndex] >= sealAtIds) {
            seal(keyGroupIndex, now);  // after the ledger saw the id: its entry is sealed with it
        }
        long eventTime = in.getLong(eventTimeIndex);
        long windowEnd = TumblingWindows.end(eventTime, windowSizeMs);
        out.floorMs = watermarkFloor;
        if (watermarkFloor != NO_WATERMARK && windowEnd - 1 <= watermarkFloor) {
            out.pastWatermark = pastWatermark(in);  // the window operator counts it: windowed or late
        } else {
            pendingCounts[O_WINDOWED]++;
        }
        output.collect(element.replace(out));
    }

    /**
     * A first copy, remembered in the correction ledger as it is billed: by its series' hash (what {@code windowed}
     * computed), the series' strings decoded only for a series the ledger has not met.
     */
    private void observe(Tuple2<Long, Long> eventKey, long now, RowData in, WindowedUsage windowed, BigDecimal value,
            int billedScale) {
        ledger.observeEvent(eventKey.f0, eventKey.f1, now, windowed.seriesHi, windowed.seriesLo,
                () -> new String[] {in.getString(customerIndex).toString(), in.getString(meterIndex).toString(),
                    in.isNullAt(groupIndex) ? "{}" : in.getString(groupIndex).toString()},
                windowed.eventTimeMs, value, billedScale,
                in.isNullAt(tokenIndex) ? null : CorrectionLedger.decodeToken(in.getString(tokenIndex).toString()));
    }

    private WindowedUsage.PastWatermark pastWatermark(RowData in) {
        Row record = new Row(RECORD_COLUMNS.length);
        copyExternal(in, recordGetters, record, 0);
        WindowedUsage.PastWatermark past = new WindowedUsage.PastWatermark();
        past.payload = (byte[]) record.getField(0);
        past.srcTopic = (String) record.getField(1);
        past.srcPartition = (Integer) record.getField(2);
        past.srcOffset = (Long) record.getField(3);
        past.watermarkMs = watermarkFloor;
        return past;
    }

    /** A first-seen valid record for the window operator ({@code compact}: {@code value} stripped, RateLineItem). */
    private WindowedUsage windowed(RowData in, StringData aggregation, BigDecimal value, BigDecimal compact) {
        WindowedUsage out = new WindowedUsage();
        StringData tenant = in.getString(tenantIndex);
        StringData customer = in.getString(customerIndex);
        StringData meter = in.getString(meterIndex);
        StringData group = in.isNullAt(groupIndex) ? null : in.getString(groupIndex);
        Tuple2<Long, Long> series = new HashedKey().part(tenant).part(customer).part(meter).part(group).key();
        out.seriesHi = series.f0;
        out.seriesLo = series.f1;
        out.tenantId = tenant.toBytes();
        out.customerId = customer.toBytes();
        out.meter = meter.toBytes();
        out.groupJson = group == null ? null : group.toBytes();
        out.aggregation = WindowedUsage.code(aggregation);
        out.eventTimeMs = in.getLong(eventTimeIndex);
        if (out.aggregation == WindowedUsage.UNIQUE_COUNT) {
            out.uniqueToken = in.isNullAt(tokenIndex) ? null : in.getString(tokenIndex).toBytes();
        } else if (out.aggregation != WindowedUsage.COUNT && value != null) {
            out.value = out.aggregation == WindowedUsage.LAST ? value : compact;
        }
        if (out.aggregation == WindowedUsage.LAST) {
            out.eventId = in.getString(eventIdIndex).toBytes();
        }
        return out;
    }

    @Override
    protected void flushCounts() {
        for (int outcome = 0; outcome < OUTCOME_NAMES.length; outcome++) {
            if (pendingCounts[outcome] > 0) {
                emitCount(OUTCOME_NAMES[outcome], "", pendingCounts[outcome]);
                pendingCounts[outcome] = 0;
            }
        }
        for (Map.Entry<String, long[]> reject : pendingRejects.entrySet()) {
            emitCount(DEAD_LETTERED, reject.getKey(), reject.getValue()[0]);
        }
        pendingRejects.clear();
        if (pendingApplied > 0) {
            emitCount(CORRECTION_APPLIED, "", pendingApplied);
            pendingApplied = 0;
        }
        for (Map.Entry<String, long[]> reject : pendingCorrectionRejects.entrySet()) {
            emitCount(CORRECTION_REJECTED, reject.getKey(), reject.getValue()[0]);
        }
        pendingCorrectionRejects.clear();
    }

    private void emitCount(String outcome, String detail, long records) {
        output.collect(accounting, new StreamRecord<>(Row.of(outcome, detail, records)));
    }

    /**
     * Side outputs carry external rows (String, BigDecimal, byte[]): Python reads them, and they are one in a
     * hundred records, so the conversion costs nothing measurable.
     */
    private static void copyExternal(RowData in, RowData.FieldGetter[] getters, Row out, int at) {
        for (int i = 0; i < getters.length; i++) {
            Object value = getters[i].getFieldOrNull(in);
            if (value instanceof StringData) {
                value = value.toString();
            } else if (value instanceof DecimalData) {
                value = ((DecimalData) value).toBigDecimal();
            }
            out.setField(at + i, value);
        }
    }

    /** The first 64 bits of the hex SHA-256 fingerprint (a valid record always has one), read from its bytes. */
    static long fingerprint64(StringData hex) {
        byte[] digits = hex == null ? null : hex.toBytes();
        if (digits == null || digits.length < 16) {
            throw new IllegalStateException("a valid usage record must carry a hex fingerprint: " + hex);
        }
        long value = 0;
        for (int i = 0; i < 16; i++) {
            value = (value << 4) | hexDigit(digits[i], hex);
        }
        return value;
    }

    private static int hexDigit(byte digit, StringData hex) {
        if (digit >= '0' && digit <= '9') {
            return digit - '0';
        }
        if (digit >= 'a' && digit <= 'f') {
            return digit - 'a' + 10;
        }
        if (digit >= 'A' && digit <= 'F') {
            return digit - 'A' + 10;
        }
        throw new IllegalStateException("not a hex fingerprint: " + hex);
    }
}
