"""Catch-up throughput of the billing job against a bare Flink SQL ceiling, on the same pre-filled Kafka topic.

    .venv/bin/python benchmarks/billing_throughput.py                    # 5M events, local broker
    .venv/bin/python benchmarks/billing_throughput.py --events 200000    # smoke run
    .venv/bin/python benchmarks/billing_throughput.py --skip-billing     # the ceiling only

Steps: start a local broker (or use `--bootstrap`), create fresh topics (input with 2 partitions), generate the
workload (`meterstream.workload`) into one file per partition, produce it, then run (a) the ceiling: a bare
Flink SQL dedup + 1-minute TUMBLE SUM/COUNT into `blackhole`, and (b) the billing job (`python -m jobs.billing
--bounded`), each in its own process tree whose RSS is sampled from /proc every 0.5 s. Results go to
`benchmarks/results/billing_throughput-<timestamp>.json` and `benchmarks/results/latest.json`; see README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(ROOT))

from meterstream.workload import GroundTruth, WorkloadSpec, iter_workload  # noqa: E402

RESULTS_DIR = ROOT / "benchmarks" / "results"
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_RATIO_TO_CEILING = 0.7
BENCH_METERS = ("input_tokens", "requests", "gpu_seconds", "seats")  # the 4 meters every example tenant has
BENCH_START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

# --------------------------------------------------------------------------------------------------------------
# (a) the ceiling: what Flink SQL alone does with the same topic (run in a child process: `_ceiling`)
# --------------------------------------------------------------------------------------------------------------

# Event time from either timestamp spelling, cheaply. Simplification (documented in README.md): RFC 3339 is read
# as the generator writes it, `yyyy-MM-ddTHH:mm:ss.SSS` + `Z`|`+hh:mm`|`-hh:mm` (exactly 3 fraction digits);
# other spellings become NULL and are filtered out, as are rows the JSON format could not parse.
_EPOCH_MS_EXPR = """CASE WHEN POSITION('T' IN `timestamp`) = 11 THEN
      UNIX_TIMESTAMP(SUBSTRING(`timestamp` FROM 1 FOR 19), 'yyyy-MM-dd''T''HH:mm:ss') * 1000
      + TRY_CAST(SUBSTRING(`timestamp` FROM 21 FOR 3) AS INT)
      - CASE WHEN SUBSTRING(`timestamp` FROM 24) = 'Z' THEN 0
             ELSE (CASE WHEN SUBSTRING(`timestamp` FROM 24 FOR 1) = '-' THEN -1 ELSE 1 END)
                  * (TRY_CAST(SUBSTRING(`timestamp` FROM 25 FOR 2) AS INT) * 3600
                     + TRY_CAST(SUBSTRING(`timestamp` FROM 28 FOR 2) AS INT) * 60) * 1000
        END
    ELSE TRY_CAST(`timestamp` AS BIGINT) END"""


def ceiling_statements(*, topic: str, bootstrap: str, group_id: str, out_of_orderness_s: int = 10) -> list[str]:
    source = f"""
CREATE TABLE usage_raw (
  event_id STRING,
  tenant_id STRING,
  customer_id STRING,
  meter STRING,
  `timestamp` STRING,
  `value` STRING,
  ts_ms AS {_EPOCH_MS_EXPR},
  rt AS TO_TIMESTAMP_LTZ({_EPOCH_MS_EXPR}, 3),
  pt AS PROCTIME(),
  WATERMARK FOR rt AS rt - INTERVAL '{out_of_orderness_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '{topic}',
  'properties.bootstrap.servers' = '{bootstrap}',
  'properties.group.id' = '{group_id}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
)"""
    valid = """
CREATE TEMPORARY VIEW usage_valid AS
SELECT tenant_id, event_id, customer_id, meter, TRY_CAST(`value` AS DECIMAL(38, 18)) AS v, rt, pt
FROM usage_raw
WHERE tenant_id IS NOT NULL AND event_id IS NOT NULL AND customer_id IS NOT NULL AND meter IS NOT NULL
  AND ts_ms >= 0"""
    dedup = """
