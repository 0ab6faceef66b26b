package io.meterstream.rating;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Map;
import java.util.TreeMap;

import io.meterstream.routing.Codec;
import io.meterstream.routing.WindowedUsage;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

/**
 * The window operator's memory: one {@link Series} per billed series key (a {@link MeterKey}) of this subtask, in
 * an open-addressing hash table, written to checkpoints as raw keyed state, one block per key group (so a restore
 * with another parallelism takes the key groups it owns, like managed state); or, with a {@link Backing} (RocksDB),
 * a cache of the recently touched series in front of managed state, each checkpoint storing only the series touched
 * since the last one ({@link #checkpointToBacking}).
 *
 * <p>Why not a managed ValueState: on the heap backend every record's read and write went through the TTL wrapper,
 * the copy-on-write map (a deep copy of the series after each checkpoint) and incremental TTL cleanup, a third of
 * the window operator's CPU (JFR). Here a record costs one probe and the series is mutated in place. Why not a
 * {@code HashMap<Tuple2<Long, Long>, Series>}: its lookups chased node, tuple and two boxed longs through memory,
 * a cache miss each, a tenth of the operator's CPU (JFR); here the keys sit side by side in one long array.
 *
 * <p>Expiry is Flink's TTL rule for keyed state (updated on create and write, never returned once expired):
 * processing time from the last write; expired series are dropped at the next checkpoint. Format version 4 per key
 * group: version, count, then per series key (two longs), last write time and the series' fields (after the
 * period's, the earlier periods: a count and each one's start, quantity and last key; then the start of the
 * latest fired window; per open window its fire time after its start and its unique_count tokens
 * at its end, a count (-1: none) and the tokens; then the pending records, a count and each in
 * {@link WindowedUsage.Serializer}'s form, its correction code included); strings as UTF-8 byte runs and decimals
 * in {@link Codec}'s forms; then, version 5, whether the series retains window contents and if so (version 6: the
 * series' clock and the processing time it was last ticked at) each retained window (start, version 6: the clock at
 * its latest contribution, frozen part, values or last keys with their multiplicity) and each period's frozen part.
 * Version 5 (no clock) is still read: the clock starts at the next tick, each window counts from then. Version 4
 * (no contents) is still read: a max, min or last series begins retaining on its next record, freezing what it holds
 * ({@code WindowRating}). Version 3 (pending records without a correction code) is still read, as usage.
 * Version 2 (no earlier periods) is still read, as none. Version 1 (no fired window, fire times, tokens or pending records) is still read: its series take
 * {@link Series#FIRED_UNKNOWN}, its windows fire at their end - 1 (as their timers were registered).
 */
public final class SeriesStore {
    static final int FORMAT_VERSION = 6;
    /** Before a retained window kept the processing time of its latest contribution; still read (it counts from the
     * restore on). */
    static final int FORMAT_VERSION_5 = 5;
    /** Before max, min and last series retained window contents; still read (they begin retaining, frozen). */
    static final int FORMAT_VERSION_4 = 4;
    /** Before pending records carried a correction code; still read (restores of older state). */
    static final int FORMAT_VERSION_3 = 3;
    /** Before earlier periods were kept for late usage; still read (restores of older state). */
    static final int FORMAT_VERSION_2 = 2;
    /** Before the latest fired window and unique_count token sets were kept; still read (restores of older state). */
    static final int FORMAT_VERSION_1 = 1;

    private static final int INITIAL_CAPACITY = 1024;

    // Open addressing with linear probing, at most half full: the key's two longs side by side in one array (a probe
    // reads one cache line for both), the series beside them.
    private long[] keys = new long[2 * INITIAL_CAPACITY];
    private Series[] values = new Series[INITIAL_CAPACITY];
    private int size;
    private final long ttlMs;
    private final long windowSizeMs;
    private final DataOutputSerializer scratch = new DataOutputSerializer(1 << 16);

    /** @param windowSizeMs the tumbling window size (when a window restored from format 1 fires) */
    public SeriesStore(long ttlMs, long windowSizeMs) {
        this.ttlMs = ttlMs;
        this.windowSizeMs = windowSizeMs;
    }

    /**
     * Where series live beyond the heap: with RocksDB (the cluster's backend), managed keyed state under the
     * operator's current key, which must be the series' when a method is called. Null (the heap backend): the table
     * is the store, written whole to raw keyed state at every checkpoint ({@link #writeKeyGroup}).
     */
    public interface Backing {
        /** The bytes {@link #store} last gave for the current key, or null. */
        byte[] load() throws Exception;

