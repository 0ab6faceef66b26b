package io.meterstream.corrections;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The correction ledger's entries as one open-addressing hash table (linear probing, backward-shift deletion) of
 * parallel primitive arrays, keyed by the 128-bit (tenant_id, event_id) hash: what {@link CorrectionLedger} keeps
 * per event without an object per entry (the measured cost of a HashMap of entry objects with their own strings was
 * 406 heap bytes per event).
 *
 * <p>Per slot: the key (two longs), first-seen time, kind and flags, event time, the billed value as a long
 * unscaled without the fraction's trailing zeros with that scale and the scale it was billed with (a value that does
 * not fit, or billed at a scale outside 0-18, goes to {@code extras} as a {@code BigDecimal}), an index into the series dictionary, and one reference ({@code extras}:
 * the unique value, a big value, both, or a dead letter's reason). The series (customer, meter, group JSON) of an
 * event are interned in a dictionary shared by every entry of the series: a handful of references per series,
 * not strings per event. The dictionary is compacted when a snapshot finds it doubled since the last compaction
 * and mostly neither referenced by an entry nor met by an event since.
 */
final class LedgerSlots {
    static final byte EMPTY = 0;
    static final byte EVENT = 1;
    static final byte DEAD_LETTER = 2;
    static final byte PAST_HORIZON = 3;
    static final byte CANCELLED = 4;
    /** Flags in the kind byte: the event's window contents are retained (max/min/last; unique_count). */
    static final byte CONTENTS_RETAINED = 0x10;
    static final byte UNIQUE_RETAINED = 0x20;
    private static final byte KIND_MASK = 0x0f;
    /** {@code scales} markers: no value; a value in {@code extras}. */
    private static final byte NO_VALUE = Byte.MIN_VALUE;
    private static final byte BIG_VALUE = Byte.MIN_VALUE + 1;
    private static final int MIN_CAPACITY = 16;

    /** One series' strings (interned), with their UTF-8 bytes for snapshots. */
    static final class SeriesStrings {
        final String customerId;
        final String meter;
        final String groupJson;
        private final int hash;
        /**
         * The three strings as a snapshot writes them ({@link CorrectionLedger#seriesRecord}), made once the series
         * is in the dictionary (a lookup key makes none): a snapshot writes a series once per key group its events
         * are in, as one copy.
         */
        byte[] record;

        SeriesStrings(String customerId, String meter, String groupJson) {
            this.customerId = customerId;
            this.meter = meter;
            this.groupJson = groupJson;
            // Mixed: the plain 31-polynomial combination of the three strings' hashes lets different series
            // collide by construction (a customer's hash step against a meter's).
            long h = ((long) customerId.hashCode() * 0x9E3779B97F4A7C15L + meter.hashCode()) * 0xC2B2AE3D27D4EB4FL
                    + groupJson.hashCode();
            h ^= h >>> 33;
            h *= 0xFF51AFD7ED558CCDL;
            this.hash = (int) (h ^ (h >>> 32));
        }

        SeriesStrings encoded() {
            record = CorrectionLedger.seriesRecord(customerId, meter, groupJson);
            return this;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof SeriesStrings && ((SeriesStrings) o).customerId.equals(customerId)
                    && ((SeriesStrings) o).meter.equals(meter) && ((SeriesStrings) o).groupJson.equals(groupJson);
        }

        @Override
        public int hashCode() {
            return hash;
        }
    }

    /** An open-addressing map of 128-bit hashes to non-negative ints (linear probing, at most half full). */
    static final class HashIndex {
        private long[] keys = new long[2 * 64];  // hi, lo per slot
        private int[] values = new int[64];  // index + 1; 0: empty
        private int size;

        int get(long hi, long lo) {
            int mask = values.length - 1;
            for (int at = slotOf(hi, lo, mask); values[at] != 0; at = (at + 1) & mask) {
                if (keys[2 * at] == hi && keys[2 * at + 1] == lo) {
                    return values[at] - 1;
                }
            }
            return -1;
        }

        void put(long hi, long lo, int value) {
            if (2 * (size + 1) > values.length) {
                long[] oldKeys = keys;
                int[] oldValues = values;
                keys = new long[oldKeys.length * 2];
                values = new int[oldValues.length * 2];
                size = 0;
                for (int i = 0; i < oldValues.length; i++) {
                    if (oldValues[i] != 0) {
                        put(oldKeys[2 * i], oldKeys[2 * i + 1], oldValues[i] - 1);
                    }
                }
            }
            int mask = values.length - 1;
            int at = slotOf(hi, lo, mask);
            while (values[at] != 0 && !(keys[2 * at] == hi && keys[2 * at + 1] == lo)) {
                at = (at + 1) & mask;
            }
            if (values[at] == 0) {
                size++;
            }
            keys[2 * at] = hi;
            keys[2 * at + 1] = lo;
            values[at] = value + 1;
        }

        void clear() {
            keys = new long[2 * 64];
            values = new int[64];
            size = 0;
        }

        /** Keeps the hashes whose value {@code remap} maps to 0 or more, with that value; forgets the others. */
        void retain(int[] remap) {
            long[] oldKeys = keys;
            int[] oldValues = values;
            clear();
            for (int i = 0; i < oldValues.length; i++) {
                if (oldValues[i] != 0 && remap[oldValues[i] - 1] >= 0) {
                    put(oldKeys[2 * i], oldKeys[2 * i + 1], remap[oldValues[i] - 1]);
                }
            }
        }

        private static int slotOf(long hi, long lo, int mask) {
            // Mixed although a murmur3 hash already is one: a map must not depend on how its keys were made.
            long h = hi * 0x9E3779B97F4A7C15L + lo;
            h ^= h >>> 33;
            h *= 0xFF51AFD7ED558CCDL;
            h ^= h >>> 33;
            return (int) h & mask;
        }
    }

    /** A big value together with a unique value (both would not fit in the one reference otherwise). */
    private static final class ValueAndUnique {
        final BigDecimal value;
        final String unique;

        ValueAndUnique(BigDecimal value, String unique) {
            this.value = value;
            this.unique = unique;
        }
    }

    /**
     * The slots, {@link #STRIDE} longs each (an entry's fields side by side: one or two cache lines per lookup, where
     * an array per field cost a cache miss per field): key hi, key lo, first seen, event time, unscaled value, and
     * packed: kind and flags (bits 0-7), the value's scale (8-15) and billed scale (16-23), whether {@code extras}
     * holds something (bit 24), the series index (32-63). An empty slot's packed long is 0 (every kind is non-zero).
     */
    private static final int STRIDE = 6;
    private static final int HI = 0;
    private static final int LO = 1;
    private static final int FIRST_SEEN = 2;
    private static final int EVENT_TIME = 3;
    private static final int UNSCALED = 4;
    private static final int PACKED = 5;
    private static final long HAS_EXTRA = 1L << 24;
    private long[] data;
    private Object[] extras;  // meaningful only where HAS_EXTRA is set
    private int size;
    private int mask;
    private final List<SeriesStrings> dictionary = new ArrayList<>();
    private final Map<SeriesStrings, Integer> dictionaryIndex = new HashMap<>();
    /**
     * Series hash -> dictionary index, a cache in front of {@link #dictionaryIndex} (not in state; empty after a
     * restore, filled as series are met again). It holds every hash met since the dictionary was last compacted;
     * a compaction keeps the hashes of the series it keeps.
     */
    private final HashIndex byHash = new HashIndex();
    /** The series the last compaction kept: the next one waits until the dictionary has doubled from there. */
    private int keptByLastCompaction;
    /**
     * The dictionary indices an event met ({@link #seriesIndex(long, long, SeriesNames)}) since the last compaction
     * looked, a bit each: a compaction keeps them with their hashes. Why: with the entries sealed away, most series
     * are referenced by no slot at a snapshot although their events keep coming; dropping them made each one's next
     * event decode and intern its strings again (a tenth of the routing thread's samples at 5M events, JFR).
     */
    private long[] metSinceCompaction = new long[1];

    LedgerSlots() {
        allocate(MIN_CAPACITY);
    }

    private void allocate(int capacity) {
        data = new long[capacity * STRIDE];
        extras = new Object[capacity];
        mask = capacity - 1;
        size = 0;
    }

    int size() {
        return size;
    }

    int capacity() {
        return extras.length;
    }

    long hi(int slot) {
        return data[slot * STRIDE + HI];
    }

    long lo(int slot) {
        return data[slot * STRIDE + LO];
    }

    long firstSeen(int slot) {
        return data[slot * STRIDE + FIRST_SEEN];
    }

    long eventTime(int slot) {
        return data[slot * STRIDE + EVENT_TIME];
    }

    /** The kind and its flags (0: an empty slot). */
    byte kindAndFlags(int slot) {
        return (byte) data[slot * STRIDE + PACKED];
    }

    boolean isEmpty(int slot) {
        return data[slot * STRIDE + PACKED] == 0;
    }

    private long packed(int slot) {
        return data[slot * STRIDE + PACKED];
    }

    private byte scale(int slot) {
        return (byte) (packed(slot) >>> 8);
    }

    private byte billedScale(int slot) {
        return (byte) (packed(slot) >>> 16);
    }

    private int seriesIndex(int slot) {
        return (int) (packed(slot) >>> 32);
    }

    private void setPacked(int slot, byte kindAndFlags, byte scale, byte billedScale, boolean extra, int series) {
        data[slot * STRIDE + PACKED] = (kindAndFlags & 0xffL) | (scale & 0xffL) << 8 | (billedScale & 0xffL) << 16
                | (extra ? HAS_EXTRA : 0) | ((long) series) << 32;
    }

    /** Sets only the kind and flags (the value, series and extra stay). */
    void setKindAndFlags(int slot, byte kindAndFlags) {
        int at = slot * STRIDE + PACKED;
        data[at] = (data[at] & ~0xffL) | (kindAndFlags & 0xffL);
    }

    private void setExtra(int slot, Object extra) {
        int at = slot * STRIDE + PACKED;
        if (extra == null) {
            if ((data[at] & HAS_EXTRA) != 0) {
                extras[slot] = null;
                data[at] &= ~HAS_EXTRA;
            }
        } else {
            extras[slot] = extra;
            data[at] |= HAS_EXTRA;
        }
    }

    private Object extra(int slot) {
        return (packed(slot) & HAS_EXTRA) != 0 ? extras[slot] : null;
    }

    private int home(long hi, long lo) {
        long h = lo * 0x9E3779B97F4A7C15L ^ hi;
        return (int) (h ^ (h >>> 32)) & mask;
    }

    /** The slot holding the key, or -1. */
    int find(long hi, long lo) {
        for (int i = home(hi, lo); ; i = (i + 1) & mask) {
            int at = i * STRIDE;
            if (data[at + PACKED] == 0) {
                return -1;
            }
            if (data[at + HI] == hi && data[at + LO] == lo) {
                return i;
            }
        }
    }

    /** The slot of the key: its own, or a new one (still empty: the caller sets its kind). */
    int insert(long hi, long lo) {
        if ((size + 1) * 4L > capacity() * 3L) {
            rebuild(capacity() * 2);
        }
        int i = home(hi, lo);
        for (; data[i * STRIDE + PACKED] != 0; i = (i + 1) & mask) {
            if (data[i * STRIDE + HI] == hi && data[i * STRIDE + LO] == lo) {
                return i;
            }
        }
        data[i * STRIDE + HI] = hi;
        data[i * STRIDE + LO] = lo;
        size++;
        return i;
    }

    /** Re-inserts every live slot into a table of {@code capacity} slots. */
    private void rebuild(int capacity) {
        long[] old = data;
        Object[] oldExtras = extras;
        allocate(capacity);
        for (int j = 0; j < oldExtras.length; j++) {
            int from = j * STRIDE;
            if (old[from + PACKED] == 0) {
                continue;
            }
            int i = home(old[from + HI], old[from + LO]);
            while (data[i * STRIDE + PACKED] != 0) {
                i = (i + 1) & mask;
            }
            System.arraycopy(old, from, data, i * STRIDE, STRIDE);
            if ((old[from + PACKED] & HAS_EXTRA) != 0) {
                extras[i] = oldExtras[j];
            }
            size++;
        }
    }

    /** Forgets a slot (backward-shift deletion: no tombstones, probe chains stay intact). */
    void removeAt(int slot) {
        int hole = slot;
        for (int j = (slot + 1) & mask; !isEmpty(j); j = (j + 1) & mask) {
            int home = home(hi(j), lo(j));
            boolean stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
            if (!stays) {
                System.arraycopy(data, j * STRIDE, data, hole * STRIDE, STRIDE);
                extras[hole] = extras[j];
                hole = j;
            }
        }
        java.util.Arrays.fill(data, hole * STRIDE, hole * STRIDE + STRIDE, 0L);
        extras[hole] = null;
        size--;
    }

    /** A table an eighth full or less is rebuilt at most half full (its entries were removed one by one). */
    void shrink() {
        if (capacity() > MIN_CAPACITY && size * 8L <= capacity()) {
            int capacity = MIN_CAPACITY;
            while (capacity < size * 2L) {
                capacity *= 2;
            }
            rebuild(capacity);
        }
    }

    /** Forgets every slot for which {@code drop} says so, then rebuilds the table at most half full. */
    void removeIf(java.util.function.IntPredicate drop) {
        int removed = 0;
        for (int i = 0; i < capacity(); i++) {
            if (!isEmpty(i) && drop.test(i)) {
                data[i * STRIDE + PACKED] = 0;
                extras[i] = null;
                removed++;
            }
        }
        if (removed > 0) {
            int live = size - removed;
            int capacity = MIN_CAPACITY;
            while (capacity < live * 2L) {  // at most half full after the rebuild: room to grow
                capacity *= 2;
            }
            rebuild(capacity);
        }
    }

    static byte kind(byte kindAndFlags) {
        return (byte) (kindAndFlags & KIND_MASK);
    }

    // ---- entries -----------------------------------------------------------------------------------------------

    void setEvent(int slot, long firstSeenMs, CorrectionLedger.Version version, byte flags) {
        data[slot * STRIDE + FIRST_SEEN] = firstSeenMs;
        setVersion(slot, version, (byte) (EVENT | flags));
    }

    /** The event's billed version (its kind and flags stay). */
    void setVersion(int slot, CorrectionLedger.Version version) {
        setVersion(slot, version, kindAndFlags(slot));
    }

    private void setVersion(int slot, CorrectionLedger.Version version, byte kindAndFlags) {
        setVersion(slot, intern(version.customerId, version.meter, version.groupJson), version.eventTimeMs,
                version.value, version.value == null ? 0 : version.value.scale(), version.uniqueValue, kindAndFlags);
    }

    /**
     * A first copy whose series is already a dictionary index ({@link #seriesIndex(long, long, SeriesNames)}), its
     * value given at any scale up to {@code billedScale}, the scale it was billed at (the routing operator hands over
     * the value it already stripped of the fraction's trailing zeros: one division per event, not two).
     */
    void setEvent(int slot, long firstSeenMs, int series, long eventTimeMs, BigDecimal value, int billedScale,
            String unique, byte flags) {
        data[slot * STRIDE + FIRST_SEEN] = firstSeenMs;
        setVersion(slot, series, eventTimeMs, value, billedScale, unique, (byte) (EVENT | flags));
    }

    private void setVersion(int slot, int series, long eventTimeMs, BigDecimal value, int billedScale, String unique,
            byte kindAndFlags) {
        data[slot * STRIDE + EVENT_TIME] = eventTimeMs;
        BigDecimal big = null;
        byte scale;
        byte billed = 0;
        if (value == null) {
            scale = NO_VALUE;
        } else {
            int scales = compact(value, billedScale, slot);
            if (scales >= 0) {
                scale = (byte) scales;
                billed = (byte) (scales >>> 8);
            } else {
                scale = BIG_VALUE;
                big = value.scale() == billedScale ? value : value.setScale(billedScale);  // as billed
            }
        }
        Object extra = big == null ? unique : unique == null ? big : new ValueAndUnique(big, unique);
        boolean had = (packed(slot) & HAS_EXTRA) != 0;
        setPacked(slot, kindAndFlags, scale, billed, had, series);
        setExtra(slot, extra);
    }

    private static final long[] POWERS_OF_TEN = new long[19];
    private static final BigInteger[] BIG_POWERS_OF_TEN = new BigInteger[19];

    static {
        long power = 1;
        for (int i = 0; i < POWERS_OF_TEN.length; i++) {
            POWERS_OF_TEN[i] = power;
            BIG_POWERS_OF_TEN[i] = BigInteger.valueOf(power);
            power *= 10;
        }
    }

    /**
     * Stores {@code value}'s unscaled in the slot as a long at a scale no larger than the billed one (trailing zeros
     * of the fraction dropped), when that fits: returns the billed scale << 8 | that scale, else -1. One division,
     * not stripTrailingZeros' one per zero (a DECIMAL(38,18) value has 18 digits of fraction, mostly zeros: that
     * was ~2 us per event); none beyond a long's when the value comes stripped already. {@code billed}: the scale
     * the value was billed at, at least its own.
     */
    private int compact(BigDecimal value, int billed, int slot) {
        if (billed < 0 || billed > 18 || value.scale() < 0 || value.scale() > billed) {
            return -1;
        }
        int own = value.scale();
        BigInteger unscaled = value.unscaledValue();
        long whole;
        long fraction;
        if (unscaled.bitLength() < 64) {
            long u = unscaled.longValue();
            whole = u / POWERS_OF_TEN[own];
            fraction = u % POWERS_OF_TEN[own];
        } else {
            BigInteger[] parts = unscaled.divideAndRemainder(BIG_POWERS_OF_TEN[own]);
            if (parts[0].bitLength() >= 64) {
                return -1;
            }
            whole = parts[0].longValue();
            fraction = parts[1].longValue();
        }
        int scale = own;
        while (scale > 0 && fraction % 10 == 0) {
            fraction /= 10;
            scale--;
        }
        try {
            data[slot * STRIDE + UNSCALED] = Math.addExact(Math.multiplyExact(whole, POWERS_OF_TEN[scale]), fraction);
        } catch (ArithmeticException overflow) {
            return -1;
        }
        return billed << 8 | scale;
    }

    void setDeadLetter(int slot, long firstSeenMs, String reason) {
        data[slot * STRIDE + FIRST_SEEN] = firstSeenMs;
        setPacked(slot, DEAD_LETTER, (byte) 0, (byte) 0, (packed(slot) & HAS_EXTRA) != 0, 0);
        setExtra(slot, reason.intern());  // one of a few reasons
    }

    /** Past the correction horizon: only the first-seen time is kept. */
    void setPastHorizon(int slot) {
        setExtra(slot, null);
        setPacked(slot, PAST_HORIZON, (byte) 0, (byte) 0, false, 0);
    }

    void setCancelled(int slot) {
        setExtra(slot, null);
        setPacked(slot, (byte) (CANCELLED | (kindAndFlags(slot) & ~KIND_MASK)), (byte) 0, (byte) 0, false, 0);
    }

    /** A slot restored from a snapshot of an older format whose entry holds only its first-seen time and kind. */
    void setBare(int slot, long firstSeenMs, byte kind) {
        data[slot * STRIDE + FIRST_SEEN] = firstSeenMs;
        setExtra(slot, null);
        setPacked(slot, kind, (byte) 0, (byte) 0, false, 0);
    }

    String deadLetterReason(int slot) {
        return (String) extra(slot);
    }

    CorrectionLedger.Version version(int slot) {
        SeriesStrings s = dictionary.get(seriesIndex(slot));
        return new CorrectionLedger.Version(s.customerId, s.meter, eventTime(slot), value(slot), s.groupJson,
                unique(slot));
    }

    SeriesStrings seriesOf(int slot) {
        return dictionary.get(seriesIndex(slot));
    }

    /** The slot's index into the series dictionary (an event's; valid until the dictionary is compacted). */
    int seriesIndexOf(int slot) {
        return seriesIndex(slot);
    }

    SeriesStrings series(int index) {
        return dictionary.get(index);
    }

    int dictionarySize() {
        return dictionary.size();
    }

    BigDecimal value(int slot) {
        byte scale = scale(slot);
        if (scale == NO_VALUE) {
            return null;
        }
        if (scale == BIG_VALUE) {
            Object extra = extra(slot);
            return extra instanceof ValueAndUnique ? ((ValueAndUnique) extra).value : (BigDecimal) extra;
        }
        return BigDecimal.valueOf(data[slot * STRIDE + UNSCALED], scale).setScale(billedScale(slot));
    }

    /**
     * The slot's value for a snapshot: a marker byte (no value; a big one, then its unscaled bytes and scale), or
     * the stripped scale, then the unscaled long and the scale as billed.
     */
    void writeValue(int slot, org.apache.flink.core.memory.DataOutputView out) throws java.io.IOException {
        byte scale = scale(slot);
        out.writeByte(scale);
        if (scale == NO_VALUE) {
            return;
        }
        if (scale == BIG_VALUE) {
            BigDecimal big = value(slot);
            byte[] unscaled = big.unscaledValue().toByteArray();
            out.writeInt(unscaled.length);
            out.write(unscaled);
            out.writeInt(big.scale());
            return;
        }
        out.writeLong(data[slot * STRIDE + UNSCALED]);
        out.writeByte(billedScale(slot));
    }

    static BigDecimal readValue(org.apache.flink.core.memory.DataInputView in) throws java.io.IOException {
        byte scale = in.readByte();
        if (scale == NO_VALUE) {
            return null;
        }
        if (scale == BIG_VALUE) {
            int length = in.readInt();
            if (length <= 0 || length > 1 << 20) {
                throw new java.io.IOException("correction ledger value of " + length + " bytes");
            }
            byte[] unscaled = new byte[length];
            in.readFully(unscaled);
            return new BigDecimal(new BigInteger(unscaled), in.readInt());
        }
        return BigDecimal.valueOf(in.readLong(), scale).setScale(in.readByte());
    }

    String unique(int slot) {
        Object extra = extra(slot);
        return extra instanceof String && kind(kindAndFlags(slot)) == EVENT ? (String) extra
                : extra instanceof ValueAndUnique ? ((ValueAndUnique) extra).unique : null;
    }

    /** The strings of a series, asked for only when the ledger meets its hash for the first time. */
    @FunctionalInterface
    public interface SeriesNames {
        /** customer_id, meter, group JSON ("{}" for none). */
        String[] get();
    }

    /**
     * The dictionary index of the series with this 128-bit hash (of tenant, customer, meter, group: the one the
     * window operator keys by), decoding its strings only the first time: the per-event path, which decoded three
     * strings and looked them up in a HashMap for every event. Different tenants' series with the same strings
     * share an index.
     */
    int seriesIndex(long seriesHi, long seriesLo, SeriesNames names) {
        int index = byHash.get(seriesHi, seriesLo);
        if (index < 0) {
            String[] strings = names.get();
            index = intern(strings[0], strings[1], strings[2]);
            byHash.put(seriesHi, seriesLo, index);
        }
        int word = index >>> 6;
        if (word >= metSinceCompaction.length) {
            metSinceCompaction = java.util.Arrays.copyOf(metSinceCompaction,
                    Math.max(word + 1, 2 * metSinceCompaction.length));
        }
        metSinceCompaction[word] |= 1L << index;
        return index;
    }

    private boolean metSinceCompaction(int index) {
        int word = index >>> 6;
        return word < metSinceCompaction.length && (metSinceCompaction[word] & 1L << index) != 0;
    }

    private int intern(String customerId, String meter, String groupJson) {
        SeriesStrings key = new SeriesStrings(customerId, meter, groupJson);
        Integer index = dictionaryIndex.get(key);
        if (index == null) {
            index = dictionary.size();
            dictionary.add(key.encoded());
            dictionaryIndex.put(key, index);
        }
        return index;
    }

    /** Series strings held (tests: the dictionary shrinks with the events). */
    int seriesHeld() {
        return dictionary.size();
    }

    /**
     * Drops the series no event references any more and no event met since the last look (before a snapshot), once
     * the dictionary has at least doubled since the last compaction and those are most of it. Why the doubling: with
     * the entries sealed away, most of the dictionary is unreferenced at every snapshot, and compacting each time
     * rescanned the slots and made every live series' hash miss the cache after each checkpoint (measured: ~160k
     * series decoded again per checkpoint at 20M events). Doubling bounds the dictionary at twice what was kept and
     * the work to a constant per series interned; keeping what events met ({@link #metSinceCompaction}) keeps the
     * series that are still billed.
     */
    void compactDictionary() {
        if (dictionary.size() < Math.max(1024, 2L * keptByLastCompaction)) {
            return;
        }
        boolean[] used = new boolean[dictionary.size()];
        int referenced = 0;
        for (int j = 0; j < used.length; j++) {
            if (metSinceCompaction(j)) {
                used[j] = true;
                referenced++;
            }
        }
        metSinceCompaction = new long[1];
        for (int i = 0; i < capacity(); i++) {
            if (kind(kindAndFlags(i)) == EVENT && !used[seriesIndex(i)]) {
                used[seriesIndex(i)] = true;
                referenced++;
            }
        }
        if (referenced * 2 > dictionary.size()) {
            keptByLastCompaction = referenced;  // as if compacted: look again once it has doubled from here
            return;
        }
        int[] remap = new int[dictionary.size()];
        List<SeriesStrings> kept = new ArrayList<>(referenced);
        dictionaryIndex.clear();
        for (int j = 0; j < used.length; j++) {
            if (used[j]) {
                remap[j] = kept.size();
                dictionaryIndex.put(dictionary.get(j), kept.size());
                kept.add(dictionary.get(j));
            } else {
                remap[j] = -1;
            }
        }
        dictionary.clear();
        dictionary.addAll(kept);
        keptByLastCompaction = kept.size();
        byHash.retain(remap);
        for (int i = 0; i < capacity(); i++) {
            if (kind(kindAndFlags(i)) == EVENT) {
                int at = i * STRIDE + PACKED;
                data[at] = (data[at] & 0xffffffffL) | ((long) remap[seriesIndex(i)]) << 32;
            }
        }
    }

    @Override
    public String toString() {
        return "LedgerSlots{size=" + size + ", capacity=" + capacity() + ", series=" + dictionary.size() + "}";
    }
}
