package io.meterstream.corrections;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongToIntFunction;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.rules.Rules;
import io.meterstream.validation.CanonicalJson;
import io.meterstream.validation.UniqueToken;
import io.meterstream.windows.TumblingWindows;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.DataOutputView;

/**
 * The correction ledger of {@code udfs.corrections}, per (tenant_id, event_id) key (its 128-bit {@code HashedKey},
 * as the dedup memory keys it): the billed version of every first-seen event for the correction horizon, markers of
 * dead-lettered ids, and what a correction does ({@link #decide}). Bound to the specification by the golden vectors
 * {@code corrections.json} ({@code CorrectionLedgerGoldenTest}): the same steps, the same state at every step, the
 * same rejection reasons and contributions.
 *
 * <p>Steps (processing time {@code nowMs}, Flink's TTL rule {@code first seen + horizon <= now} for both horizons):
 * <ul>
 *   <li>{@link #observeEvent}: a first copy (the dedup memory's {@code first}) is remembered whatever the key held;</li>
 *   <li>{@link #observeDeadLetter}: a dead-lettered record with these ids, unless the key holds something;</li>
 *   <li>{@link #decide}: one correction (a first copy of its correction id: the Python stage before this checks
 *       those) against the key's state: {@code event_dead_lettered}, {@code unknown_event}, {@code outside_horizon},
 *       {@code already_cancelled}, {@code unknown_meter}, {@code aggregation_not_correctable} (an aggregation
 *       not in {@code udfs.corrections.BILLED_CORRECTION_AGGREGATIONS}, or an event restored from a format whose
 *       release kept no window contents its aggregation needs), or applied with the contribution removed and the
 *       one added (none when the aggregation reads nothing that changed).</li>
 * </ul>
 * After the correction horizon an event's entry keeps only its first-seen time (so {@code outside_horizon} and
 * {@code unknown_event} stay apart) until the dedup horizon; a dead-letter marker lives for the correction horizon.
 *
 * <p>Layout: {@link LedgerSlots}, one open-addressing table of fixed-size slots (the key, first seen, kind and
 * flags, event time, the value as a long with its scales, an index into a dictionary of the series' strings, and a
 * reference for the rare unique value, big value or dead-letter reason; the job names a series by its 128-bit hash
 * and its strings are decoded only when the ledger first meets it), not an object per key with its own strings
 * (that was 406 heap bytes and 121 checkpoint bytes per event; now 125 and 87, measured by
 * {@code benchmarks/CorrectionLedgerMemoryBench.java}: 1M events, 20k series). A checkpoint serializes the slots
 * in table order into a buffer per key group ({@link #prepareSnapshot}), each key group's series strings once
 * (format 5: an event names its series by number; with 128 key groups the strings are shared once a series has
 * many more events than that, as a day of a busy series has). The docstring's ~80 bytes would need series hashes in
 * place of the strings a correction line must name.
 *
 * <p>Sealed entries (issue 18): in the job most entries do not stay in the slots. When the dedup memory seals a key
 * group's ids, {@link #sealEntries} takes those ids' entries out of the slots into the companion of their block
 * (written once, beside it); {@link #readSealedFrom} says where to find them again. A step on a key the slots lack
 * looks there first and brings the entry back into a slot ({@link #unseal}), so every rule above runs on slots alone
 * and decides exactly as without sealing ({@code CorrectionLedgerGoldenTest} replays the vectors with every event
 * sealed before every correction).
 */
public final class CorrectionLedger {
    /** The correction rejection reasons the ledger decides ({@code schemas.correction_dead_letter}, generated). */
    public static final String EVENT_DEAD_LETTERED = Rules.CORRECTION_EVENT_DEAD_LETTERED;
    public static final String UNKNOWN_EVENT = Rules.CORRECTION_UNKNOWN_EVENT;
    public static final String OUTSIDE_HORIZON = Rules.CORRECTION_OUTSIDE_HORIZON;
    public static final String ALREADY_CANCELLED = Rules.CORRECTION_ALREADY_CANCELLED;
    public static final String UNKNOWN_METER = Rules.CORRECTION_UNKNOWN_METER;
    public static final String AGGREGATION_NOT_CORRECTABLE = Rules.CORRECTION_AGGREGATION_NOT_CORRECTABLE;
    public static final String CANCEL = Rules.CORRECTION_ACTION_CANCEL;
    public static final String AMEND = Rules.CORRECTION_ACTION_AMEND;

