"""A job that cannot work says why: settings the sinks cannot work under fail at start naming them, and a job that
fails at run time prints its root cause on stdout (not only in a log file) and exits non-zero."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.kafka_io import SINK_TRANSACTION_TIMEOUT_MS, check_sink_settings
from meterstream.topics import broker_configs, produce

pytestmark = pytest.mark.integration

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"


def test_the_test_brokers_accept_the_sinks_transactions(kafka_bootstrap):
    (values,) = broker_configs(kafka_bootstrap, ["transaction.max.timeout.ms"]).values()
    assert int(values["transaction.max.timeout.ms"]) >= SINK_TRANSACTION_TIMEOUT_MS
    check_sink_settings(kafka_bootstrap, checkpoint_interval_ms=5_000)


def test_a_checkpoint_interval_the_sinks_cannot_work_under_fails_at_start(kafka_bootstrap, kafka_topic):
    topics = {name: kafka_topic(name.replace("_", "-"))
              for name in ("usage_events", "dead_letters", "late_events", "line_items", "accounting", "invoices")}
    run = subprocess.run(
        [sys.executable, "-m", "jobs.billing", "--bootstrap", kafka_bootstrap, "--catalog", str(CATALOG_PATH),
         "--bounded", "--checkpoint-interval-ms", str(SINK_TRANSACTION_TIMEOUT_MS),
         *[arg for name, topic in topics.items() for arg in (f"--topic-{name.replace('_', '-')}", topic)]],
        capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert f"--checkpoint-interval-ms {SINK_TRANSACTION_TIMEOUT_MS}" in run.stderr, run.stderr[-3000:]
    assert "meterstream-billing: cannot start" in run.stderr


def test_a_job_that_fails_at_run_time_prints_its_root_cause_on_stdout(kafka_bootstrap, kafka_topic):
    """The passthrough job's output topic refuses records over 1 KiB: its sink fails on every attempt, and the job
    after its restarts. The root cause is the broker's refusal, five wrappers deep."""
    source, sink = kafka_topic("too-large-in"), kafka_topic("too-large-out", config={"max.message.bytes": "1024"})
    produce(kafka_bootstrap, source, [base64.b64encode(os.urandom(6000)) for _ in range(3)])  # lz4 cannot shrink it
    run = subprocess.run(
        [sys.executable, "-m", "jobs.passthrough", "--bootstrap", kafka_bootstrap, "--input", source, "--output", sink,
         "--bounded"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-3000:]
    failure = [line for line in run.stdout.splitlines() if line.startswith("meterstream-passthrough failed: ")]
    assert len(failure) == 1, run.stdout[-3000:]
    assert failure[0].split(": ", 2)[1].endswith("RecordTooLargeException"), failure
    assert "JobExecutionException" in run.stderr  # the chain, outermost first
