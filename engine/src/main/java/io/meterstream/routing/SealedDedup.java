package io.meterstream.routing;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The sealed dedup memory of one key group: its remembered ids in immutable runs of {@link DedupRuns} blocks, kept in
 * a {@link BlockStore} (in the job: managed keyed state with RocksDB, a plain map written as raw keyed state with the
 * heap backend; {@code UsageRouting} says why), and an in-heap index that says, in one probe, which run may
 * hold an id. Why: the heap tables ({@link DedupTable}) cost 32 bytes per slot and were copied whole into every
 * checkpoint; here an id costs 23 bytes in the store, written once, and 8 bytes per index slot in the heap (at most
 * 3/4 full), which a restore rebuilds from the store instead of a checkpoint copying it.
 *
 * <p>The index: open addressing (linear probing) of 64-bit slots, each a 40-bit fingerprint of the event key (never
 * 0) and the 24-bit tag of the run that holds it; the slot's position is a function of the fingerprint alone, so the
 * index can be rebuilt without the keys (growth, and dropping expired runs). An id is looked up by its fingerprint;
 * each run it names is read (one block, found by the run's in-heap first keys) and searched for the whole key: the
 * answer is exact (a fingerprint match of another id costs one block read, and is as rare as 2^-39 per slot probed).
 *
 * <p>Expiry is per id, by the dedup horizon's rule ({@link DedupTable#expired}, on the first sighting each record
 * keeps); a run whose latest id has expired is dropped whole, blocks and index slots, once the expired runs hold an
 * eighth of the index (a rebuild) or all of it.
 *
 * <p>A block may have a companion ({@link Companions}): what else the run keeps of its ids, in the block's record
 * order (the correction ledger's sealed entries, {@code CorrectionLedger#sealEntries}). It is stored beside the
 * block, under {@link #companionKey}, read only through a lookup's {@link Found}, and dropped with its run.
 */
public final class SealedDedup {
    /** Where a key group's blocks live; keys are {@link #blockKey}s. */
    public interface BlockStore {
        byte[] get(long blockKey) throws Exception;

        void put(long blockKey, byte[] block) throws Exception;

        void remove(long blockKey) throws Exception;
    }

    /** A store in a plain map (tests and benchmarks; the job's is its map state). */
    public static final class InMemoryBlocks implements BlockStore {
        public final Map<Long, byte[]> blocks = new HashMap<>();
        public long reads;

        @Override
        public byte[] get(long blockKey) {
            reads++;
            return blocks.get(blockKey);
        }

        @Override
        public void put(long blockKey, byte[] block) {
            blocks.put(blockKey, block);
        }

        @Override
        public void remove(long blockKey) {
            blocks.remove(blockKey);
        }

        /** The bytes of the blocks held. */
        public long bytes() {
            long bytes = 0;
            for (byte[] block : blocks.values()) {
                bytes += block.length;
            }
            return bytes;
        }
    }

    static final int TAG_BITS = 24;
    static final int TAGS = 1 << TAG_BITS;
    static final int BLOCK_BITS = 20;
    /** The bit that marks a companion's key (above every block key's tag and block). */
    private static final long COMPANION = 1L << (TAG_BITS + BLOCK_BITS);
    private static final long TAG_MASK = TAGS - 1;
    private static final int MIN_SLOTS = 16;

    /**
     * What a lookup found: the first copy's fingerprint (first 32 bits) and first sighting, and where its record is
     * (the block's key and the record's position in it: its companion's entry, {@link Companions}).
     */
    public static final class Found {
        public int fingerprint32;
        public long firstSeenMs;
        public long blockKey;
        public int record;
    }

    /**
     * What else a run keeps per id, beside each block (the correction ledger's sealed entries): bytes made from the
     * block at sealing, stored under {@link #companionKey} and dropped with the block.
     */
    public interface Companions {
        /** The companion of a block about to be stored (its records in block order), or null: none. */
        byte[] of(byte[] block) throws Exception;
    }

    private static final class Run {
        long maxFirstSeen = Long.MIN_VALUE;
        long[] firstHi = new long[0];
        long[] firstLo = new long[0];
        int blocks;
        long ids;

        void block(int index, byte[] block) {
            if (index >= firstHi.length) {
                firstHi = Arrays.copyOf(firstHi, Math.max(index + 1, firstHi.length * 2));
                firstLo = Arrays.copyOf(firstLo, firstHi.length);
            }
            firstHi[index] = DedupRuns.keyHi(block, 0);
            firstLo[index] = DedupRuns.keyLo(block, 0);
            blocks = Math.max(blocks, index + 1);
            int records = DedupRuns.records(block);
            ids += records;
            for (int r = 0; r < records; r++) {
                maxFirstSeen = Math.max(maxFirstSeen, DedupRuns.firstSeen(block, r));
            }
        }

        /** The block that holds the key if any does: the last whose first key is not after it. */
        int blockFor(long hi, long lo) {
            int low = 0;
            int high = blocks - 1;
            int found = -1;
            while (low <= high) {
                int mid = (low + high) >>> 1;
                if (DedupRuns.compareKeys(firstHi[mid], firstLo[mid], hi, lo) <= 0) {
                    found = mid;
                    low = mid + 1;
                } else {
                    high = mid - 1;
                }
            }
            return found;
        }
    }

    private long[] slots = new long[MIN_SLOTS];
    private int used;
    private final Map<Integer, Run> runs = new HashMap<>();
    private int nextTag;

    public static long blockKey(int tag, int block) {
        return ((long) tag << BLOCK_BITS) | block;
    }

    /** The key of the companion ({@link Companions}) of the block stored under {@code blockKey}. */
    public static long companionKey(long blockKey) {
        return blockKey | COMPANION;
    }

    /** Whether a stored key is a companion's (a restore stores those as they are: the index has no part in them). */
    public static boolean isCompanion(long storedKey) {
        return (storedKey & COMPANION) != 0;
    }

    /** The index fingerprint of an event key: 40 bits of its (uniform) low half, never 0. */
    static long fingerprint40(long keyLo) {
        return (keyLo >>> 24) | 1L;
    }

    private static int home(long fingerprint40, int mask) {
        return (int) ((fingerprint40 * 0x9E3779B97F4A7C15L) >>> 32) & mask;
    }

    /** Ids held (the runs', expired ones included until they are dropped). */
    public long ids() {
        long ids = 0;
        for (Run run : runs.values()) {
            ids += run.ids;
        }
        return ids;
    }

    public int runs() {
        return runs.size();
    }

    /** Bytes of index slots in the heap. */
    public long indexBytes() {
        return (long) slots.length * Long.BYTES;
    }

    /**
     * Whether the key is remembered at {@code nowMs} (seen less than {@code ttlMs} before): then {@code found} holds
     * its first copy's fingerprint and sighting.
     */
    public boolean lookup(long keyHi, long keyLo, long nowMs, long ttlMs, BlockStore store, Found found)
            throws Exception {
        long fingerprint = fingerprint40(keyLo);
        int mask = slots.length - 1;
        for (int at = home(fingerprint, mask); slots[at] != 0; at = (at + 1) & mask) {
            if (slots[at] >>> TAG_BITS != fingerprint) {
                continue;
            }
            int tag = (int) (slots[at] & TAG_MASK);
            Run run = runs.get(tag);
            if (run == null || DedupTable.expired(run.maxFirstSeen, nowMs, ttlMs)) {
                continue;
            }
            int block = run.blockFor(keyHi, keyLo);
            if (block < 0) {
                continue;
            }
            byte[] bytes = store.get(blockKey(tag, block));
            if (bytes == null) {
                throw new IllegalStateException("dedup block " + block + " of run " + tag + " is missing");
            }
            int record = DedupRuns.find(bytes, keyHi, keyLo);
            if (record >= 0 && !DedupTable.expired(DedupRuns.firstSeen(bytes, record), nowMs, ttlMs)) {
                found.fingerprint32 = DedupRuns.fingerprint32(bytes, record);
                found.firstSeenMs = DedupRuns.firstSeen(bytes, record);
                found.blockKey = blockKey(tag, block);
                found.record = record;
                return true;
            }
        }
        return false;
    }

    /** The entries (distinct keys, none remembered here) sealed into new runs: blocks stored, ids indexed. */
    public void seal(DedupRuns.Entries entries, BlockStore store) throws Exception {
        seal(entries, store, null);
    }

    /** {@link #seal(DedupRuns.Entries, BlockStore)}, each block with its companion ({@code companions}: null, none). */
    public void seal(DedupRuns.Entries entries, BlockStore store, Companions companions) throws Exception {
        if (entries.size() == 0) {
            return;
        }
        for (List<byte[]> blocks : DedupRuns.seal(entries)) {
            int tag = freeTag();
            Run run = new Run();
            runs.put(tag, run);
            for (int b = 0; b < blocks.size(); b++) {
                byte[] companion = companions == null ? null : companions.of(blocks.get(b));
                if (companion != null) {
                    store.put(companionKey(blockKey(tag, b)), companion);
                }
                store.put(blockKey(tag, b), blocks.get(b));
                index(tag, run, b, blocks.get(b));
            }
        }
    }

    /** A block read back from the store (a restore): its run and ids come back into the index. */
    public void restoreBlock(long blockKey, byte[] block) {
        int tag = (int) (blockKey >>> BLOCK_BITS);
        if (tag < 0 || tag >= TAGS || DedupRuns.records(block) == 0) {
            throw new IllegalArgumentException("not a dedup block: key " + blockKey + ", " + block.length + " bytes");
        }
        Run run = runs.computeIfAbsent(tag, t -> new Run());
        index(tag, run, (int) (blockKey & ((1L << BLOCK_BITS) - 1)), block);
        nextTag = Math.max(nextTag, tag + 1) & (int) TAG_MASK;
    }

    private void index(int tag, Run run, int blockIndex, byte[] block) {
        run.block(blockIndex, block);
        int records = DedupRuns.records(block);
        if ((used + records) * 4L > slots.length * 3L) {
            rebuild(used + records, null);
        }
        for (int r = 0; r < records; r++) {
            place(fingerprint40(DedupRuns.keyLo(block, r)) << TAG_BITS | tag);
        }
    }

    private void place(long slot) {
        int mask = slots.length - 1;
        int at = home(slot >>> TAG_BITS, mask);
        while (slots[at] != 0) {
            at = (at + 1) & mask;
        }
        slots[at] = slot;
        used++;
    }

    /** The index again, sized for {@code entries} at load 3/4 or below, without the slots of runs {@code dropped}. */
    private void rebuild(long entries, Set<Integer> dropped) {
        int size = MIN_SLOTS;
        while (entries * 4L > size * 3L) {
            size <<= 1;
        }
        long[] old = slots;
        slots = new long[size];
        used = 0;
        for (long slot : old) {
            if (slot != 0 && (dropped == null || !dropped.contains((int) (slot & TAG_MASK)))) {
                place(slot);
            }
        }
    }

    private int freeTag() {
        for (int tries = 0; tries < TAGS; tries++) {
            int tag = nextTag;
            nextTag = (nextTag + 1) & (int) TAG_MASK;
            if (!runs.containsKey(tag)) {
                return tag;
            }
        }
        throw new IllegalStateException("a key group holds " + TAGS + " dedup runs");
    }

    /**
     * Drops the runs whose every id has expired at {@code nowMs} (blocks and index slots), once they hold an eighth
     * of the ids or all of them (a drop rebuilds the index). Returns the ids dropped.
     */
    public long expire(long nowMs, long ttlMs, BlockStore store) throws Exception {
        List<Integer> expired = new ArrayList<>();
        long expiredIds = 0;
        for (Map.Entry<Integer, Run> entry : runs.entrySet()) {
            if (DedupTable.expired(entry.getValue().maxFirstSeen, nowMs, ttlMs)) {
                expired.add(entry.getKey());
                expiredIds += entry.getValue().ids;
            }
        }
        if (expired.isEmpty() || (expiredIds * 8 < used && expired.size() < runs.size())) {
            return 0;
        }
        for (int tag : expired) {
            Run run = runs.remove(tag);
            for (int b = 0; b < run.blocks; b++) {
                store.remove(blockKey(tag, b));
                store.remove(companionKey(blockKey(tag, b)));  // none is no harm: a remove of nothing
            }
        }
        rebuild(used - expiredIds, new HashSet<>(expired));
        return expiredIds;
    }

    /** The ids remembered at {@code nowMs}: each run's records not expired (reads every block; tests, diagnostics). */
    public long live(long nowMs, long ttlMs, BlockStore store) throws Exception {
        long live = 0;
        for (Map.Entry<Integer, Run> entry : runs.entrySet()) {
            for (int b = 0; b < entry.getValue().blocks; b++) {
                byte[] block = store.get(blockKey(entry.getKey(), b));
                for (int r = 0; r < DedupRuns.records(block); r++) {
                    live += DedupTable.expired(DedupRuns.firstSeen(block, r), nowMs, ttlMs) ? 0 : 1;
                }
            }
        }
        return live;
    }
}