        void store(byte[] bytes) throws Exception;

        void remove() throws Exception;

        /** Makes ({@code hi}, {@code lo}) the current key. */
        void select(long hi, long lo) throws Exception;

        /** Calls {@code visitor} with every stored key. */
        void forEachStoredKey(Visitor visitor) throws Exception;
    }

    /** Checkpoints in a row a stored series may go untouched before it leaves the heap (it is read back when
     * needed). */
    static final int EVICT_AFTER_UNTOUCHED_CHECKPOINTS = 2;

    private Backing backing;
    private final DataOutputSerializer storeBuffer = new DataOutputSerializer(512);

    /** Keeps series in {@code backing} from now on: each checkpoint stores the ones touched since the last
     * ({@link #checkpointToBacking}). */
    public void backWith(Backing backing) {
        this.backing = backing;
    }

    /** Visits each series held (expired ones included: the caller reads them through {@link #get}). */
    public interface Visitor {
        void visit(long hi, long lo) throws Exception;
    }

    /** Calls {@code visitor} with the key of every series held (in the heap and the backing, each once), on a copy
     * of the keys (it may add series). */
    public void forEachKey(Visitor visitor) throws Exception {
        ArrayList<long[]> storedOnly = new ArrayList<>();
        if (backing != null) {
            backing.forEachStoredKey((hi, lo) -> {
                if (values[slot(hi, lo)] == null) {
                    storedOnly.add(new long[] {hi, lo});
                }
            });
        }
        long[] k = keys.clone();
        Series[] v = values.clone();
        for (int i = 0; i < v.length; i++) {
            if (v[i] != null) {
                visitor.visit(k[2 * i], k[2 * i + 1]);
            }
        }
        for (long[] key : storedOnly) {
            visitor.visit(key[0], key[1]);
        }
    }

    /**
     * The live series of key ({@code hi}, {@code lo}), or null (never kept, or expired: then forgotten). With a
     * backing, the key must be the operator's current one: a series not in the heap is read from there.
     */
    public Series get(long hi, long lo, long now) throws Exception {
        int i = slot(hi, lo);
        Series s = values[i];
        if (s == null && backing != null) {
            byte[] bytes = backing.load();
            if (bytes == null) {
                return null;
            }
            s = fromStored(bytes);
            if (expired(s, now)) {
                backing.remove();
                return null;
            }
            put(hi, lo, s);
            s.touched = true;
            return s;
        }
        if (s != null && expired(s, now)) {
            removeAt(i);
            if (backing != null) {
                backing.remove();
            }
            return null;
        }
        if (s != null) {
            s.touched = true;
        }
        return s;
    }

    /** Keeps a new series under key ({@code hi}, {@code lo}), written at processing time {@code now}. */
    public Series add(long hi, long lo, Series s, long now) {
        s.lastWriteMs = now;
        s.touched = true;
        put(hi, lo, s);
        return s;
    }

    /**
     * With a backing, at a checkpoint: stores each series touched since the last one, removes the expired ones
     * from heap and backing, and lets those untouched for {@link #EVICT_AFTER_UNTOUCHED_CHECKPOINTS} checkpoints
     * leave the heap (they are stored). What a checkpoint writes grows with the series touched, not with those
     * held; the heap holds the recently touched ones.
     */
    public void checkpointToBacking(long now) throws Exception {
        for (int i = 0; i < values.length; i++) {
            while (values[i] != null) {  // a removal may move a later entry into slot i: look at it again
                Series s = values[i];
                long hi = keys[2 * i];
                long lo = keys[2 * i + 1];
                if (expired(s, now)) {
                    backing.select(hi, lo);
                    backing.remove();
                    removeAt(i);
                } else if (s.touched) {
                    backing.select(hi, lo);
                    backing.store(stored(s));
                    s.touched = false;
                    s.untouchedCheckpoints = 0;
                    break;
                } else if (++s.untouchedCheckpoints >= EVICT_AFTER_UNTOUCHED_CHECKPOINTS) {
                    removeAt(i);
                } else {
                    break;
                }
            }
        }
    }

    /** A series as the backing keeps it: the format version, then the series as in a key group's block. */
    byte[] stored(Series s) throws IOException {
        storeBuffer.clear();
        storeBuffer.writeInt(FORMAT_VERSION);
        write(s, storeBuffer);
        return storeBuffer.getCopyOfBuffer();
    }