    /**
     * 5: per key group, the series its events belong to (each once: its number in the writer's series dictionary,
     * customer, meter, group), then the entries, an event naming its series by that number (a varint). Read too: 4 (the compact slots, {@link LedgerSlots},
     * an entry's kind byte carrying whether its window contents are retained; each event with its series' strings),
     * 3 (an entry says whether its unique_count window's contents are retained), 2 (whether its max, min or last
     * window's are) and 1 (neither).
     */
    private static final int FORMAT_VERSION = 5;
    private static final int FORMAT_VERSION_4 = 4;
    private static final int FORMAT_VERSION_3 = 3;
    private static final int FORMAT_VERSION_2 = 2;
    private static final int FORMAT_VERSION_1 = 1;
    /** Flags of an entry observed by this release: its max/min/last and unique_count windows retain contents. */
    private static final byte RETAINED = LedgerSlots.CONTENTS_RETAINED | LedgerSlots.UNIQUE_RETAINED;

    /** The billed version of an event. */
    public static final class Version {
        public final String customerId;
        public final String meter;
        public final long eventTimeMs;
        public final BigDecimal value;  // null: none
        public final String groupJson;
        public final String uniqueValue;  // the unique dimension's value (decoded), null: none

        public Version(String customerId, String meter, long eventTimeMs, BigDecimal value, String groupJson,
                String uniqueValue) {
            this.customerId = customerId;
            this.meter = meter;
            this.eventTimeMs = eventTimeMs;
            this.value = value;
            this.groupJson = groupJson;
            this.uniqueValue = uniqueValue;
        }
    }

    /** What one event version adds to one window of one series, reduced to what the meter's aggregation reads. */
    public static final class Contribution {
        public final String tenantId;
        public final String customerId;
        public final String meter;
        public final String groupJson;
        public final long windowStartMs;
        public final long windowEndMs;
        public final String eventId;
        public final long eventTimeMs;
        public final BigDecimal value;  // null for count and unique_count, or none
        public final String uniqueValue;  // unique_count only, null: none

        Contribution(String tenantId, String customerId, String meter, String groupJson, long windowStartMs,
                long windowEndMs, String eventId, long eventTimeMs, BigDecimal value, String uniqueValue) {
            this.tenantId = tenantId;
            this.customerId = customerId;
            this.meter = meter;
            this.groupJson = groupJson;
            this.windowStartMs = windowStartMs;
            this.windowEndMs = windowEndMs;
            this.eventId = eventId;
            this.eventTimeMs = eventTimeMs;
            this.value = value;
            this.uniqueValue = uniqueValue;
        }

        /** Equal as the specification's dataclasses are: decimals by value. */
        boolean sameAs(Contribution other) {
            return other != null && tenantId.equals(other.tenantId) && customerId.equals(other.customerId)
                    && meter.equals(other.meter) && groupJson.equals(other.groupJson)
                    && windowStartMs == other.windowStartMs && windowEndMs == other.windowEndMs
                    && eventId.equals(other.eventId) && eventTimeMs == other.eventTimeMs
                    && (value == null ? other.value == null : other.value != null && value.compareTo(other.value) == 0)
                    && Objects.equals(uniqueValue, other.uniqueValue);
        }

        /** The same series (tenant, customer, meter, group) and window: an amend there changes one window. */
        public boolean sameSeriesAndWindow(Contribution other) {
            return tenantId.equals(other.tenantId) && customerId.equals(other.customerId)
                    && meter.equals(other.meter) && groupJson.equals(other.groupJson)
                    && windowStartMs == other.windowStartMs;
        }
    }

    /** A correction, as validated by {@code udfs.corrections.validate_correction_record}. */
    public static final class Correction {
        public final String tenantId;
        public final String eventId;
        public final String action;
        public final BigDecimal value;  // amend: the replacement, null: kept
        public final Map<String, String> dimensions;  // amend: the replacement map, null: kept

        public Correction(String tenantId, String eventId, String action, BigDecimal value,
                Map<String, String> dimensions) {
            this.tenantId = tenantId;
            this.eventId = eventId;
            this.action = action;
            this.value = value;
            this.dimensions = dimensions;
        }
    }

    /** A decision: a rejection reason (and the event's dead-letter reason), or applied with its remove/add. */
    public static final class Decision {
        public final String rejection;
        public final String detail;
        public final String eventDeadLetterReason;
        public final Contribution remove;
        public final Contribution add;

        private Decision(String rejection, String detail, String eventDeadLetterReason, Contribution remove,
                Contribution add) {
            this.rejection = rejection;
            this.detail = detail;
            this.eventDeadLetterReason = eventDeadLetterReason;
            this.remove = remove;
            this.add = add;
        }

        public boolean applied() {
            return rejection == null;
        }

        /** Applied and changes what the window reads. */
        public boolean changed() {
            return remove != null || add != null;
        }
    }

    private final long windowSizeMs;
    private final long horizonMs;
    private final long dedupTtlMs;
    private final LedgerSlots slots = new LedgerSlots();
    /** The last prepareSnapshot's entries per key group, serialized, how many each holds, and their series. */
    private DataOutputSerializer[] snapshotBuffers;
    private int[] snapshotCounts;
    private GroupSeries[] snapshotSeries;
    /** What each key group's entries took in the last snapshot. */
    private int[] lastBufferLengths = new int[0];
    /** Reused by {@link #write} for a key group's series strings. */
    private DataOutputSerializer seriesBuffer = new DataOutputSerializer(1 << 16);
    /** Where entries sealed with the dedup memory are found (null: none are; the ledger is its slots alone). */
    private SealedEntries sealedEntries;
    private final SealedAt sealedAt = new SealedAt();