CREATE TEMPORARY VIEW usage_first AS
SELECT tenant_id, customer_id, meter, v, rt FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant_id, event_id ORDER BY pt ASC) AS rn FROM usage_valid
) WHERE rn = 1"""
    sink = """
CREATE TABLE window_sink (
  tenant_id STRING, customer_id STRING, meter STRING,
  window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DECIMAL(38, 18), events BIGINT
) WITH ('connector' = 'blackhole')"""
    insert = """
INSERT INTO window_sink
SELECT tenant_id, customer_id, meter, window_start, window_end, SUM(v), COUNT(*)
FROM TABLE(TUMBLE(TABLE usage_first, DESCRIPTOR(rt), INTERVAL '1' MINUTE))
GROUP BY tenant_id, customer_id, meter, window_start, window_end"""
    return [source, valid, dedup, sink, insert]


def run_ceiling_job(bootstrap: str, topic: str, parallelism: int) -> None:
    """Child-process entry: run the ceiling job to its end, print one JSON line with the job's own timing."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from jobs.runtime import start_local_jvm
    from meterstream.jars import kafka_connector_jar

    start_local_jvm()  # the same JVM options as the billing job's local runs: the comparison is of the jobs alone
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("parallelism.default", str(parallelism))
    config.set("table.local-time-zone", "UTC")
    config.set("pipeline.jars", kafka_connector_jar().as_uri())
    config.set("pipeline.name", "meterstream-ceiling")
    *ddl, insert = ceiling_statements(topic=topic, bootstrap=bootstrap, group_id=f"ceiling-{topic}")
    for statement in ddl:
        t_env.execute_sql(statement)
    submitted = time.monotonic()
    t_env.execute_sql(insert).wait()
    print(json.dumps({"ceiling_job_seconds": time.monotonic() - submitted}), flush=True)


# --------------------------------------------------------------------------------------------------------------
# producing the workload
# --------------------------------------------------------------------------------------------------------------

# A Java producer, run with the JDK's single-file source launcher against the broker's own kafka-clients jar:
# kafka-python tops out near 50k records/s per process here, this at several hundred thousand.
_JAVA_PRODUCER = r"""
import java.io.*;
import java.util.*;
import java.util.concurrent.atomic.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class FastProduce {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], topic = args[1], compression = args[2];
    Properties props = new Properties();
    props.put("bootstrap.servers", bootstrap);
    props.put("acks", "all");
    props.put("enable.idempotence", "true");  // retries keep per-partition order
    props.put("linger.ms", "20");
    props.put("batch.size", String.valueOf(1 << 20));
    props.put("buffer.memory", String.valueOf(256L << 20));
    props.put("max.request.size", String.valueOf(16 << 20));
    props.put("compression.type", compression);
    AtomicLong errors = new AtomicLong();
    AtomicReference<Exception> firstError = new AtomicReference<>();
    Callback callback = (metadata, exception) -> {
      if (exception != null) { errors.incrementAndGet(); firstError.compareAndSet(null, exception); }
    };
    long sent = 0;
    try (KafkaProducer<byte[], byte[]> producer =
             new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (int i = 3; i < args.length; i++) {
        int partition = i - 3;
        try (InputStream in = new BufferedInputStream(new FileInputStream(args[i]), 1 << 22)) {
          byte[] chunk = new byte[1 << 22];
          ByteArrayOutputStream line = new ByteArrayOutputStream(1024);
          int n;
          while ((n = in.read(chunk)) != -1) {
            int from = 0;
            for (int j = 0; j < n; j++) {
              if (chunk[j] == '\n') {
                line.write(chunk, from, j - from);
                producer.send(new ProducerRecord<>(topic, partition, null, line.toByteArray()), callback);
                line.reset();
                sent++;
                from = j + 1;
              }
            }
            line.write(chunk, from, n - from);
          }
        }
      }
      producer.flush();
    }
    System.out.println("{\"sent\": " + sent + ", \"errors\": " + errors.get() + "}");
    if (errors.get() > 0) { firstError.get().printStackTrace(); System.exit(1); }
  }
}
"""


