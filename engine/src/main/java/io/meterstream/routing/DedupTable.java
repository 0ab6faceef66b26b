package io.meterstream.routing;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The dedup memory of one bucket of event ids, as one {@code byte[]}: an open-addressing hash table (linear probing)
 * of slots (event key: 128-bit hash as two longs, first fingerprint, first-seen processing time). All methods are
 * static over the array, which is what keyed state holds ({@link UsageRouting}).
 *
 * <p>Why a table per bucket and not one state entry per event id: the heap state backend writes every entry out at
 * every checkpoint, each with its key, namespace and TTL wrapper serialised field by field; for a dedup horizon of
 * millions of ids that was a sixth of the job's CPU (JFR), growing with the horizon. A table is written as one byte
 * array (a copy). The TTL is per entry, here: an id expires a horizon after its first sighting (processing time),
 * as Flink's state TTL on a value written once would.
 *
 * <p>Layout: an int header (occupied slots, expired ones included until the next rebuild), then a power-of-two
 * number of 32-byte slots; a slot whose first-seen time is 0 is empty. Entries are never removed one by one on the
 * per-record path: an expired entry is reused by its own key, and dropped when the table is rebuilt (on growth), so
 * a table holds at most about twice its live entries. The load factor stays at or below 3/4. A checkpoint writes
 * only the live entries ({@link #packLive}; a restore rebuilds the table from them, {@link #unpacked}), and the
 * operator forgets a table with none left there, so a snapshot never holds an expired id.
 */
public final class DedupTable {
    static final int HEADER_BYTES = 8;
    static final int SLOT_BYTES = 32;
    static final int MIN_SLOTS = 8;
    private static final int KEY_HI = 0;
    private static final int KEY_LO = 8;
    private static final int FINGERPRINT = 16;
    private static final int FIRST_SEEN = 24;
    private static final VarHandle LONGS =
            MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INTS =
            MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private DedupTable() {
    }

    /**
     * One bucket's table in and out of {@link #recordFirst}: {@code table} is the table to look in (null: empty)
     * and, after the call, the one to keep; {@code firstFingerprint} is set when {@code seenBefore}.
     */
    public static final class Lookup {
        public byte[] table;
        public boolean seenBefore;
        public long firstFingerprint;

        public int occupied() {
            return DedupTable.occupied(table);
        }

        public int slots() {
            return DedupTable.slots(table);
        }
    }

    /** An empty table of {@code slots} slots (a power of two). */
    static byte[] allocate(int slots) {
        return new byte[HEADER_BYTES + slots * SLOT_BYTES];
    }

    public static int slots(byte[] table) {
        return (table.length - HEADER_BYTES) / SLOT_BYTES;
    }

    /** Occupied slots, expired entries included until the next rebuild. */
    public static int occupied(byte[] table) {
        return (int) INTS.get(table, 0);
    }

    /**
     * Looks the key up in {@code result.table}. Seen within the horizon: {@code seenBefore} and its first
     * fingerprint, table unchanged. Otherwise (never seen, or seen {@code ttlMs} or longer ago) the key is recorded
     * with {@code fingerprint} and {@code nowMs}; {@code result.table} is then the array to store: the same one,
     * changed in place, or a new larger one.
     */
    public static void recordFirst(Lookup result, long keyHi, long keyLo, long fingerprint, long nowMs, long ttlMs) {
        byte[] table = result.table == null ? allocate(MIN_SLOTS) : result.table;
        long seenAt = Math.max(nowMs, 1L);
        int mask = slots(table) - 1;
        int slot = (int) keyLo & mask;
        while (true) {
            int at = HEADER_BYTES + slot * SLOT_BYTES;
            long firstSeen = (long) LONGS.get(table, at + FIRST_SEEN);
            if (firstSeen == 0) {
                int occupied = occupied(table) + 1;
                if (occupied * 4L > (mask + 1) * 3L) {
                    result.table = rebuilt(table, nowMs, ttlMs, 1);
                    recordFirst(result, keyHi, keyLo, fingerprint, nowMs, ttlMs);
                    return;
                }
                INTS.set(table, 0, occupied);
                write(table, at, keyHi, keyLo, fingerprint, seenAt);
                result.seenBefore = false;
                result.table = table;
                return;
            }
            if ((long) LONGS.get(table, at + KEY_LO) == keyLo && (long) LONGS.get(table, at + KEY_HI) == keyHi) {
                if (expired(firstSeen, nowMs, ttlMs)) {
                    write(table, at, keyHi, keyLo, fingerprint, seenAt);
                    result.seenBefore = false;
                } else {
                    result.seenBefore = true;
                    result.firstFingerprint = (long) LONGS.get(table, at + FINGERPRINT);
                }
                result.table = table;
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    /** Flink's TTL rule: expired once first-seen + ttl <= now (no overflow for huge TTLs). */
    static boolean expired(long firstSeen, long nowMs, long ttlMs) {
        return firstSeen <= nowMs - ttlMs && nowMs - ttlMs <= nowMs;
    }

    /** The entries not expired at {@code nowMs}: what the table still remembers (null: an empty table). */
    static int live(byte[] table, long nowMs, long ttlMs) {
        if (table == null) {
            return 0;
        }
        int live = 0;
        int slots = slots(table);
        for (int slot = 0; slot < slots; slot++) {
            long firstSeen = (long) LONGS.get(table, HEADER_BYTES + slot * SLOT_BYTES + FIRST_SEEN);
            if (firstSeen != 0 && !expired(firstSeen, nowMs, ttlMs)) {
                live++;
            }
        }
        return live;
    }

    /** The live entries only, in the smallest table that holds them and {@code room} more below the load limit. */
    static byte[] rebuilt(byte[] table, long nowMs, long ttlMs, int room) {
        int live = live(table, nowMs, ttlMs);
        int slots = slots(table);
        byte[] grown = allocate(slotsFor(live + room));
        for (int slot = 0; slot < slots; slot++) {
            int from = HEADER_BYTES + slot * SLOT_BYTES;
            long firstSeen = (long) LONGS.get(table, from + FIRST_SEEN);
            if (firstSeen != 0 && !expired(firstSeen, nowMs, ttlMs)) {
                place(grown, table, from);
            }
        }
        INTS.set(grown, 0, live);
        return grown;
    }

    /**
     * Copies the entries of {@code table} that are live at {@code nowMs} into {@code into} ({@link #SLOT_BYTES}
     * each, in slot layout and slot order, from offset 0) and returns how many: what a checkpoint writes, so that no
     * expired entry and no empty slot leaves memory. {@code into} holds at least {@code table.length} bytes. One pass
     * over the slots, no hashing: a checkpoint already copied every table whole before.
     */
    static int packLive(byte[] table, long nowMs, long ttlMs, byte[] into) {
        int live = 0;
        int slots = slots(table);
        for (int slot = 0; slot < slots; slot++) {
            int from = HEADER_BYTES + slot * SLOT_BYTES;
            long firstSeen = (long) LONGS.get(table, from + FIRST_SEEN);
            if (firstSeen != 0 && !expired(firstSeen, nowMs, ttlMs)) {
                System.arraycopy(table, from, into, live * SLOT_BYTES, SLOT_BYTES);
                live++;
            }
        }
        return live;
    }

    /** Adds the entries of {@code table} that are live at {@code nowMs} to {@code into} (a seal, {@link SealedDedup}). */
    public static void addLive(byte[] table, long nowMs, long ttlMs, DedupRuns.Entries into) {
        int slots = slots(table);
        for (int slot = 0; slot < slots; slot++) {
            int at = HEADER_BYTES + slot * SLOT_BYTES;
            long firstSeen = (long) LONGS.get(table, at + FIRST_SEEN);
            if (firstSeen != 0 && !expired(firstSeen, nowMs, ttlMs)) {
                into.add((long) LONGS.get(table, at + KEY_HI), (long) LONGS.get(table, at + KEY_LO),
                        (long) LONGS.get(table, at + FINGERPRINT), firstSeen);
            }
        }
    }

    /**
     * The table of {@code count} entries packed by {@link #packLive} (a restore), in the smallest table that holds
     * them and one more below the load limit, as a rebuild would size it.
     */
    static byte[] unpacked(byte[] packed, int count) {
        byte[] table = allocate(slotsFor(count + 1));
        for (int i = 0; i < count; i++) {
            place(table, packed, i * SLOT_BYTES);
        }
        INTS.set(table, 0, count);
        return table;
    }

    /** The fewest slots (a power of two, at least {@link #MIN_SLOTS}) that hold {@code entries} at load 3/4. */
    private static int slotsFor(int entries) {
        int slots = MIN_SLOTS;
        while (entries * 4L > slots * 3L) {
            slots <<= 1;
        }
        return slots;
    }

    /** Copies the slot at {@code from} in {@code source} into its probe position in {@code table} (no duplicate). */
    private static void place(byte[] table, byte[] source, int from) {
        int mask = slots(table) - 1;
        int to = (int) (long) LONGS.get(source, from + KEY_LO) & mask;
        while ((long) LONGS.get(table, HEADER_BYTES + to * SLOT_BYTES + FIRST_SEEN) != 0) {
            to = (to + 1) & mask;
        }
        System.arraycopy(source, from, table, HEADER_BYTES + to * SLOT_BYTES, SLOT_BYTES);
    }

    private static void write(byte[] table, int at, long keyHi, long keyLo, long fingerprint, long seenAt) {
        LONGS.set(table, at + KEY_HI, keyHi);
        LONGS.set(table, at + KEY_LO, keyLo);
        LONGS.set(table, at + FINGERPRINT, fingerprint);
        LONGS.set(table, at + FIRST_SEEN, seenAt);
    }
}
