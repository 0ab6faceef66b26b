"""Catch-up throughput of the billing job against a bare Flink SQL ceiling, on the same pre-filled Kafka topic.

    .venv/bin/python benchmarks/billing_throughput.py                    # 5M events, local broker
    .venv/bin/python benchmarks/billing_throughput.py --events 200000    # smoke run
    .venv/bin/python benchmarks/billing_throughput.py --skip-billing     # the ceiling only

Steps: start a local broker (or use `--bootstrap`), create fresh topics (input with 2 partitions), generate the
workload (`meterstream.workload`) into one file per partition, produce it (then its corrections, `--correction-rate`,
to a `usage-corrections` topic), then run (a) the ceiling: a bare Flink SQL dedup + 1-minute TUMBLE SUM/COUNT into
`blackhole`, and (b) the billing job (`python -m jobs.billing --bounded`, with `--corrections` when there are any),
each in its own process tree whose RSS is sampled from /proc every 0.5 s; while (b) runs, its checkpoints' state
sizes per job vertex are read from the MiniCluster's REST API. Results go to
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
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(ROOT))

from meterstream.workload import (  # noqa: E402
    APPLIED,
    CorrectionRecord,
    GroundTruth,
    RecordKind,
    WorkloadSpec,
    iter_workload,
)

RESULTS_DIR = ROOT / "benchmarks" / "results"
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_RATIO_TO_CEILING = 0.7
BENCH_METERS = ("input_tokens", "requests", "gpu_seconds", "seats")  # the 4 meters every example tenant has
BENCH_START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DEFAULT_CORRECTION_RATE = 0.005  # issue 17: 0.5 % of the first-seen events get a correction
JOB_GROUP_ID = "meterstream-billing"  # jobs.billing.JOB_NAME, the default group its Kafka sources commit under
# The job vertices whose checkpointed state is reported per unit (jobs/billing.py, jobs/invoices.py operator names).
ROUTING_VERTEX, WINDOW_VERTEX, INVOICE_VERTEX = "route-usage-events", "window-and-rate", "fold-invoices"

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
    String bootstrap = args[0], topic = args[1], compression = args[2], security = args[3];
    Properties props = new Properties();
    if (!security.isEmpty()) {  // the client security settings (a properties file), as every other client's
      try (InputStream in = new FileInputStream(security)) { props.load(in); }
    }
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
      for (int i = 4; i < args.length; i++) {
        int partition = i - 4;
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
    """The Java producer with this process's Kafka client security (`kafka_security.active()`, the broker jar's
    unshaded client classes), handed over in a chmod 600 properties file so that no secret is on its command
    line."""
    from meterstream import kafka_security
    from meterstream.jars import kafka_broker_classpath

    source = workdir / "FastProduce.java"
    source.write_text(_JAVA_PRODUCER)
    security = workdir / "producer-security.properties"
    security.touch(mode=0o600)
    security.write_text("".join(f"{key}={_java_property_value(value)}\n"
                                for key, value in kafka_security.active().java_properties().items()))
    java = shutil.which("java") or "java"
    cmd = [java, "-Xmx1g", "-cp", kafka_broker_classpath(), str(source), bootstrap, topic, compression,
           str(security), *map(str, files)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        security.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"the Java producer failed ({done.returncode}):\n{done.stdout}\n"
                           f"{kafka_security.redact(done.stderr[-3000:])}")


def _java_property_value(value: str) -> str:
    """`value` escaped for `java.util.Properties.load` (backslashes; a leading space; line breaks)."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + escaped if escaped.startswith(" ") else escaped


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
    from meterstream.topics import new_producer

    _fast_crc32c()
    producer = new_producer(
        bootstrap, acks=1, linger_ms=50, batch_size=1 << 20, max_request_size=16 << 20,
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
    from kafka import TopicPartition

    from meterstream.topics import new_consumer

    consumer = new_consumer(bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def last_committed_append_ms(bootstrap: str, topic: str, *, tail: int = 500, timeout_s: float = 20.0) -> int | None:
    """Max broker append time (the topic uses LogAppendTime) among the last committed records of each partition."""
    from kafka import TopicPartition

    from meterstream.topics import new_consumer

    consumer = new_consumer(
        bootstrap, enable_auto_commit=False, isolation_level="read_committed", check_crcs=False,
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


def create_bench_topics(bootstrap: str, usage_topic: str, outputs: dict[str, str], partitions: int,
                        more_inputs: tuple[str, ...] = ()) -> None:
    from kafka.admin import NewTopic

    from meterstream.topics import admin_client

    admin = admin_client(bootstrap)
    try:
        topics = [NewTopic(name, partitions, 1) for name in (usage_topic, *more_inputs)]
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


def tree_pids(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    """root and all its descendants that `table` (`_proc_table`) lists."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A thread's name up to its trailing instance number (`GC Thread#1`, `Source: usage-e` of subtask 2, `Thread-7`):
# Linux keeps the first 15 bytes of a Java thread's name, so an operator chain shows by its first operator.
_THREAD_INSTANCE = re.compile(r"[\s#(-]*\d*\)?$")


def thread_cpu_ticks(pids: list[int]) -> dict[tuple[int, int], tuple[str, int]]:
    """(pid, tid) -> (thread name, user + system clock ticks so far) for every thread of `pids`."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stat:
                        text = stat.read()
                    name = text[text.find(b"(") + 1:text.rfind(b")")].decode(errors="replace")
                    fields = text[text.rfind(b")") + 2:].split()  # state, ppid, ...: utime and stime are 12th, 13th
                    ticks[(pid, int(tid))] = (name, int(fields[11]) + int(fields[12]))
    return ticks


class RssSampler(threading.Thread):
    """Peak RSS of a process and all its descendants (the Python client and its JVM), sampled every interval, and
    the CPU time of each of their threads (every `cpu_every` samples: reading a JVM's few hundred threads costs a
    few ms), which says which operator chain took the CPU (JFR's samples do not give shares of a saturated machine).
    """

    def __init__(self, root_pid: int, interval: float = 0.5, cpu_every: int = 4) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.interval, self.cpu_every = root_pid, interval, cpu_every
        self.peak_bytes = 0
        self.thread_ticks: dict[tuple[int, int], tuple[str, int]] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        sample = 0
        while not self._stop_event.is_set():
            with contextlib.suppress(Exception):  # a process may vanish between listing and reading
                table = _proc_table()
                pids = tree_pids(self.root_pid, table)
                self.peak_bytes = max(self.peak_bytes, sum(table[pid][1] for pid in pids))
                if sample % self.cpu_every == 0:
                    self.thread_ticks.update(thread_cpu_ticks(pids))  # a thread's ticks only grow
            sample += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return round(self.peak_bytes / 2**20, 1)

    def cpu(self, events: int, top: int = 16) -> dict:
        """CPU seconds of the whole tree and by thread name (instance numbers dropped), as last sampled: up to
        `cpu_every` x interval of each thread's end is missed."""
        by_name: dict[str, int] = {}
        for name, ticks in self.thread_ticks.values():
            key = _THREAD_INSTANCE.sub("", name) or name
            by_name[key] = by_name.get(key, 0) + ticks
        total = sum(by_name.values())
        ranked = sorted(by_name.items(), key=lambda item: -item[1])
        threads = {name: round(ticks / _CLOCK_TICKS, 1) for name, ticks in ranked[:top]}
        threads["(other threads)"] = round(sum(ticks for _, ticks in ranked[top:]) / _CLOCK_TICKS, 1)
        return {
            "total_seconds": round(total / _CLOCK_TICKS, 1),
            "us_per_event": round(total / _CLOCK_TICKS / events * 1e6, 2) if events else None,
            "by_thread": threads,
        }


@dataclass
class Measured:
    """One measured run: exit code, wall seconds, peak tree RSS (MB), CPU (`RssSampler.cpu`), stdout+err."""

    code: int
    wall: float
    peak_rss_mb: float
    cpu: dict
    output: str


def run_measured(cmd: list[str], log_path: Path, *, timeout_s: float, events: int) -> Measured:
    """Run cmd with its output in log_path, sampling its process tree's memory and CPU."""
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
    cpu = sampler.cpu(events)
    # Of what the machine's CPUs could give over the process's wall time (JVM start included): the rest waited.
    cpu["share_of_cpus"] = round(cpu["total_seconds"] / (wall * (os.cpu_count() or 1)), 3) if wall > 0 else None
    return Measured(code, wall, peak, cpu, log_path.read_text(errors="replace"))


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


_COUNT_LINE = re.compile(r"(\s*)(\S.*?\S)\s{2,}([0-9][0-9,]*)")
_CORRECTIONS_HEADER = "corrections in the input (offsets)"


def parse_accounting(output: str) -> dict[str, int]:
    """The billing job's usage accounting table (`label   1,234` lines) as {label: count}; empty if not printed.
    Stops at the corrections' section (`parse_correction_accounting`), whose reason labels can repeat usage ones."""
    counts = {}
    for line in output.splitlines():
        match = _COUNT_LINE.fullmatch(line.rstrip())
        if match:
            if match.group(2) == _CORRECTIONS_HEADER:
                break
            counts[match.group(2)] = int(match.group(3).replace(",", ""))
    return counts


def parse_correction_accounting(output: str) -> dict | None:
    """The corrections' section of the job's accounting table (a run with --corrections): {"received", "applied",
    "rejected", "rejected_by_reason"}, as the job counted them on its accounting output; None if not printed."""
    section: dict | None = None
    for line in output.splitlines():
        match = _COUNT_LINE.fullmatch(line.rstrip())
        if section is None:
            if match and match.group(2) == _CORRECTIONS_HEADER:
                section = {"received": int(match.group(3).replace(",", "")), "applied": None, "rejected": None,
                           "rejected_by_reason": {}}
            continue
        if match is None:
            break  # the identity line ends the section
        indent, label, count = len(match.group(1)), match.group(2), int(match.group(3).replace(",", ""))
        if indent >= 4:
            section["rejected_by_reason"][label] = count
        elif label.startswith("applied"):
            section["applied"] = count
        elif label.startswith("rejected"):
            section["rejected"] = count
    return section


def usage_identity_problems(accounting: dict[str, int], produced: int) -> list[str]:
    """What breaks the usage identity in the job's table: every produced record in the input, and records =
    dead-lettered + duplicates + billed on time + billed late. Empty when it holds."""
    parts = ("dead-lettered", "duplicates (same payload)", "duplicates (conflicting)", "billed on time (windowed)",
             "billed late (adjustments)")
    missing = [label for label in ("records in the input (offsets)", *parts) if label not in accounting]
    if missing:
        return [f"the job printed no count for {', '.join(missing)}"]
    received = accounting["records in the input (offsets)"]
    problems = [] if received == produced else [f"the input held {received:,} records, {produced:,} were produced"]
    accounted = sum(accounting[label] for label in parts)
    if accounted != received:
        problems.append(f"records {received:,} != dead-lettered + duplicates + billed on time + billed late "
                        f"{accounted:,}")
    return problems


def correction_identity_problems(section: dict | None, produced: int) -> list[str]:
    """What breaks the corrections identity: every produced correction in the input, and produced = applied +
    rejected (by reason too). Empty when it holds."""
    if section is None or section["applied"] is None or section["rejected"] is None:
        return ["the job printed no corrections accounting"]
    problems = []
    if section["received"] != produced:
        problems.append(f"the corrections input held {section['received']:,} records, {produced:,} were produced")
    if section["applied"] + section["rejected"] != produced:
        problems.append(f"corrections produced {produced:,} != applied {section['applied']:,} + rejected "
                        f"{section['rejected']:,}")
    if sum(section["rejected_by_reason"].values()) != section["rejected"]:
        problems.append(f"rejected {section['rejected']:,} != the sum of its reasons "
                        f"{sum(section['rejected_by_reason'].values()):,}")
    return problems


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
        correction_rate=args.correction_rate,
    )


@dataclass
class InputIndex:
    """Where each partition's first-seen events, series and customers first occur (by offset: the topic is fresh
    and written by one idempotent producer without transactions, so a record's offset is its line in the partition
    file). Turns the offsets a checkpoint covers into what the job's state then held (`covered`)."""

    first_seen_offsets: list[array]  # per partition, ascending
    series_first: list[array]  # per partition: series id -> first offset (NEVER when absent)
    customer_first: list[array]  # per partition: (tenant, customer) id -> first offset
    NEVER = 2**32 - 1

    @classmethod
    def empty(cls, partitions: int) -> InputIndex:
        return cls([array("I") for _ in range(partitions)], [array("I") for _ in range(partitions)],
                   [array("I") for _ in range(partitions)])

    @staticmethod
    def _first(table: list[array], partition: int, ident: int, offset: int) -> None:
        for firsts in table:
            while len(firsts) <= ident:
                firsts.append(InputIndex.NEVER)
        if table[partition][ident] == InputIndex.NEVER:
            table[partition][ident] = offset

    def add_first_seen(self, partition: int, offset: int, series_id: int, customer_id: int) -> None:
        self.first_seen_offsets[partition].append(offset)
        self._first(self.series_first, partition, series_id, offset)
        self._first(self.customer_first, partition, customer_id, offset)

    def covered(self, offsets: dict[int, int]) -> dict[str, int]:
        """First-seen events, distinct series and customers among the records before `offsets` (partition -> next
        offset, as committed)."""
        def distinct(table: list[array]) -> int:
            count = len(table[0]) if table else 0
            return sum(any(table[p][i] < offsets.get(p, 0) for p in range(len(table))) for i in range(count))

        return {
            "first_seen": sum(bisect_left(fs, offsets.get(p, 0)) for p, fs in enumerate(self.first_seen_offsets)),
            "series": distinct(self.series_first),
            "customers": distinct(self.customer_first),
        }


def write_partition_files(spec: WorkloadSpec, partitions: int, workdir: Path
                          ) -> tuple[list[Path], GroundTruth, list[CorrectionRecord], InputIndex]:
    """Stream the workload into one file per Kafka partition (all copies of an event share one partition), and
    collect its corrections and the input index of the state-size figures."""
    from udfs.catalog import load_catalog

    catalog = load_catalog(spec.catalog_path)
    files = [workdir / f"partition-{p}.jsonl" for p in range(partitions)]
    truth = GroundTruth()
    corrections: list[CorrectionRecord] = []
    index = InputIndex.empty(partitions)
    series_ids: dict[tuple, int] = {}
    customer_ids: dict[tuple, int] = {}
    # The generator gives an event exactly its meter's group_by + unique_dimension: without unique dimensions the
    # record's own bytes name its series (a third of the generation time saved at 5M events, against json.loads).
    fast = not any(meter.unique_dimension for tenant_id, tenant in catalog.tenants.items()
                   if spec.tenants is None or tenant_id in spec.tenants
                   for name, meter in tenant.meters.items() if spec.meters is None or name in spec.meters)
    group_by: dict[tuple[str, str], tuple[str, ...]] = {}
    written = [0] * partitions
    first_seen_kinds = (RecordKind.ON_TIME, RecordKind.LATE)
    handles = [open(path, "wb", buffering=1 << 22) for path in files]  # noqa: SIM115 - closed below
    try:
        writers = [h.write for h in handles]
        for kind, record, key, _ in iter_workload(spec, truth=truth, corrections=corrections):
            partition = key % partitions
            writers[partition](record + b"\n")
            if kind in first_seen_kinds:
                if fast:
                    series, customer = _series_bytes(record)
                else:
                    event = json.loads(record)
                    tenant, meter = event["tenant_id"], event["meter"]
                    dims = group_by.get((tenant, meter))
                    if dims is None:
                        dims = group_by[(tenant, meter)] = tuple(catalog.meter(tenant, meter).group_by)
                    values = event.get("dimensions") or {}
                    customer = (tenant, event["customer_id"])
                    series = (*customer, meter, tuple(values.get(d) for d in dims))
                series_id = series_ids.setdefault(series, len(series_ids))
                customer_id = customer_ids.setdefault(customer, len(customer_ids))
                index.add_first_seen(partition, written[partition], series_id, customer_id)
            written[partition] += 1
    finally:
        for handle in handles:
            handle.close()
    return files, truth, corrections, index


def _series_bytes(record: bytes) -> tuple[tuple[bytes, bytes], bytes]:
    """(series, customer) keys of a valid generated record, as bytes: `"tenant_id":..,"customer_id":..,"meter":..`
    and its `"dimensions":{..}` (the generator writes the fields in this order; `meterstream.workload._render`)."""
    start, end = record.index(b',"tenant_id":'), record.index(b',"timestamp":')
    dims_at = record.find(b',"dimensions":{', end)
    dims = record[dims_at:record.index(b"}", dims_at)] if dims_at >= 0 else b""
    return (record[start:end], dims), record[start:record.index(b',"meter":', start)]


def write_correction_files(corrections: list[CorrectionRecord], partitions: int, workdir: Path) -> list[Path]:
    """The corrections, one file per partition of the corrections topic (every copy of an id in one partition)."""
    files = [workdir / f"corrections-{p}.jsonl" for p in range(partitions)]
    handles = [open(path, "wb") for path in files]  # noqa: SIM115 - closed below
    try:
        for correction in corrections:
            handles[correction.partition_key % partitions].write(correction.record + b"\n")
    finally:
        for handle in handles:
            handle.close()
    return files


def correction_truth(corrections: list[CorrectionRecord]) -> dict:
    """What the generator meant the corrections to be (their outcomes if every event were seen before them)."""
    intended = Counter(c.intended for c in corrections)
    return {
        "produced": len(corrections),
        "by_kind": dict(sorted(Counter(c.kind.value for c in corrections).items())),
        "intended_applied": intended.pop(APPLIED, 0),
        "intended_rejected_by_reason": dict(sorted(intended.items())),
    }


def output_counts(bootstrap: str, topics: dict[str, str]) -> dict:
    """What the billing run wrote that the throughput depends on (line items, invoices, distinct series), and
    whether its invoices are exact against its line items (`meterstream.invoice_checks`). The line items are
    streamed, not held: a 25M-event run writes ~4M of them, ~10 GB as dicts."""
    from meterstream.invoice_checks import LineTotals, invoice_problems
    from meterstream.topics import iter_committed_records, read_committed

    totals = LineTotals()
    kinds: Counter = Counter()
    series = set()
    for record in iter_committed_records(bootstrap, topics["line_items"]):
        line = json.loads(record.value)
        totals.add(line)
        kinds[line["kind"]] += 1
        series.add((line["tenant_id"], line["customer_id"], line["meter"], json.dumps(line["group"], sort_keys=True)))
    invoices = [json.loads(v) for v in read_committed(bootstrap, topics["invoices"])]
    _, problems = invoice_problems(invoices, totals)
    counts = {"line_items": sum(kinds.values()), "line_items_by_kind": dict(kinds), "series": len(series),
              "invoices": len(invoices), "invoice_problems": len(problems), "invoice_problem_examples": problems[:3]}
    if "correction_dead_letters" in topics:
        reasons = Counter(json.loads(v)["reason"] for v in read_committed(bootstrap, topics["correction_dead_letters"]))
        counts["correction_dead_letters"] = sum(reasons.values())
        counts["correction_dead_letters_by_reason"] = dict(sorted(reasons.items()))
    return counts


# --------------------------------------------------------------------------------------------------------------
# state size per job vertex, from the checkpoints the running job completes
# --------------------------------------------------------------------------------------------------------------


def job_group_id(job_args: list[str]) -> str:
    """The consumer group the job's sources commit under: its job name (`--job-name`, passed by --job-arg)."""
    name = JOB_GROUP_ID
    for i, arg in enumerate(job_args):
        if arg.startswith("--job-name="):
            name = arg.split("=", 1)[1]
        elif arg == "--job-name" and i + 1 < len(job_args):
            name = job_args[i + 1]
    return name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rest(port: int, path: str, timeout: float = 3.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return json.loads(response.read())


class CheckpointSampler(threading.Thread):
    """Reads, while the job runs, every completed checkpoint's state size per job vertex and subtask from the
    MiniCluster's REST API (the job runs with `rest.bind-port` set to `port`), with the input offsets it covers.

    A checkpoint's state is what the job's operators held when its barrier passed them; the offsets are those the
    job's Kafka sources commit under `group_id` when that checkpoint completes (asynchronously, just after). They
    are taken as that checkpoint's once they differ from those first read after it completed (those may still be
    the previous checkpoint's), or `settle_ms` after its completion, and only if no newer checkpoint completed
    while they were read. Vertex statuses and subtask counts at the same moment tell whether a task had
    already reached the end of its input (its state is then no longer all there). `outcomes` counts what each poll
    found (for a run that reports no checkpoint).
    """

    def __init__(self, port: int, bootstrap: str, group_id: str, usage_topic: str, interval: float = 0.5,
                 settle_ms: int = 1_500) -> None:
        super().__init__(daemon=True)
        self.port, self.bootstrap, self.group_id, self.usage_topic = port, bootstrap, group_id, usage_topic
        self.interval, self.settle_ms = interval, settle_ms
        self.job_id: str | None = None
        self.snapshots: list[dict] = []
        self.errors: Counter = Counter()
        self.outcomes: Counter = Counter()
        self._stop_event = threading.Event()
        self._admin = None
        self._first_read: dict[int, dict | None] = {}  # checkpoint id -> the usage offsets first read after it

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                try:
                    self.outcomes[self._poll()] += 1
                except Exception as exc:  # the REST endpoint is absent before the job starts and after it ends
                    self.errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
                self._stop_event.wait(self.interval)
        finally:
            if self._admin is not None:
                with contextlib.suppress(Exception):
                    self._admin.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def _poll(self) -> str:
        if self.job_id is None:
            running = [job for job in _rest(self.port, "/jobs/overview")["jobs"] if job["state"] == "RUNNING"]
            if not running:
                return "no running job"
            self.job_id = running[0]["jid"]
        stats = _rest(self.port, f"/jobs/{self.job_id}/checkpoints")
        completed = (stats.get("latest") or {}).get("completed")
        if not completed:
            return "no completed checkpoint"
        if any(snap["checkpoint_id"] == completed["id"] for snap in self.snapshots):
            return "checkpoint already read"
        offsets = self._committed_offsets()
        usage = offsets.get(self.usage_topic)
        # The first read after the checkpoint showed up may still hold the previous checkpoint's offsets (the
        # commit follows the completion): take a later read that differs from it, or the same once it settled.
        first_read = self._first_read.setdefault(completed["id"], usage)
        settled = time.time() * 1000 - completed["latest_ack_timestamp"] >= self.settle_ms
        if not usage and settled:
            return "no offsets committed for it"  # a checkpoint before the sources were assigned their partitions
        if not usage or (usage == first_read and not settled):
            return "offsets not committed yet"
        job = _rest(self.port, f"/jobs/{self.job_id}")
        details = _rest(self.port, f"/jobs/{self.job_id}/checkpoints/details/{completed['id']}")
        again = (_rest(self.port, f"/jobs/{self.job_id}/checkpoints").get("latest") or {}).get("completed") or {}
        if again.get("id") != completed["id"]:
            return "superseded while read"  # the offsets read may be the newer one's: take that one next
        vertices = []
        for vertex in job["vertices"]:
            task = details["tasks"].get(vertex["id"]) or {}
            subtasks = _rest(self.port, f"/jobs/{self.job_id}/checkpoints/details/{completed['id']}/subtasks/"
                                        f"{vertex['id']}").get("subtasks", [])
            vertices.append({
                "name": vertex["name"],
                "id": vertex["id"],
                "status_when_read": vertex["status"],
                "subtasks_running_when_read": (vertex.get("tasks") or {}).get("RUNNING"),
                "parallelism": vertex["parallelism"],
                "state_size_bytes": task.get("state_size"),
                "checkpointed_size_bytes": task.get("checkpointed_size"),
                "subtask_state_size_bytes": [sub.get("state_size") for sub in subtasks],
                # the subtask's synchronous part (processing stops for it) and asynchronous part, ms
                "subtask_sync_ms": [(sub.get("checkpoint") or {}).get("sync") for sub in subtasks],
                "subtask_async_ms": [(sub.get("checkpoint") or {}).get("async") for sub in subtasks],
                # Records in/out as the REST metrics showed them (they lag): context, not what the state saw.
                "read_records_when_read": (vertex.get("metrics") or {}).get("read-records"),
                "write_records_when_read": (vertex.get("metrics") or {}).get("write-records"),
            })
        self.snapshots.append({
            "checkpoint_id": completed["id"],
            "trigger_timestamp": completed["trigger_timestamp"],
            "latest_ack_timestamp": completed["latest_ack_timestamp"],
            "end_to_end_duration_ms": completed.get("end_to_end_duration"),
            "state_size_bytes": completed.get("state_size"),
            # what this checkpoint wrote itself: the full state on the heap backend, only new files on RocksDB's
            # incremental checkpoints (Flink's checkpointed_size)
            "checkpointed_size_bytes": completed.get("checkpointed_size"),
            "committed_offsets": offsets,
            "vertices": vertices,
        })
        return "checkpoint read"

    def _committed_offsets(self) -> dict[str, dict[int, int]]:
        from meterstream.topics import admin_client

        if self._admin is None:
            self._admin = admin_client(self.bootstrap, timeout=5)
        offsets: dict[str, dict[int, int]] = {}
        for tp, meta in self._admin.list_group_offsets({self.group_id: None}).get(self.group_id, {}).items():
            offsets.setdefault(tp.topic, {})[tp.partition] = meta.offset
        return offsets


def _vertex(snapshot: dict, operator: str) -> dict | None:
    """The job vertex that runs `operator` (a vertex name lists its chained operators)."""
    return next((v for v in snapshot["vertices"] if operator in v["name"]), None)


def vertex_series(snapshots: list[dict]) -> dict[str, list[dict]]:
    """Each vertex's entries over the checkpoints read, in order, by the first name of its chain."""
    series: dict[str, list[dict]] = {}
    for snap in snapshots:
        for vertex in snap.get("vertices", []):
            series.setdefault(vertex["name"].split(" -> ")[0], []).append(vertex)
    return series


def state_size_figures(snapshots: list[dict], usage_topic: str, index: InputIndex, total_records: int,
                       port: int, errors: Counter | None = None, outcomes: Counter | None = None) -> dict:
    """The figures of the last checkpoint taken while the reported operators still ran (every subtask RUNNING when
    read, so none had finished its input when the checkpoint was taken):
    state bytes of the routing, window-rating and invoice vertices, per first-seen event, per series and per customer
    covered by its offsets."""
    def running(snap: dict) -> bool:
        reported = [_vertex(snap, operator) for operator in (ROUTING_VERTEX, WINDOW_VERTEX, INVOICE_VERTEX)]
        return all(v is not None and v["status_when_read"] == "RUNNING"
                   and v.get("subtasks_running_when_read") == v["parallelism"] for v in reported)

    usable = [snap for snap in snapshots if running(snap) and snap["committed_offsets"].get(usage_topic)]
    result: dict = {
        "method": f"REST http://127.0.0.1:{port}/jobs/<id>/checkpoints/details/<checkpoint> (state_size per job "
                  f"vertex and subtask); input covered: the offsets the job's sources committed on its completion",
        "rest_port": port,
        "checkpoints_read": [snap["checkpoint_id"] for snap in snapshots],
        "rest_errors": dict(errors or {}),
        "poll_outcomes": dict(outcomes or {}),
    }
    if not usable:
        result["error"] = ("no checkpoint with committed offsets was read while the reported operators ran (a run "
                           "shorter than about two checkpoint intervals: --job-arg=--checkpoint-interval-ms=2000 "
                           "gives it more; or the REST API was unreachable): see poll_outcomes and rest_errors")
        return result
    snap = max(usable, key=lambda s: (sum(s["committed_offsets"][usage_topic].values()), s["checkpoint_id"]))
    offsets = {int(p): o for p, o in snap["committed_offsets"][usage_topic].items()}
    covered = index.covered(offsets)
    records = sum(offsets.values())

    def per(operator: str, units: str, unit: str, count: int) -> dict:
        vertex = _vertex(snap, operator)
        size = None if vertex is None else vertex["state_size_bytes"]
        return {
            "vertex": None if vertex is None else vertex["name"],
            "state_bytes": size,
            "subtask_state_bytes": None if vertex is None else vertex["subtask_state_size_bytes"],
            "read_records_when_read": None if vertex is None else vertex.get("read_records_when_read"),
            units: count,
            f"bytes_per_{unit}": round(size / count, 1) if size and count else None,
        }

    result.update({
        "checkpoint": {key: snap.get(key) for key in ("checkpoint_id", "trigger_timestamp",
                                                      "end_to_end_duration_ms", "state_size_bytes",
                                                      "checkpointed_size_bytes")},
        "checkpoint_durations": checkpoint_durations(snapshots),
        "input_covered": {"usage_offsets": offsets, "records": records,
                          "share_of_input": round(records / total_records, 4) if total_records else None, **covered},
        "window_rating": per(WINDOW_VERTEX, "series", "series", covered["series"]),
        "routing": per(ROUTING_VERTEX, "first_seen_events", "first_seen_event", covered["first_seen"]),
        "invoices": per(INVOICE_VERTEX, "customers", "customer", covered["customers"]),
        "vertices": [{k: v.get(k) for k in ("name", "parallelism", "state_size_bytes", "checkpointed_size_bytes",
                                            "subtask_state_size_bytes", "read_records_when_read",
                                            "write_records_when_read")}
                     for v in snap["vertices"]],
        # what each vertex wrote, per checkpoint read (incremental checkpoints: its new files only)
        "written_by_vertex": {name: [s["checkpointed_size_bytes"] for s in per_checkpoint]
                              for name, per_checkpoint in vertex_series(snapshots).items()},
    })
    return result


def _percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def checkpoint_durations(snapshots: list[dict]) -> dict:
    """Over the checkpoints read: end-to-end duration p50/p99/max, bytes written p50/max, and the routing operator's
    synchronous part (the slowest subtask's per checkpoint: processing pauses for it) p50/p99/max, ms."""
    end_to_end = [s["end_to_end_duration_ms"] for s in snapshots if s.get("end_to_end_duration_ms") is not None]
    routing_sync = []
    for snap in snapshots:
        vertex = _vertex(snap, ROUTING_VERTEX)
        syncs = [ms for ms in (vertex or {}).get("subtask_sync_ms") or [] if ms is not None]
        if syncs:
            routing_sync.append(max(syncs))
    written = [s["checkpointed_size_bytes"] for s in snapshots if s.get("checkpointed_size_bytes") is not None]
    return {
        "checkpoints": len(snapshots),
        "end_to_end_ms": {"p50": _percentile(end_to_end, 0.5), "p99": _percentile(end_to_end, 0.99),
                          "max": max(end_to_end, default=None)},
        # bytes each checkpoint wrote (the full state on the heap backend; new files only when incremental)
        "checkpointed_bytes": {"p50": _percentile(written, 0.5), "max": max(written, default=None)},
        "routing_sync_ms": {"p50": _percentile(routing_sync, 0.5), "p99": _percentile(routing_sync, 0.99),
                            "max": max(routing_sync, default=None)},
    }


def billing_command(args: argparse.Namespace, bootstrap: str, topics: dict[str, str], reference: datetime,
                    rest_port: int | None = None) -> list:
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
        *(["--corrections", "--topic-usage-corrections", topics["usage_corrections"],
            "--topic-correction-dead-letters", topics["correction_dead_letters"]] if "usage_corrections" in topics
          else []),
        *(["--flink-conf", f"rest.bind-port={rest_port}"] if rest_port else []),
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
    # Built (or found) before any job is measured: a job finding its engine jar older than the sources builds it
    # (`mvn clean package`, tests included) inside its own measured process tree, ~40 s of CPU counted as the job's.
    from meterstream.jars import engine_jar, kafka_connector_jar

    engine_jar()
    kafka_connector_jar()
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
        inputs = ("usage_events",)
        if spec.correction_rate > 0:  # rate 0: the topics, workload and job command of the run without corrections
            topics["usage_corrections"] = f"bench-usage-corrections-{tag}"
            topics["correction_dead_letters"] = f"bench-correction-dead-letters-{tag}"
            inputs = ("usage_events", "usage_corrections")
        create_bench_topics(bootstrap, topics["usage_events"],
                            {k: v for k, v in topics.items() if k not in inputs}, args.partitions,
                            more_inputs=tuple(topics[k] for k in inputs[1:]))
        result["topics"] = topics

        print(f"[bench] generating {args.events:,} events ...", flush=True)
        t0 = time.monotonic()
        files, truth, corrections, input_index = write_partition_files(spec, args.partitions, workdir)
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
            "correction_rate": spec.correction_rate,
            "corrections": correction_truth(corrections) if spec.correction_rate > 0 else None,
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
        if "usage_corrections" in topics:
            # After the usage topic is filled (as a tenant corrects what it sent); the job reads both topics at
            # once and, bounded, holds the corrections until the usage input has ended.
            correction_files = write_correction_files(corrections, args.partitions, workdir)
            t0 = time.monotonic()
            if producer == "java":
                produce_java(bootstrap, topics["usage_corrections"], correction_files, args.compression, workdir)
            else:
                produce_python(bootstrap, topics["usage_corrections"], correction_files, args.compression)
            result["produce"]["corrections_seconds"] = round(time.monotonic() - t0, 2)
            in_topic = sum(topic_end_offsets(bootstrap, topics["usage_corrections"]).values())
            if in_topic != len(corrections):
                raise RuntimeError(f"the corrections topic holds {in_topic} records, expected {len(corrections)}")
            print(f"[bench] produced {len(corrections):,} corrections", flush=True)

        result["ceiling"] = None
        if not args.skip_ceiling:
            print("[bench] (a) ceiling: bare Flink SQL dedup + TUMBLE ...", flush=True)
            load = os.getloadavg()
            cmd = [sys.executable, str(Path(__file__).resolve()), "_ceiling", "--bootstrap", bootstrap,
                   "--topic", topics["usage_events"], "--parallelism", str(args.parallelism)]
            measured = run_measured(cmd, logs / f"ceiling-{tag}.log", timeout_s=args.timeout, events=args.events)
            code, wall, peak, output = measured.code, measured.wall, measured.peak_rss_mb, measured.output
            job_seconds = next((json.loads(line)["ceiling_job_seconds"] for line in output.splitlines()
                                if line.startswith('{"ceiling_job_seconds"')), None)
            result["ceiling"] = {
                "ok": code == 0 and job_seconds is not None,
                "exit_code": code,
                "seconds": round(job_seconds, 2) if job_seconds else None,
                "events_per_second": _rate(args.events, job_seconds),
                "process_seconds": round(wall, 2),
                "peak_rss_mb": peak,
                "cpu": measured.cpu,
                "load_average_before": [round(x, 2) for x in load],
                "log": str(logs / f"ceiling-{tag}.log"),
            }

        result["billing"] = None
        if not args.skip_billing:
            print("[bench] (b) billing job ...", flush=True)
            load = os.getloadavg()
            rest_port = None if args.skip_state_sizes else free_port()
            cmd = billing_command(args, bootstrap, topics, reference, rest_port)
            sampler = None
            if rest_port is not None:
                sampler = CheckpointSampler(rest_port, bootstrap, job_group_id(args.job_arg), topics["usage_events"])
                sampler.start()
            started_epoch = time.time()
            try:
                measured = run_measured(cmd, logs / f"billing-{tag}.log", timeout_s=args.timeout,
                                        events=args.events)
                code, wall, peak, output = measured.code, measured.wall, measured.peak_rss_mb, measured.output
            finally:
                if sampler is not None:
                    sampler.stop()
            match = re.search(r"finished in ([0-9.]+) s", output)
            job_seconds = float(match.group(1)) if match else None
            last_append = None
            with contextlib.suppress(Exception):
                last_append = last_committed_append_ms(bootstrap, topics["line_items"])
            accounting = parse_accounting(output)
            outputs = output_counts(bootstrap, topics) if code == 0 else {}
            problems = usage_identity_problems(accounting, args.events)
            correction_accounting = None
            if "usage_corrections" in topics:
                correction_accounting = parse_correction_accounting(output)
                problems += correction_identity_problems(correction_accounting, len(corrections))
                if correction_accounting and outputs.get("correction_dead_letters") is not None:
                    correction_accounting["dead_letters_in_topic"] = outputs["correction_dead_letters"]
                if correction_accounting:
                    # Derived, not counted by the job: unknown_event beyond the generator's own (events never sent)
                    # are corrections the job decided before their event was seen (0 when held until the usage ended).
                    intended_unknown = result["workload"]["corrections"]["intended_rejected_by_reason"].get(
                        "unknown_event", 0)
                    correction_accounting["decided_before_their_event"] = (
                        correction_accounting["rejected_by_reason"].get("unknown_event", 0) - intended_unknown)
            state = None
            if sampler is not None:
                state = state_size_figures(sampler.snapshots, topics["usage_events"], input_index, args.events,
                                           rest_port, sampler.errors, sampler.outcomes)
            result["billing"] = {
                "ok": code == 0 and job_seconds is not None and not problems,
                "identity_problems": problems,
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
                "cpu": measured.cpu,
                "load_average_before": [round(x, 2) for x in load],
                "accounting": accounting,
                "corrections": correction_accounting,
                "state": state,
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
    for name in ("ceiling", "billing"):
        cpu = (result.get(name) or {}).get("cpu")
        if cpu:
            threads = ", ".join(f"{thread} {seconds:.1f}" for thread, seconds in list(cpu["by_thread"].items())[:8])
            share = cpu.get("share_of_cpus")
            print(f"{name} CPU: {cpu['total_seconds']:.1f} s ({fmt(cpu['us_per_event'], '.1f')} us per event, "
                  f"{fmt(share and share * 100, '.0f')} % of the CPUs over the process's wall time); "
                  f"by thread: {threads}")
    billing = result.get("billing") or {}
    if billing.get("time_to_last_line_item_seconds") is not None:
        print(f"billing: last line item committed {billing['time_to_last_line_item_seconds']:.1f} s after launch "
              f"(process wall time {billing['process_seconds']:.1f} s)")
    if billing.get("accounting_mismatches") is not None:
        mismatches = billing["accounting_mismatches"]
        print("billing: accounting matches the workload's ground truth" if not mismatches
              else f"billing: ACCOUNTING DIFFERS from the ground truth (job, intended): {mismatches}")
    if billing.get("identity_problems"):
        print(f"billing: IDENTITY BROKEN: {'; '.join(billing['identity_problems'])}")
    corrections = billing.get("corrections")
    if corrections:
        intended = (result["workload"].get("corrections") or {})
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in corrections["rejected_by_reason"].items())
        print(f"corrections: {corrections['received']:,} in the input, applied {fmt(corrections['applied'])}, "
              f"rejected {fmt(corrections['rejected'])} ({reasons or 'none'}); intended (every event seen first): "
              f"applied {intended.get('intended_applied', 0):,}, "
              f"rejected {intended.get('intended_rejected_by_reason')}")
    state = billing.get("state")
    if state and state.get("error"):
        print(f"state sizes: {state['error']}")
    elif state:
        covered = state["input_covered"]
        print(f"state sizes (checkpoint {state['checkpoint']['checkpoint_id']}, covering {covered['records']:,} "
              f"records = {covered['share_of_input']:.0%} of the input):")
        for name, units, unit in (("window_rating", "series", "series"),
                                  ("routing", "first_seen_events", "first_seen_event"),
                                  ("invoices", "customers", "customer")):
            part = state[name]
            per = part.get(f"bytes_per_{unit}")
            print(f"  {name:14s} {fmt(part['state_bytes']):>14s} B  {fmt(part[units]):>10s} {units:18s} "
                  f"{fmt(per, ',.1f'):>10s} B each   [{part['vertex']}]")
        durations = state.get("checkpoint_durations")
        if durations:
            e2e, sync = durations["end_to_end_ms"], durations["routing_sync_ms"]
            print(f"checkpoints ({durations['checkpoints']} read): end to end p50 {fmt(e2e['p50'])} ms, p99 "
                  f"{fmt(e2e['p99'])} ms; routing synchronous part p50 {fmt(sync['p50'])} ms, p99 "
                  f"{fmt(sync['p99'])} ms, max {fmt(sync['max'])} ms")
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
    parser.add_argument("--correction-rate", type=float, default=DEFAULT_CORRECTION_RATE,
                        help="corrections as a share of the first-seen events, produced to a usage-corrections topic "
                             "after the usage and read by the job with --corrections; 0: no corrections topic, no "
                             "--corrections (the run as before corrections existed)")
    parser.add_argument("--skip-state-sizes", action="store_true",
                        help="do not read checkpoint state sizes over the job's REST API (nor set rest.bind-port)")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--job-arg", action="append", default=[],
                        help="extra billing job argument, repeatable: --job-arg=--checkpoint-interval-ms=60000")
    parser.add_argument("--skip-billing", action="store_true")
    parser.add_argument("--keep-broker", action="store_true", help="leave the started broker running")
    parser.add_argument("--timeout", type=float, default=3600, help="per Flink job, seconds")
    args = parser.parse_args(argv)
    if not 0 <= args.correction_rate <= 1:
        parser.error(f"--correction-rate must be in [0, 1], got {args.correction_rate}")
    return args


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
