// Single-thread cost of PARSE_USAGE_EVENT outside Flink (no source/sink/scheduling noise). Not a test.
// java -cp ".cache/jars/engine/meterstream-engine.jar:.venv/lib/python3.11/site-packages/pyflink/lib/*" \
//     benchmarks/ParseUdfMicroBench.java /tmp/meterstream-bench/events-1000000.jsonl "$(catalog json)"
import io.meterstream.validation.ParseUsageEvent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

public class ParseUdfMicroBench {
    public static void main(String[] args) throws Exception {
        List<String> lines = Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8);
        byte[][] payloads = lines.stream().map(l -> l.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
        StringData catalog = StringData.fromString(args[1]);
        ParseUsageEvent f = new ParseUsageEvent();
        long rejected = 0;
        for (int round = 0; round < 5; round++) {
            long t0 = System.nanoTime();
            for (byte[] p : payloads) {
                RowData r = f.eval(p, catalog, null, null, null);
                RowData again = f.eval(p, catalog, null, null, null); // the second call site (memo)
                if (!r.isNullAt(0) || again == null) {
                    rejected++;
                }
            }
            long ns = System.nanoTime() - t0;
            System.out.printf("round %d: %,d events, %.0f ns/event (2 calls each), %,.0f ev/s on one thread%n",
                    round, payloads.length, (double) ns / payloads.length, payloads.length * 1e9 / ns);
        }
        System.out.println("rejected (all rounds): " + rejected);
    }
}
