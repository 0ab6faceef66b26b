// Heap and checkpoint bytes per event of the correction ledger (io.meterstream.corrections.CorrectionLedger), the
// state `--corrections` adds beside the dedup memory for the correction horizon. Not a test; prints figures.
// java -Xmx8g -cp ".cache/jars/engine/meterstream-engine.jar:.venv/lib/python3.11/site-packages/pyflink/lib/*" \
//     benchmarks/CorrectionLedgerMemoryBench.java [events, default 1000000]
// Each event gets its own strings, as in the job (UsageRouting copies them out of the row): customer, meter, group
// JSON; a value of DECIMAL(38,18) scale; no unique value (a sum meter). Heap: used memory after full GCs, before and
// after filling; checkpoint: the bytes the ledger writes into the raw keyed state (all key groups).
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
        for (int i = 0; i < n; i++) {
            String customer = new String("cust-" + String.format("%05d", rng.nextInt(10_000)));
            String meter = new String("input_tokens");
            String group = new String("{\"model\":\"nova-" + (rng.nextBoolean() ? "large" : "small") + "\"}");
            BigDecimal value = BigDecimal.valueOf(rng.nextInt(1, 100_000)).setScale(18);
            ledger.observeEvent(rng.nextLong(), rng.nextLong(), now, new CorrectionLedger.Version(customer, meter,
                    now - rng.nextInt(600_000), value, group, null));
        }
        long after = used();
        ledger.prepareSnapshot(now, hi -> (int) ((hi >>> 1) % 128));
        DataOutputSerializer out = new DataOutputSerializer(1 << 20);
        long written = 0;
        for (int keyGroup = 0; keyGroup < 128; keyGroup++) {
            out.clear();
            ledger.write(out, keyGroup);
            written += out.length();
        }
        System.out.printf("events %,d  ledger keys %,d%n", n, ledger.size());
        System.out.printf("heap bytes per event        %.1f%n", (after - before) / (double) n);
        System.out.printf("checkpoint bytes per event  %.1f%n", written / (double) n);
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
