package io.meterstream.corrections;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongToIntFunction;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.rules.Rules;
import io.meterstream.validation.CanonicalJson;
import io.meterstream.validation.UniqueToken;
import io.meterstream.windows.TumblingWindows;

import org.apache.flink.core.memory.DataInputView;
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
 * <p>Layout: one object per key here (strings of the billed version: customer, meter, group JSON, the unique
 * dimension's value, as Java objects in a HashMap); the docstring's 80-byte slot layout (hashes instead of strings,
 * raw bytes in tables per key bucket, as {@code DedupTable}) is not done yet, so a key costs more than 80 bytes here
 * (measured: 406 heap bytes and 119 checkpoint bytes per event, {@code benchmarks/CorrectionLedgerMemoryBench.java};
 * at 5M events the routing checkpoint grows 144 -> 632 MB), for the correction horizon; then one small entry until
 * the dedup horizon.
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
     * 3: an entry also says whether its unique_count window's contents are retained ({@link Entry#uniqueRetained});
     * 2: whether its max, min or last window's are ({@link Entry#contentsRetained}). Both older formats are read.
     */
    private static final int FORMAT_VERSION = 3;
    private static final int FORMAT_VERSION_2 = 2;
    private static final int FORMAT_VERSION_1 = 1;

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

    /** A key's state. {@code deadLetterReason != null}: a dead-letter marker; else an event entry. */
    static final class Entry {
        long firstSeenMs;
        String deadLetterReason;
        boolean pastHorizon;  // only firstSeenMs is meaningful
        Version current;  // null once cancelled (or past the horizon)
        /**
         * Observed by a release whose window operator retains max, min and last windows' contents (format 2 on).
         * False for an entry restored from format 1: its event is in a window's frozen part, so a correction of a
         * max, min or last event is rejected ({@code aggregation_not_correctable}); sum and count need no contents.
         */
        boolean contentsRetained = true;
        /**
         * Observed by a release whose unique_count accumulator retains its windows' contents (format 3 on). False for
         * an entry restored from an older format: a correction of a unique_count event is rejected.
         */
        boolean uniqueRetained = true;
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
    private final Map<Key, Entry> entries = new HashMap<>();
    private Map<Integer, List<Map.Entry<Key, Entry>>> byKeyGroup;  // the last prepareSnapshot's

    public CorrectionLedger(long windowSizeMs, long horizonMs, long dedupTtlMs) {
        if (!(0 < horizonMs && horizonMs <= dedupTtlMs)) {
            throw new IllegalArgumentException("the correction horizon must be in (0, dedup horizon = " + dedupTtlMs
                    + " ms], got " + horizonMs);
        }
        this.windowSizeMs = windowSizeMs;
        this.horizonMs = horizonMs;
        this.dedupTtlMs = dedupTtlMs;
    }

    static boolean expired(long firstSeenMs, long nowMs, long ttlMs) {
        return firstSeenMs + ttlMs <= nowMs;
    }

    /** {@code udfs.corrections.expire_entry}, in place; returns the entry, or null (and forgets it). */
    private Entry expire(Key key, long nowMs) {
        Entry entry = entries.get(key);
        if (entry != null && !aged(entry, nowMs)) {
            entries.remove(key);
            return null;
        }
        return entry;
    }

    /** Ages the entry to {@code nowMs} in place; false when the key is then forgotten. */
    private boolean aged(Entry entry, long nowMs) {
        if (expired(entry.firstSeenMs, nowMs, dedupTtlMs)
                || (entry.deadLetterReason != null && expired(entry.firstSeenMs, nowMs, horizonMs))) {
            return false;
        }
        if (!entry.pastHorizon && expired(entry.firstSeenMs, nowMs, horizonMs)) {
            entry.pastHorizon = true;
            entry.current = null;
        }
        return true;
    }

    public void observeEvent(long keyHi, long keyLo, long nowMs, Version version) {
        Entry entry = new Entry();
        entry.firstSeenMs = nowMs;
        entry.current = version;
        entries.put(new Key(keyHi, keyLo), entry);
    }

    public void observeDeadLetter(long keyHi, long keyLo, long nowMs, String reason) {
        Key key = new Key(keyHi, keyLo);
        if (expire(key, nowMs) == null) {
            Entry entry = new Entry();
            entry.firstSeenMs = nowMs;
            entry.deadLetterReason = reason;
            entries.put(key, entry);
        }
    }

    /**
     * One correction against its event's state at {@code nowMs}. {@code meters}: the tenant's catalog meters (null:
     * none).
     */
    public Decision decide(long keyHi, long keyLo, long nowMs, Correction correction,
            Map<String, JavaCatalog.Meter> meters) {
        Key key = new Key(keyHi, keyLo);
        Entry entry = expire(key, nowMs);
        String event = "'" + correction.eventId + "'";
        if (entry != null && entry.deadLetterReason != null) {
            return new Decision(EVENT_DEAD_LETTERED, "event " + event + " was rejected (" + entry.deadLetterReason
                    + "): nothing was billed, so nothing can be corrected", entry.deadLetterReason, null, null);
        }
        if (entry == null) {
            return rejected(UNKNOWN_EVENT, "event " + event
                    + " is not known (not arrived yet, never sent, or past the dedup horizon)");
        }
        if (entry.pastHorizon) {
            return rejected(OUTSIDE_HORIZON, "event " + event + " was first seen " + (nowMs - entry.firstSeenMs)
                    + " ms ago, beyond the correction horizon of " + horizonMs + " ms");
        }
        if (entry.current == null) {
            return rejected(ALREADY_CANCELLED, "event " + event + " is cancelled");
        }
        JavaCatalog.Meter meter = meters == null ? null : meters.get(entry.current.meter);
        if (meter == null) {
            return rejected(UNKNOWN_METER, "meter '" + entry.current.meter + "' of event " + event
                    + " is no longer in the tenant's catalog");
        }
        if (!Rules.correctionBilled(meter.aggregation)) {
            return rejected(AGGREGATION_NOT_CORRECTABLE, "event " + event + " is usage of meter '"
                    + entry.current.meter + "' (" + meter.aggregation + "): " + Rules.CORRECTION_NOT_BILLED_DETAIL);
        }
        if (!entry.contentsRetained && !Rules.AGGREGATION_SUM.equals(meter.aggregation)
                && !Rules.AGGREGATION_COUNT.equals(meter.aggregation)) {
            return notRetained(event, entry, meter);
        }
        if (!entry.uniqueRetained && Rules.AGGREGATION_UNIQUE_COUNT.equals(meter.aggregation)) {
            return notRetained(event, entry, meter);
        }
        Contribution before = contribution(correction, entry.current, meter);
        Version after = CANCEL.equals(correction.action) ? null : amended(entry.current, correction, meter);
        Contribution added = after == null ? null : contribution(correction, after, meter);
        entry.current = after;
        if (before.sameAs(added)) {
            return new Decision(null, null, null, null, null);
        }
        return new Decision(null, null, null, before, added);
    }

    private static Decision notRetained(String event, Entry entry, JavaCatalog.Meter meter) {
        return rejected(AGGREGATION_NOT_CORRECTABLE, "event " + event + " is usage of meter '" + entry.current.meter
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
        return entries.size();
    }

    /** Forgets every key whose horizons have passed at {@code nowMs} (before a snapshot). */
    public void expireAll(long nowMs) {
        for (Iterator<Entry> it = entries.values().iterator(); it.hasNext(); ) {
            if (!aged(it.next(), nowMs)) {
                it.remove();
            }
        }
    }

    // ---- snapshot -------------------------------------------------------------------------------------------

    /**
     * Before a snapshot: forgets what has expired at {@code nowMs} and sorts the rest by key group
     * ({@code keyGroupOfHi}: the key group of a key's hi part), for {@link #write}.
     */
    public void prepareSnapshot(long nowMs, LongToIntFunction keyGroupOfHi) {
        expireAll(nowMs);
        byKeyGroup = new HashMap<>();
        for (Map.Entry<Key, Entry> e : entries.entrySet()) {
            byKeyGroup.computeIfAbsent(keyGroupOfHi.applyAsInt(e.getKey().hi), k -> new ArrayList<>()).add(e);
        }
    }

    /** One key group's keys as bytes (after {@link #prepareSnapshot}). */
    public void write(DataOutputView out, int keyGroup) throws IOException {
        List<Map.Entry<Key, Entry>> chosen = byKeyGroup == null ? List.of()
                : byKeyGroup.getOrDefault(keyGroup, List.of());
        out.writeInt(FORMAT_VERSION);
        out.writeInt(chosen.size());
        for (Map.Entry<Key, Entry> e : chosen) {
            Entry entry = e.getValue();
            out.writeLong(e.getKey().hi);
            out.writeLong(e.getKey().lo);
            out.writeLong(entry.firstSeenMs);
            byte kind = entry.deadLetterReason != null ? (byte) 1 : entry.pastHorizon ? (byte) 2
                    : entry.current == null ? (byte) 3 : (byte) 0;
            out.writeByte(kind);
            if (kind == 1) {
                writeString(out, entry.deadLetterReason);
            } else if (kind == 0) {
                Version v = entry.current;
                writeString(out, v.customerId);
                writeString(out, v.meter);
                out.writeLong(v.eventTimeMs);
                writeNullable(out, v.value == null ? null : v.value.toPlainString());
                writeString(out, v.groupJson);
                writeNullable(out, v.uniqueValue);
                out.writeBoolean(entry.contentsRetained);
                out.writeBoolean(entry.uniqueRetained);
            }
        }
    }

    public void read(DataInputView in) throws IOException {
        int version = in.readInt();
        if (version != FORMAT_VERSION && version != FORMAT_VERSION_2 && version != FORMAT_VERSION_1) {
            throw new IOException("correction ledger state has format " + version + ", this version reads "
                    + FORMAT_VERSION_1 + " to " + FORMAT_VERSION);
        }
        for (int remaining = in.readInt(); remaining > 0; remaining--) {
            Key key = new Key(in.readLong(), in.readLong());
            Entry entry = new Entry();
            entry.firstSeenMs = in.readLong();
            byte kind = in.readByte();
            if (kind == 1) {
                entry.deadLetterReason = readString(in);
            } else if (kind == 2) {
                entry.pastHorizon = true;
            } else if (kind == 0) {
                String customer = readString(in);
                String meter = readString(in);
                long eventTime = in.readLong();
                String value = readNullable(in);
                String group = readString(in);
                String unique = readNullable(in);
                entry.current = new Version(customer, meter, eventTime, value == null ? null : new BigDecimal(value),
                        group, unique);
                entry.contentsRetained = version != FORMAT_VERSION_1 && in.readBoolean();
                entry.uniqueRetained = version == FORMAT_VERSION && in.readBoolean();
            } else if (kind != 3) {
                throw new IOException("correction ledger entry of kind " + kind);
            }
            entries.put(key, entry);
        }
    }

    private static void writeNullable(DataOutputView out, String s) throws IOException {
        out.writeBoolean(s != null);
        if (s != null) {
            writeString(out, s);
        }
    }

    private static String readNullable(DataInputView in) throws IOException {
        return in.readBoolean() ? readString(in) : null;
    }

    /** Length-prefixed UTF-8 (a {@code writeUTF} string stops at 64 KiB, which an escaped group JSON can pass). */
    private static void writeString(DataOutputView out, String s) throws IOException {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    private static String readString(DataInputView in) throws IOException {
        int length = in.readInt();
        if (length < 0) {
            throw new IOException("correction ledger string of length " + length);
        }
        byte[] bytes = new byte[length];
        in.readFully(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static final class Key {
        final long hi;
        final long lo;

        Key(long hi, long lo) {
            this.hi = hi;
            this.lo = lo;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Key && ((Key) o).hi == hi && ((Key) o).lo == lo;
        }

        @Override
        public int hashCode() {
            return Long.hashCode(hi * 31 + lo);
        }
    }
}