    Series fromStored(byte[] bytes) throws IOException {
        DataInputDeserializer in = new DataInputDeserializer(bytes);
        int version = in.readInt();
        checkVersion(version, -1);
        return read(in, version);
    }

    public boolean backed() {
        return backing != null;
    }

    /** A series {@link #stored} under key ({@code hi}, {@code lo}) back into the heap (a restore with the heap
     * backend of state written with another). */
    public void restore(long hi, long lo, byte[] bytes) throws IOException {
        put(hi, lo, fromStored(bytes));
    }

    /** Every series in the heap counts as touched: a checkpoint stores each (a restore of raw keyed state into a
     * backed store, whose series must reach the backing). */
    public void touchAll() {
        for (Series s : values) {
            if (s != null) {
                s.touched = true;
            }
        }
    }

    /** Records a write of a kept series (changed in place) at processing time {@code now}: its TTL restarts. */
    public void written(Series s, long now) {
        s.lastWriteMs = now;
    }

    public int size() {
        return size;
    }

    private boolean expired(Series s, long now) {
        return now - s.lastWriteMs >= ttlMs;
    }

    /** The key's first probe: its low long is murmur output, evenly spread. */
    private int home(long lo) {
        return (int) (lo ^ (lo >>> 32)) & (values.length - 1);
    }

    /** The slot holding the key, or the empty slot where it would go. */
    private int slot(long hi, long lo) {
        int mask = values.length - 1;
        int i = home(lo);
        while (values[i] != null && (keys[2 * i + 1] != lo || keys[2 * i] != hi)) {
            i = (i + 1) & mask;
        }
        return i;
    }

    private void put(long hi, long lo, Series s) {
        if (2 * (size + 1) > values.length) {
            grow();
        }
        int i = slot(hi, lo);
        if (values[i] == null) {
            size++;
        }
        keys[2 * i] = hi;
        keys[2 * i + 1] = lo;
        values[i] = s;
    }

    private void grow() {
        long[] oldKeys = keys;
        Series[] oldValues = values;
        keys = new long[oldKeys.length * 2];
        values = new Series[oldValues.length * 2];
        size = 0;
        for (int i = 0; i < oldValues.length; i++) {
            if (oldValues[i] != null) {
                put(oldKeys[2 * i], oldKeys[2 * i + 1], oldValues[i]);
            }
        }
    }

