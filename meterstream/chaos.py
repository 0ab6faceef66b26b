"""Failure trials: the billing job killed at random points, restarted from its latest retained checkpoint, and its
committed outputs compared with the same workload processed without failures and with what the workload was made
to be.

One trial, on a real broker:
1. Inputs: the demo's generated workload (duplicates, late and malformed records), grants and a spend cap, after
   each tenant's tail of its previous billing period (the demo's, sent half an hour earlier by record time), so
   those periods close during the trial. The tails and the first part of the workload are in the input topic
   before the trial starts; a producer writes the rest while the trial
   runs (through the kills and the broker outage), then one flush event per partition two minutes later in event
   time, with a record timestamp ten minutes ahead (every workload customer is idle by then, so it closes the
   workload's last windows in an unbounded run). Each record goes to the partition of its (tenant, event_id)
   key, so every copy of an event is in one partition and each record's offset is known in advance.
   Corrections: the generator's (`ChaosSpec.correction_rate` of the first-seen events; cancels, value and
   dimension amends, re-sent correction ids, unknown events) of the events written before the trial
   (`trial_corrections`), those of customers with credit grants and spend caps too. The
   unbounded job decides a correction on arrival (one before its event is `unknown_event`), so `CorrectionProducer`
   writes them only once the trial's committed output proves those events are in the job's state for good, and the
   flush events wait until its committed accounting counts them all (the job decides a correction at its next
   watermark, and the flush moves the watermark for the last time).
2. Trial: the job (with credits and corrections), unbounded, as a separate process (the MiniCluster lives in it).
   Disruptions:
   - a kill during start-up: the first attempt gets SIGKILL before its first checkpoint (nothing to restore);
   - kills during restore: an attempt launched from a retained checkpoint gets SIGKILL before its first checkpoint;
   - kills after an attempt's first checkpoint and a random delay (0-6 s); the next attempt restores the newest
     retained checkpoint (`execution.state-recovery.path`);
   - broker outages (`outages`): SIGKILL of the broker, down for `outage_seconds` (30 s and more) while the
     producer keeps writing usage events into its buffer, then started again on the same ports and data;
   - broker SIGKILLs (`broker_kills`) and clean broker restarts (`broker_restarts`), each 1-5 s down.
   The last kill or broker restart (an outage aside) waits until the corrections are written, so it hits the job
   with corrections in its input, read or not, decided or not.
   The job rides out broker disruptions with its restart strategy; if it gives up, the next attempt restores. On
   a standalone cluster (`cluster=`), the TaskManager process is killed and a new one started; the JobManager
   restores the job itself. The trial is over once the producers are done, its accounting topic gives every input
   record an outcome, its line items are as many as the workload should give and its corrected series cost what
   they should; then it is stopped.
   (Unbounded, because a bounded Kafka source restored from a checkpoint never ends: FLINK-31006, still open for
   connector 5.0.0.)
3. Baseline: the same job, bounded, without failures, into its own output topics, once all input is there (it holds
   the corrections until the usage input ended).
4. Checks, on what `read_committed` consumers see (`meterstream.chaos_checks`):
   - every line item (correction lines included), drawdown and alert id exactly once in the trial, every line item
     id once in the baseline;
   - invoices: the baseline's (final for the closed periods, open previews at its end of input) exact against its
     line items (a correction line on exactly one invoice) and drawdowns; the trial's final invoices equal the
     baseline's (all fields but `emitted_at`), each exact against the trial's lines that name it, and no open
     preview (its input never ends); every trial line names an invoice the baseline wrote;
   - trial = baseline: each line item (all fields but `emitted_at`) of the series without late usage or a
     correction; the money per (tenant, customer, meter, group, period) of the corrected series (a correction that
     met an open window changed its usage line, one that met a fired window made a correction line: timing); totals
     per customer and period; corrections applied and rejected by reason, their dead letters by (correction id,
     reason); per grant and per customer and currency: drawn, expired, voided, uncovered and the final balance
     (customers with late usage aside); the alerts (by id and content but `emitted_at`; customers with a correction
     aside: an alert is a signal at arrival, with the spend then, which follows whether a correction met an open
     window); the dead letters by (source partition, offset, reason, raw bytes); as many late events and rejected
     grant records;
   - trial and baseline against the workload's intent: records per outcome and dead letters per reason, each dead
     letter by (partition, offset, reason, raw bytes), the late events by id, and every line item (quantity,
     amount, period-to-date, tiers, ...) of the series without late usage or a correction as the pure Python
     specification in `udfs/` computes it from the records meant to be on time; each correction's outcome (and
     dead letter) as the spec's ledger decides it with every event seen first, which must be what the generator
     meant; the corrected series' money per period as the price of the period quantity of the events as corrected
     (`meterstream.corrected_bill`);
   - identities: accounting (usage and corrections) against the inputs' offsets; the credits identities; per
     customer and currency, grants - drawn - expired - voided = the ledger's last reported
     `customer_balance_after` (the last written: the sink keys drawdowns by customer).

The trial runs with an idle timeout longer than the outage (`ChaosSpec.idle_timeout_s`), a precaution: with the
default 5 s both partitions turn idle during an outage, and the one whose reader resumes first would move the
watermark alone until the other reads again, so lateness could depend on timing (a property of source idleness, not
of recovery; not observed: one trial with 5 s held, seed 4242).

`meterstream chaos` runs it by hand (20 kills by default); `tests/integration/test_chaos.py` runs a smaller variant
in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from meterstream import chaos_checks
from meterstream.kafka_security import add_properties_argument, use_or_exit, use_plaintext
from meterstream.paths import project_home, var_dir
from meterstream.topics import (
    JOB_INPUT_TOPICS,
    JOB_OUTPUT_TOPICS,
    create_topics,
    output_topic_configs,
    produce,
    read_committed,
    read_committed_records,
    topic_record_count,
)
from udfs.accounting import CorrectionOutcome

CATALOG = "catalogs/example-genai.yaml"
INPUT_TOPICS = JOB_INPUT_TOPICS
OUTPUT_TOPICS = JOB_OUTPUT_TOPICS
PARTITIONS = 2


@dataclass(frozen=True)
class ChaosSpec:
    kills: int = 20  # after an attempt's first checkpoint
    startup_kills: int = 0  # 0 or 1: the first attempt, before its first checkpoint
    restore_kills: int = 0  # attempts launched from a checkpoint, killed before their first checkpoint
    events: int = 40_000
    seed: int = 7
    parallelism: int = 2
    checkpoint_interval_ms: int = 2_000
    max_kill_delay_s: float = 6.0  # a kill lands uniformly within this many seconds after an attempt's 1st checkpoint
    broker_restarts: int = 0  # clean broker restarts under a running attempt (needs `broker` in run_trial)
    broker_kills: int = 0  # broker SIGKILLs, 1-5 s down (needs `broker`)
    outages: int = 0  # broker SIGKILLs, `outage_seconds` down while the producer writes (needs `broker`)
    outage_seconds: float = 30.0
    live_share: float = 0.3  # share of the workload written while the trial runs
    live_seconds: float = 40.0  # how long the producer takes for it (plus the outage it waits out)
    # corrections per first-seen event of the workload (`WorkloadSpec.correction_rate`), of which those of the events
    # written before the trial are produced (`trial_corrections`)
    correction_rate: float = 0.01
    idle_timeout_s: float = 120.0  # the job's source idle timeout: longer than an outage (see the docstring)
    attempt_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.startup_kills not in (0, 1):
            raise ValueError("startup_kills is 0 or 1 (only the first attempt starts without a checkpoint)")
        if not 0 <= self.correction_rate <= 1:
            raise ValueError("correction_rate must be in [0, 1]")
        if self.outages and self.idle_timeout_s <= self.outage_seconds:
            raise ValueError("idle_timeout_s must be longer than outage_seconds")


@dataclass
class ChaosReport:
    run_id: str
    seed: int = 0
    kills: int = 0
    startup_kills: int = 0
    restore_kills: int = 0
    broker_restarts: int = 0
    broker_kills: int = 0
    outages: list[float] = field(default_factory=list)  # seconds the broker was down, per outage
    attempts: int = 0
    recovery_seconds: list[float] = field(default_factory=list)  # kill -> next attempt's first checkpoint
    baseline_seconds: float = 0.0
    trial_seconds: float = 0.0
    line_items: int = 0
    invoices: int = 0  # final ones the trial wrote (the previous periods closed during it)
    drawdowns: int = 0
    alerts: int = 0
    corrections: int = 0  # produced into the trial's corrections topic
    corrections_applied: int = 0  # by the trial (its committed accounting)
    correction_lines: int = 0  # the trial's `correction` line items (a correction that met an open window has none)
    corrected_aggregations: frozenset[str] = frozenset()  # of the meters whose events an applied correction changed
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        recovery = sorted(self.recovery_seconds)
        median = recovery[len(recovery) // 2] if recovery else float("nan")
        outages = ", ".join(f"{s:.0f} s" for s in self.outages) or "none"
        lines = [
            f"chaos {self.run_id} (seed {self.seed}): {self.kills} kills after a checkpoint, {self.startup_kills} "
            f"during start-up, {self.restore_kills} during restore; {self.broker_restarts} broker restarts, "
            f"{self.broker_kills} broker SIGKILLs, outages (SIGKILL, producer writing): {outages}; "
            f"{self.attempts} attempts",
            f"  trial {self.trial_seconds:.1f} s, baseline {self.baseline_seconds:.1f} s; time to recover "
            f"(kill or broker outage -> the job's next completed checkpoint): median {median:.1f} s, "
            f"max {max(recovery, default=float('nan')):.1f} s",
            f"  outputs: {self.line_items:,} line items, {self.invoices:,} final invoices, {self.drawdowns:,} "
            f"drawdowns, {self.alerts:,} alerts",
            f"  corrections: {self.corrections:,} produced, {self.corrections_applied:,} applied, "
            f"{self.correction_lines:,} correction lines; corrected aggregations: "
            f"{', '.join(sorted(self.corrected_aggregations)) or 'none'}",
            "  checks (baseline, workload intent, identities): " + ("ALL HOLD" if self.ok else "BROKEN"),
            *[f"    - {failure}" for failure in self.failures],
        ]
        return "\n".join(lines)


FLUSH_CUSTOMER = "chaos-flush"


def job_command(bootstrap: str, topics: dict[str, str], *, job_name: str, run_id: str, reference_time: str,
                parallelism: int, checkpoint_interval_ms: int, flink_conf: dict[str, str],
                bounded: bool, idle_timeout_s: float | None = None, corrections: bool = False) -> list[str]:
    """The billing job's command line (with credits); `corrections`: with --corrections (the trials')."""
    args = [sys.executable, "-m", "jobs.billing", "--credits", "--watermark-on-every-event",
            "--bootstrap", bootstrap, "--catalog", str(project_home() / CATALOG), "--parallelism", str(parallelism),
            "--reference-time", reference_time, "--job-name", job_name, "--run-id", run_id,
            "--checkpoint-interval-ms", str(checkpoint_interval_ms)]
    if idle_timeout_s is not None:
        args += ["--idle-timeout-seconds", str(idle_timeout_s)]
    if bounded:
        args.append("--bounded")
    if corrections:
        args.append("--corrections")
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



def flush_events(at: datetime, partitions: int = PARTITIONS) -> list[tuple[int, bytes]]:
    """One valid event per partition, two minutes after the workload: it moves every partition's watermark past the
    workload's last windows, so an unbounded job fires them all (the flush customer's own window stays open). The
    live producer sends them with a record timestamp past the idle timeout (`FLUSH_AHEAD_MS`)."""
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [(partition, json.dumps({"event_id": f"flush-{partition}", "tenant_id": "acme-ai",
                                    "customer_id": FLUSH_CUSTOMER, "meter": "requests", "timestamp": stamp}).encode())
            for partition in range(partitions)]


FLUSH_AHEAD_MS = 10 * 60 * 1000


def _outage_proof_producer(bootstrap: str):
    """A producer that rides out a broker outage of minutes: it buffers and retries, idempotent, so nothing is
    doubled or reordered."""
    from meterstream.topics import new_producer

    return new_producer(bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
                        delivery_timeout_ms=10 * 60 * 1000, request_timeout_ms=30_000, max_block_ms=10 * 60 * 1000,
                        reconnect_backoff_max_ms=2_000)


class LiveProducer(threading.Thread):
    """Writes `records` ((partition, value), in order) at a steady pace over about `seconds`, then `tail` (the flush
    events). With `outage` set, it writes the first half, then, once the outage has begun, the next quarter while
    the broker is down (the client buffers and retries: idempotent, so nothing is doubled or reordered), and the rest
    after the outage ended. With `tail_gate`, the tail waits for it (`CorrectionProducer`: the job decides a
    correction at its next watermark, and the flush events move the watermark for the last time). `error` holds what
    went wrong, `done` is set at the end either way."""

    def __init__(self, bootstrap: str, topic: str, records: list[tuple[int, bytes]], tail: list[tuple[int, bytes]],
                 *, seconds: float, outage: tuple[threading.Event, threading.Event] | None, outage_seconds: float,
                 tail_gate: threading.Event | None = None):
        super().__init__(name="chaos-live-producer", daemon=True)
        self.bootstrap, self.topic, self.records, self.tail = bootstrap, topic, records, tail
        self.seconds, self.outage, self.outage_seconds = seconds, outage, outage_seconds
        self.tail_gate = tail_gate
        self.done = threading.Event()
        self.stop = threading.Event()
        self.error: str | None = None
        self.written_during_outage = 0

    def run(self) -> None:
        try:
            producer = _outage_proof_producer(self.bootstrap)
        except Exception as exc:  # noqa: BLE001 - reported by the trial
            self.error = f"the live producer could not start: {exc!r}"
            self.done.set()
            return
        try:
            n = len(self.records)
            half, three_quarters = n // 2, (3 * n) // 4
            step = 0.1
            chunk = max(1, int(n * step / max(self.seconds, step)))
            during = max(1, int((three_quarters - half) * step / max(self.outage_seconds * 0.6, step)))
            i = 0
            while i < n and not self.stop.is_set():
                if self.outage is not None and i == half:
                    self.outage[0].wait()
                if self.outage is not None and i == three_quarters:
                    self.outage[1].wait()
                in_outage = self.outage is not None and half <= i < three_quarters
                limit = three_quarters if in_outage else (half if self.outage is not None and i < half else n)
                end = min(limit, i + (during if in_outage else chunk))
                for partition, value in self.records[i:end]:
                    producer.send(self.topic, value=value, partition=partition)
                if in_outage and self.outage[0].is_set() and not self.outage[1].is_set():
                    self.written_during_outage += end - i
                i = end
                time.sleep(step)
            producer.flush()
            while self.tail_gate is not None and not self.tail_gate.wait(0.5) and not self.stop.is_set():
                pass
            # The flush events' record timestamp is later than the workload's by more than any idle timeout a
            # trial uses (and within the broker's hour): every workload customer is idle by then, so the flush
            # customer's clock alone moves the watermark past the workload's last windows (issue 15's per-customer
            # clocks: a customer holds its partition's clock until silent for the idle timeout in record time).
            flush_at = int(time.time() * 1000) + FLUSH_AHEAD_MS
            for partition, value in self.tail:
                producer.send(self.topic, value=value, partition=partition, timestamp_ms=flush_at)
            producer.flush()
        except Exception as exc:  # noqa: BLE001 - reported by the trial
            self.error = f"the live producer failed: {exc!r}"
        finally:
            with contextlib.suppress(Exception):
                producer.close(timeout=30)
            self.done.set()


def trial_corrections(corrections: list, *, first_index: int, head: int) -> list:
    """The generator's corrections (`meterstream.workload.CorrectionRecord`, `event_index` into the workload that
    starts at record `first_index` of the input) whose outcome cannot depend on timing, kills or restores: those of
    events among the input's first `head` records (written before the trial; `CorrectionProducer` waits until the
    job has them for good), the corrections of unknown events, and the re-sends of a kept correction (a re-send of
    one left out would be a first copy)."""
    from meterstream.workload import CorrectionKind

    kept, ids = [], set()
    for correction in corrections:
        payload = json.loads(correction.record)
        key = (payload["tenant_id"], payload["correction_id"])
        if correction.kind is CorrectionKind.DUPLICATE:
            keep = key in ids
        else:
            keep = correction.event_index < 0 or correction.event_index + first_index < head
        if keep:
            kept.append(correction)
            ids.add(key)
    return kept


def usage_counted(accounting: dict[tuple[str, str], int]) -> int:
    """The usage records an accounting read (`jobs.billing.read_accounting`) gives an outcome (corrections aside)."""
    corrections = set(CorrectionOutcome)
    return sum(n for (outcome, _), n in accounting.items() if outcome not in corrections)


class CorrectionProducer(threading.Thread):
    """Writes the trial's corrections once the trial's committed output proves that every event they correct is in
    the job's state for good, then waits until its committed accounting counts every correction and opens
    `tail_gate` (the live producer's flush events, which decide them: `LiveProducer`).

    The job decides a correction on arrival in an unbounded run (one before its event is `unknown_event`), so the
    proof: per input partition, a committed dead letter or late event of a record at or after the last one written
    before the trial (`head_last`: offset per partition). Output of a checkpoint's transaction is committed only once
    the checkpoint completed, and a record before its barrier in its partition was processed by every operator before
    that checkpoint, so every earlier record of the partition too; every restore is from that checkpoint or a newer
    one. Failing that (a partition without such a record), the committed accounting counting every usage record."""

    def __init__(self, bootstrap: str, topics: dict[str, str], run_id: str, records: list[tuple[int, bytes]], *,
                 head_last: dict[int, int], usage_records: int, tail_gate: threading.Event, log=print):
        super().__init__(name="chaos-correction-producer", daemon=True)
        self.log = log
        self.bootstrap, self.topics, self.run_id, self.records = bootstrap, topics, run_id, records
        self.head_last, self.usage_records, self.tail_gate = head_last, usage_records, tail_gate
        self.stop = threading.Event()
        self.written = threading.Event()  # the corrections are in the topic (or they never will be)
        self.done = threading.Event()
        self.error: str | None = None

    def _committed(self) -> tuple[dict[int, int], dict[tuple[str, str], int]]:
        """(per input partition: the highest source offset among committed dead letters and late events, the
        trial's committed accounting)."""
        from jobs.billing import read_accounting

        highest: dict[int, int] = {}
        for topic in ("dead_letters", "late_events"):
            for record in _read(self.bootstrap, self.topics[topic]):
                partition = record["source_partition"]
                highest[partition] = max(highest.get(partition, -1), record["source_offset"])
        return highest, read_accounting(self.bootstrap, self.topics["accounting"], self.run_id)

    def _wait(self, holds: Callable[[dict[int, int], dict[tuple[str, str], int]], bool]) -> bool:
        """Until `holds` on what the trial committed, or the trial stopped it (False)."""
        while not self.stop.is_set():
            try:
                if holds(*self._committed()):
                    return True
            except Exception:  # noqa: BLE001 - a broker outage: read again
                pass
            self.stop.wait(2.0)
        return False

    def run(self) -> None:
        def in_state(highest: dict[int, int], accounting: dict[tuple[str, str], int]) -> bool:
            return (all(highest.get(p, -1) >= last for p, last in self.head_last.items())
                    or usage_counted(accounting) >= self.usage_records)

        def decided(_: dict[int, int], accounting: dict[tuple[str, str], int]) -> bool:
            return sum(chaos_checks.correction_outcomes(accounting).values()) >= len(self.records)

        try:
            started = time.monotonic()
            if not self._wait(in_state):
                self.error = "the trial ended before its committed output showed the corrected events processed"
                return
            self.log(f"[chaos] the job has the corrected events for good ({time.monotonic() - started:.0f} s into "
                     f"the trial): writing {len(self.records):,} corrections")
            producer = _outage_proof_producer(self.bootstrap)
            try:
                for partition, value in self.records:
                    producer.send(self.topics["usage_corrections"], value=value, partition=partition)
                producer.flush()
            finally:
                producer.close(timeout=30)
            self.written.set()
            if self._wait(decided):
                self.log(f"[chaos] every correction has a committed outcome ({time.monotonic() - started:.0f} s into "
                         "the trial): the flush events may go")
            else:
                self.error = (f"the trial ended before its committed accounting counted all {len(self.records)} "
                              "corrections")
        except Exception as exc:  # noqa: BLE001 - reported by the trial
            self.error = f"the correction producer failed: {exc!r}"
        finally:
            self.written.set()
            self.tail_gate.set()
            self.done.set()


class Progress:
    """When has an unbounded trial caught up? The producer is done, every input record has an outcome on its
    accounting topic, its line items (the flush customer's aside) are as many as the workload should give and the
    corrected series cost what they should, or the count of its line items stood still for `settle_s` after the
    accounting was complete (the comparison then says what is wrong)."""

    def __init__(self, bootstrap: str, topics: dict[str, str], run_id: str, expected_line_items: int,
                 producer_done: Callable[[], bool], *, settle_s: float = 60.0,
                 late_series: frozenset[tuple] = frozenset(), corrected_amounts: dict[tuple, Decimal] | None = None,
                 corrected_series: frozenset[tuple] = frozenset()):
        self.bootstrap, self.topics, self.run_id = bootstrap, topics, run_id
        # the expected count is of the series without late usage or corrections (how many lines the others get
        # depends on timing): those are done when their money per period is the expected one
        self.late_series = late_series | corrected_series
        self.corrected_series, self.corrected_amounts = corrected_series, corrected_amounts or {}
        self.expected_line_items, self.producer_done, self.settle_s = expected_line_items, producer_done, settle_s
        self.received: int | None = None
        self.next_check = 0.0
        self.last_count: tuple[int, float] | None = None

    def done(self) -> bool:
        from jobs.billing import read_accounting

        if time.monotonic() < self.next_check or not self.producer_done():
            return False
        self.next_check = time.monotonic() + 3.0
        if self.received is None:
            self.received = topic_record_count(self.bootstrap, self.topics["usage_events"])
        if usage_counted(read_accounting(self.bootstrap, self.topics["accounting"], self.run_id)) < self.received:
            return False
        every = [r for r in _read(self.bootstrap, self.topics["line_items"]) if r["customer_id"] != FLUSH_CUSTOMER]
        lines = [r for r in every if chaos_checks.series_key(r) not in self.late_series]
        if (len({r["line_item_id"] for r in lines}) >= self.expected_line_items
                and chaos_checks.corrected_amounts(every, self.corrected_series) == self.corrected_amounts):
            return True
        count = len({r["line_item_id"] for r in every})
        if self.last_count is None or self.last_count[0] != count:
            self.last_count = (count, time.monotonic())
        return time.monotonic() - self.last_count[1] >= self.settle_s


@dataclass
class TrialInputs:
    """The workload as placed in the input topic: record i at `placement[i]` = (partition, offset)."""

    workload: object  # meterstream.workload.Workload
    placement: list[tuple[int, int]]
    head: int  # records written before the trial
    flush: list[tuple[int, bytes]]


def place(workload, partitions: int = PARTITIONS) -> list[tuple[int, int]]:
    """(partition, offset) of each record when written in order, each to the partition of its key, into an empty
    topic without transactions."""
    next_offset = [0] * partitions
    placement = []
    for i in range(len(workload.records)):
        partition = workload.partition(i, partitions)
        placement.append((partition, next_offset[partition]))
        next_offset[partition] += 1
    return placement


def input_mismatches(inputs: TrialInputs, read: list[tuple[int, int, bytes]]) -> list[str]:
    """The input topic must hold the workload where `placement` says, then the flush events, and nothing else."""
    expected = {(p, o): inputs.workload.records[i] for i, (p, o) in enumerate(inputs.placement)}
    ends = Counter(p for p, _ in inputs.placement)
    for partition, value in inputs.flush:
        expected[(partition, ends[partition])] = value
        ends[partition] += 1
    got = {(p, o): v for p, o, v in read}
    wrong = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    if wrong:
        return [f"the input topic does not hold the workload as produced at {len(wrong)} offsets, e.g. {wrong[:3]}"]
    return []


def run_trial(bootstrap: str, spec: ChaosSpec, *, broker=None, cluster=None, log=print) -> ChaosReport:
    """One trial (see the module docstring). `broker`: a `kafka_local.BrokerInfo` this process may restart and
    kill; `cluster`: a running `meterstream.cluster.ClusterInfo` to run the trial on, killing its TaskManager."""
    from jobs.billing import BillingSettings
    from meterstream.demo import (
        PREVIOUS_TAIL_SENT_BEFORE,
        demo_workload,
        previous_period_workloads,
        produce_credit_inputs,
    )
    from udfs.catalog import load_catalog

    run_id = f"chaos-{uuid.uuid4().hex[:8]}"
    report = ChaosReport(run_id, seed=spec.seed)
    rng = random.Random(spec.seed)
    workdir = var_dir() / "chaos" / run_id
    workdir.mkdir(parents=True)
    inputs = {name: f"{run_id}-{name.replace('_', '-')}" for name in INPUT_TOPICS}
    runs = {kind: {**inputs, **{n: f"{run_id}-{kind}-{n.replace('_', '-')}" for n in OUTPUT_TOPICS}}
            for kind in ("baseline", "trial")}
    outputs = [*(runs["baseline"][n] for n in OUTPUT_TOPICS), *(runs["trial"][n] for n in OUTPUT_TOPICS)]
    create_topics(bootstrap, [*inputs.values(), *outputs], partitions=PARTITIONS,
                  configs=output_topic_configs(outputs))
    now = datetime.now(UTC).replace(microsecond=0)
    current = demo_workload(events=spec.events, seed=spec.seed, customers_per_tenant=100, now=now,
                            correction_rate=spec.correction_rate)
    # Each tenant's previous-period tail first (the demo's): those periods close during the trial.
    previous = previous_period_workloads(events=max(spec.events // 40, 50), seed=spec.seed, customers_per_tenant=10,
                                         now=now)
    workload = current.after(previous)
    tail = len(workload.records) - len(current.records)
    placement = place(workload)
    head = len(workload.records) - int(len(current.records) * spec.live_share)
    trial_inputs = TrialInputs(workload, placement, head, flush_events(workload.max_event_time + timedelta(minutes=2)))
    sent_before = int(now.timestamp() * 1000) - PREVIOUS_TAIL_SENT_BEFORE // timedelta(milliseconds=1)
    produce(bootstrap, inputs["usage_events"], workload.records[:tail], partitions=[p for p, _ in placement[:tail]],
            timestamps_ms=[sent_before] * tail)
    produce(bootstrap, inputs["usage_events"], workload.records[tail:head],
            partitions=[p for p, _ in placement[tail:head]])
    produce_credit_inputs(bootstrap, inputs, now=now)
    reference = workload.reference_time.isoformat()
    window = timedelta(milliseconds=BillingSettings(catalog_yaml="").window_size_ms)

    corrections = trial_corrections(current.corrections, first_index=tail, head=head)
    report.corrections = len(corrections)
    intent = chaos_checks.intent_of(workload, placement, catalog=load_catalog(project_home() / CATALOG),
                                    reference_time=workload.reference_time, window=window,
                                    extra_windowed=len(trial_inputs.flush), corrections=corrections)
    report.corrected_aggregations = intent.corrected_aggregations
    outages = spec.outages if broker is not None and cluster is None else 0
    gates = (threading.Event(), threading.Event()) if outages else None
    tail_gate = threading.Event()
    head_last = {p: o for p, o in placement[:head]}  # in order: the last one per partition stays
    corrector = CorrectionProducer(bootstrap, runs["trial"], f"{run_id}-trial",
                                   [(c.partition_key % PARTITIONS, c.record) for c in corrections],
                                   head_last=head_last, usage_records=len(workload.records), tail_gate=tail_gate,
                                   log=log)
    producer = LiveProducer(bootstrap, inputs["usage_events"],
                            [(placement[i][0], workload.records[i]) for i in range(head, len(workload.records))],
                            trial_inputs.flush, seconds=spec.live_seconds, outage=gates,
                            outage_seconds=spec.outage_seconds, tail_gate=tail_gate)
    log(f"[chaos] {run_id} (seed {spec.seed}): {head:,} of {spec.events:,} events, grants and a spend cap in "
        f"{inputs['usage_events']}; the rest while the trial runs ({len(intent.line_items):,} line items expected); "
        f"{len(corrections):,} corrections once the job has the events they correct")

    def command(kind: str, extra: dict[str, str]) -> list[str]:
        return job_command(bootstrap, runs[kind], job_name=f"{run_id}-{kind}", run_id=f"{run_id}-{kind}",
                           reference_time=reference, parallelism=spec.parallelism,
                           checkpoint_interval_ms=spec.checkpoint_interval_ms, flink_conf=extra,
                           bounded=kind == "baseline", idle_timeout_s=spec.idle_timeout_s, corrections=True)

    progress = Progress(bootstrap, runs["trial"], f"{run_id}-trial", len(intent.line_items),
                        lambda: producer.done.is_set() and corrector.done.is_set(), late_series=intent.late_series,
                        corrected_series=intent.corrected_series, corrected_amounts=intent.corrected_amounts)
    producer.start()
    corrector.start()
    try:
        if cluster is not None:
            _cluster_trial(cluster, spec, rng, report, command("trial", {})[3:], progress, log, corrector.written)
        else:
            _minicluster_trial(spec, rng, report, lambda conf: command("trial", conf), workdir, broker, progress,
                               log, gates, producer, corrector.written)
    finally:
        producer.stop.set()
        corrector.stop.set()
        if gates is not None:
            for gate in gates:
                gate.set()
        producer.done.wait(120)
        corrector.done.wait(120)
    for error in (producer.error, corrector.error):
        if error:
            report.failures.append(error)
    if report.failures:
        return report
    for what, want, got in (("kills", spec.kills, report.kills),
                            ("kills during start-up", spec.startup_kills if cluster is None else 0,
                             report.startup_kills),
                            ("kills during restore", spec.restore_kills if cluster is None else 0,
                             report.restore_kills)):
        if got < want:
            report.failures.append(f"only {got} of {want} {what} happened before the trial caught up "
                                   "(a larger --events gives the job more time)")
    if gates is not None and producer.written_during_outage == 0:
        report.failures.append("the producer wrote nothing while the broker was down")
    failures = input_mismatches(trial_inputs, [(r.partition, r.offset, r.value) for r in
                                               read_committed_records(bootstrap, inputs["usage_events"])])
    if failures:
        report.failures += failures
        return report

    log(f"[chaos] trial caught up in {report.trial_seconds:.1f} s; baseline (bounded, no failures) ...")
    started = time.monotonic()
    with open(workdir / "baseline.log", "wb") as out:
        baseline = subprocess.run(command("baseline", {}), stdout=out, stderr=subprocess.STDOUT,
                                  timeout=spec.attempt_timeout_s)
    report.baseline_seconds = time.monotonic() - started
    if baseline.returncode != 0:
        report.failures.append(f"the baseline run failed ({baseline.returncode}); log {workdir / 'baseline.log'}")
        return report
    compare_outputs(bootstrap, runs, run_id, report, intent)
    return report


def _minicluster_trial(spec: ChaosSpec, rng: random.Random, report: ChaosReport, command, workdir: Path, broker,
                       progress: Progress, log, gates, producer: LiveProducer,
                       corrections_written: threading.Event) -> None:
    """Kill the whole job process (the MiniCluster in it) and relaunch it from the newest retained checkpoint. The
    last kill or broker restart waits until the corrections are written: it hits the job with corrections in its
    input, read or not, decided or not."""
    from meterstream import kafka_local

    root = workdir / "checkpoints"
    retained = retained_checkpoints_conf(root)
    with_broker = broker is not None
    disruptions = (["kill"] * spec.kills + ["broker"] * (spec.broker_restarts if with_broker else 0)
                   + ["broker_kill"] * (spec.broker_kills if with_broker else 0))
    rng.shuffle(disruptions)
    disruptions += ["outage"] * (spec.outages if with_broker else 0)  # popped first: while the producer writes
    startup_kills, restore_kills = spec.startup_kills, spec.restore_kills
    restore_misses = 0  # restore kills that came too late (the checkpoint first): given up after 5
    started = time.monotonic()
    deadline = started + spec.attempt_timeout_s * (len(disruptions) + startup_kills + restore_kills + 1)
    proc: subprocess.Popen | None = None
    killed_at: float | None = None
    time_to_checkpoint: list[float] = []  # launch -> first checkpoint, per attempt

    def wait_for_checkpoint(known: set[Path], until: float = float("inf")) -> bool:
        while (proc.poll() is None and not (_checkpoints(root) - known) and time.monotonic() < min(deadline, until)):
            time.sleep(0.05)
        return proc.poll() is None and bool(_checkpoints(root) - known)

    try:
        while True:
            if proc is None:
                report.attempts += 1
                conf = dict(retained)
                restore = latest_checkpoint(root)
                if restore is not None:
                    conf["execution.state-recovery.path"] = restore.as_uri()
                known = _checkpoints(root)
                launched = time.monotonic()
                with open(workdir / f"attempt-{report.attempts}.log", "wb") as out:
                    proc = subprocess.Popen(command(conf), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
                early = None
                if restore is None and startup_kills:
                    early = ("start-up", rng.uniform(1.5, 4.0))
                elif restore is not None and restore_kills and restore_misses < 5:
                    typical = min(time_to_checkpoint, default=8.0)
                    early = ("restore", rng.uniform(0.2, 0.8) * typical)
                startup_kills = 0  # only the first attempt starts without a checkpoint: a missed one stays missed
                if early is not None:
                    came_first = wait_for_checkpoint(known, until=launched + early[1])
                    restore_misses += came_first and early[0] == "restore"
                    if not came_first and proc.poll() is None:
                        kill_process_group(proc)
                        proc, killed_at = None, killed_at or time.monotonic()
                        if early[0] == "start-up":
                            report.startup_kills += 1
                        else:
                            restore_kills -= 1
                            report.restore_kills += 1
                        log(f"[chaos] attempt {report.attempts}: SIGKILL {early[1]:.1f} s after launch, before its "
                            f"first checkpoint ({early[0]})")
                        continue
                if not wait_for_checkpoint(known):  # its first checkpoint proves the restore worked
                    report.failures.append(f"attempt {report.attempts} ended ({proc.returncode}) or timed out "
                                           f"before its first checkpoint; log in {workdir}")
                    return
                time_to_checkpoint.append(time.monotonic() - launched)
                if killed_at is not None:
                    report.recovery_seconds.append(time.monotonic() - killed_at)
                    killed_at = None
            if not disruptions and not (restore_kills and restore_misses < 5):
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
            if len(disruptions) == 1 and disruptions[0] != "outage":  # the last one (an outage waits for none)
                while not corrections_written.wait(0.5) and proc.poll() is None and time.monotonic() < deadline:
                    pass
            delay = rng.uniform(0, spec.max_kill_delay_s)
            time.sleep(delay)
            if proc.poll() is not None:
                report.failures.append(f"attempt {report.attempts} ended ({proc.returncode}); log in {workdir}")
                return
            disruption = disruptions.pop() if disruptions else "kill"  # a kill makes room for a pending restore kill
            if disruption == "kill":
                kill_process_group(proc)
                proc, killed_at = None, time.monotonic()
                report.kills += 1
                log(f"[chaos] attempt {report.attempts}: SIGKILL {delay:.1f} s after its first checkpoint")
                continue
            outage_started, known = time.monotonic(), _checkpoints(root)
            if disruption == "outage":
                if producer.done.is_set():
                    report.failures.append("the producer finished before the broker outage (a larger --events or "
                                           "live_seconds keeps it writing longer)")
                    return
                log(f"[chaos] attempt {report.attempts}: broker SIGKILL, down {spec.outage_seconds:.0f} s while "
                    "the producer writes")
                kafka_local.kill_broker(broker)
                gates[0].set()
                time.sleep(spec.outage_seconds)
                kafka_local.start_again(broker)
                report.outages.append(time.monotonic() - outage_started)
                gates[1].set()
            else:
                hard = disruption == "broker_kill"
                log(f"[chaos] attempt {report.attempts}: broker {'SIGKILL' if hard else 'restart'} {delay:.1f} s "
                    "after its first checkpoint")
                kafka_local.restart_broker(broker, down_seconds=rng.uniform(1, 5), hard=hard)
                if hard:
                    report.broker_kills += 1
                else:
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
                   progress: Progress, log, corrections_written: threading.Event) -> None:
    """On a standalone cluster: SIGKILL the TaskManager process, start a new one; the JobManager restarts the job
    from its latest checkpoint by itself (the cluster's restart strategy). The last kill waits until the corrections
    are written: it hits the job with corrections in its input, read or not, decided or not."""
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
            if report.kills == spec.kills - 1:
                while not corrections_written.wait(0.5) and time.monotonic() < deadline:
                    pass
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


def _read_in_place(bootstrap: str, topic: str) -> list[dict]:
    """The topic's records by (partition, offset)."""
    records = sorted(read_committed_records(bootstrap, topic), key=lambda r: (r.partition, r.offset))
    return [json.loads(r.value) for r in records]


def _unique(records: list[dict], key: str, what: str, report: ChaosReport) -> None:
    repeated = [k for k, n in Counter(r[key] for r in records).items() if n > 1]
    if repeated:
        report.failures.append(f"{len(repeated)} {what} ids appear more than once, e.g. {repeated[:3]}")


def compare_outputs(bootstrap: str, runs: dict[str, dict[str, str]], run_id: str, report: ChaosReport,
                    intent: chaos_checks.Intent) -> None:
    from jobs.billing import BillingSettings, Topics, accounting_table, credit_identity_check, read_accounting
    from schemas.credits import CreditGrant
    from udfs.credits import validate_grant_record

    trial = runs["trial"]  # the baseline's own identities were checked by its bounded run (exit code 0)
    out = {kind: {topic: _read_in_place(bootstrap, runs[kind][topic])
                  for topic in ("line_items", "credit_drawdowns", "billing_alerts", "dead_letters", "late_events",
                                "invoices", "correction_dead_letters")}
           for kind in runs}
    lines = {kind: out[kind]["line_items"] for kind in runs}
    report.line_items, report.drawdowns, report.alerts = (len(out["trial"][t]) for t in
                                                          ("line_items", "credit_drawdowns", "billing_alerts"))
    for kind in runs:  # correction lines included
        _unique(lines[kind], "line_item_id", f"{kind} line item", report)
    report.correction_lines = sum(1 for r in lines["trial"] if r["kind"] == "correction")
    _unique(out["trial"]["credit_drawdowns"], "drawdown_id", "drawdown", report)
    _unique(out["trial"]["billing_alerts"], "alert_id", "alert", report)
    report.invoices = sum(1 for r in out["trial"]["invoices"] if r["status"] == "final")
    report.failures += chaos_checks.compare_invoices(
        out["baseline"]["invoices"], out["trial"]["invoices"], baseline_lines=lines["baseline"],
        trial_lines=lines["trial"], baseline_drawdowns=out["baseline"]["credit_drawdowns"])
    for kind in runs:  # the flush customer's line item exists in the bounded baseline only: so do its drawdowns
        for topic in ("credit_drawdowns", "billing_alerts"):
            out[kind][topic] = [r for r in out[kind][topic] if r["customer_id"] != FLUSH_CUSTOMER]

    def comparable(records: list[dict]) -> dict[str, dict]:
        return {r["line_item_id"]: {k: v for k, v in r.items() if k != "emitted_at"} for r in records}

    # The flush customer's window closes only at the bounded baseline's end of input: compared without it.
    lines = {kind: [r for r in records if r["customer_id"] != FLUSH_CUSTOMER] for kind, records in lines.items()}
    # Series with late usage or a correction are compared by their money per period only (below, and against the
    # intent): which watermark a late event or a correction came after (and so whether a correction changed an open
    # window's usage line or made a line of its own), and so the ids and the split of its series' lines, depends on
    # the run's timing; what the period costs does not.
    exact = {kind: [r for r in records if chaos_checks.series_key(r) not in intent.timing_series]
             for kind, records in lines.items()}
    expected, got = comparable(exact["baseline"]), comparable(exact["trial"])
    if not expected:
        report.failures.append("the baseline wrote no line items")
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    differ = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    for what, ids in (("missing", missing), ("unexpected", extra), ("different", differ)):
        if ids:
            report.failures.append(f"{len(ids)} line items {what} against the baseline, e.g. {sorted(ids)[:3]}")
    if chaos_checks.line_totals(lines["baseline"]) != chaos_checks.line_totals(lines["trial"]):
        report.failures.append("line item totals per customer and period differ from the baseline")

    report.failures += chaos_checks.compare_credits(out["baseline"]["credit_drawdowns"],
                                                    out["trial"]["credit_drawdowns"],
                                                    frozenset(series[:2] for series in
                                                              intent.late_series | intent.corrected_series))
    report.failures += chaos_checks.compare_alerts(out["baseline"]["billing_alerts"], out["trial"]["billing_alerts"],
                                                   frozenset(series[:2] for series in intent.corrected_series))
    accounting = {kind: read_accounting(bootstrap, runs[kind]["accounting"], f"{run_id}-{kind}") for kind in runs}
    report.corrections_applied = chaos_checks.correction_outcomes(accounting["trial"]).get("applied", 0)
    report.failures += chaos_checks.compare_corrections(
        *((chaos_checks.correction_outcomes(accounting[kind]),
           chaos_checks.correction_letter_keys(out[kind]["correction_dead_letters"]),
           chaos_checks.corrected_amounts(lines[kind], intent.corrected_series)) for kind in ("baseline", "trial")),
        against="the baseline")
    report.failures += chaos_checks.compare_dead_letters(
        chaos_checks.dead_letter_keys(out["baseline"]["dead_letters"]),
        chaos_checks.dead_letter_keys(out["trial"]["dead_letters"]), against="the baseline")
    for topic in ("late_events", "credit_grant_dead_letters"):
        counts = {kind: len(read_committed(bootstrap, runs[kind][topic])) for kind in runs}
        if counts["baseline"] != counts["trial"]:
            report.failures.append(f"{topic}: {counts['trial']} records, the baseline has {counts['baseline']}")

    settings = BillingSettings(catalog_yaml=(project_home() / CATALOG).read_text())
    grants = [g for g in (validate_grant_record(raw, tenants=settings.catalog.tenants)
                          for raw in read_committed(bootstrap, trial["credit_grants"])) if isinstance(g, CreditGrant)]
    for kind in runs:
        report.failures += [f"{kind}: {failure}" for failure in chaos_checks.compare_with_intent(
            intent, accounting=accounting[kind], dead_letters=out[kind]["dead_letters"],
            late_events=out[kind]["late_events"], line_items=out[kind]["line_items"],
            skip_customers=frozenset({FLUSH_CUSTOMER}),
            correction_dead_letters=out[kind]["correction_dead_letters"])]
        report.failures += [f"{kind}: {failure}" for failure in
                            chaos_checks.balance_mismatches(grants, out[kind]["credit_drawdowns"])]

    received = topic_record_count(bootstrap, trial["usage_events"])
    _, holds = accounting_table(accounting["trial"], received,
                                corrections_received=topic_record_count(bootstrap, trial["usage_corrections"]))
    if not holds:
        report.failures.append("the accounting identity (usage and corrections) does not hold on the trial's "
                               "accounting topic")
    _, credits_hold = credit_identity_check(bootstrap, Topics(**trial), settings)
    if not credits_hold:
        report.failures.append("the credits identities do not hold on the trial's drawdowns")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="meterstream chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills after an attempt's first checkpoint")
    parser.add_argument("--startup-kills", type=int, choices=(0, 1), default=1)
    parser.add_argument("--restore-kills", type=int, default=2)
    parser.add_argument("--broker-restarts", type=int, default=1, help="clean restarts, 1-5 s down")
    parser.add_argument("--broker-kills", type=int, default=1, help="SIGKILLs, 1-5 s down")
    parser.add_argument("--outages", type=int, default=1, help="SIGKILLs, --outage-seconds down, producer writing")
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--correction-rate", type=float, default=ChaosSpec.correction_rate,
                        help="corrections per first-seen event; those of the events written before the trial are "
                             "produced")
    parser.add_argument("--seed", type=int, default=None, help="random by default; printed for a rerun")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--bootstrap", help="an existing broker (then no broker restarts, kills or outages)")
    add_properties_argument(parser)
    args = parser.parse_args(argv)
    if args.bootstrap is None:
        # The trial's own broker is PLAINTEXT: so are its clients, the job's included.
        if args.kafka_properties:
            parser.error("--kafka-properties needs --bootstrap (the trial's own broker is PLAINTEXT)")
        dropped = use_plaintext()
        if dropped:
            print(f"[chaos] own PLAINTEXT broker: ignoring {', '.join(dropped)}")
    else:
        use_or_exit(args.kafka_properties, what="meterstream chaos")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"[chaos] seed {seed}")
    from meterstream import kafka_local

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = kafka_local.start_broker(var_dir() / f"kafka-chaos-{uuid.uuid4().hex[:6]}")
        bootstrap = broker.bootstrap_servers
    try:
        own = broker is not None
        spec = ChaosSpec(kills=args.kills, startup_kills=args.startup_kills, restore_kills=args.restore_kills,
                         events=args.events, seed=seed, parallelism=args.parallelism,
                         correction_rate=args.correction_rate,
                         broker_restarts=args.broker_restarts if own else 0,
                         broker_kills=args.broker_kills if own else 0, outages=args.outages if own else 0,
                         outage_seconds=args.outage_seconds, idle_timeout_s=max(120.0, args.outage_seconds * 2))
        report = run_trial(bootstrap, spec, broker=broker)
        print(report.summary())
        return 0 if report.ok else 2
    finally:
        if broker is not None:
            kafka_local.stop_broker(broker, remove_data=True)


if __name__ == "__main__":
    raise SystemExit(main())
