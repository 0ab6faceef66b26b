"""Failure trials: the billing job killed at random points, restarted from its latest retained checkpoint, and its
committed outputs compared with the same workload processed without failures.

One trial, on a real broker:
1. Inputs: the demo's generated workload (duplicates, late and malformed records), grants and a spend cap, and one
   flush event per partition two minutes later (it closes the workload's last windows in an unbounded run).
2. Baseline: the job (bounded, with credits) runs once without failures into its own output topics.
3. Trial: the same job, unbounded, into other output topics, as a separate process (the MiniCluster lives in it).
   After each attempt's first checkpoint, a random delay, then SIGKILL to the whole process group; the next
   attempt restores the newest retained checkpoint (`execution.state-recovery.path`). Optionally the broker
   restarts under a running attempt instead. On a standalone cluster (`cluster=`), the TaskManager process is
   killed and a new one started; the JobManager restores the job itself. The trial is over once its accounting
   topic gives every input record an outcome and its line items are as many as the baseline's; then it is
   stopped. (Unbounded, because a bounded Kafka source restored from a checkpoint never ends: FLINK-31006, still
   open for connector 5.0.0.)
4. Checks, on what `read_committed` consumers see: every line item, drawdown and alert id exactly once; each line
   item equal to the baseline's (all fields but `emitted_at`); totals per customer and period equal to the cent;
   dead letters and late events as many as in the baseline; the accounting identity against the input's offsets;
   the credits identities per customer and currency.

`meterstream chaos` runs it by hand (20 kills by default); `tests/integration/test_chaos.py` runs 5 in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from meterstream.paths import project_home, var_dir
from meterstream.topics import (
    JOB_INPUT_TOPICS,
    JOB_OUTPUT_TOPICS,
    create_topics,
    output_topic_configs,
    read_committed,
    topic_record_count,
)

CATALOG = "catalogs/example-genai.yaml"
INPUT_TOPICS = JOB_INPUT_TOPICS
OUTPUT_TOPICS = JOB_OUTPUT_TOPICS


@dataclass(frozen=True)
class ChaosSpec:
    kills: int = 20
    events: int = 40_000
    seed: int = 7
    parallelism: int = 2
    checkpoint_interval_ms: int = 2_000
    max_kill_delay_s: float = 6.0  # a kill lands uniformly within this many seconds after an attempt's 1st checkpoint
    broker_restarts: int = 0  # broker restarts under a running attempt (needs `broker` in run_trial)
    attempt_timeout_s: float = 600.0


@dataclass
class ChaosReport:
    run_id: str
    kills: int = 0
    broker_restarts: int = 0
    attempts: int = 0
    recovery_seconds: list[float] = field(default_factory=list)  # kill -> next attempt's first checkpoint
    baseline_seconds: float = 0.0
    trial_seconds: float = 0.0
    line_items: int = 0
    drawdowns: int = 0
    alerts: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        recovery = sorted(self.recovery_seconds)
        median = recovery[len(recovery) // 2] if recovery else float("nan")
        lines = [
            f"chaos {self.run_id}: {self.kills} kills, {self.broker_restarts} broker restarts, "
            f"{self.attempts} attempts",
            f"  baseline {self.baseline_seconds:.1f} s, trial {self.trial_seconds:.1f} s; time to recover "
            f"(kill or broker outage -> the job's next completed checkpoint): median {median:.1f} s, "
            f"max {max(recovery, default=float('nan')):.1f} s",
            f"  outputs: {self.line_items:,} line items, {self.drawdowns:,} drawdowns, {self.alerts:,} alerts",
            "  checks: " + ("ALL HOLD" if self.ok else "BROKEN"),
            *[f"    - {failure}" for failure in self.failures],
        ]
        return "\n".join(lines)


FLUSH_CUSTOMER = "chaos-flush"


def job_command(bootstrap: str, topics: dict[str, str], *, job_name: str, run_id: str, reference_time: str,
                parallelism: int, checkpoint_interval_ms: int, flink_conf: dict[str, str],
                bounded: bool) -> list[str]:
    args = [sys.executable, "-m", "jobs.billing", "--credits", "--watermark-on-every-event",
            "--bootstrap", bootstrap, "--catalog", str(project_home() / CATALOG), "--parallelism", str(parallelism),
            "--reference-time", reference_time, "--job-name", job_name, "--run-id", run_id,
            "--checkpoint-interval-ms", str(checkpoint_interval_ms)]
    if bounded:
        args.append("--bounded")
    for name, topic in topics.items():
        args += [f"--topic-{name.replace('_', '-')}", topic]
    for key, value in flink_conf.items():
        args += ["--flink-conf", f"{key}={value}"]
    return args


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete retained checkpoint under `root` (`<job id>/chk-<n>/_metadata` is written last)."""
    complete = [m.parent for m in root.glob("*/chk-*/_metadata")]
    return max(complete, key=lambda p: p.stat().st_mtime, default=None)