    /** Empties slot {@code i}, moving later entries of its probe run back so that every key stays reachable. */
    private void removeAt(int i) {
        int mask = values.length - 1;
        values[i] = null;
        size--;
        for (int j = (i + 1) & mask; values[j] != null; j = (j + 1) & mask) {
            int home = home(keys[2 * j + 1]);
            boolean stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays) {
                keys[2 * i] = keys[2 * j];
                keys[2 * i + 1] = keys[2 * j + 1];
                values[i] = values[j];
                values[j] = null;
                i = j;
            }
        }
    }

    /**
     * The slots of the live series, grouped by key group (index: key group - first of {@code range}), after
     * dropping the expired ones: one pass over the table per checkpoint. The key group is Flink's for the keyed
     * stream's key, the {@code Tuple2} of the two longs.
     */
    public int[][] slotsByKeyGroup(KeyGroupRange range, int maxParallelism, long now) {
        for (int i = 0; i < values.length; i++) {
            while (values[i] != null && expired(values[i], now)) {
                removeAt(i);  // may move a later entry into slot i: look at it again
            }
        }
        int groups = range.getNumberOfKeyGroups();
        int[] groupOfSlot = new int[values.length];
        int[] counts = new int[groups];
        for (int i = 0; i < values.length; i++) {
            if (values[i] != null) {
                int group = KeyGroupRangeAssignment.assignToKeyGroup(Tuple2.of(keys[2 * i], keys[2 * i + 1]),
                        maxParallelism) - range.getStartKeyGroup();
                groupOfSlot[i] = group;
                counts[group]++;
            }
        }
        int[][] slots = new int[groups][];
        for (int g = 0; g < groups; g++) {
            slots[g] = new int[counts[g]];
            counts[g] = 0;
        }
        for (int i = 0; i < values.length; i++) {
            if (values[i] != null) {
                slots[groupOfSlot[i]][counts[groupOfSlot[i]]++] = i;
            }
        }
        return slots;
    }

    /** One key group's block (its slots from {@link #slotsByKeyGroup}), built in a scratch buffer and written in
     * one call (the checkpoint stream takes each byte of a writeLong as a separate call through several layers). */
    public void writeKeyGroup(int[] slots, DataOutputView target) throws IOException {
        scratch.clear();
        scratch.writeInt(FORMAT_VERSION);
        scratch.writeInt(slots.length);
        for (int i : slots) {
            scratch.writeLong(keys[2 * i]);
            scratch.writeLong(keys[2 * i + 1]);
            write(values[i], scratch);
        }
        target.write(scratch.getSharedBuffer(), 0, scratch.length());
    }

    /** Restores one key group's block. */
    public void readKeyGroup(DataInputView in, int keyGroup) throws IOException {
        int version = in.readInt();
        checkVersion(version, keyGroup);
        for (int remaining = in.readInt(); remaining > 0; remaining--) {
            long hi = in.readLong();
            long lo = in.readLong();
            put(hi, lo, read(in, version));
        }
    }

    private static void checkVersion(int version, int keyGroup) throws IOException {
        if (version != FORMAT_VERSION && version != FORMAT_VERSION_5 && version != FORMAT_VERSION_4
                && version != FORMAT_VERSION_3
                && version != FORMAT_VERSION_2 && version != FORMAT_VERSION_1) {
            throw new IOException("series state " + (keyGroup < 0 ? "" : "of key group " + keyGroup + " ")
                    + "has format " + version + ", this version reads " + FORMAT_VERSION_1 + " to " + FORMAT_VERSION);
        }
    }

    static void write(Series s, DataOutputView out) throws IOException {
        out.writeLong(s.lastWriteMs);
        if (s.identityBytes == null) {
            s.identityBytes = identityBytes(s);
        }
        out.write(s.identityBytes);
        out.writeLong(s.periodStartMs);
        Codec.writeDecimal(out, s.periodQuantity);
        writeString(out, s.periodLastKey);
        out.writeInt(s.priors);
        for (int i = 0; i < s.priors; i++) {
            out.writeLong(s.priorStarts[i]);
            Codec.writeDecimal(out, s.priorQuantities[i]);
            writeString(out, s.priorLastKeys[i]);
        }
        out.writeLong(s.lastFiredStartMs);
        out.writeInt(s.windows);
        for (int i = 0; i < s.windows; i++) {
            out.writeLong(s.windowStarts[i]);
            out.writeLong(s.fireAts[i]);
            out.writeLong(s.eventCounts[i]);
            Codec.writeDecimal(out, s.quantities[i]);
            writeString(out, s.lastKeys[i]);
            HashSet<String> tokens = s.uniqueTokens == null ? null : s.uniqueTokens[i];
            out.writeInt(tokens == null ? -1 : tokens.size());
            if (tokens != null) {
                for (String token : tokens) {
                    writeString(out, token);
                }
            }
        }
        out.writeInt(s.pending == null ? 0 : s.pending.size());
        if (s.pending != null) {
            for (WindowedUsage record : s.pending) {
                RECORDS.serialize(record, out);
            }
        }
        out.writeBoolean(s.contents != null);
        if (s.contents != null) {
            out.writeLong(s.clockMs);
            out.writeLong(s.wallMs);
            out.writeInt(s.contents.size());
            for (Map.Entry<Long, WindowContents> e : s.contents.entrySet()) {
                out.writeLong(e.getKey());
                WindowContents c = e.getValue();
                out.writeLong(c.seenMs);
                Codec.writeDecimal(out, c.frozenQuantity);
                writeString(out, c.frozenKey);
                out.writeInt(c.values.size());
                for (Map.Entry<BigDecimal, Integer> v : c.values.entrySet()) {
                    Codec.writeDecimal(out, v.getKey());
                    out.writeInt(v.getValue());
                }
                out.writeInt(c.keys.size());
                for (Map.Entry<String, Integer> k : c.keys.entrySet()) {
                    writeString(out, k.getKey());
                    out.writeInt(k.getValue());
                }
            }
            out.writeInt(s.frozenPeriodQuantities.size());
            for (Map.Entry<Long, BigDecimal> e : s.frozenPeriodQuantities.entrySet()) {
                out.writeLong(e.getKey());
                Codec.writeDecimal(out, e.getValue());
            }
            out.writeInt(s.frozenPeriodKeys.size());
            for (Map.Entry<Long, String> e : s.frozenPeriodKeys.entrySet()) {
                out.writeLong(e.getKey());
                writeString(out, e.getValue());
            }
        }
    }

    /** A series' identity as written (its strings never change): encoded once, not at every checkpoint (the
     * strings' UTF-8 encoding was a third of writing the series, JFR). */
    private static byte[] identityBytes(Series s) throws IOException {
        DataOutputSerializer identity = new DataOutputSerializer(64);
        writeString(identity, s.tenantId);
        writeString(identity, s.customerId);
        writeString(identity, s.meter);
        writeString(identity, s.groupJson);
        writeString(identity, WindowedUsage.name(s.aggregation));
        return identity.getCopyOfBuffer();
    }

    private static final WindowedUsage.Serializer RECORDS = new WindowedUsage.Serializer();

    private Series read(DataInputView in, int version) throws IOException {
        Series s = new Series();
        s.lastWriteMs = in.readLong();
        s.tenantId = readString(in);
        s.customerId = readString(in);
        s.meter = readString(in);
        s.groupJson = readString(in);
        s.aggregation = WindowedUsage.code(readString(in));
        s.periodStartMs = in.readLong();
        s.periodQuantity = Codec.readDecimal(in);
        s.periodLastKey = readString(in);
        int priors = version >= FORMAT_VERSION_3 ? in.readInt() : 0;
        for (int i = 0; i < priors; i++) {
            long start = in.readLong();
            BigDecimal quantity = Codec.readDecimal(in);
            s.putPrior(start, quantity, readString(in));
        }
        s.lastFiredStartMs = version == FORMAT_VERSION_1 ? Series.FIRED_UNKNOWN : in.readLong();
        int windows = in.readInt();
        for (int i = 0; i < windows; i++) {
            long start = in.readLong();
            long fireAt = version == FORMAT_VERSION_1 ? start + windowSizeMs - 1 : in.readLong();
            int w = s.openWindow(start, fireAt);
            s.eventCounts[w] = in.readLong();
            s.quantities[w] = Codec.readDecimal(in);
            s.lastKeys[w] = readString(in);
            int tokens = version == FORMAT_VERSION_1 ? -1 : in.readInt();
            for (int t = 0; t < tokens; t++) {
                s.uniqueTokens[w].add(readString(in));
            }
        }
        int pending = version == FORMAT_VERSION_1 ? 0 : in.readInt();
        for (int p = 0; p < pending; p++) {
            if (s.pending == null) {
                s.pending = new ArrayList<>();
            }
            s.pending.add(version >= FORMAT_VERSION_4 ? RECORDS.deserialize(in)
                    : RECORDS.deserializeWithoutCorrection(in));
        }
        if (version >= FORMAT_VERSION_5 && in.readBoolean()) {
            s.contents = new TreeMap<>();
            if (version >= FORMAT_VERSION) {
                s.clockMs = in.readLong();
                s.wallMs = in.readLong();
            }
            for (int n = in.readInt(); n > 0; n--) {
                long start = in.readLong();
                WindowContents c = new WindowContents();
                if (version >= FORMAT_VERSION) {
                    c.seenMs = in.readLong();
                }
                c.frozenQuantity = Codec.readDecimal(in);
                c.frozenKey = readString(in);
                for (int v = in.readInt(); v > 0; v--) {
                    c.values.put(Codec.readDecimal(in), in.readInt());
                }
                for (int k = in.readInt(); k > 0; k--) {
                    c.keys.put(readString(in), in.readInt());
                }
                s.contents.put(start, c);
            }
            s.frozenPeriodQuantities = new TreeMap<>();
            for (int n = in.readInt(); n > 0; n--) {
                s.frozenPeriodQuantities.put(in.readLong(), Codec.readDecimal(in));
            }
            s.frozenPeriodKeys = new TreeMap<>();
            for (int n = in.readInt(); n > 0; n--) {
                s.frozenPeriodKeys.put(in.readLong(), readString(in));
            }
        }
        return s;
    }

    private static void writeString(DataOutputView out, String value) throws IOException {
        Codec.writeBytes(out, value == null ? null : value.getBytes(StandardCharsets.UTF_8));
    }

    private static String readString(DataInputView in) throws IOException {
        byte[] bytes = Codec.readBytes(in);
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }
}