    /**
     * Where a sealed entry is: the companion bytes {@link #sealEntries} made for its dedup block, its record's
     * position there, and that record's first sighting (entries' first-seen times are kept relative to it).
     */
    public static final class SealedAt {
        public byte[] companion;
        public int record;
        public long dedupFirstSeenMs;
    }

    /** The entries sealed with the dedup memory's runs ({@code UsageRouting}: its {@code SealedDedup}s). */
    @FunctionalInterface
    public interface SealedEntries {
        /**
         * Whether the key's dedup record is sealed and remembered at {@code nowMs} and its block has a companion;
         * then {@code at} says where its entry is.
         */
        boolean find(long keyHi, long keyLo, long nowMs, SealedAt at);
    }

    /** The series dictionary's indices one key group's events use (a snapshot writes those series once each). */
    private static final class GroupSeries extends java.util.BitSet {
        private static final long serialVersionUID = 1L;

        GroupSeries(int dictionarySize) {
            super(dictionarySize);
        }
    }

    public CorrectionLedger(long windowSizeMs, long horizonMs, long dedupTtlMs) {
        if (!(0 < horizonMs && horizonMs <= dedupTtlMs)) {
            throw new IllegalArgumentException("the correction horizon must be in (0, dedup horizon = " + dedupTtlMs
                    + " ms], got " + horizonMs);
        }
        this.windowSizeMs = windowSizeMs;
        this.horizonMs = horizonMs;
        this.dedupTtlMs = dedupTtlMs;
    }

    /** Reads the entries sealed with the dedup memory from {@code entries} from now on (see {@link #sealEntries}). */
    public void readSealedFrom(SealedEntries entries) {
        this.sealedEntries = entries;
    }

    static boolean expired(long firstSeenMs, long nowMs, long ttlMs) {
        return firstSeenMs + ttlMs <= nowMs;
    }

    /**
     * {@code udfs.corrections.expire_entry}, in place: the key's slot, or -1 (and the key forgotten). A sealed entry
     * comes back into a slot first (where it then stays: what a correction changes lives in the slots).
     */
    private int expire(long keyHi, long keyLo, long nowMs) {
        int slot = slots.find(keyHi, keyLo);
        if (slot < 0 && sealedEntries != null && sealedEntries.find(keyHi, keyLo, nowMs, sealedAt)) {
            slot = unseal(keyHi, keyLo, sealedAt);
        }
        if (slot >= 0 && !aged(slot, nowMs)) {
            slots.removeAt(slot);
            return -1;
        }
        return slot;
    }

    /** Ages the slot's entry to {@code nowMs} in place; false when the key is then forgotten. */
    private boolean aged(int slot, long nowMs) {
        long firstSeen = slots.firstSeen(slot);
        byte kind = LedgerSlots.kind(slots.kindAndFlags(slot));
        if (expired(firstSeen, nowMs, dedupTtlMs)
                || (kind == LedgerSlots.DEAD_LETTER && expired(firstSeen, nowMs, horizonMs))) {
            return false;
        }
        if ((kind == LedgerSlots.EVENT || kind == LedgerSlots.CANCELLED) && expired(firstSeen, nowMs, horizonMs)) {
            slots.setPastHorizon(slot);
        }
        return true;
    }

    public void observeEvent(long keyHi, long keyLo, long nowMs, Version version) {
        slots.setEvent(slots.insert(keyHi, keyLo), nowMs, version, RETAINED);
    }

    /**
     * {@link #observeEvent(long, long, long, Version)} on the per-event path: the series named by its 128-bit hash,
     * its strings ({@code names}) decoded only when this ledger has not met it yet; the value at any scale up to
     * {@code billedScale}, the one it was billed at (equal values: the ledger keeps it as billed).
     */
    public void observeEvent(long keyHi, long keyLo, long nowMs, long seriesHi, long seriesLo,
            LedgerSlots.SeriesNames names, long eventTimeMs, BigDecimal value, int billedScale, String uniqueValue) {
        int series = slots.seriesIndex(seriesHi, seriesLo, names);
        slots.setEvent(slots.insert(keyHi, keyLo), nowMs, series, eventTimeMs, value, billedScale, uniqueValue,
                RETAINED);
    }

    public void observeDeadLetter(long keyHi, long keyLo, long nowMs, String reason) {
        if (expire(keyHi, keyLo, nowMs) < 0) {
            slots.setDeadLetter(slots.insert(keyHi, keyLo), nowMs, reason);
        }
    }

