package io.meterstream.rating;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import io.meterstream.routing.Codec;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

/**
 * The window operator's memory: one {@link Series} per billed series key (a {@link MeterKey}) of this subtask, in a
 * plain hash map, written to checkpoints as raw keyed state, one block per key group (so a restore with another
 * parallelism takes the key groups it owns, like managed state).
 *
 * <p>Why not a managed ValueState: on the heap backend every record's read and write went through the TTL wrapper,
 * the copy-on-write map (a deep copy of the series after each checkpoint) and incremental TTL cleanup, a third of
 * the window operator's CPU (JFR). Here a record costs one map lookup and the series is mutated in place.
 *
 * <p>Expiry is Flink's TTL rule for our keyed state ({@code StateTtl.afterLastWrite}): processing time from the last
 * write, never returned once expired; expired series are dropped at the next checkpoint. Format version 1 per key
 * group: version, count, then per series key (two longs), last write time and the series' fields; strings as UTF-8
 * byte runs and decimals in {@link Codec}'s forms.
 */
public final class SeriesStore {
    static final int FORMAT_VERSION = 1;

    private final HashMap<Tuple2<Long, Long>, Series> byKey = new HashMap<>();
    private final long ttlMs;
    private final DataOutputSerializer scratch = new DataOutputSerializer(1 << 16);

    public SeriesStore(long ttlMs) {
        this.ttlMs = ttlMs;
    }

    /** The live series of {@code key}, or null (never kept, or expired: then forgotten). */
    public Series get(Tuple2<Long, Long> key, long now) {
        Series s = byKey.get(key);
        if (s != null && expired(s, now)) {
            byKey.remove(key);
            return null;
        }
        return s;
    }

    /** Records a write of {@code s} (new or changed in place) at processing time {@code now}. */
    public void written(Tuple2<Long, Long> key, Series s, long now) {
        s.lastWriteMs = now;
        if (s.stored) {
            return;
        }
        s.stored = true;
        byKey.put(key, s);
    }

    public int size() {
        return byKey.size();
    }

    private boolean expired(Series s, long now) {
        return now - s.lastWriteMs >= ttlMs;
    }

    /**
     * The live series grouped by key group (index: key group - first of {@code range}); drops expired ones.
     * One pass over the map per checkpoint.
     */
    public List<List<Map.Entry<Tuple2<Long, Long>, Series>>> byKeyGroup(
            KeyGroupRange range, int maxParallelism, long now) {
        List<List<Map.Entry<Tuple2<Long, Long>, Series>>> groups = new ArrayList<>(range.getNumberOfKeyGroups());
        for (int i = 0; i < range.getNumberOfKeyGroups(); i++) {
            groups.add(new ArrayList<>());
        }
        for (Iterator<Map.Entry<Tuple2<Long, Long>, Series>> it = byKey.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Tuple2<Long, Long>, Series> entry = it.next();
            if (expired(entry.getValue(), now)) {
                it.remove();
                continue;
            }
            int keyGroup = KeyGroupRangeAssignment.assignToKeyGroup(entry.getKey(), maxParallelism);
            groups.get(keyGroup - range.getStartKeyGroup()).add(entry);
        }
        return groups;
    }

    /** One key group's block, built in a scratch buffer and written in one call (the checkpoint stream takes each
     * byte of a writeLong as a separate call through several layers). */
    public void writeKeyGroup(List<Map.Entry<Tuple2<Long, Long>, Series>> entries, DataOutputView target)
            throws IOException {
        scratch.clear();
        scratch.writeInt(FORMAT_VERSION);
        scratch.writeInt(entries.size());
        for (Map.Entry<Tuple2<Long, Long>, Series> entry : entries) {
            scratch.writeLong(entry.getKey().f0);
            scratch.writeLong(entry.getKey().f1);
            write(entry.getValue(), scratch);
        }
        target.write(scratch.getSharedBuffer(), 0, scratch.length());
    }

    /** Restores one key group's block. */
    public void readKeyGroup(DataInputView in, int keyGroup) throws IOException {
        int version = in.readInt();
        if (version != FORMAT_VERSION) {
            throw new IOException("series state of key group " + keyGroup + " has format " + version
                    + ", this version reads " + FORMAT_VERSION);
        }
        for (int remaining = in.readInt(); remaining > 0; remaining--) {
            Tuple2<Long, Long> key = Tuple2.of(in.readLong(), in.readLong());
            Series s = read(in);
            s.stored = true;
            byKey.put(key, s);
        }
    }

    static void write(Series s, DataOutputView out) throws IOException {
        out.writeLong(s.lastWriteMs);
        writeString(out, s.tenantId);
        writeString(out, s.customerId);
        writeString(out, s.meter);
        writeString(out, s.groupJson);
        writeString(out, s.aggregation);
        out.writeLong(s.periodStartMs);
        Codec.writeDecimal(out, s.periodQuantity);
        writeString(out, s.periodLastKey);
        out.writeInt(s.windows);
        for (int i = 0; i < s.windows; i++) {
            out.writeLong(s.windowStarts[i]);
            out.writeLong(s.eventCounts[i]);
            Codec.writeDecimal(out, s.quantities[i]);
            writeString(out, s.lastKeys[i]);
        }
    }

    static Series read(DataInputView in) throws IOException {
        Series s = new Series();
        s.lastWriteMs = in.readLong();
        s.tenantId = readString(in);
        s.customerId = readString(in);
        s.meter = readString(in);
        s.groupJson = readString(in);
        s.aggregation = readString(in);
        s.periodStartMs = in.readLong();
        s.periodQuantity = Codec.readDecimal(in);
        s.periodLastKey = readString(in);
        int windows = in.readInt();
        for (int i = 0; i < windows; i++) {
            int w = s.openWindow(in.readLong());
            s.eventCounts[w] = in.readLong();
            s.quantities[w] = Codec.readDecimal(in);
            s.lastKeys[w] = readString(in);
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