def _checkpoints(root: Path) -> set[Path]:
    return {m.parent for m in root.glob("*/chk-*/_metadata")}


# Each Kafka sink commits its share of a checkpoint on its own, once told the checkpoint completed: committed output
# on one topic says nothing of the others (drawdowns, late events), and a job stopped right then leaves them in open
# transactions. Two checkpoints later, everything before is committed.
CHECKPOINTS_UNTIL_ALL_COMMITTED = 2


def await_commits(root: Path, proc: subprocess.Popen, *, timeout_s: float = 60.0) -> bool:
    """Wait until every sink of the MiniCluster job `proc` (checkpoints retained under `root`) has committed what it
    wrote so far; False when the job ended or the time ran out first."""
    def newest() -> int:
        return max((int(path.name.split("-", 1)[1]) for path in _checkpoints(root)), default=0)

    return _await_checkpoints(newest, lambda: proc.poll() is None, time.monotonic() + timeout_s)


def _await_checkpoints(completed: Callable[[], int], running: Callable[[], bool], deadline: float) -> bool:
    """The rule of `await_commits` over any checkpoint counter: CHECKPOINTS_UNTIL_ALL_COMMITTED more completed
    checkpoints while the job runs; False when it stopped or the (monotonic) deadline passed first."""
    target = completed() + CHECKPOINTS_UNTIL_ALL_COMMITTED
    while running() and time.monotonic() < deadline:
        if completed() >= target:
            return True
        time.sleep(0.2)
    return False


def retained_checkpoints_conf(root: Path) -> dict[str, str]:
    """Flink settings for a job process that may be killed: checkpoints retained under `root`, and in-process
    restarts while the broker is away (a broker restart fails the sinks' transactions)."""
    return {
        "execution.checkpointing.dir": root.as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "10 s",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "1000",
    }