    /**
     * One correction against its event's state at {@code nowMs}. {@code meters}: the tenant's catalog meters (null:
     * none).
     */
    public Decision decide(long keyHi, long keyLo, long nowMs, Correction correction,
            Map<String, JavaCatalog.Meter> meters) {
        int slot = expire(keyHi, keyLo, nowMs);
        byte kind = slot < 0 ? LedgerSlots.EMPTY : LedgerSlots.kind(slots.kindAndFlags(slot));
        String event = "'" + correction.eventId + "'";
        if (kind == LedgerSlots.DEAD_LETTER) {
            String reason = slots.deadLetterReason(slot);
            return new Decision(EVENT_DEAD_LETTERED, "event " + event + " was rejected (" + reason
                    + "): nothing was billed, so nothing can be corrected", reason, null, null);
        }
        if (slot < 0) {
            return rejected(UNKNOWN_EVENT, "event " + event
                    + " is not known (not arrived yet, never sent, or past the dedup horizon)");
        }
        if (kind == LedgerSlots.PAST_HORIZON) {
            return rejected(OUTSIDE_HORIZON, "event " + event + " was first seen " + (nowMs - slots.firstSeen(slot))
                    + " ms ago, beyond the correction horizon of " + horizonMs + " ms");
        }
        if (kind == LedgerSlots.CANCELLED) {
            return rejected(ALREADY_CANCELLED, "event " + event + " is cancelled");
        }
        Version current = slots.version(slot);
        JavaCatalog.Meter meter = meters == null ? null : meters.get(current.meter);
        if (meter == null) {
            return rejected(UNKNOWN_METER, "meter '" + current.meter + "' of event " + event
                    + " is no longer in the tenant's catalog");
        }
        if (!Rules.correctionBilled(meter.aggregation)) {
            return rejected(AGGREGATION_NOT_CORRECTABLE, "event " + event + " is usage of meter '"
                    + current.meter + "' (" + meter.aggregation + "): " + Rules.CORRECTION_NOT_BILLED_DETAIL);
        }
        byte flags = slots.kindAndFlags(slot);
        boolean extreme = !Rules.AGGREGATION_SUM.equals(meter.aggregation)
                && !Rules.AGGREGATION_COUNT.equals(meter.aggregation)
                && !Rules.AGGREGATION_UNIQUE_COUNT.equals(meter.aggregation);
        if ((extreme && (flags & LedgerSlots.CONTENTS_RETAINED) == 0) || (Rules.AGGREGATION_UNIQUE_COUNT.equals(
                meter.aggregation) && (flags & LedgerSlots.UNIQUE_RETAINED) == 0)) {
            return notRetained(event, current, meter);
        }
        Contribution before = contribution(correction, current, meter);
        Version after = CANCEL.equals(correction.action) ? null : amended(current, correction, meter);
        Contribution added = after == null ? null : contribution(correction, after, meter);
        if (after == null) {
            slots.setCancelled(slot);
        } else {
            slots.setVersion(slot, after);
        }
        if (before.sameAs(added)) {
            return new Decision(null, null, null, null, null);
        }
        return new Decision(null, null, null, before, added);
    }

    private static Decision notRetained(String event, Version current, JavaCatalog.Meter meter) {
        return rejected(AGGREGATION_NOT_CORRECTABLE, "event " + event + " is usage of meter '" + current.meter
                + "' (" + meter.aggregation + "), billed before this release kept the window contents its "
                + "correction needs");
    }

    private static Decision rejected(String reason, String detail) {
        return new Decision(reason, detail, null, null, null);
    }

    private static Version amended(Version current, Correction correction, JavaCatalog.Meter meter) {
        BigDecimal value = correction.value == null ? current.value : correction.value;
        if (correction.dimensions == null) {
            return new Version(current.customerId, current.meter, current.eventTimeMs, value, current.groupJson,
                    current.uniqueValue);
        }
        String unique = meter.uniqueDimension == null ? null : correction.dimensions.get(meter.uniqueDimension);
        return new Version(current.customerId, current.meter, current.eventTimeMs, value,
                groupJson(correction.dimensions, meter.groupBy), unique);
    }

    /** {@code udfs.grouping.group_json(group_of(dimensions, group_by))}: canonical JSON, keys in code point order. */
    static String groupJson(Map<String, String> dimensions, List<String> groupBy) {
        String[] keys = groupBy.stream().distinct().filter(dimensions::containsKey).toArray(String[]::new);
        Arrays.sort(keys, CanonicalJson.CODE_POINT_ORDER);
        String[] values = new String[keys.length];
        for (int i = 0; i < keys.length; i++) {
            values[i] = dimensions.get(keys[i]);
        }
        StringBuilder sb = new StringBuilder();
        CanonicalJson.appendObject(sb, keys, values, keys.length);
        return sb.toString();
    }

