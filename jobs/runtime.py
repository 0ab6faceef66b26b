"""One place that builds Flink execution environments the same way for every job.

Local runs use the embedded MiniCluster; `flink run -py` gets the cluster's environment through the same call.
Under `flink run` the cluster's configuration (flink-conf/config.yaml: RocksDB, checkpoint and savepoint
directories, restart strategy, Python interpreter) decides; the MiniCluster defaults below apply to local runs only.
Python functions run in THREAD mode (embedded interpreter): the measured PROCESS-mode cost is a gRPC round trip per
bundle, and our Python only sees aggregated rows.
"""

from __future__ import annotations

import os
import site
import sys

from pyflink.common import Configuration
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment

from meterstream.jars import kafka_connector_jar, udf_jar
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
# A user's JVM_ARGS come after these, so any of them can be overridden (the last occurrence of a flag wins).
LOCAL_JVM_OPTIONS = (
    "-XX:+UseParallelGC",
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
    config.set_string("pipeline.jars", ";".join(jar.as_uri() for jar in (kafka_connector_jar(), udf_jar())))
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


def main_args(argv: list[str] | None) -> list[str]:
    """The job's arguments (`argv`, else the command line), to be parsed strictly (`parse_args`): the ones `flink
    run` passes are the job's own, and any unknown flag is an error."""
    args = list(sys.argv[1:] if argv is None else argv)
    return [arg for arg in args if arg not in FLINK_RUN_EXTRA_ARGS]