def kill_process_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def produce_flush_events(bootstrap: str, topic: str, at) -> None:
    """One valid event per partition, two minutes after the workload: it moves every partition's watermark past the
    workload's last windows, so an unbounded job fires them all (the flush customer's own window stays open)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for partition in sorted(producer.partitions_for(topic)):
            event = {"event_id": f"flush-{partition}", "tenant_id": "acme-ai", "customer_id": FLUSH_CUSTOMER,
                     "meter": "requests", "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
            producer.send(topic, json.dumps(event).encode(), partition=partition)
        producer.flush()
    finally:
        producer.close()


class Progress:
    """When has an unbounded trial caught up? All input records have an outcome on its accounting topic and its
    line items (the flush customer's aside) are as many as the baseline's."""

    def __init__(self, bootstrap: str, topics: dict[str, str], run_id: str, expected_line_items: int):
        self.bootstrap, self.topics, self.run_id = bootstrap, topics, run_id
        self.received = topic_record_count(bootstrap, topics["usage_events"])
        self.expected_line_items = expected_line_items
        self.next_check = 0.0

    def done(self) -> bool:
        from jobs.billing import read_accounting

        if time.monotonic() < self.next_check:
            return False
        self.next_check = time.monotonic() + 3.0
        if sum(read_accounting(self.bootstrap, self.topics["accounting"], self.run_id).values()) < self.received:
            return False
        lines = [r for r in _read(self.bootstrap, self.topics["line_items"]) if r["customer_id"] != FLUSH_CUSTOMER]
        return len({r["line_item_id"] for r in lines}) >= self.expected_line_items


def run_trial(bootstrap: str, spec: ChaosSpec, *, broker=None, cluster=None, log=print) -> ChaosReport:
    """One trial (see the module docstring). `broker`: a `kafka_local.BrokerInfo` this process may restart;
    `cluster`: a running `meterstream.cluster.ClusterInfo` to run the trial on, killing its TaskManager."""
    from datetime import timedelta

    from meterstream.demo import produce_inputs

    run_id = f"chaos-{uuid.uuid4().hex[:8]}"
    report = ChaosReport(run_id)
    rng = random.Random(spec.seed)
    workdir = var_dir() / "chaos" / run_id
    workdir.mkdir(parents=True)
    inputs = {name: f"{run_id}-{name.replace('_', '-')}" for name in INPUT_TOPICS}
    runs = {kind: {**inputs, **{n: f"{run_id}-{kind}-{n.replace('_', '-')}" for n in OUTPUT_TOPICS}}
            for kind in ("baseline", "trial")}
    outputs = [*(runs["baseline"][n] for n in OUTPUT_TOPICS), *(runs["trial"][n] for n in OUTPUT_TOPICS)]
    create_topics(bootstrap, [*inputs.values(), *outputs], partitions=2, configs=output_topic_configs(outputs))
    workload = produce_inputs(bootstrap, inputs, events=spec.events, seed=spec.seed, customers_per_tenant=100)
    produce_flush_events(bootstrap, inputs["usage_events"], workload.max_event_time + timedelta(minutes=2))
    reference = workload.reference_time.isoformat()
    log(f"[chaos] {run_id}: {spec.events:,} events, grants and a spend cap in {inputs['usage_events']} ...")

    def command(kind: str, extra: dict[str, str]) -> list[str]:
        return job_command(bootstrap, runs[kind], job_name=f"{run_id}-{kind}", run_id=f"{run_id}-{kind}",
                           reference_time=reference, parallelism=spec.parallelism,
                           checkpoint_interval_ms=spec.checkpoint_interval_ms, flink_conf=extra,
                           bounded=kind == "baseline")

    # The baseline is a bounded run (it checks its own identities and ends); the trial runs unbounded: a bounded
    # Kafka source restored from a checkpoint never ends (FLINK-31006, open in connector 5.0.0), so the harness
    # watches the trial's outputs until it has caught up, then stops it.
    started = time.monotonic()
    with open(workdir / "baseline.log", "wb") as out:
        baseline = subprocess.run(command("baseline", {}), stdout=out, stderr=subprocess.STDOUT,
                                  timeout=spec.attempt_timeout_s)
    report.baseline_seconds = time.monotonic() - started
    if baseline.returncode != 0:
        report.failures.append(f"the baseline run failed ({baseline.returncode}); log {workdir / 'baseline.log'}")
        return report
    expected = len({r["line_item_id"] for r in _read(bootstrap, runs["baseline"]["line_items"])
                    if r["customer_id"] != FLUSH_CUSTOMER})
    progress = Progress(bootstrap, runs["trial"], f"{run_id}-trial", expected)
    log(f"[chaos] baseline done in {report.baseline_seconds:.1f} s ({expected:,} line items); trial with "
        f"{spec.kills} kills and {spec.broker_restarts} broker restarts ...")

    if cluster is not None:
        _cluster_trial(cluster, spec, rng, report, command("trial", {})[3:], progress, log)
    else:
        _minicluster_trial(spec, rng, report, lambda conf: command("trial", conf), workdir, broker, progress, log)
    if report.failures:
        return report
    if report.kills < spec.kills:
        report.failures.append(f"only {report.kills} of {spec.kills} kills happened before the trial caught up "
                               "(a larger --events gives the job more time)")
    compare_outputs(bootstrap, runs, run_id, report)
    return report


def _minicluster_trial(spec: ChaosSpec, rng: random.Random, report: ChaosReport, command, workdir: Path, broker,
                       progress: Progress, log) -> None:
    """Kill the whole job process (the MiniCluster in it) and relaunch it from the newest retained checkpoint."""
    root = workdir / "checkpoints"
    retained = retained_checkpoints_conf(root)
    disruptions = ["kill"] * spec.kills + ["broker"] * (spec.broker_restarts if broker is not None else 0)
    rng.shuffle(disruptions)
    started = time.monotonic()
    deadline = started + spec.attempt_timeout_s * (len(disruptions) + 1)
    proc: subprocess.Popen | None = None
    killed_at: float | None = None

    def wait_for_checkpoint(known: set[Path]) -> bool:
        while proc.poll() is None and not (_checkpoints(root) - known) and time.monotonic() < deadline:
            time.sleep(0.05)
        return proc.poll() is None and time.monotonic() < deadline

    try:
        while True:
            if proc is None:
                report.attempts += 1
                conf = dict(retained)
                restore = latest_checkpoint(root)
                if restore is not None:
                    conf["execution.state-recovery.path"] = restore.as_uri()
                known = _checkpoints(root)
                with open(workdir / f"attempt-{report.attempts}.log", "wb") as out:
                    proc = subprocess.Popen(command(conf), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
                if not wait_for_checkpoint(known):  # its first checkpoint proves the restore worked
                    report.failures.append(f"attempt {report.attempts} ended ({proc.returncode}) or timed out "
                                           f"before its first checkpoint; log in {workdir}")
                    return
                if killed_at is not None:
                    report.recovery_seconds.append(time.monotonic() - killed_at)
                    killed_at = None
            if not disruptions:
                while not progress.done():
                    if proc.poll() is not None or time.monotonic() >= deadline:
                        report.failures.append(f"attempt {report.attempts} ended ({proc.returncode}) or timed out "
                                               f"before the trial caught up; log in {workdir}")
                        return
                    time.sleep(0.5)
                if not await_commits(root, proc):
                    report.failures.append(f"attempt {report.attempts} ended or timed out before its outputs were "
                                           f"all committed; log in {workdir}")
                return
            delay = rng.uniform(0, spec.max_kill_delay_s)
            time.sleep(delay)
            if proc.poll() is not None:
                report.failures.append(f"attempt {report.attempts} ended ({proc.returncode}); log in {workdir}")
                return
            if disruptions.pop() == "kill":
                kill_process_group(proc)
                proc, killed_at = None, time.monotonic()
                report.kills += 1
                log(f"[chaos] attempt {report.attempts}: SIGKILL {delay:.1f} s after its first checkpoint")
                continue
            from meterstream.kafka_local import restart_broker

            log(f"[chaos] attempt {report.attempts}: broker restart {delay:.1f} s after its first checkpoint")
            outage_started, known = time.monotonic(), _checkpoints(root)
            restart_broker(broker, down_seconds=rng.uniform(1, 5))
            report.broker_restarts += 1
            # The job recovers in-process (its restart strategy); if it gave up, the next attempt restores.
            if wait_for_checkpoint(known):
                report.recovery_seconds.append(time.monotonic() - outage_started)
            else:
                kill_process_group(proc)
                proc, killed_at = None, outage_started
    finally:
        report.trial_seconds = time.monotonic() - started
        if proc is not None:
            kill_process_group(proc)  # caught up, broken or interrupted: the unbounded job stops here


def _completed_checkpoints(jobmanager: str, job_id: str) -> int:
    from meterstream.cluster import rest

    return rest(jobmanager, "GET", f"/jobs/{job_id}/checkpoints").get("counts", {}).get("completed", 0)


def _cluster_trial(cluster, spec: ChaosSpec, rng: random.Random, report: ChaosReport, job_args: list[str],
                   progress: Progress, log) -> None:
    """On a standalone cluster: SIGKILL the TaskManager process, start a new one; the JobManager restarts the job
    from its latest checkpoint by itself (the cluster's restart strategy)."""
    from meterstream import cluster as flink_cluster

    jobmanager = cluster.rest_address
    home = Path(cluster.home)
    job_id, _, _ = flink_cluster.submit(jobmanager, job_args, parallelism=spec.parallelism, home=home)
    log(f"[chaos] submitted job {job_id} to the cluster at {jobmanager}")
    started = time.monotonic()
    deadline = started + spec.attempt_timeout_s * (spec.kills + 1)
    killed_at: float | None = None
    try:
        for _ in range(spec.kills + 1):
            seen = _completed_checkpoints(jobmanager, job_id)
            while _completed_checkpoints(jobmanager, job_id) <= seen:
                if time.monotonic() >= deadline or flink_cluster.job_state(jobmanager, job_id) in (
                        "FINISHED", "FAILED", "CANCELED"):
                    report.failures.append(f"the job on the cluster is {flink_cluster.job_state(jobmanager, job_id)}"
                                           f" (or timed out) before its next checkpoint; logs in {home / 'log'}")
                    return
                time.sleep(0.2)
            if killed_at is not None:
                report.recovery_seconds.append(time.monotonic() - killed_at)
            if report.kills == spec.kills:
                break
            time.sleep(rng.uniform(0, spec.max_kill_delay_s))
            for pid in flink_cluster._pids(home)["taskexecutor"]:
                if flink_cluster._alive(pid):
                    os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            report.kills += 1
            report.attempts += 1
            log(f"[chaos] TaskManager killed ({report.kills}); starting a new one")
            flink_cluster.start_taskmanager(cluster)
        while not progress.done():
            if time.monotonic() >= deadline:
                report.failures.append(f"the job on the cluster did not catch up in time; logs in {home / 'log'}")
                return
            time.sleep(0.5)
        # As in await_commits, counted through REST: every sink commits before the cancel (which would abort).
        if not _await_checkpoints(lambda: _completed_checkpoints(jobmanager, job_id), lambda: True, deadline):
            report.failures.append(f"the job on the cluster did not commit all its output in time; logs in "
                                   f"{home / 'log'}")
            return
    finally:
        report.trial_seconds = time.monotonic() - started
        with contextlib.suppress(Exception):
            flink_cluster.cancel(jobmanager, job_id)


def _read(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(v) for v in read_committed(bootstrap, topic)]


def _unique(records: list[dict], key: str, what: str, report: ChaosReport) -> None:
    repeated = [k for k, n in Counter(r[key] for r in records).items() if n > 1]
    if repeated:
        report.failures.append(f"{len(repeated)} {what} ids appear more than once, e.g. {repeated[:3]}")


def compare_outputs(bootstrap: str, runs: dict[str, dict[str, str]], run_id: str, report: ChaosReport) -> None:
    from jobs.billing import BillingSettings, Topics, accounting_table, credit_identity_check, read_accounting

    trial = runs["trial"]  # the baseline's own identities were checked by its bounded run (exit code 0)
    lines = {kind: _read(bootstrap, runs[kind]["line_items"]) for kind in runs}
    drawdowns = _read(bootstrap, trial["credit_drawdowns"])
    alerts = _read(bootstrap, trial["billing_alerts"])
    report.line_items, report.drawdowns, report.alerts = len(lines["trial"]), len(drawdowns), len(alerts)
    _unique(lines["trial"], "line_item_id", "line item", report)
    _unique(drawdowns, "drawdown_id", "drawdown", report)
    _unique(alerts, "alert_id", "alert", report)

    def comparable(records: list[dict]) -> dict[str, dict]:
        return {r["line_item_id"]: {k: v for k, v in r.items() if k != "emitted_at"} for r in records}

    # The flush customer's window closes only at the bounded baseline's end of input: compared without it.
    lines = {kind: [r for r in records if r["customer_id"] != FLUSH_CUSTOMER] for kind, records in lines.items()}
    expected, got = comparable(lines["baseline"]), comparable(lines["trial"])
    if not expected:
        report.failures.append("the baseline wrote no line items")
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    differ = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    for what, ids in (("missing", missing), ("unexpected", extra), ("different", differ)):
        if ids:
            report.failures.append(f"{len(ids)} line items {what} against the baseline, e.g. {sorted(ids)[:3]}")

    def totals(records: list[dict]) -> dict[tuple, Decimal]:
        out: dict[tuple, Decimal] = defaultdict(Decimal)
        for r in records:
            out[(r["tenant_id"], r["customer_id"], r["period_start"], r["currency"])] += Decimal(r["amount"])
        return dict(out)

    if totals(lines["baseline"]) != totals(lines["trial"]):
        report.failures.append("line item totals per customer and period differ from the baseline")
    for topic in ("dead_letters", "late_events", "credit_grant_dead_letters"):
        counts = {kind: len(read_committed(bootstrap, runs[kind][topic])) for kind in runs}
        if counts["baseline"] != counts["trial"]:
            report.failures.append(f"{topic}: {counts['trial']} records, the baseline has {counts['baseline']}")

    received = topic_record_count(bootstrap, trial["usage_events"])
    _, holds = accounting_table(read_accounting(bootstrap, trial["accounting"], f"{run_id}-trial"), received)
    if not holds:
        report.failures.append("the accounting identity does not hold on the trial's accounting topic")
    settings = BillingSettings(catalog_yaml=(project_home() / CATALOG).read_text())
    _, credits_hold = credit_identity_check(bootstrap, Topics(**trial), settings)
    if not credits_hold:
        report.failures.append("the credits identities do not hold on the trial's drawdowns")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="meterstream chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--broker-restarts", type=int, default=1)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=None, help="random by default; printed for a rerun")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--bootstrap", help="an existing broker (then no broker restarts)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"[chaos] seed {seed}")
    from meterstream import kafka_local

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = kafka_local.start_broker(var_dir() / f"kafka-chaos-{uuid.uuid4().hex[:6]}")
        bootstrap = broker.bootstrap_servers
    try:
        spec = ChaosSpec(kills=args.kills, events=args.events, seed=seed, parallelism=args.parallelism,
                         broker_restarts=args.broker_restarts if broker is not None else 0)
        report = run_trial(bootstrap, spec, broker=broker)
        print(report.summary())
        return 0 if report.ok else 2
    finally:
        if broker is not None:
            kafka_local.stop_broker(broker, remove_data=True)


if __name__ == "__main__":
    raise SystemExit(main())