def produce_java(bootstrap: str, topic: str, files: list[Path], compression: str, workdir: Path) -> None:
    from meterstream.jars import kafka_broker_classpath

    source = workdir / "FastProduce.java"
    source.write_text(_JAVA_PRODUCER)
    java = shutil.which("java") or "java"
    cmd = [java, "-Xmx1g", "-cp", kafka_broker_classpath(), str(source), bootstrap, topic, compression,
           *map(str, files)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the Java producer failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")


def _fast_crc32c() -> None:
    """kafka-python computes CRC-32C in pure Python unless the `crc32c` package is installed (~0.1 s per MB, the
    producer's main cost). crcmod's C extension (installed with apache-beam) computes the same checksum."""
    try:
        import crcmod.predefined
        import kafka.record.default_records as default_records
    except ImportError:
        return
    crc = crcmod.predefined.mkCrcFun("crc-32c")
    default_records.calc_crc32c = lambda view: crc(bytes(view))


def _produce_python_file(bootstrap: str, topic: str, path: str, partition: int, compression: str) -> None:
    from kafka import KafkaProducer

    _fast_crc32c()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=50, batch_size=1 << 20, max_request_size=16 << 20,
        compression_type=None if compression == "none" else compression,
    )
    try:
        with open(path, "rb") as source:
            for line in source:
                producer.send(topic, value=line[:-1], partition=partition)
        producer.flush()
    finally:
        producer.close()


