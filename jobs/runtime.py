"""One place that builds Flink execution environments the same way for every job.

Local runs use the embedded MiniCluster; `flink run -py` gets the cluster's environment through the same call.
Under `flink run` the cluster's configuration (flink-conf/config.yaml: RocksDB, checkpoint and savepoint
directories, restart strategy, Python interpreter) decides; the MiniCluster defaults below apply to local runs only.
Python functions run in THREAD mode (embedded interpreter): the measured PROCESS-mode cost is a gRPC round trip per
bundle, and our Python only sees aggregated rows.
"""

from __future__ import annotations

import json
import os
import site
import sys
import threading
import urllib.request

from pyflink.common import Configuration
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment

from meterstream.jars import engine_jar, kafka_connector_jar
from meterstream.paths import var_dir

DEFAULT_CHECKPOINT_INTERVAL_MS = 5_000
DEFAULT_MAX_PARALLELISM = 128
# JVM options of the local JVM (the MiniCluster's), measured on a 2-core machine with the 5M-event benchmark's
# topic replayed (Flink JVM CPU-seconds per run, ~112 with the JDK defaults -> ~88 with all of these):
# - C2 compiles ran on 27 of those CPU-seconds, a quarter of the job: over 2,000 methods of Flink, the Kafka
#   clients and ours get hot within a minute, and on 2 cores the compiler threads take that time from the operators.
#   Later tier-4 thresholds (x4: only the really hot methods reach C2) and smaller inlining budgets halve it, with
#   no loss in the operators' own CPU.
# - ParallelGC: no G1 write barriers and refinement threads (~3 CPU-s). Its full collections stop the JVM, but the
#   local runs are replays, demos, tests and catch-up; a cluster keeps its own JVM options (flink-conf/).
# - Transparent huge pages for the heap: the dedup tables, the sealed index and the correction ledger's slots are
#   probed at random, and with 4 KiB pages nearly every probe of a table of hundreds of MB also missed the TLB.
#   Measured (2026-12-07, one A/B pair, 5M events with 0.5 % corrections): the billing job 152.9 -> 139.2 CPU-s
#   (routing -18 %, window rating -17 %), 55.1k -> 63.3k ev/s; the SQL ceiling 104.8k -> 113.1k ev/s. Where the
#   kernel's THP mode is `madvise` or `always` the JVM madvises its heap; where it is `never` the JVM warns once
#   and runs on 4 KiB pages.
# A user's JVM_ARGS come after these, so any of them can be overridden (the last occurrence of a flag wins).
LOCAL_JVM_OPTIONS = (
    "-XX:+UseParallelGC",
    "-XX:+UseTransparentHugePages",
    "-XX:Tier4InvocationThreshold=20000",
    "-XX:Tier4CompileThreshold=40000",
    "-XX:Tier4BackEdgeThreshold=160000",
    "-XX:InlineSmallCode=1000",
    "-XX:MaxInlineLevel=9",
)


def expose_environment_to_embedded_python() -> None:
    """THREAD mode runs Python inside the JVM (pemja), which starts from the base interpreter's prefix and so does
    not see a virtualenv's site-packages nor this project: hand both over through PYTHONPATH before the JVM starts.
    """
    from meterstream.paths import project_home

    wanted = [str(project_home()), *site.getsitepackages()]
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*wanted, *current]))


def start_local_jvm() -> None:
    """Start the JVM that local runs use (PyFlink's gateway, which hosts the MiniCluster) with LOCAL_JVM_OPTIONS and
    the embedded-Python environment. Call before anything touches PyFlink's gateway; once it runs (or under
    `flink run`, whose client JVM is already there) this only returns. The options go over in JVM_ARGS, which
    PyFlink's launcher reads, and only for this launch: the variable would also reach the JVMs of a standalone
    cluster started from this process later.
    """
    from pyflink import java_gateway

    expose_environment_to_embedded_python()
    if java_gateway._gateway is not None or submitted_by_flink_client():
        return
    user_args = os.environ.get("JVM_ARGS")
    os.environ["JVM_ARGS"] = " ".join([*LOCAL_JVM_OPTIONS, user_args or ""]).strip()
    try:
        java_gateway.get_gateway()
    finally:
        if user_args is None:
            del os.environ["JVM_ARGS"]
        else:
            os.environ["JVM_ARGS"] = user_args


def submitted_by_flink_client() -> bool:
    """True when this program runs under `flink run` (the client JVM started it and hands over its gateway)."""
    return "PYFLINK_GATEWAY_PORT" in os.environ


