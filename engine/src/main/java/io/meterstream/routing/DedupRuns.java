package io.meterstream.routing;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The sealed part of the dedup memory, as immutable blocks: remembered event ids sorted by key, 23 bytes each, the
 * form in which ids leave the heap ({@link SealedDedup} keeps them in managed keyed state, so an incremental
 * checkpoint writes each block once and a heap checkpoint copies bytes, not entries).
 *
 * <p>A block: the base time (8 bytes, the earliest first sighting of the run it belongs to), then up to
 * {@link #BLOCK_RECORDS} records in unsigned (keyHi, keyLo) order: the 128-bit event key (16 bytes), the first 32 bits
 * of the first copy's fingerprint (4 bytes: enough to tell a retry from a conflicting reuse of the id; the dedup
 * decision itself is on the whole key), and the first sighting's offset from the base time in milliseconds (3 bytes:
 * a run spans at most {@link #MAX_SPAN_MS}; {@link #seal} splits a longer one). So 23 bytes per id, plus 8 per
 * block of {@link #BLOCK_RECORDS}: about 23.05.
 */
public final class DedupRuns {
    public static final int RECORD_BYTES = 23;
    static final int HEADER_BYTES = 8;
    /** Records per block: a block stays within 4 KB. */
    public static final int BLOCK_RECORDS = (4096 - HEADER_BYTES) / RECORD_BYTES;
    /** The longest span of first sightings one run can hold: 2^24 - 1 ms, about 4.66 hours. */
    public static final long MAX_SPAN_MS = (1L << 24) - 1;
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle INTS = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.BIG_ENDIAN);

    private DedupRuns() {
    }

    /** Ids to seal, in any order (a key group's unsealed entries). */
    public static final class Entries {
        long[] hi = new long[16];
        long[] lo = new long[16];
        long[] fingerprint = new long[16];
        long[] firstSeen = new long[16];
        int size;

        public void add(long keyHi, long keyLo, long fingerprint64, long firstSeenMs) {
            if (size == hi.length) {
                int grown = size * 2;
                hi = Arrays.copyOf(hi, grown);
                lo = Arrays.copyOf(lo, grown);
                fingerprint = Arrays.copyOf(fingerprint, grown);
                firstSeen = Arrays.copyOf(firstSeen, grown);
            }
            hi[size] = keyHi;
            lo[size] = keyLo;
            fingerprint[size] = fingerprint64;
            firstSeen[size] = firstSeenMs;
            size++;
        }

        public int size() {
            return size;
        }

        public void clear() {
            size = 0;
        }
    }

    /**
     * The runs of {@code entries}: each a list of blocks, sorted by key; one run unless the first sightings span more
     * than {@link #MAX_SPAN_MS} (then one per span, oldest first). The entries' keys are distinct.
     */
    public static List<List<byte[]>> seal(Entries entries) {
        int n = entries.size;
        long min = Long.MAX_VALUE;
        long max = Long.MIN_VALUE;
        for (int i = 0; i < n; i++) {
            min = Math.min(min, entries.firstSeen[i]);
            max = Math.max(max, entries.firstSeen[i]);
        }
        List<List<byte[]>> runs = new ArrayList<>();
        if (max - min <= MAX_SPAN_MS) {  // the usual case: one run
            int[] all = new int[n];
            for (int i = 0; i < n; i++) {
                all[i] = i;
            }
            if (n > 0) {
                runs.add(blocks(entries, all, min));
            }
            return runs;
        }
        // by first sighting, to cut spans; each span is then sorted by key
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Long.compare(entries.firstSeen[a], entries.firstSeen[b]));
        int from = 0;
        while (from < n) {
            long base = entries.firstSeen[order[from]];
            int to = from;
            while (to < n && entries.firstSeen[order[to]] - base <= MAX_SPAN_MS) {
                to++;
            }
            int[] span = new int[to - from];
            for (int i = 0; i < span.length; i++) {
                span[i] = order[from + i];
            }
            runs.add(blocks(entries, span, base));
            from = to;
        }
        return runs;
    }

    /** The blocks of one run: the entries {@code span} (indexes into {@code entries}), sorted by key here. */
    private static List<byte[]> blocks(Entries entries, int[] span, long base) {
        sortByKey(entries, span, 0, span.length - 1);
        List<byte[]> blocks = new ArrayList<>((span.length + BLOCK_RECORDS - 1) / BLOCK_RECORDS);
        for (int start = 0; start < span.length; start += BLOCK_RECORDS) {
            int count = Math.min(BLOCK_RECORDS, span.length - start);
            byte[] block = new byte[HEADER_BYTES + count * RECORD_BYTES];
            LONGS.set(block, 0, base);
            for (int r = 0; r < count; r++) {
                int e = span[start + r];
                int at = HEADER_BYTES + r * RECORD_BYTES;
                LONGS.set(block, at, entries.hi[e]);
                LONGS.set(block, at + 8, entries.lo[e]);
                INTS.set(block, at + 16, (int) (entries.fingerprint[e] >>> 32));
                long offset = entries.firstSeen[e] - base;
                block[at + 20] = (byte) (offset >>> 16);
                block[at + 21] = (byte) (offset >>> 8);
                block[at + 22] = (byte) offset;
            }
            blocks.add(block);
        }
        return blocks;
    }

    /** Quicksort of the indexes {@code idx[low..high]} by their entries' keys (unsigned), no boxing. */
    private static void sortByKey(Entries e, int[] idx, int low, int high) {
        while (high - low > 16) {
            int mid = (low + high) >>> 1;
            long pivotHi = e.hi[idx[mid]];
            long pivotLo = e.lo[idx[mid]];
            int i = low;
            int j = high;
            while (i <= j) {
                while (compareKeys(e.hi[idx[i]], e.lo[idx[i]], pivotHi, pivotLo) < 0) {
                    i++;
                }
                while (compareKeys(e.hi[idx[j]], e.lo[idx[j]], pivotHi, pivotLo) > 0) {
                    j--;
                }
                if (i <= j) {
                    int t = idx[i];
                    idx[i++] = idx[j];
                    idx[j--] = t;
                }
            }
            if (j - low < high - i) {  // recurse into the smaller part, loop on the larger
                sortByKey(e, idx, low, j);
                low = i;
            } else {
                sortByKey(e, idx, i, high);
                high = j;
            }
        }
        for (int i = low + 1; i <= high; i++) {  // insertion sort of what is left
            int x = idx[i];
            int j = i - 1;
            while (j >= low && compareKeys(e.hi[idx[j]], e.lo[idx[j]], e.hi[x], e.lo[x]) > 0) {
                idx[j + 1] = idx[j];
                j--;
            }
            idx[j + 1] = x;
        }
    }

    /** Unsigned order of 128-bit keys (the order {@link #find} searches). */
    static int compareKeys(long hiA, long loA, long hiB, long loB) {
        int c = Long.compareUnsigned(hiA, hiB);
        return c != 0 ? c : Long.compareUnsigned(loA, loB);
    }

    public static int records(byte[] block) {
        return (block.length - HEADER_BYTES) / RECORD_BYTES;
    }

    public static long keyHi(byte[] block, int record) {
        return (long) LONGS.get(block, HEADER_BYTES + record * RECORD_BYTES);
    }

    public static long keyLo(byte[] block, int record) {
        return (long) LONGS.get(block, HEADER_BYTES + record * RECORD_BYTES + 8);
    }

    /** The first 32 bits of the first copy's 64-bit fingerprint. */
    public static int fingerprint32(byte[] block, int record) {
        return (int) INTS.get(block, HEADER_BYTES + record * RECORD_BYTES + 16);
    }

    public static long firstSeen(byte[] block, int record) {
        int at = HEADER_BYTES + record * RECORD_BYTES + 20;
        long offset = ((block[at] & 0xFFL) << 16) | ((block[at + 1] & 0xFFL) << 8) | (block[at + 2] & 0xFFL);
        return (long) LONGS.get(block, 0) + offset;
    }

    /** The record of the key in the block, or -1 (binary search). */
    public static int find(byte[] block, long keyHi, long keyLo) {
        int low = 0;
        int high = records(block) - 1;
        while (low <= high) {
            int mid = (low + high) >>> 1;
            int c = compareKeys(keyHi(block, mid), keyLo(block, mid), keyHi, keyLo);
            if (c < 0) {
                low = mid + 1;
            } else if (c > 0) {
                high = mid - 1;
            } else {
                return mid;
            }
        }
        return -1;
    }
}