    private Contribution contribution(Correction correction, Version version, JavaCatalog.Meter meter) {
        long start = TumblingWindows.start(version.eventTimeMs, windowSizeMs);
        boolean valueless = Rules.AGGREGATION_COUNT.equals(meter.aggregation)
                || Rules.AGGREGATION_UNIQUE_COUNT.equals(meter.aggregation);
        String unique = Rules.AGGREGATION_UNIQUE_COUNT.equals(meter.aggregation) ? version.uniqueValue : null;
        return new Contribution(correction.tenantId, version.customerId, version.meter, version.groupJson, start,
                start + windowSizeMs, correction.eventId, version.eventTimeMs, valueless ? null : version.value,
                unique);
    }

    /** {@code udfs.grouping.decode_unique_token}: the value of a parser's unique token. */
    public static String decodeToken(String token) {
        return UniqueToken.decode(token);
    }

    /** Keys held (tests: state goes back to nothing after the horizons). */
    public int size() {
        return slots.size();
    }

    /** Series strings interned (tests: they go with the events that referenced them, at a snapshot). */
    int seriesHeld() {
        return slots.seriesHeld();
    }

    /** Forgets every key whose horizons have passed at {@code nowMs} (before a snapshot). */
    public void expireAll(long nowMs) {
        slots.removeIf(slot -> !aged(slot, nowMs));
    }

    // ---- sealed entries -------------------------------------------------------------------------------------

    /** The companion format {@link #sealEntries} writes. */
    private static final byte SEALED_FORMAT = 1;
    /** {@link #sealEntries}' buffers, kept between blocks (a block allocated ~256 KB and a map per series). */
    private final DataOutputSerializer sealBuffer = new DataOutputSerializer(1 << 16);
    /** Per dictionary index, its number among the block's series while a block is sealed; -1 otherwise. */
    private int[] localSeriesOf = new int[0];
    private int[] sealSeriesOrder = new int[64];

    /**
     * The entries of the keys of one sealed dedup block ({@code hi}, {@code lo}, their records' first sightings
     * {@code dedupFirstSeen}, in block order) as that block's companion, taken out of the slots: an event (its
     * version), a cancelled one, or one past the correction horizon (its first-seen time alone); null when none of
     * the keys has one. A dead letter's marker stays in the slots (its key is never in the dedup memory).
     *
     * <p>Layout: the format byte; the series the events belong to (how many, then each as a snapshot writes it:
     * customer, meter, group); how many records; per record its kind and flags (0: none sealed here), its first
     * seen relative to the dedup record's (a zigzag varint), and for an event the series' number, its event time
     * relative to first seen (a zigzag varint), its value ({@link LedgerSlots#writeValue}) and unique value. Why
     * the entries leave the slots: there they cost about 125 heap bytes and a full copy at every checkpoint; here
     * a block is written once, beside the dedup block (in managed state with RocksDB: an incremental checkpoint
     * uploads it once).
     */
    public byte[] sealEntries(long[] hi, long[] lo, long[] dedupFirstSeen, int count, long nowMs)
            throws IOException {
        DataOutputSerializer entries = sealBuffer;
        entries.clear();
        if (localSeriesOf.length < slots.dictionarySize()) {
            localSeriesOf = new int[Math.max(slots.dictionarySize(), 2 * localSeriesOf.length)];
            java.util.Arrays.fill(localSeriesOf, -1);
        }
        int[] seriesOrder = sealSeriesOrder;
        int seriesCount = 0;
        int sealedCount = 0;
        for (int r = 0; r < count; r++) {
            int slot = slots.find(hi[r], lo[r]);
            if (slot >= 0 && !aged(slot, nowMs)) {
                slots.removeAt(slot);
                slot = -1;
            }
            byte kind = slot < 0 ? LedgerSlots.EMPTY : LedgerSlots.kind(slots.kindAndFlags(slot));
            if (kind != LedgerSlots.EVENT && kind != LedgerSlots.CANCELLED && kind != LedgerSlots.PAST_HORIZON) {
                entries.writeByte(0);
                continue;
            }
            entries.writeByte(slots.kindAndFlags(slot));
            writeVarlong(entries, zigzag(slots.firstSeen(slot) - dedupFirstSeen[r]));
            if (kind == LedgerSlots.EVENT) {
                int series = slots.seriesIndexOf(slot);
                int local = localSeriesOf[series];
                if (local < 0) {
                    local = seriesCount;
                    localSeriesOf[series] = local;
                    if (seriesCount == seriesOrder.length) {
                        seriesOrder = java.util.Arrays.copyOf(seriesOrder, 2 * seriesOrder.length);
                        sealSeriesOrder = seriesOrder;
                    }
                    seriesOrder[seriesCount++] = series;
                }
                writeVarint(entries, local);
                writeVarlong(entries, zigzag(slots.eventTime(slot) - slots.firstSeen(slot)));
                slots.writeValue(slot, entries);
                writeNullable(entries, slots.unique(slot));
            }
            slots.removeAt(slot);
            sealedCount++;
        }
        for (int i = 0; i < seriesCount; i++) {
            localSeriesOf[seriesOrder[i]] = -1;  // ready for the next block
        }
        if (sealedCount == 0) {
            return null;
        }
        DataOutputSerializer out = new DataOutputSerializer(entries.length() + 64 * seriesCount + 16);
        out.writeByte(SEALED_FORMAT);
        writeVarint(out, seriesCount);
        for (int i = 0; i < seriesCount; i++) {
            out.write(slots.series(seriesOrder[i]).record);
        }
        writeVarint(out, count);
        out.write(entries.getSharedBuffer(), 0, entries.length());
        return out.getCopyOfBuffer();
    }

