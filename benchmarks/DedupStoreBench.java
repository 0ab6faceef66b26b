// Where the dedup memory could live (issue 18: measure before choosing): the per-id cost and bytes of today's heap
// tables against RocksDB (the store Flink's RocksDB backend uses, its JNI library from flink-dist) used directly as
// the dedup index. Not a test; prints figures and one JSON line.
// java -Xmx12g -cp ".cache/jars/engine/meterstream-engine.jar:.venv/lib/python3.11/site-packages/pyflink/lib/*" \
//     benchmarks/DedupStoreBench.java [ids, default 5000000] [rocksdb dir, default a temp dir] [--no-rocksdb]
//
// Workload: `ids` random 128-bit event keys (as HashedKey gives them), each looked up and recorded once, with 5 %
// re-sent copies of earlier ids (duplicates) interleaved, single-threaded, as the routing operator's hot path does.
// Heap: one DedupTable per 16-bit bucket (UsageRouting's layout); ns per record, and used heap after full GCs.
// RocksDB: key = the 16 key bytes, value = 8 bytes (fingerprint); a get then, for a new id, a put (WAL off, as
// Flink sets it); bloom filters of 10 bits per key, 256 MB block cache, 64 MB memtables, LZ4; every 330,000
// records (a 5 s checkpoint interval at 66k records/s) the memtable is flushed, as an incremental checkpoint does
// (its time is the synchronous-part equivalent, reported apart); at the end a full compaction, then the SST bytes
// per id on disk. Sealed (what UsageRouting runs since issue 18): the heap tables for recent ids, sealed per key group
// (128) every 4,096 ids into SealedDedup runs in a map of blocks (as the heap backend's map state holds them); ns per
// record, heap bytes per id for the index and tables (store apart), stored bytes per id. Figures are single runs on
// a noisy 2-core machine: +-10 %.
import io.meterstream.routing.DedupRuns;
import io.meterstream.routing.DedupTable;
import io.meterstream.routing.SealedDedup;
import io.meterstream.routing.UsageDedupKey;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.BloomFilter;
import org.rocksdb.CompressionType;
import org.rocksdb.FlushOptions;
import org.rocksdb.LRUCache;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.WriteOptions;

public class DedupStoreBench {
    static final long TTL = 35L * 24 * 3_600_000L;
    static final int CHECKPOINT_EVERY = 330_000;

    public static void main(String[] args) throws Exception {
        int ids = args.length > 0 ? Integer.parseInt(args[0]) : 5_000_000;
        Path dir = args.length > 1 ? Path.of(args[1]) : Files.createTempDirectory("dedup-store-bench");
        long[][] keys = workload(ids);
        String heap = heapTables(keys);
        String sealed = sealed(keys);
        String rocks = args.length > 2 && args[2].equals("--no-rocksdb") ? "null" : rocksDb(keys, dir);
        System.out.println("{\"benchmark\": \"dedup_store\", \"ids\": " + ids + ", \"records\": " + keys[0].length
                + ", \"heap_tables\": " + heap + ", \"sealed\": " + sealed + ", \"rocksdb\": " + rocks + "}");
    }

    /** hi, lo, fingerprint per record: every id once, 5 % copies of earlier ones interleaved. */
    static long[][] workload(int ids) {
        SplittableRandom rng = new SplittableRandom(42);
        int records = ids + ids / 20;
        long[] hi = new long[records], lo = new long[records], fp = new long[records];
        int made = 0;
        for (int r = 0; r < records; r++) {
            if (r > 0 && (r % 21 == 20 || made == ids)) {
                int earlier = rng.nextInt(r);  // a copy of any earlier record: a duplicate
                hi[r] = hi[earlier];
                lo[r] = lo[earlier];
                fp[r] = fp[earlier];
            } else {
                hi[r] = rng.nextLong();
                lo[r] = rng.nextLong();
                fp[r] = rng.nextLong();
                made++;
            }
        }
        return new long[][] {hi, lo, fp};
    }

