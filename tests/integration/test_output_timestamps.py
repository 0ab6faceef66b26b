"""Output records carry their write time, whatever the event time: Kafka refuses record timestamps more than
`message.timestamp.after.max.ms` (1 h by default) ahead of its clock, and retention counts age from the record
timestamp. Every sink of the billing job (line items of both kinds, dead letters, late events, accounting, and with
`--credits` drawdowns, alerts and grant dead letters) is checked on output topics with the broker's default
CreateTime, where the sink's own timestamp is what the broker keeps (and validates)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterstream.topics import JOB_OUTPUT_TOPICS, broker_configs, produce, read_committed_records

pytestmark = pytest.mark.integration

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"
CREATE_TIME = 0  # kafka-python's ConsumerRecord.timestamp_type


def wire_time(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def usage(event_id: str, meter: str, at: datetime, customer: str = "cust-future", **fields) -> bytes:
    return json.dumps({"event_id": event_id, "tenant_id": "acme-ai", "customer_id": customer, "meter": meter,
                       "timestamp": wire_time(at), **fields}).encode()


def workload(first: datetime) -> tuple[list[bytes], list[int]]:
    """Four billed events (three meters, one unique_count) in the window of `first`, one three minutes later, then
    a late one and a malformed record: every billing sink gets a record. The watermark never passes the record
    timestamps (the present, here: issue 15's cap on clocks ahead of real time), so the windows ahead fire at the end
    of input. The late event: a customer of the present bills a minute five minutes ago (the watermark, at the
    record timestamps minus the bound, is past it already: the window fires at the next watermark), then one a
    minute ahead, written 30 s later (the watermark moves on: the first window fires), then a straggler for the
    first window: its series has fired that window, so it is late. Returns the records and their record
    timestamps."""
    now = datetime.now(UTC)
    written = int(now.timestamp() * 1000)
    return [
        usage("f-1", "requests", first),
        usage("f-2", "input_tokens", first + timedelta(seconds=1), value="1000", dimensions={"model": "nova-large"}),
        usage("f-3", "active_users", first + timedelta(seconds=2), dimensions={"user_id": "u-1"}),
        usage("f-4", "requests", first + timedelta(minutes=3)),
        usage("n-1", "requests", now - timedelta(minutes=5), customer="cust-now"),
        usage("n-2", "requests", now + timedelta(minutes=1), customer="cust-now"),
        usage("f-late", "requests", now - timedelta(minutes=5) + timedelta(seconds=1), customer="cust-now"),
        b'{"event_id": "broken", ',
    ], [written] * 5 + [written + 30_000] * 3


def job_topics(kafka_topic, *, credits: bool) -> dict[str, str]:
    topics = {"usage_events": kafka_topic("usage")}
    if credits:
        topics.update(credit_grants=kafka_topic("grants"), spend_caps=kafka_topic("caps"))
    outputs = [name for name in JOB_OUTPUT_TOPICS if credits or name not in
               ("credit_drawdowns", "billing_alerts", "credit_grant_dead_letters")]
    topics.update({name: kafka_topic(name.replace("_", "-")) for name in outputs})
    return topics


def run_job(bootstrap: str, topics: dict[str, str], extra: list[str]) -> tuple[str, int, int]:
    """Run the billing job bounded at parallelism 1; returns its stdout and the wall clock (ms) around the run."""
    args = [sys.executable, "-m", "jobs.billing", "--bootstrap", bootstrap, "--catalog", str(CATALOG_PATH),
            "--bounded", "--parallelism", "1", "--watermark-on-every-event", "--checkpoint-interval-ms", "2000", *extra]
    for name, topic in topics.items():
        args += [f"--topic-{name.replace('_', '-')}", topic]
    started_ms = int(time.time() * 1000)
    run = subprocess.run(args, capture_output=True, text=True, timeout=600)
    finished_ms = int(time.time() * 1000) + 1
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return run.stdout, started_ms, finished_ms


def check_outputs(bootstrap: str, topics: dict[str, str], first: datetime, started_ms: int, finished_ms: int,
                  *, credits: bool) -> None:
    records = {name: read_committed_records(bootstrap, topics[name]) for name in topics if name in JOB_OUTPUT_TOPICS}
    values = {name: [json.loads(r.value) for r in rs] for name, rs in records.items()}

    lines = [li for li in values["line_items"] if li["customer_id"] == "cust-future"]
    assert sum(li["event_count"] for li in lines) == 4, lines
    now_lines = [li for li in values["line_items"] if li["customer_id"] == "cust-now"]
    assert sum(li["event_count"] for li in now_lines if li["kind"] == "usage") == 2
    # f-late came after its series had fired its window: billed as that window's late adjustment
    assert [(li["kind"], li["event_count"], li["quantity"]) for li in now_lines
            if li["kind"] == "late_adjustment"] == [("late_adjustment", 1, "1")]
    window_start = wire_time(first.replace(second=0, microsecond=0))
    billed = {(li["meter"], li["window_start"]): li for li in lines}
    assert billed[("requests", window_start)]["quantity"] == "1"
    assert billed[("input_tokens", window_start)]["quantity"] == "1000"
    assert billed[("active_users", window_start)]["quantity"] == "1"
    assert [e["event_id"] for e in values["late_events"]] == ["f-late"]
    assert [d["reason"] for d in values["dead_letters"]] == ["malformed_json"]
    accounting = Counter()
    for record in values["accounting"]:
        accounting[record["outcome"]] = max(accounting[record["outcome"]], record["records"])
    assert accounting == {"windowed": 6, "billed_late": 1, "dead_lettered": 1}
    if credits:
        assert {d["line_item_id"] for d in values["credit_drawdowns"]
                if d["kind"] == "usage" and d["customer_id"] == "cust-future"} == {
            li["line_item_id"] for li in lines}
        assert [r["reason"] for r in values["credit_grant_dead_letters"]] == ["invalid_amount"]

    # Event time is hours or days ahead of the broker; every record is stamped with the time it was written.
    limit_ms = int(next(iter(broker_configs(bootstrap, ["log.message.timestamp.after.max.ms"]).values()))[
        "log.message.timestamp.after.max.ms"])
    for name, rs in records.items():
        for record in rs:
            assert record.timestamp_type == CREATE_TIME, (name, record)
            assert started_ms <= record.timestamp <= finished_ms, (name, record.timestamp, started_ms, finished_ms)
            assert record.timestamp <= finished_ms + limit_ms
    assert all(records[name] for name in ("line_items", "late_events", "dead_letters", "accounting"))


def test_an_event_90_minutes_ahead_is_billed_and_its_output_written(kafka_bootstrap, kafka_topic):
    """`--max-future-minutes 120` admits an event 90 minutes ahead of the wall clock; its line item's window lies
    beyond what the broker accepts as a record timestamp, so the sink must not stamp records with event time."""
    topics = job_topics(kafka_topic, credits=False)
    first = (datetime.now(UTC) + timedelta(minutes=90)).replace(second=5, microsecond=0)
    records, written = workload(first)
    produce(kafka_bootstrap, topics["usage_events"], records, timestamps_ms=written)
    stdout, started_ms, finished_ms = run_job(kafka_bootstrap, topics, ["--max-future-minutes", "120"])
    assert "HOLDS" in stdout
    check_outputs(kafka_bootstrap, topics, first, started_ms, finished_ms, credits=False)


def test_a_replay_with_a_future_reference_time_is_billed_with_credits(kafka_bootstrap, kafka_topic):
    """A replay pinned to a reference time three days ahead: its events (and windows, drawdowns, alerts) are days
    ahead of the broker's clock."""
    topics = job_topics(kafka_topic, credits=True)
    reference = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    first = (reference - timedelta(minutes=10)).replace(second=5)
    records, written = workload(first)
    produce(kafka_bootstrap, topics["usage_events"], records, timestamps_ms=written)
    grant = {"type": "grant", "grant_id": "g-future", "tenant_id": "acme-ai", "customer_id": "cust-future",
             "amount": "100", "currency": "USD", "priority": 50, "effective_at": wire_time(first - timedelta(days=1)),
             "expires_at": None, "applies_to": None, "category": "paid"}
    rejected = {**grant, "grant_id": "g-bad", "amount": "-1"}
    produce(kafka_bootstrap, topics["credit_grants"], [json.dumps(grant).encode(), json.dumps(rejected).encode()])
    stdout, started_ms, finished_ms = run_job(kafka_bootstrap, topics,
                                              ["--credits", "--reference-time", reference.isoformat()])
    assert "HOLDS" in stdout and "HOLD" in stdout.split("credits:")[-1]
    check_outputs(kafka_bootstrap, topics, first, started_ms, finished_ms, credits=True)
