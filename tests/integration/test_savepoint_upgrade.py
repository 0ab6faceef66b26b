"""Savepoint upgrades on a standalone cluster of two TaskManagers: parallelism 1 -> 2 -> 4 -> 2 (4: subtasks on both),
state intact, outputs exact.

A workload in four parts, each in its own time slice and closed by a flush event. Per part: produce it, submit the
billing job (streaming) from the previous part's savepoint (none for the first), wait until the part's line items
are committed, stop with a savepoint. Later parts repeat events first sent in earlier parts (byte for byte, and
with a conflicting value): dedup state must have survived, or they would be billed twice. Period-to-date amounts
continue across the upgrades (one part crosses acme-ai's billing-period boundary). At the end, read_committed:
every line item exactly once and equal to the independent expected computation over the whole workload, and the
running accounting counts (carried over in state, under one run id) equal the expected outcome of every record.

With `--corrections` (the second test): each part after the first starts with corrections of events sent in earlier
parts, whose ids (and ledger entries) a restore has sealed into the dedup memory's runs and their companions
(RocksDB managed state on the cluster), then split or merged by the rescale; every correction must find its event
there and apply, and every series' money per billing period must be the price of the corrected usage
(`meterstream.corrected_bill`, the specification alone).

Why slices with gaps: a restored job starts without a watermark (Flink does not store it), so each part starts a
minute after the previous flush event, never in a window the previous job already closed. Why periodic watermarks
(no --watermark-on-every-event) and hence no late events: at parallelism 2 one source subtask of the one-partition
topic has no partition; only the idle timeout releases the watermark, and idleness is detected on the periodic
watermark timer, which --watermark-on-every-event switches off (the job would stall). With periodic watermarks,
which events count as late depends on timing; without late events every outcome is still exactly predictable.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.runtime import DEFAULT_MAX_PARALLELISM
from meterstream import cluster
from meterstream.corrected_bill import billed_period_amounts, correct_events, expected_period_amounts, nonzero
from meterstream.topics import produce, read_committed
from schemas.usage_correction import UsageCorrection
from tests.billing_expectations import Expected, expected_outputs
from tests.cluster_helpers import wait_job_state
from tests.integration.test_corrected_bill_kafka import billed_events
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from udfs.catalog import load_catalog
from udfs.corrections import BILLED_CORRECTION_AGGREGATIONS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CATALOG_PATH = ROOT / "catalogs" / "example-genai.yaml"
FIRST_START = datetime.fromisoformat("2026-11-01T03:48:00+00:00")
PART_EVENTS = 400
PART_DURATION = timedelta(minutes=8)
FLUSH_AFTER = timedelta(minutes=10)  # after a part's start: past every window of the part + out-of-orderness
PART_STRIDE = timedelta(minutes=11)  # the next part starts a minute after the flush (see the module docstring)
PARALLELISM = (1, 2, 4, 2)  # 4 = both TaskManagers' slots
assert max(PARALLELISM) <= DEFAULT_MAX_PARALLELISM
SCRIPTED_ID = re.compile(r"^[a-z]+-[a-z]+-e[0-9]+$")


def flush_event(part: int, at: datetime) -> bytes:
    """A valid event of a customer of its own: it moves the watermark past every window of the part before it.
    Its own window closes in the next part (a line item of `flush-customer`); the last one's never does."""
    return json.dumps({
        "event_id": f"flush-{part}", "tenant_id": "acme-ai", "customer_id": "flush-customer", "meter": "requests",
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }).encode()


def repeats_of(earlier: list[bytes], rng: random.Random, count: int) -> list[bytes]:
    """Copies of valid events sent in earlier parts; every fourth one with another value (a conflicting copy)."""
    candidates = []
    for raw in earlier:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and SCRIPTED_ID.match(str(record.get("event_id"))):  # not the broken ones
            candidates.append(record)
    out = []
    for i, record in enumerate(rng.sample(candidates, count)):
        copy = dict(record)
        if i % 4 == 0 and "value" in copy:
            copy["value"] = "7"
        out.append(json.dumps(copy).encode())
    return out