    static String heapTables(long[][] k) {
        long before = used();
        byte[][] tables = new byte[UsageDedupKey.BUCKETS][];
        DedupTable.Lookup lookup = new DedupTable.Lookup();
        long now = 1_795_500_000_000L;
        int duplicates = 0;
        long start = System.nanoTime();
        for (int r = 0; r < k[0].length; r++) {
            int bucket = UsageDedupKey.bucket(k[0][r]);
            lookup.table = tables[bucket];
            DedupTable.recordFirst(lookup, k[0][r], k[1][r], k[2][r], now, TTL);
            tables[bucket] = lookup.table;
            duplicates += lookup.seenBefore ? 1 : 0;
        }
        double ns = (System.nanoTime() - start) / (double) k[0].length;
        long bytes = used() - before;
        int ids = k[0].length - duplicates;
        System.out.printf("heap tables: %.0f ns per record, %d duplicates, %.1f heap bytes per id%n", ns, duplicates,
                bytes / (double) ids);
        Arrays.fill(tables, null);
        return String.format("{\"ns_per_record\": %.0f, \"duplicates\": %d, \"heap_bytes_per_id\": %.1f}", ns,
                duplicates, bytes / (double) ids);
    }

    static String sealed(long[][] k) throws Exception {
        int keyGroups = 128;
        int[] keyGroupOf = new int[UsageDedupKey.BUCKETS];
        for (int b = 0; b < keyGroupOf.length; b++) {
            keyGroupOf[b] = KeyGroupRangeAssignment.assignToKeyGroup(b, keyGroups);
        }
        int[][] bucketsOf = new int[keyGroups][];
        for (int g = 0; g < keyGroups; g++) {
            int group = g;
            bucketsOf[g] = java.util.stream.IntStream.range(0, keyGroupOf.length).filter(b -> keyGroupOf[b] == group)
                    .toArray();
        }
        SealedDedup.InMemoryBlocks[] stores = new SealedDedup.InMemoryBlocks[keyGroups];
        SealedDedup[] sealed = new SealedDedup[keyGroups];
        for (int g = 0; g < keyGroups; g++) {
            stores[g] = new SealedDedup.InMemoryBlocks();
            sealed[g] = new SealedDedup();
        }
        long before = used();
        byte[][] tables = new byte[UsageDedupKey.BUCKETS][];
        int[] unsealed = new int[keyGroups];
        DedupTable.Lookup lookup = new DedupTable.Lookup();
        SealedDedup.Found found = new SealedDedup.Found();
        DedupRuns.Entries entries = new DedupRuns.Entries();
        long now = 1_795_500_000_000L;
        int duplicates = 0;
        long sealNanos = 0;
        long start = System.nanoTime();
        for (int r = 0; r < k[0].length; r++) {
            int bucket = UsageDedupKey.bucket(k[0][r]);
            int g = keyGroupOf[bucket];
            if (sealed[g].runs() > 0 && sealed[g].lookup(k[0][r], k[1][r], now, TTL, stores[g], found)) {
                duplicates++;
                continue;
            }
            lookup.table = tables[bucket];
            DedupTable.recordFirst(lookup, k[0][r], k[1][r], k[2][r], now, TTL);
            tables[bucket] = lookup.table;
            if (lookup.seenBefore) {
                duplicates++;
            } else if (++unsealed[g] >= 4096) {
                long s0 = System.nanoTime();
                entries.clear();
                for (int b : bucketsOf[g]) {
                    if (tables[b] != null) {
                        DedupTable.addLive(tables[b], now, TTL, entries);
                        tables[b] = null;
                    }
                }
                sealed[g].seal(entries, stores[g]);
                unsealed[g] = 0;
                sealNanos += System.nanoTime() - s0;
            }
        }
        double ns = (System.nanoTime() - start) / (double) k[0].length;
        int ids = k[0].length - duplicates;
        long stored = 0;
        long blocks = 0;
        long index = 0;
        long sealedIds = 0;
        for (int g = 0; g < keyGroups; g++) {
            blocks += stores[g].blocks.size();
            stored += stores[g].bytes();
            index += sealed[g].indexBytes();
            sealedIds += sealed[g].ids();
        }
        long heapWithStore = used() - before;
        Arrays.fill(tables, null);
        for (SealedDedup.InMemoryBlocks store : stores) {
            store.blocks.clear();
        }
        long heapWithoutStore = used() - before;
        System.out.printf("sealed: %.0f ns per record (sealing %.0f of it), %d duplicates, %.2f stored bytes per "
                + "sealed id (%d blocks, %d ids sealed), index %.1f bytes per sealed id, heap without the store %.1f "
                + "bytes per id (with it %.1f)%n", ns, sealNanos / (double) k[0].length, duplicates,
                stored / (double) sealedIds, blocks, sealedIds, index / (double) sealedIds,
                heapWithoutStore / (double) ids, heapWithStore / (double) ids);
        return String.format("{\"ns_per_record\": %.0f, \"sealing_ns_per_record\": %.0f, \"duplicates\": %d, "
                + "\"stored_bytes_per_sealed_id\": %.2f, \"blocks\": %d, \"index_bytes_per_sealed_id\": %.1f, "
                + "\"sealed_ids\": %d, \"heap_bytes_per_id_without_store\": %.1f, \"heap_bytes_per_id_with_store\": %.1f}",
                ns, sealNanos / (double) k[0].length, duplicates, stored / (double) sealedIds, blocks,
                index / (double) sealedIds, sealedIds,
                heapWithoutStore / (double) ids, heapWithStore / (double) ids);
    }