def stream_environment(
    *,
    parallelism: int | None = None,
    state_backend: str = "hashmap",
    checkpoint_interval_ms: int = DEFAULT_CHECKPOINT_INTERVAL_MS,
    extra_config: dict[str, str] | None = None,
) -> StreamExecutionEnvironment:
    start_local_jvm()
    config = Configuration()
    on_cluster = submitted_by_flink_client()
    config.set_string("python.execution-mode", "thread")
    if not on_cluster:
        config.set_string("python.executable", sys.executable)
        config.set_string("python.client.executable", sys.executable)
    # PyFlink fuses consecutive Python operators into one; with explicit uids on each, the fused graph keeps a
    # uid twice and the JobMaster rejects it ("Hash collision on user-specified ID"). Stable uids matter more.
    config.set_string("python.operator-chaining.enabled", "false")
    # Records are handed between chained operators without a defensive copy: every operator here either is a
    # Flink SQL operator (safe by design) or serialises its input for Python.
    config.set_string("pipeline.object-reuse", "true")
    # The Kafka connector and our Java UDFs (per-event parsing); `;` separates pipeline.jars entries.
    config.set_string("pipeline.jars", ";".join(jar.as_uri() for jar in (kafka_connector_jar(), engine_jar())))
    if not on_cluster:
        _minicluster_defaults(config, state_backend)
    for key, value in (extra_config or {}).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    if parallelism is not None:
        env.set_parallelism(parallelism)
    env.set_max_parallelism(DEFAULT_MAX_PARALLELISM)
    env.enable_checkpointing(checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    return env


def _minicluster_defaults(config: Configuration, state_backend: str) -> None:
    # A broken deployment must fail loudly instead of restarting forever; real failures still get retries.
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.attempts", "3")
    config.set_string("restart-strategy.fixed-delay.delay", "2 s")
    # hashmap (heap) by default: measured here, RocksDB made the per-record dedup and window state 4-5x slower on 2
    # cores. Its incremental checkpoints are the choice once state outgrows memory (full heap snapshots of a few
    # hundred MB every 5 s are the price of hashmap; the checkpoint interval trades that against output latency).
    config.set_string("state.backend.type", state_backend)
    config.set_string("execution.checkpointing.incremental", "true" if state_backend == "rocksdb" else "false")
    # Checkpoints to files, not the JobManager's heap: dedup state outgrows its 5 MB limit within seconds.
    config.set_string("execution.checkpointing.storage", "filesystem")
    config.set_string("execution.checkpointing.dir", (var_dir() / "checkpoints").as_uri())
    # The heap backend and the routing operator's raw dedup state write each checkpoint (hundreds of MB at millions
    # of remembered ids) through this buffer; Flink's default, 4 KiB, makes that a write call per 4 KiB.
    config.set_string("execution.checkpointing.write-buffer-size", str(1 << 20))


# Arguments that `flink run` adds to the job's own when it starts the Python program, tolerated by name only: none.
# Flink 2.2.1's PythonDriver starts `python -u <script> <program args>` (or `-m <module>`), the program args being
# exactly what follows the client's own options on its command line (PythonDriver.constructPythonCommands;
# tests/job/test_flink_run_args.py runs the wheel's client and checks it). Anything else unknown is an operator's
# mistake (`--bonded`) and must stop the run with the usage line, not be ignored.
FLINK_RUN_EXTRA_ARGS: tuple[str, ...] = ()


class JobFailed(RuntimeError):
    """A job's execution failed; the message is its root cause (`<class>: <message>`), already printed."""


def execute(env: StreamExecutionEnvironment, job_name: str) -> None:
    """`env.execute(job_name)`; when the job fails, print its root cause on stdout and raise `JobFailed`.

    A failed job surfaces as a chain of wrappers (JobExecutionException, "Recovery is suppressed by ...", task
    failures) around the exception of its last attempt, and that one need not be the cause: a sink that failed
    while its task was being cancelled once took the MiniCluster's only TaskManager down with it, and the job
    ended 5 minutes later on `NoResourceAvailableException`. So local runs watch Flink's exception history (the
    MiniCluster's REST API, `FailureHistory`) while the job runs, and report the innermost exception of the
    job's FIRST failure: `<job> failed: <class>: <message>` on stdout, then the last failure's root when its class
    differs; the chains on stderr. Under `flink run` the client's own result is all there is.
    """
    if submitted_by_flink_client():
        history = None
        run = lambda: env.execute(job_name)  # noqa: E731
    else:
        client = env.execute_async(job_name)
        history = FailureHistory.watch(client)
        run = lambda: client.get_job_execution_result().result()  # noqa: E731
    try:
        run()
    except Exception as exc:  # whatever PyFlink raised: a Py4JJavaError, a converted JavaException, Python's own
        last = exception_chain(exc)
        first = history.first_failure() if history is not None else None
        root = first[-1] if first else last[-1]
        print(f"{job_name} failed: {root}", flush=True)
        if root.split(":", 1)[0] != last[-1].split(":", 1)[0]:  # another kind of exception, not a repetition
            print(f"{job_name}: its last failure (after restarts): {last[-1]}", flush=True)
        if first:
            print(f"{job_name}: the first failure's chain, outermost first:", *(f"  {link}" for link in first),
                  sep="\n", file=sys.stderr, flush=True)
        print(f"{job_name}: the job's failure, outermost first:", *(f"  {link}" for link in last), sep="\n",
              file=sys.stderr, flush=True)
        raise JobFailed(root) from exc
    finally:
        if history is not None:
            history.stop()


class FailureHistory:
    """The oldest entry of a running job's exception history, polled from the MiniCluster's REST API
    (`/jobs/<id>/exceptions`; the cluster, and with it the history, is gone once the job has ended)."""

    POLL_SECONDS = 1.0

    def __init__(self, url: str | None):
        self.url = url
        self.oldest: dict | None = None
        self._stop = threading.Event()
        self._thread = None
        if url is not None:
            self._thread = threading.Thread(target=self._poll, name="flink-failure-history", daemon=True)
            self._thread.start()

    @classmethod
    def watch(cls, job_client) -> FailureHistory:
        """Start polling for a PyFlink JobClient of a local run (no history when its cluster has no REST API)."""
        try:
            j_client = job_client._j_job_client
            field = j_client.getClass().getDeclaredField("miniCluster")  # MiniClusterJobClient keeps it private
            field.setAccessible(True)
            address = field.get(j_client).getRestAddress().get().toString().rstrip("/")
            return cls(f"{address}/jobs/{j_client.getJobID().toString()}/exceptions")
        except Exception:  # another JobClient, or no REST endpoint: the final failure is what is reported
            return cls(None)

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    self.record(json.load(response).get("exceptionHistory", {}).get("entries", []))
            except (OSError, ValueError):  # not up yet, or shut down with the job
                continue

    def record(self, entries: list[dict]) -> None:
        for entry in entries:
            if "stacktrace" in entry and (self.oldest is None or entry["timestamp"] < self.oldest["timestamp"]):
                self.oldest = entry

    def first_failure(self) -> list[str] | None:
        """The chain of the job's first failure (`<class>: <message>`, outermost first), None if none was seen."""
        return None if self.oldest is None else _text_chain(self.oldest["stacktrace"])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def exception_chain(exc: BaseException) -> list[str]:
    """`<class>: <message>` of `exc` and each of its causes, outermost first (Java causes for a Java exception)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        return _java_chain(java)
    stack_trace = getattr(exc, "stack_trace", None)  # pyflink.util.exceptions.JavaException: the trace as text
    if isinstance(stack_trace, str):
        return _text_chain(stack_trace)
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(f"{type(current).__module__}.{type(current).__qualname__}: {current}".removeprefix("builtins."))
        current = current.__cause__ or current.__context__
    return chain


def _java_chain(throwable) -> list[str]:
    chain, seen = [], set()
    while throwable is not None and throwable.hashCode() not in seen and len(chain) < 64:
        seen.add(throwable.hashCode())
        name = throwable.getClass().getName()
        if name == "org.apache.flink.util.SerializedThrowable":
            # A task's exception as it crossed to the JobManager: the original class is a field, the message its own.
            name = throwable.getOriginalErrorClassName()
        message = throwable.getMessage()
        chain.append(f"{name}: {message}" if message is not None else name)
        throwable = throwable.getCause()
    return chain


def _text_chain(stack_trace: str) -> list[str]:
    lines = [line.strip() for line in stack_trace.splitlines()]
    chain = [lines[0]] if lines else []
    chain += [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    return chain or [stack_trace.strip()]


def main_args(argv: list[str] | None) -> list[str]:
    """The job's arguments (`argv`, else the command line), to be parsed strictly (`parse_args`): the ones `flink
    run` passes are the job's own, and any unknown flag is an error."""
    args = list(sys.argv[1:] if argv is None else argv)
    return [arg for arg in args if arg not in FLINK_RUN_EXTRA_ARGS]