def workload_parts() -> list[list[bytes]]:
    """One part per parallelism, each ending with its flush event; every part after the first carries repeats of
    earlier parts' events."""
    rng = random.Random(41)
    parts: list[list[bytes]] = []
    for part in range(len(PARALLELISM)):
        start = FIRST_START + part * PART_STRIDE
        records = scripted_usage(seed=100 + part, events=PART_EVENTS, start=start, duration=PART_DURATION,
                                 first_seq=part * 10 * PART_EVENTS, with_late=False)
        if part:
            # Spread through the part, never first: a restored job's first records set its watermark.
            for offset, repeat in enumerate(repeats_of([r for p in parts for r in p], rng, 12)):
                records.insert(20 + offset * (len(records) - 40) // 12, repeat)
        parts.append([*records, flush_event(part, start + FLUSH_AFTER)])
    return parts


def expected(records: list[bytes]) -> Expected:
    return expected_outputs(records, load_catalog(CATALOG_PATH), now=REFERENCE_NOW, window_ms=WINDOW_MS,
                            out_of_orderness_ms=OUT_OF_ORDERNESS_MS)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def line_table(lines) -> dict[tuple, tuple]:
    """line_item_id (a usage line per series and window, an adjustment per series, window and watermark) ->
    (customer, window start, quantity, period quantity, amount, period amount, events), from committed line items
    (dicts) or expected ones."""
    table = {}
    for li in lines:
        if isinstance(li, dict):
            key = li["line_item_id"]
            value = (li["customer_id"], li["window_start"], Decimal(li["quantity"]),
                     Decimal(li["period_quantity_to_date"]), Decimal(li["amount"]),
                     Decimal(li["period_amount_to_date"]), li["event_count"])
        else:
            key = li.line_item_id
            value = (li.customer_id, _utc(li.window_start), li.quantity, li.period_quantity_to_date, li.amount,
                     li.period_amount_to_date, li.event_count)
        assert key not in table, f"two line items {key}"
        table[key] = value
    return table


def read_json(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(v) for v in read_committed(bootstrap, topic)]


def upgrade_topics(kafka_topic, *, corrections: bool) -> dict[str, str]:
    """The job's topics; the usage topic has one partition: arrival order is total, predictable."""
    names = {"usage_events": ("usage", 1), "dead_letters": ("dead", 1), "late_events": ("late", 1),
             "line_items": ("lines", 2), "accounting": ("acct", 1), "invoices": ("invoices", 1)}
    if corrections:
        names.update(usage_corrections=("corrections", 2), correction_dead_letters=("correction-dead", 1))
    return {name: kafka_topic(prefix, partitions=partitions) for name, (prefix, partitions) in names.items()}


def upgrade_job_args(bootstrap: str, topics: dict[str, str], run_id: str, *extra: str) -> list[str]:
    """The billing job's arguments, the same in every incarnation: its job name (consumer group, transactional ids)
    and run id too, so that it is one job, upgraded."""
    args = [
        "--bootstrap", bootstrap, "--catalog", str(CATALOG_PATH), "--reference-time", REFERENCE_NOW.isoformat(),
        "--window-seconds", str(WINDOW_MS / 1000), "--out-of-orderness-seconds", str(OUT_OF_ORDERNESS_MS / 1000),
        "--job-name", f"{run_id}-{topics['usage_events']}", "--run-id", run_id, *extra,
    ]
    for name, topic in topics.items():
        args += [f"--topic-{name.replace('_', '-')}", topic]
    return args


def submit(address: str, job_args: list[str], parallelism: int, savepoint: str | None) -> str:
    """Through the CLI, as an operator would: `meterstream submit --parallelism N [--from-savepoint PATH] -- ...`."""
    restore = ["--from-savepoint", savepoint] if savepoint else []
    run = subprocess.run(
        [sys.executable, "-m", "meterstream.cli", "submit", "--jobmanager", address, "--parallelism",
         str(parallelism), *restore, "--", *job_args],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    if savepoint:
        assert f"--fromSavepoint {savepoint}" in run.stdout
    return run.stdout.split("submitted job ", 1)[1].split()[0]


def test_upgrade_through_savepoints_changing_parallelism(flink_cluster_two_taskmanagers, kafka_bootstrap, kafka_topic):
    started = time.monotonic()
    address = flink_cluster_two_taskmanagers.rest_address
    topics = upgrade_topics(kafka_topic, corrections=False)
    job_args = upgrade_job_args(kafka_bootstrap, topics, "upgrade-test")

    parts = workload_parts()
    sent: list[bytes] = []
    savepoint: str | None = None
    timings = []
    for part, (records, parallelism) in enumerate(zip(parts, PARALLELISM, strict=True)):
        t0 = time.monotonic()
        # The flush event (last) with a record timestamp more than the idle timeout (5 s) after the part's: every
        # other customer is idle by then, so its clock alone moves the watermark past the part's windows.
        produce(kafka_bootstrap, topics["usage_events"], records[:-1])
        produce(kafka_bootstrap, topics["usage_events"], records[-1:], timestamps_ms=[int(time.time() * 1000) + 6_000])
        sent += records
        # What must be committed once this part is through: everything but the last flush event's open window.
        want = len(expected(sent[:-1]).lines)
        job_id = submit(address, job_args, parallelism, savepoint)
        assert wait_job_state(address, job_id, {"RUNNING"}, timeout_s=90) == "RUNNING"
        lines: list[dict] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert cluster.job_state(address, job_id) == "RUNNING"
            lines = read_json(kafka_bootstrap, topics["line_items"])
            if len(lines) >= want:
                break
            time.sleep(2)
        assert len(lines) == want, f"part {part} at parallelism {parallelism}: {len(lines)} of {want} line items"
        job = cluster.rest(address, "GET", f"/jobs/{job_id}")
        assert {v["parallelism"] for v in job["vertices"]} == {parallelism}
        if parallelism > 2:  # more subtasks than a TaskManager has slots: the state was split over both
            taskmanagers = cluster.rest(address, "GET", "/taskmanagers")["taskmanagers"]
            assert len(taskmanagers) == 2
            assert all(tm["freeSlots"] < tm["slotsNumber"] for tm in taskmanagers), taskmanagers
        savepoint = cluster.savepoint(address, job_id, stop=True)
        assert wait_job_state(address, job_id, {"FINISHED"}, timeout_s=60) == "FINISHED"
        assert (Path(savepoint.removeprefix("file:")) / "_metadata").is_file()
        timings.append(f"part {part} (parallelism {parallelism}): {time.monotonic() - t0:.0f} s")

    whole = expected(sent[:-1])
    lines = read_json(kafka_bootstrap, topics["line_items"])
    ids = [li["line_item_id"] for li in lines]
    assert len(set(ids)) == len(ids) == len(whole.lines), "every line item exactly once"
    actual, wanted = line_table(lines), line_table(whole.lines)
    wrong = [(key, actual.get(key), value) for key, value in wanted.items() if actual.get(key) != value]
    assert not wrong, f"{len(wrong)} line items differ (key, committed, expected), e.g. {wrong[:3]}"
    # Period-to-date carried over (and equal to the expected, above): lines of the later parts whose period
    # quantity includes windows billed before the upgrade (part 1 crosses acme-ai's period boundary at 04:00).
    for part in range(1, len(PARALLELISM)):
        first_window = _utc(FIRST_START + part * PART_STRIDE - timedelta(minutes=1))
        carried = [v for v in actual.values() if v[1] >= first_window and v[0] != "flush-customer" and v[3] > v[2]]
        assert len(carried) >= 5, f"part {part}: only {len(carried)} lines continue an earlier period-to-date"

    # The repeats of earlier parts were counted as duplicates by the restored dedup state, not billed.
    everything = expected(sent)  # + the last flush event: windowed on arrival, its window still open
    assert everything.counts["duplicate_same_payload"] + everything.counts["duplicate_conflicting_payload"] >= 24
    counts: dict[tuple[str, str], int] = {}
    for record in read_json(kafka_bootstrap, topics["accounting"]):
        assert record["run_id"] == "upgrade-test"
        key = (record["outcome"], record["detail"])
        counts[key] = max(counts.get(key, 0), record["records"])
    totals = {o: sum(n for (oc, _), n in counts.items() if oc == o) for o, _ in counts}
    assert totals == {o: n for o, n in everything.counts.items() if o != "received" and n}, timings
    assert read_json(kafka_bootstrap, topics["late_events"]) == [] and not everything.late_event_ids
    assert len(read_json(kafka_bootstrap, topics["dead_letters"])) == everything.counts["dead_lettered"]
    print(f"savepoint upgrade test: {len(sent)} records, {len(lines)} line items; " + "; ".join(timings)
          + f"; body {time.monotonic() - started:.0f} s")


def corrections_of(events: dict, part: int, corrected: set, catalog) -> list[dict]:
    """Corrections sent at the start of `part`: every 12th event of an earlier part not corrected yet, of a meter whose
    corrections are billed (all six aggregations), in turn a cancel, an amend of the value, an amend of the
    dimensions (another model; for a unique_count meter another user)."""
    candidates = [e for key, e in events.items() if key not in corrected and SCRIPTED_ID.match(e.event_id)
                  and catalog.tenant(e.tenant_id).meters[e.meter].aggregation in BILLED_CORRECTION_AGGREGATIONS]
    out = []
    for i, event in enumerate(candidates[::12]):
        corrected.add((event.tenant_id, event.event_id))
        base = {"tenant_id": event.tenant_id, "event_id": event.event_id, "correction_id": f"up-{part}-{i}",
                "sent_at": REFERENCE_NOW.isoformat()}
        if i % 3 == 0 or (i % 3 == 1 and event.value is None):
            out.append({**base, "action": "cancel"})
        elif i % 3 == 1:
            out.append({**base, "action": "amend", "value": str(event.value * 3 + 1)})
        else:
            dims = {**event.dimensions, "model": "nova-small" if event.dimensions.get("model") != "nova-small"
                    else "nova-large"}
            unique = catalog.tenant(event.tenant_id).meters[event.meter].unique_dimension
            if unique is not None:
                dims[unique] = f"amended-user-{part}"
            out.append({**base, "action": "amend", "dimensions": dims})
    return out


def committed_count(bootstrap: str, topic: str, outcome: str) -> int:
    """The running count of one accounting outcome (its records carry running totals per run id)."""
    return max((r["records"] for r in read_json(bootstrap, topic) if r["outcome"] == outcome), default=0)


def test_corrections_of_sealed_events_survive_upgrades_changing_parallelism(
        flink_cluster_two_taskmanagers, kafka_bootstrap, kafka_topic):
    started = time.monotonic()
    address = flink_cluster_two_taskmanagers.rest_address
    catalog = load_catalog(CATALOG_PATH)
    topics = upgrade_topics(kafka_topic, corrections=True)
    job_args = upgrade_job_args(kafka_bootstrap, topics, "upgrade-corrections", "--corrections")

    sent: list[bytes] = []
    corrections: list[dict] = []
    corrected: set = set()
    savepoint: str | None = None
    timings = []
    for part, (records, parallelism) in enumerate(zip(workload_parts(), PARALLELISM, strict=True)):
        t0 = time.monotonic()
        job_id = submit(address, job_args, parallelism, savepoint)
        assert wait_job_state(address, job_id, {"RUNNING"}, timeout_s=90) == "RUNNING"
        if part:
            # First the corrections, alone: each is decided on arrival against the restored (sealed) ledger, and
            # applied before any of this part's usage moves the watermark that bills them.
            batch = corrections_of(billed_events(sent, catalog), part, corrected, catalog)
            assert len(batch) >= 8
            corrections += batch
            produce(kafka_bootstrap, topics["usage_corrections"], [json.dumps(c).encode() for c in batch],
                    keys=[str(i % 2).encode() for i in range(len(batch))])
            deadline = time.monotonic() + 60
            while committed_count(kafka_bootstrap, topics["accounting"], "correction_applied") < len(corrections):
                assert time.monotonic() < deadline, f"part {part}: corrections not applied: " + str(
                    read_json(kafka_bootstrap, topics["correction_dead_letters"])[:3])
                time.sleep(1)
        produce(kafka_bootstrap, topics["usage_events"], records[:-1])
        produce(kafka_bootstrap, topics["usage_events"], records[-1:], timestamps_ms=[int(time.time() * 1000) + 6_000])
        sent += records
        # Once this part is through: every series' money per period is the price of its corrected usage (but for the
        # last flush event's window, still open).
        decided = correct_events(billed_events(sent[:-1], catalog),
                                 [UsageCorrection.model_validate(c) for c in corrections], catalog,
                                 timedelta(milliseconds=WINDOW_MS))
        assert decided.outcomes["applied"] == len(corrections), decided.outcomes
        want = nonzero(expected_period_amounts(decided.events.values(), catalog))
        got: dict = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert cluster.job_state(address, job_id) == "RUNNING"
            got = nonzero(billed_period_amounts(read_json(kafka_bootstrap, topics["line_items"])))
            if got == want:
                break
            time.sleep(2)
        wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        extra = set(got) - set(want)
        assert not wrong and not extra, (f"part {part} at parallelism {parallelism}: {len(wrong)} series-periods "
                                         f"differ (billed, expected), e.g. {list(wrong.items())[:3]}; extra {extra}")
        savepoint = cluster.savepoint(address, job_id, stop=True)
        assert wait_job_state(address, job_id, {"FINISHED"}, timeout_s=60) == "FINISHED"
        timings.append(f"part {part} (parallelism {parallelism}): {time.monotonic() - t0:.0f} s")

    lines = read_json(kafka_bootstrap, topics["line_items"])
    ids = [li["line_item_id"] for li in lines]
    assert len(set(ids)) == len(ids), "every line item exactly once"
    assert sum(1 for li in lines if li["kind"] == "correction") >= len(corrections) // 2
    assert read_json(kafka_bootstrap, topics["correction_dead_letters"]) == []
    assert committed_count(kafka_bootstrap, topics["accounting"], "correction_applied") == len(corrections) >= 24
    print(f"savepoint upgrade with corrections: {len(sent)} records, {len(corrections)} corrections, {len(lines)} "
          f"line items; " + "; ".join(timings) + f"; body {time.monotonic() - started:.0f} s")
