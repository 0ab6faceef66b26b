"""The billing job on a real standalone Flink cluster (JobManager + TaskManager from the apache-flink wheel).

`meterstream cluster up` on free ports and a var dir of the test's own, `meterstream submit` (streaming, detached)
against the test broker, the committed line items checked against the expected computation, the job's own
counters on the TaskManager's Prometheus endpoint, stop-with-savepoint, and the cluster shut down whatever happens
(the `flink_cluster` fixture, in conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from meterstream import cluster
from meterstream.topics import produce, read_committed
from tests.billing_expectations import expected_outputs
from tests.cluster_helpers import wait_job_state
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from udfs.catalog import load_catalog

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CATALOG_PATH = ROOT / "catalogs" / "example-genai.yaml"
# A valid event of a customer of its own, later than the workload, with a record timestamp more than the idle timeout
# (5 s) after the workload's: every workload customer is idle by then, so its clock alone moves the watermark past
# every window of the workload and a streaming (unbounded) job fires them all; its own window stays open.
FLUSH_AFTER_MS = 6_000
FLUSH_EVENT = json.dumps({
    "event_id": "flush-1", "tenant_id": "acme-ai", "customer_id": "flush-customer", "meter": "requests",
    "timestamp": "2026-11-01T04:25:00.000Z",
}).encode()


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _counter(text: str, name: str, job_id: str) -> float:
    """Sum of one of the job's counters over its subtasks (the reporter exposes counters as gauges)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(f"flink_taskmanager_job_task_operator_meterstream_{name}{{") and job_id in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_billing_job_on_a_standalone_cluster(flink_cluster, kafka_bootstrap, kafka_topic):
    started = time.monotonic()
    topics = {
        "usage_events": kafka_topic("usage", partitions=1),
        "dead_letters": kafka_topic("dead", partitions=1),
        "late_events": kafka_topic("late", partitions=1),
        "line_items": kafka_topic("lines", partitions=2),
        "accounting": kafka_topic("acct", partitions=1),
        "invoices": kafka_topic("invoices", partitions=1),
    }
    records = scripted_usage(seed=23, events=2000)
    produce(kafka_bootstrap, topics["usage_events"], records)
    produce(kafka_bootstrap, topics["usage_events"], [FLUSH_EVENT],
            timestamps_ms=[int(time.time() * 1000) + FLUSH_AFTER_MS])
    expected = expected_outputs(
        records, load_catalog(CATALOG_PATH), now=REFERENCE_NOW, window_ms=WINDOW_MS,
        out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
    )

    job_args = [
        "--bootstrap", kafka_bootstrap, "--catalog", str(CATALOG_PATH), "--reference-time", REFERENCE_NOW.isoformat(),
        "--window-seconds", str(WINDOW_MS / 1000), "--out-of-orderness-seconds", str(OUT_OF_ORDERNESS_MS / 1000),
        "--watermark-on-every-event", "--job-name", f"cluster-test-{topics['usage_events']}",
    ]
    for name, topic in topics.items():
        job_args += [f"--topic-{name.replace('_', '-')}", topic]
    # Through the CLI, as a user would: `meterstream submit --jobmanager ... -- <job args>`.
    submit = subprocess.run(
        [sys.executable, "-m", "meterstream.cli", "submit", "--jobmanager", flink_cluster.rest_address,
         "--parallelism", "1", "--", *job_args],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-5000:]
    assert "flink run --detached -m" in submit.stdout
    job_id = submit.stdout.split("submitted job ", 1)[1].split()[0]
    address = flink_cluster.rest_address
    assert wait_job_state(address, job_id, {"RUNNING"}, timeout_s=60) == "RUNNING"

    # Streaming: committed output appears checkpoint by checkpoint (5 s), until every expected line is there.
    lines: list[dict] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert cluster.job_state(address, job_id) == "RUNNING"
        lines = [json.loads(v) for v in read_committed(kafka_bootstrap, topics["line_items"])]
        if len(lines) >= len(expected.lines):
            break
        time.sleep(3)
    assert len({li["line_item_id"] for li in lines}) == len(lines) == len(expected.lines), "exactly once, complete"
    assert sum(Decimal(li["amount"]) for li in lines) == sum(line.amount for line in expected.lines)
    assert sum(li["event_count"] for li in lines) == sum(line.event_count for line in expected.lines)

    # The job's own counters, on the TaskManager's Prometheus endpoint (+ 1: the flush event is windowed too).
    deadline = time.monotonic() + 30
    while True:
        text = _metrics(flink_cluster.taskmanager_metrics_url)
        if _counter(text, "records_windowed", job_id) == expected.counts["windowed"] + 1 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert _counter(text, "records_windowed", job_id) == expected.counts["windowed"] + 1
    assert _counter(text, "records_dead_lettered", job_id) == expected.counts["dead_lettered"]
    assert _counter(text, "windows_rated", job_id) > 0
    assert "flink_jobmanager_numRegisteredTaskManagers" in _metrics(flink_cluster.jobmanager_metrics_url)

    # The cluster's config.yaml decides state backend and checkpoint storage (not the MiniCluster defaults).
    checkpoint_config = cluster.rest(address, "GET", f"/jobs/{job_id}/checkpoints/config")
    assert checkpoint_config["state_backend"] == "EmbeddedRocksDBStateBackend"
    assert checkpoint_config["externalization"]["delete_on_cancellation"] is False

    stop = subprocess.run(
        [sys.executable, "-m", "meterstream.cli", "savepoint", job_id, "--stop", "--jobmanager", address],
        capture_output=True, text=True, timeout=200,
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    location = stop.stdout.split("savepoint ", 1)[1].split()[0]
    savepoint_dir = Path(location.removeprefix("file:"))
    assert savepoint_dir.parent == Path(flink_cluster.home) / "savepoints"
    assert (savepoint_dir / "_metadata").is_file()
    assert wait_job_state(address, job_id, {"FINISHED", "CANCELED"}, timeout_s=60) == "FINISHED"
    print(f"cluster test body took {time.monotonic() - started:.0f} s")
