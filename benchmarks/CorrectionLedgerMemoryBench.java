// Heap and checkpoint bytes per event of the correction ledger (io.meterstream.corrections.CorrectionLedger), the
// state `--corrections` adds beside the dedup memory for the correction horizon. Not a test; prints figures.
// java -Xmx8g -cp ".cache/jars/engine/meterstream-engine.jar:.venv/lib/python3.11/site-packages/pyflink/lib/*" \
//     benchmarks/CorrectionLedgerMemoryBench.java [events, default 1000000]
// Events come as UsageRouting gives them: by their series' 128-bit hash, the strings (customer, meter, group JSON)
// decoded from the row only when the ledger has not met the series; a value of DECIMAL(38,18) scale; no unique
// value (a sum meter); 20,000 series. Heap: used memory after full GCs, before and
// after filling; checkpoint: the bytes the ledger writes into the raw keyed state (all key groups), and how long
// writing them takes (the synchronous part of a checkpoint, single-threaded; median of five snapshots); the time
// to remember one event (the per-event cost on the routing operator's hot path).
import io.meterstream.corrections.CorrectionLedger;
import java.math.BigDecimal;
import org.apache.flink.core.memory.DataOutputSerializer;

public class CorrectionLedgerMemoryBench {
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
        long hour = 3_600_000L;
        CorrectionLedger ledger = new CorrectionLedger(60_000L, 24 * hour, 35 * 24 * hour);
        long before = used();
        long now = 1_795_500_000_000L;
        java.util.SplittableRandom rng = new java.util.SplittableRandom(42);
        long observeNanos = 0;
        for (int i = 0; i < n; i++) {
            int customer = rng.nextInt(10_000);
            boolean large = rng.nextBoolean();
            BigDecimal value = BigDecimal.valueOf(rng.nextInt(1, 100_000)).setScale(18);
            long eventTime = now - rng.nextInt(600_000);
            long series = customer * 2L + (large ? 1 : 0);
            long hi = rng.nextLong();
            long lo = rng.nextLong();
            long start = System.nanoTime();
            ledger.observeEvent(hi, lo, now, series * 0x9E3779B97F4A7C15L, ~series, () -> new String[] {
                "cust-" + String.format("%05d", customer), "input_tokens",
                "{\"model\":\"nova-" + (large ? "large" : "small") + "\"}"}, eventTime, value, value.scale(), null);
            observeNanos += System.nanoTime() - start;
        }
        long after = used();
        DataOutputSerializer out = new DataOutputSerializer(1 << 20);
        long written = 0;
        long[] snapshotNanos = new long[5];  // the synchronous part of a checkpoint: prepare, then every key group
        for (int round = 0; round < snapshotNanos.length; round++) {
            long start = System.nanoTime();
            ledger.prepareSnapshot(now, hi -> (int) ((hi >>> 1) % 128));
            written = 0;
            for (int keyGroup = 0; keyGroup < 128; keyGroup++) {
                out.clear();
                ledger.write(out, keyGroup);
                written += out.length();
            }
            snapshotNanos[round] = System.nanoTime() - start;
        }
        java.util.Arrays.sort(snapshotNanos);
        System.out.printf("events %,d  ledger keys %,d%n", n, ledger.size());
        System.out.printf("heap bytes per event        %.1f%n", (after - before) / (double) n);
        System.out.printf("checkpoint bytes per event  %.1f%n", written / (double) n);
        System.out.printf("observe ns per event        %.0f%n", observeNanos / (double) n);
        System.out.printf("snapshot ms (median of %d)   %.0f  (%.0f ns per event)%n", snapshotNanos.length,
                snapshotNanos[snapshotNanos.length / 2] / 1e6, snapshotNanos[snapshotNanos.length / 2] / (double) n);
        System.out.printf("(the design's slot layout in udfs/corrections.py: ~80 B per event)%n");
    }

    private static long used() throws InterruptedException {
        Runtime runtime = Runtime.getRuntime();
        for (int i = 0; i < 5; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return runtime.totalMemory() - runtime.freeMemory();
    }
}