    static String rocksDb(long[][] k, Path dir) throws Exception {
        RocksDB.loadLibrary();
        try (LRUCache cache = new LRUCache(256L << 20);
             Options options = new Options().setCreateIfMissing(true)
                     .setWriteBufferSize(64L << 20)
                     .setCompressionType(CompressionType.LZ4_COMPRESSION)
                     .setTableFormatConfig(new BlockBasedTableConfig().setBlockCache(cache)
                             .setFilterPolicy(new BloomFilter(10, false)).setBlockSize(16 << 10));
             WriteOptions write = new WriteOptions().setDisableWAL(true);
             FlushOptions flush = new FlushOptions().setWaitForFlush(true);
             RocksDB db = RocksDB.open(options, dir.toString())) {
            byte[] key = new byte[16];
            byte[] value = new byte[8];
            ByteBuffer keyBuffer = ByteBuffer.wrap(key);
            ByteBuffer valueBuffer = ByteBuffer.wrap(value);
            int duplicates = 0;
            long flushNanos = 0;
            int flushes = 0;
            long start = System.nanoTime();
            for (int r = 0; r < k[0].length; r++) {
                keyBuffer.putLong(0, k[0][r]).putLong(8, k[1][r]);
                if (db.get(key) != null) {
                    duplicates++;
                } else {
                    valueBuffer.putLong(0, k[2][r]);
                    db.put(write, key, value);
                }
                if ((r + 1) % CHECKPOINT_EVERY == 0) {
                    long f = System.nanoTime();
                    db.flush(flush);
                    flushNanos += System.nanoTime() - f;
                    flushes++;
                }
            }
            double ns = (System.nanoTime() - start - flushNanos) / (double) k[0].length;
            db.flush(flush);
            long compactStart = System.nanoTime();
            db.compactRange();
            double compactS = (System.nanoTime() - compactStart) / 1e9;
            long sst = 0;
            try (var files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    if (p.toString().endsWith(".sst")) {
                        sst += Files.size(p);
                    }
                }
            }
            int ids = k[0].length - duplicates;
            double flushMs = flushes == 0 ? 0 : flushNanos / 1e6 / flushes;
            System.out.printf("rocksdb: %.0f ns per record (flushes apart), %d duplicates, flush per checkpoint "
                    + "interval %.0f ms (%d), full compaction %.1f s, %.1f SST bytes per id%n", ns, duplicates,
                    flushMs, flushes, compactS, sst / (double) ids);
            return String.format("{\"ns_per_record\": %.0f, \"duplicates\": %d, \"flush_ms_per_interval\": %.0f, "
                    + "\"flushes\": %d, \"compaction_seconds\": %.1f, \"sst_bytes_per_id\": %.1f}", ns, duplicates,
                    flushMs, flushes, compactS, sst / (double) ids);
        }
    }

    static long used() {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return rt.totalMemory() - rt.freeMemory();
    }
}
