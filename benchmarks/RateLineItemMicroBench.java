// Single-thread cost of BILLING_LINE_ITEM_JAVA (io.meterstream.rating.RateLineItem) outside Flink. Not a test.
// .venv/bin/python -c "from udfs.catalog import load_catalog; from udfs.java_catalog import java_catalog_json; \
//     print(java_catalog_json(load_catalog('catalogs/example-genai.yaml')), end='')" > /tmp/java-catalog.json
// java -cp ".cache/jars/engine/meterstream-engine.jar:.venv/lib/python3.11/site-packages/pyflink/lib/*" \
//     benchmarks/RateLineItemMicroBench.java /tmp/java-catalog.json
import io.meterstream.rating.RateLineItem;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.flink.table.data.StringData;

public class RateLineItemMicroBench {
    public static void main(String[] args) throws Exception {
        StringData catalog = StringData.fromString(Files.readString(Path.of(args[0])));
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 1_000_000;
        // A mix like the benchmark's fired windows: tenants, meters, price models, groups changing per call.
        String[][] shapes = {
            {"acme-ai", "input_tokens", "{\"model\":\"nova-large\"}", "sum"},
            {"acme-ai", "input_tokens", "{\"model\":\"nova-small\"}", "sum"},
            {"acme-ai", "output_tokens", "{\"model\":\"other\"}", "sum"},
            {"acme-ai", "requests", "{}", "count"},
            {"bolt-ml", "input_tokens", "{\"model\":\"nova-large\"}", "sum"},
            {"bolt-ml", "gpu_seconds", "{\"gpu_type\":\"h100\"}", "sum"},
            {"cirrus-gpu", "seats", "{}", "max"},
            {"cirrus-gpu", "storage_gb", "{}", "last"},
        };
        RateLineItem f = new RateLineItem();
        long windowStart = 1_795_500_000_000L;
        long sink = 0;
        for (int round = 0; round < 5; round++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                String[] s = shapes[i & 7];
                BigDecimal window = BigDecimal.valueOf(1000 + (i % 997), 0).setScale(18);
                BigDecimal before = BigDecimal.valueOf(i % 3 == 0 ? 0 : 4_000_000L + i, 0).setScale(18);
                BigDecimal after = before.add(window);
                boolean last = "last".equals(s[3]);
                String lastKey = last ? String.format("%015d", windowStart + 5) + "evt-" + i + "\0" + after : null;
                String lastKeyBefore = last ? String.format("%015d", windowStart - 5) + "evt\0" + before : null;
                String json = f.eval(s[0], "cust-" + (i % 1000), s[1], s[2], s[3], windowStart + (i % 24) * 3_600_000L,
                        (long) (i % 50), window, lastKey, i % 3 == 0 ? null : before, after, lastKeyBefore,
                        catalog, 60_000L, 1_795_509_095_123L);
                sink += json.length();
            }
            long ns = System.nanoTime() - t0;
            System.out.printf("round %d: %,d calls, %.0f ns/call, %,.0f calls/s on one thread%n",
                    round, n, (double) ns / n, n * 1e9 / ns);
        }
        System.out.println("chars: " + sink);
    }
}