def produce_python(bootstrap: str, topic: str, files: list[Path], compression: str) -> None:
    """One process per partition file (forked), each with its own kafka-python producer."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_produce_python_file, args=(bootstrap, topic, str(path), partition, compression))
        for partition, path in enumerate(files)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"kafka-python producer processes failed with exit codes {failed}")


def topic_end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def last_committed_append_ms(bootstrap: str, topic: str, *, tail: int = 500, timeout_s: float = 20.0) -> int | None:
    """Max broker append time (the topic uses LogAppendTime) among the last committed records of each partition."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed", check_crcs=False,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return None
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(0, ends[tp] - tail))
        latest = None
        deadline = time.monotonic() + timeout_s
        idle_polls = 0
        while time.monotonic() < deadline and idle_polls < 3:
            batches = consumer.poll(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    latest = record.timestamp if latest is None else max(latest, record.timestamp)
            # Transaction markers hold offsets that return no record: stop at the end or when nothing comes.
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
            idle_polls = 0 if batches else idle_polls + 1
        return latest
    finally:
        consumer.close()


def create_bench_topics(bootstrap: str, usage_topic: str, outputs: dict[str, str], partitions: int) -> None:
    from kafka.admin import NewTopic

    from meterstream.topics import admin_client

    admin = admin_client(bootstrap)
    try:
        topics = [NewTopic(usage_topic, partitions, 1)]
        for role, name in outputs.items():
            # LogAppendTime on line items: the broker stamps arrival, so the last record tells when output ended.
            configs = {"message.timestamp.type": "LogAppendTime"} if role == "line_items" else {}
            topics.append(NewTopic(name, partitions, 1, topic_configs=configs))
        admin.create_topics(topics)
    finally:
        admin.close()


# --------------------------------------------------------------------------------------------------------------
# measuring a process tree
# --------------------------------------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, rss bytes) for every readable process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rfind(b")") + 2:].split()  # after "pid (comm) ": state, ppid, ..., rss is the 22nd
        table[int(entry.name)] = (int(fields[1]), int(fields[21]) * _PAGE)
    return table


def tree_rss_bytes(root: int) -> int:
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


class RssSampler(threading.Thread):
    """Peak RSS of a process and all its descendants (the Python client and its JVM), sampled every interval."""

    def __init__(self, root_pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.peak_bytes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with contextlib.suppress(Exception):  # a process may vanish between listing and reading
                self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self.root_pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return round(self.peak_bytes / 2**20, 1)


def run_measured(cmd: list[str], log_path: Path, *, timeout_s: float) -> tuple[int, float, float, str]:
    """Run cmd with its output in log_path; returns (exit code, wall seconds, peak tree RSS MB, stdout+err)."""
    with open(log_path, "w") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # The whole group: the client, its JVM and any Python workers; all started by us for this run.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            code = proc.wait()
        wall = time.monotonic() - started
        peak = sampler.stop()
    return code, wall, peak, log_path.read_text(errors="replace")


# --------------------------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------------------------


def machine() -> dict:
    memory_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "java": java[0] if java else None,
        "platform": platform.platform(),
        # Other work on the machine skews every figure: a 1-minute load above ~0.5 before a stage means noise.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def accounting_mismatches(accounting: dict[str, int], truth: dict) -> dict[str, tuple[int | None, int]]:
    """{label: (job's count, generator's intended count)} where the job's accounting table differs from the
    workload's ground truth; empty when every record is accounted for as generated."""
    same_payload = truth["intended_duplicates"] - truth["intended_conflicting_duplicates"]
    expected = {
        "records in the input (offsets)": truth["records"],
        "dead-lettered": truth["intended_malformed"],
        **truth["malformed_by_reason"],
        "duplicates (same payload)": same_payload,
        "duplicates (conflicting)": truth["intended_conflicting_duplicates"],
        "billed on time (windowed)": truth["on_time"],
        "billed late (adjustments)": truth["intended_late"],
    }
    return {label: (accounting.get(label), want) for label, want in expected.items() if accounting.get(label) != want}


def parse_accounting(output: str) -> dict[str, int]:
    """The billing job's accounting table (`label   1,234` lines) as {label: count}; empty if not printed."""
    counts = {}
    for line in output.splitlines():
        match = re.fullmatch(r"(\S.*?\S|\s+\S.*?\S)\s{2,}([0-9][0-9,]*)", line.rstrip())
        if match:
            counts[match.group(1).strip()] = int(match.group(2).replace(",", ""))
    return counts


def workload_spec(args: argparse.Namespace) -> WorkloadSpec:
    tenants = tuple(args.tenants.split(",")) if args.tenants else None
    tenant_count = len(tenants) if tenants else 3
    return WorkloadSpec(
        seed=args.seed,
        events=args.events,
        tenants=tenants,
        customers_per_tenant=-(-args.customers // tenant_count),
        meters=tuple(args.meters.split(",")),
        start=BENCH_START,
        duration=timedelta(minutes=args.duration_minutes),
        duplicate_rate=0.05,
        late_rate=0.01,
        malformed_rate=0.01,
        catalog_path=Path(args.catalog).resolve(),
    )


def write_partition_files(spec: WorkloadSpec, partitions: int, workdir: Path) -> tuple[list[Path], GroundTruth]:
    """Stream the workload into one file per Kafka partition (all copies of an event share one partition)."""
    files = [workdir / f"partition-{p}.jsonl" for p in range(partitions)]
    truth = GroundTruth()
    handles = [open(path, "wb", buffering=1 << 22) for path in files]  # noqa: SIM115 - closed below
    try:
        writers = [h.write for h in handles]
        for _, record, key, _ in iter_workload(spec, truth=truth):
            writers[key % partitions](record + b"\n")
    finally:
        for handle in handles:
            handle.close()
    return files, truth


def output_counts(bootstrap: str, topics: dict[str, str]) -> dict:
    """What the billing run wrote that the throughput depends on (line items, invoices, distinct series), and
    whether its invoices are exact against its line items (`meterstream.invoice_checks`)."""
    from meterstream.invoice_checks import invoice_problems
    from meterstream.topics import read_committed

    lines = [json.loads(v) for v in read_committed(bootstrap, topics["line_items"])]
    invoices = [json.loads(v) for v in read_committed(bootstrap, topics["invoices"])]
    _, problems = invoice_problems(invoices, lines)
    kinds: dict[str, int] = {}
    for line in lines:
        kinds[line["kind"]] = kinds.get(line["kind"], 0) + 1
    series = {(li["tenant_id"], li["customer_id"], li["meter"], json.dumps(li["group"], sort_keys=True))
              for li in lines}
    return {"line_items": len(lines), "line_items_by_kind": kinds, "series": len(series),
            "invoices": len(invoices), "invoice_problems": len(problems), "invoice_problem_examples": problems[:3]}


def billing_command(args: argparse.Namespace, bootstrap: str, topics: dict[str, str], reference: datetime) -> list:
    return [
        sys.executable, "-m", "jobs.billing",
        "--bootstrap", bootstrap,
        "--catalog", args.catalog,
        "--bounded",
        "--parallelism", str(args.parallelism),
        "--topic-usage-events", topics["usage_events"],
        "--topic-dead-letters", topics["dead_letters"],
        "--topic-late-events", topics["late_events"],
        "--topic-line-items", topics["line_items"],
        "--topic-accounting", topics["accounting"],
        "--topic-invoices", topics["invoices"],
        "--reference-time", reference.isoformat().replace("+00:00", "Z"),
        *args.job_arg,
    ]


def _rate(events: int, seconds: float | None) -> float | None:
    return round(events / seconds, 1) if seconds else None


def run_benchmark(args: argparse.Namespace) -> dict:
    from meterstream import kafka_local

    started_at = datetime.now(UTC)
    tag = started_at.strftime("%Y%m%dT%H%M%SZ")
    spec = workload_spec(args)
    result: dict = {
        "benchmark": "billing_throughput",
        "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "machine": machine(),
        "events": args.events,
        "parallelism": args.parallelism,
        "partitions": args.partitions,
    }
    broker = None
    bootstrap = args.bootstrap
    workdir = Path(tempfile.mkdtemp(prefix="meterstream-bench-"))
    from meterstream.paths import var_dir

    logs = var_dir() / "bench-logs"  # git-ignored: the JSON results are the record, the logs are for debugging
    logs.mkdir(parents=True, exist_ok=True)
    try:
        if bootstrap is None:
            print("[bench] starting a local Kafka broker ...", flush=True)
            broker = kafka_local.start_broker(heap="-Xms512m -Xmx2g")
            bootstrap = broker.bootstrap_servers
        topics = {
            "usage_events": f"bench-usage-events-{tag}",
            "dead_letters": f"bench-dead-letters-{tag}",
            "late_events": f"bench-late-events-{tag}",
            "line_items": f"bench-line-items-{tag}",
            "accounting": f"bench-accounting-{tag}",
            "invoices": f"bench-invoices-{tag}",
        }
        create_bench_topics(bootstrap, topics["usage_events"],
                            {k: v for k, v in topics.items() if k != "usage_events"}, args.partitions)
        result["topics"] = topics

        print(f"[bench] generating {args.events:,} events ...", flush=True)
        t0 = time.monotonic()
        files, truth = write_partition_files(spec, args.partitions, workdir)
        generate_seconds = time.monotonic() - t0
        reference = truth.reference_time(spec)
        result["workload"] = {
            "seed": spec.seed,
            "tenants": list(spec.tenants) if spec.tenants else "all",
            "customers_per_tenant": spec.customers_per_tenant,
            "meters": list(spec.meters or ()),
            "start": spec.start.isoformat(),
            "duration_seconds": spec.duration.total_seconds(),
            "bytes": sum(path.stat().st_size for path in files),
            "ground_truth": {**asdict(truth), "first_seen": truth.first_seen, "valid": truth.valid},
            "reference_time": reference.isoformat().replace("+00:00", "Z"),
            "generate_seconds": round(generate_seconds, 2),
        }

        producer = args.producer
        if producer == "auto":
            producer = "java" if shutil.which("javac") else "python"
        print(f"[bench] producing with the {producer} producer ...", flush=True)
        t0 = time.monotonic()
        if producer == "java":
            produce_java(bootstrap, topics["usage_events"], files, args.compression, workdir)
        else:
            produce_python(bootstrap, topics["usage_events"], files, args.compression)
        produce_seconds = time.monotonic() - t0
        in_topic = sum(topic_end_offsets(bootstrap, topics["usage_events"]).values())
        if in_topic != args.events:
            raise RuntimeError(f"the input topic holds {in_topic} records, expected {args.events}")
        result["produce"] = {
            "producer": producer,
            "compression": args.compression,
            "seconds": round(produce_seconds, 2),
            "events_per_second": _rate(args.events, produce_seconds),
        }
        print(f"[bench] produced {args.events:,} in {produce_seconds:.1f} s", flush=True)

        result["ceiling"] = None
        if not args.skip_ceiling:
            print("[bench] (a) ceiling: bare Flink SQL dedup + TUMBLE ...", flush=True)
            load = os.getloadavg()
            cmd = [sys.executable, str(Path(__file__).resolve()), "_ceiling", "--bootstrap", bootstrap,
                   "--topic", topics["usage_events"], "--parallelism", str(args.parallelism)]
            code, wall, peak, output = run_measured(cmd, logs / f"ceiling-{tag}.log", timeout_s=args.timeout)
            job_seconds = next((json.loads(line)["ceiling_job_seconds"] for line in output.splitlines()
                                if line.startswith('{"ceiling_job_seconds"')), None)
            result["ceiling"] = {
                "ok": code == 0 and job_seconds is not None,
                "exit_code": code,
                "seconds": round(job_seconds, 2) if job_seconds else None,
                "events_per_second": _rate(args.events, job_seconds),
                "process_seconds": round(wall, 2),
                "peak_rss_mb": peak,
                "load_average_before": [round(x, 2) for x in load],
                "log": str(logs / f"ceiling-{tag}.log"),
            }

        result["billing"] = None
        if not args.skip_billing:
            print("[bench] (b) billing job ...", flush=True)
            load = os.getloadavg()
            cmd = billing_command(args, bootstrap, topics, reference)
            started_epoch = time.time()
            code, wall, peak, output = run_measured(cmd, logs / f"billing-{tag}.log", timeout_s=args.timeout)
            match = re.search(r"finished in ([0-9.]+) s", output)
            job_seconds = float(match.group(1)) if match else None
            last_append = None
            with contextlib.suppress(Exception):
                last_append = last_committed_append_ms(bootstrap, topics["line_items"])
            accounting = parse_accounting(output)
            outputs = output_counts(bootstrap, topics) if code == 0 else {}
            result["billing"] = {
                "ok": code == 0 and job_seconds is not None,
                "exit_code": code,
                "command": cmd,
                "seconds": job_seconds,
                "events_per_second": _rate(args.events, job_seconds),
                "process_seconds": round(wall, 2),
                "process_events_per_second": _rate(args.events, wall),
                "time_to_last_line_item_seconds": (
                    round(last_append / 1000 - started_epoch, 2) if last_append is not None else None
                ),
                "peak_rss_mb": peak,
                "load_average_before": [round(x, 2) for x in load],
                "accounting": accounting,
                "outputs": outputs,
                "accounting_mismatches": {
                    label: list(pair) for label, pair in
                    accounting_mismatches(accounting, result["workload"]["ground_truth"]).items()
                },
                "log": str(logs / f"billing-{tag}.log"),
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if broker is not None and not args.keep_broker:
            kafka_local.stop_broker(broker, remove_data=True)
        elif broker is not None:
            print(f"[bench] broker left running at {broker.bootstrap_servers} (pid {broker.pid})")

    ceiling, billing = result.get("ceiling"), result.get("billing")
    ceiling_rate = ceiling["events_per_second"] if ceiling else None
    billing_rate = billing["events_per_second"] if billing else None
    ratio = round(billing_rate / ceiling_rate, 3) if billing_rate and ceiling_rate else None
    result["ratio_billing_to_ceiling"] = ratio
    result["targets"] = {
        "min_events_per_second": TARGET_EVENTS_PER_SECOND,
        "min_ratio_to_ceiling": TARGET_RATIO_TO_CEILING,
        "billing_meets_throughput": None if billing_rate is None else billing_rate >= TARGET_EVENTS_PER_SECOND,
        "billing_meets_ratio": None if ratio is None else ratio >= TARGET_RATIO_TO_CEILING,
    }
    return result


def print_table(result: dict) -> None:
    def fmt(value: object, spec: str = ",.0f") -> str:
        return "-" if value is None else format(value, spec) if isinstance(value, int | float) else str(value)

    produce = result.get("produce") or {}
    rows = [("produce", produce.get("seconds"), produce.get("events_per_second"), None)]
    for name in ("ceiling", "billing"):
        part = result.get(name) or {}
        rows.append((name, part.get("seconds"), part.get("events_per_second"), part.get("peak_rss_mb")))
    machine_info = result["machine"]
    print(f"\nbilling_throughput: {result['events']:,} events, parallelism {result['parallelism']}, "
          f"{machine_info['nproc']} CPUs, {machine_info['memory_gb']} GB")
    print(f"{'stage':10s} {'seconds':>10s} {'events/s':>12s} {'peak RSS MB':>12s}")
    for name, seconds, rate, rss in rows:
        print(f"{name:10s} {fmt(seconds, '.1f'):>10s} {fmt(rate):>12s} {fmt(rss, ',.0f'):>12s}")
    billing = result.get("billing") or {}
    if billing.get("time_to_last_line_item_seconds") is not None:
        print(f"billing: last line item committed {billing['time_to_last_line_item_seconds']:.1f} s after launch "
              f"(process wall time {billing['process_seconds']:.1f} s)")
    if billing.get("accounting_mismatches") is not None:
        mismatches = billing["accounting_mismatches"]
        print("billing: accounting matches the workload's ground truth" if not mismatches
              else f"billing: ACCOUNTING DIFFERS from the ground truth (job, intended): {mismatches}")
    targets = result["targets"]
    print(f"ratio billing/ceiling: {fmt(result['ratio_billing_to_ceiling'], '.2f')}   "
          f"target >= {targets['min_events_per_second']:,} ev/s: {targets['billing_meets_throughput']}   "
          f"target >= {targets['min_ratio_to_ceiling']}x ceiling: {targets['billing_meets_ratio']}")


def write_results(result: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace(":", "").replace("-", "").split(".")[0]
    path = RESULTS_DIR / f"billing_throughput-{stamp}.json"
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    path.write_text(text)
    (RESULTS_DIR / "latest.json").write_text(text)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting a local one")
    parser.add_argument("--catalog", default="catalogs/example-genai.yaml")
    parser.add_argument("--customers", type=int, default=10_000, help="in total, spread evenly over the tenants")
    parser.add_argument("--tenants", default="", help="comma-separated; default: every catalog tenant")
    parser.add_argument("--meters", default=",".join(BENCH_METERS))
    parser.add_argument("--duration-minutes", type=float, default=10, help="event-time span of the workload")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--producer", choices=("auto", "java", "python"), default="auto")
    parser.add_argument("--compression", choices=("none", "lz4", "snappy", "zstd", "gzip"), default="none")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--job-arg", action="append", default=[],
                        help="extra billing job argument, repeatable: --job-arg=--checkpoint-interval-ms=60000")
    parser.add_argument("--skip-billing", action="store_true")
    parser.add_argument("--keep-broker", action="store_true", help="leave the started broker running")
    parser.add_argument("--timeout", type=float, default=3600, help="per Flink job, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_ceiling"]:  # child-process mode
        child = argparse.ArgumentParser()
        child.add_argument("--bootstrap", required=True)
        child.add_argument("--topic", required=True)
        child.add_argument("--parallelism", type=int, default=2)
        child_args = child.parse_args(argv[1:])
        run_ceiling_job(child_args.bootstrap, child_args.topic, child_args.parallelism)
        return 0
    args = parse_args(argv)
    os.chdir(ROOT)
    result = run_benchmark(args)
    path = write_results(result)
    print_table(result)
    print(f"results: {path} (and {RESULTS_DIR / 'latest.json'})")
    parts = [result.get(name) for name in ("ceiling", "billing")]
    return 0 if all(part is None or part["ok"] for part in parts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