    /** The sealed entry {@code at} back into a slot of its key: the slot, or -1 when its record has none. */
    private int unseal(long keyHi, long keyLo, SealedAt at) {
        try {
            byte[] bytes = at.companion;
            DataInputDeserializer in = new DataInputDeserializer(bytes);
            if (in.readByte() != SEALED_FORMAT) {
                throw new IOException("sealed correction ledger entries of format " + bytes[0]);
            }
            int[] seriesAt = new int[readVarint(in)];
            for (int i = 0; i < seriesAt.length; i++) {
                seriesAt[i] = in.getPosition();
                for (int string = 0; string < 3; string++) {
                    in.skipBytesToRead(readVarint(in));
                }
            }
            int records = readVarint(in);
            if (at.record < 0 || at.record >= records) {
                throw new IOException("sealed correction ledger entry " + at.record + " of " + records);
            }
            for (int r = 0; ; r++) {
                byte kindAndFlags = in.readByte();
                if (kindAndFlags == 0) {
                    if (r == at.record) {
                        return -1;
                    }
                    continue;
                }
                long firstSeen = at.dedupFirstSeenMs + unzigzag(readVarlong(in));
                byte kind = LedgerSlots.kind(kindAndFlags);
                if (kind != LedgerSlots.EVENT) {
                    if (r == at.record) {
                        int slot = slots.insert(keyHi, keyLo);
                        slots.setBare(slot, firstSeen, kindAndFlags);
                        return slot;
                    }
                    continue;
                }
                int series = readVarint(in);
                long eventTime = firstSeen + unzigzag(readVarlong(in));
                BigDecimal value = LedgerSlots.readValue(in);
                String unique = readNullable(in, true);
                if (r == at.record) {
                    if (series >= seriesAt.length) {
                        throw new IOException("sealed correction ledger entry of series " + series + " of "
                                + seriesAt.length);
                    }
                    DataInputDeserializer strings = new DataInputDeserializer(bytes, seriesAt[series],
                            bytes.length - seriesAt[series]);
                    Version version = new Version(readString(strings, true), readString(strings, true), eventTime,
                            value, readString(strings, true), unique);
                    int slot = slots.insert(keyHi, keyLo);
                    slots.setEvent(slot, firstSeen, version, (byte) (kindAndFlags & RETAINED));
                    return slot;
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("sealed correction ledger entries unreadable: " + e.getMessage(), e);
        }
    }

    private static long zigzag(long n) {
        return (n << 1) ^ (n >> 63);
    }

    private static long unzigzag(long n) {
        return (n >>> 1) ^ -(n & 1);
    }

    private static void writeVarlong(DataOutputView out, long n) throws IOException {
        while ((n & ~0x7fL) != 0) {
            out.writeByte((int) ((n & 0x7f) | 0x80));
            n >>>= 7;
        }
        out.writeByte((int) n);
    }

    private static long readVarlong(DataInputView in) throws IOException {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            byte b = in.readByte();
            value |= (long) (b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                return value;
            }
        }
        throw new IOException("sealed correction ledger varint over 64 bits");
    }

    // ---- snapshot -------------------------------------------------------------------------------------------

    /**
     * Before a snapshot: forgets what has expired at {@code nowMs} and orders the rest by key group
     * ({@code keyGroupOfHi}: the key group of a key's hi part), for {@link #write}.
     */
    public void prepareSnapshot(long nowMs, LongToIntFunction keyGroupOfHi) throws IOException {
        expireAll(nowMs);
        slots.shrink();  // entries sealed since the last snapshot left their slots behind
        slots.compactDictionary();
        // Serialized in slot order, into one buffer per key group: the slots' arrays are read sequentially (in key
        // group order they were read at random, a cache miss per array per entry: 2.5x slower, measured).
        DataOutputSerializer[] buffers = new DataOutputSerializer[128];
        int[] counts = new int[128];
        GroupSeries[] series = new GroupSeries[128];
        for (int slot = 0; slot < slots.capacity(); slot++) {
            if (slots.isEmpty(slot)) {
                continue;
            }
            int group = keyGroupOfHi.applyAsInt(slots.hi(slot));
            if (group >= buffers.length) {
                int length = Math.max(group + 1, buffers.length * 2);
                buffers = java.util.Arrays.copyOf(buffers, length);
                counts = java.util.Arrays.copyOf(counts, length);
                series = java.util.Arrays.copyOf(series, length);
            }
            if (buffers[group] == null) {
                // Sized by the last snapshot's (a buffer that doubles its way up copies its bytes once more).
                int last = group < lastBufferLengths.length ? lastBufferLengths[group] : 0;
                buffers[group] = new DataOutputSerializer(Math.max(1 << 16, last + (last >> 3)));
                series[group] = new GroupSeries(slots.dictionarySize());
            }
            counts[group]++;
            writeEntry(buffers[group], slot, series[group]);
        }
        lastBufferLengths = new int[buffers.length];
        for (int group = 0; group < buffers.length; group++) {
            lastBufferLengths[group] = buffers[group] == null ? 0 : buffers[group].length();
        }
        snapshotBuffers = buffers;
        snapshotCounts = counts;
        snapshotSeries = series;
    }

    /** One key group's keys as bytes (after {@link #prepareSnapshot}); its buffer is released. */
    public void write(DataOutputView out, int keyGroup) throws IOException {
        boolean held = snapshotBuffers != null && keyGroup < snapshotBuffers.length && snapshotBuffers[keyGroup] != null;
        out.writeInt(FORMAT_VERSION);
        GroupSeries used = held ? snapshotSeries[keyGroup] : null;
        // Into a buffer first: the checkpoint stream takes a varint byte by byte through several layers (JFR).
        DataOutputSerializer strings = seriesBuffer;
        strings.clear();
        writeVarint(strings, used == null ? 0 : used.cardinality());
        for (int index = used == null ? -1 : used.nextSetBit(0); index >= 0; index = used.nextSetBit(index + 1)) {
            writeVarint(strings, index);
            strings.write(slots.series(index).record);
        }
        out.write(strings.getSharedBuffer(), 0, strings.length());
        if (strings.getSharedBuffer().length > 1 << 22) {
            seriesBuffer = new DataOutputSerializer(1 << 16);  // do not hold a big key group's buffer for ever
        }
        out.writeInt(held ? snapshotCounts[keyGroup] : 0);
        if (held) {
            DataOutputSerializer entries = snapshotBuffers[keyGroup];
            snapshotBuffers[keyGroup] = null;
            snapshotSeries[keyGroup] = null;
            out.write(entries.getSharedBuffer(), 0, entries.length());
        }
    }

    private void writeEntry(DataOutputView out, int slot, GroupSeries groupSeries) throws IOException {
        out.writeLong(slots.hi(slot));
        out.writeLong(slots.lo(slot));
        out.writeLong(slots.firstSeen(slot));
        byte kindAndFlags = slots.kindAndFlags(slot);
        out.writeByte(kindAndFlags);
        byte kind = LedgerSlots.kind(kindAndFlags);
        if (kind == LedgerSlots.DEAD_LETTER) {
            writeBytes(out, slots.deadLetterReason(slot).getBytes(StandardCharsets.UTF_8));
        } else if (kind == LedgerSlots.EVENT) {
            int series = slots.seriesIndexOf(slot);
            groupSeries.set(series);
            writeVarint(out, series);
            out.writeLong(slots.eventTime(slot));
            slots.writeValue(slot, out);
            writeNullable(out, slots.unique(slot));
        }
    }

    public void read(DataInputView in) throws IOException {
        int version = in.readInt();
        if (version < FORMAT_VERSION_1 || version > FORMAT_VERSION) {
            throw new IOException("correction ledger state has format " + version + ", this version reads "
                    + FORMAT_VERSION_1 + " to " + FORMAT_VERSION);
        }
        Map<Integer, String[]> series = null;
        if (version == FORMAT_VERSION) {
            int count = readVarint(in);
            series = new java.util.HashMap<>(Math.max(16, count * 2));
            for (int i = 0; i < count; i++) {
                series.put(readVarint(in), new String[] {readString(in, true), readString(in, true),
                    readString(in, true)});
            }
        }
        for (int remaining = in.readInt(); remaining > 0; remaining--) {
            long hi = in.readLong();
            long lo = in.readLong();
            long firstSeen = in.readLong();
            byte kindAndFlags = in.readByte();
            if (version >= FORMAT_VERSION_4) {
                readEntry(in, hi, lo, firstSeen, LedgerSlots.kind(kindAndFlags),
                        (byte) (kindAndFlags & RETAINED), true, series);
            } else {
                // formats 1-3: kind 0 an event, 1 a dead letter, 2 past the horizon, 3 cancelled; the flags follow
                byte kind = kindAndFlags == 0 ? LedgerSlots.EVENT : kindAndFlags == 1 ? LedgerSlots.DEAD_LETTER
                        : kindAndFlags == 2 ? LedgerSlots.PAST_HORIZON : kindAndFlags == 3 ? LedgerSlots.CANCELLED
                        : -1;
                if (kind < 0) {
                    throw new IOException("correction ledger entry of kind " + kindAndFlags);
                }
                readEntry(in, hi, lo, firstSeen, kind, (byte) 0, false, null);
                if (kind == LedgerSlots.EVENT) {
                    int slot = slots.find(hi, lo);
                    byte flags = 0;
                    if (version >= FORMAT_VERSION_2 && in.readBoolean()) {
                        flags |= LedgerSlots.CONTENTS_RETAINED;
                    }
                    if (version == FORMAT_VERSION_3 && in.readBoolean()) {
                        flags |= LedgerSlots.UNIQUE_RETAINED;
                    }
                    slots.setKindAndFlags(slot, (byte) (LedgerSlots.EVENT | flags));
                }
            }
        }
    }

    /**
     * One entry into its slot: formats 5 and 4 ({@code compact}: its series' number in {@code series} (5) or
     * customer, meter and group (4), then event time, value as {@link LedgerSlots#writeValue} writes it, unique;
     * varint string lengths) or formats 1-3 (customer, meter, event time, value as text, group, unique; int string
     * lengths).
     */
    private void readEntry(DataInputView in, long hi, long lo, long firstSeen, byte kind, byte flags,
            boolean compact, Map<Integer, String[]> series) throws IOException {
        int slot = slots.insert(hi, lo);
        if (kind == LedgerSlots.DEAD_LETTER) {
            slots.setDeadLetter(slot, firstSeen, readString(in, compact));
            return;
        }
        if (kind != LedgerSlots.EVENT) {
            slots.setBare(slot, firstSeen, kind);
            return;
        }
        String customer;
        String meter;
        String group;
        if (series != null) {
            int number = readVarint(in);
            String[] strings = series.get(number);
            if (strings == null) {
                throw new IOException("correction ledger entry of series " + number + ", which its key group lacks");
            }
            customer = strings[0];
            meter = strings[1];
            group = strings[2];
        } else {
            customer = readString(in, compact);
            meter = readString(in, compact);
            group = compact ? readString(in, true) : null;
        }
        long eventTime = in.readLong();
        BigDecimal value;
        if (compact) {
            value = LedgerSlots.readValue(in);
        } else {
            String text = readNullable(in, false);
            value = text == null ? null : new BigDecimal(text);
            group = readString(in, false);
        }
        String unique = readNullable(in, compact);
        slots.setEvent(slot, firstSeen, new Version(customer, meter, eventTime, value, group, unique), flags);
    }

    private static void writeNullable(DataOutputView out, String s) throws IOException {
        out.writeBoolean(s != null);
        if (s != null) {
            writeBytes(out, s.getBytes(StandardCharsets.UTF_8));
        }
    }

    private static String readNullable(DataInputView in, boolean compact) throws IOException {
        return in.readBoolean() ? readString(in, compact) : null;
    }

    /** A series' strings as format 5 writes them after its number: customer, meter, group, each {@link #writeBytes}. */
    static byte[] seriesRecord(String customerId, String meter, String groupJson) {
        DataOutputSerializer out = new DataOutputSerializer(64);
        try {
            writeBytes(out, customerId.getBytes(StandardCharsets.UTF_8));
            writeBytes(out, meter.getBytes(StandardCharsets.UTF_8));
            writeBytes(out, groupJson.getBytes(StandardCharsets.UTF_8));
        } catch (IOException impossible) {
            throw new java.io.UncheckedIOException(impossible);  // an in-memory buffer
        }
        return out.getCopyOfBuffer();
    }

    /** A varint length, then the bytes (a {@code writeUTF} string stops at 64 KiB, which a group JSON can pass). */
    private static void writeBytes(DataOutputView out, byte[] bytes) throws IOException {
        writeVarint(out, bytes.length);
        out.write(bytes);
    }

    private static void writeVarint(DataOutputView out, int n) throws IOException {
        while ((n & ~0x7f) != 0) {
            out.writeByte((n & 0x7f) | 0x80);
            n >>>= 7;
        }
        out.writeByte(n);
    }

    private static int readVarint(DataInputView in) throws IOException {
        int value = 0;
        for (int shift = 0; ; shift += 7) {
            byte b = in.readByte();
            value |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                return value;
            }
            if (shift > 28) {
                throw new IOException("correction ledger varint over 32 bits");
            }
        }
    }

    /** A string of formats 4 and 5 (varint length) or of formats 1-3 (int length). */
    private static String readString(DataInputView in, boolean compact) throws IOException {
        int length = compact ? readVarint(in) : in.readInt();
        if (length < 0) {
            throw new IOException("correction ledger string of length " + length);
        }
        byte[] bytes = new byte[length];
        in.readFully(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
