"""The live load generator's pure parts: run specs, pacing, the credit records it sends (no Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from meterstream import loadgen
from meterstream.cli import build_parser
from meterstream.workload import WorkloadSpec
from schemas.credits import CreditGrantRecord, SpendCap
from schemas.usage_event import UsageEvent

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PLAN = loadgen.LoadPlan(events=400, duration=timedelta(seconds=200), customers_per_tenant=10)


class FakeProducer:
    def __init__(self, clock):
        self.clock = clock
        self.sent: list[tuple[float, str, bytes, bytes]] = []
        self.flushes = 0

    def send(self, topic, *, value, key):
        self.sent.append((self.clock.now, topic, key, value))

    def flush(self):
        self.flushes += 1


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


def test_run_spec_starts_at_the_clock_and_reads_the_catalog_from_the_project_home():
    spec = loadgen.run_spec(PLAN, seed=7, start=START)
    assert isinstance(spec, WorkloadSpec)
    assert (spec.seed, spec.events, spec.start, spec.duration) == (7, 400, START, timedelta(seconds=200))
    assert spec.catalog_path.is_file()


def test_default_seeds_of_two_starts_never_overlap_across_runs():
    first = loadgen.default_seed(START)
    second = loadgen.default_seed(START + timedelta(seconds=1))
    assert second - first == loadgen.RUN_SEED_STRIDE  # room for that many runs of the first generator


def test_schedule_follows_event_time_and_never_runs_ahead_of_it():
    spec = loadgen.run_spec(PLAN, seed=3, start=START)
    rows = list(loadgen.schedule(spec))
    assert len(rows) == spec.events
    dues = [due for due, _, _ in rows]
    assert dues == sorted(dues) and dues[0] == 0 and dues[-1] < spec.duration.total_seconds()
    for due, key, record in rows:
        assert key.isdigit()
        try:
            event = UsageEvent.model_validate_json(record)
        except ValueError:
            continue  # the workload's malformed records
        # The record's event time is never after the instant it is sent (the job rejects the future).
        assert event.timestamp <= START + timedelta(seconds=due, milliseconds=1)


def test_event_ids_of_consecutive_runs_do_not_collide():
    ids = []
    for seed in (10, 11):
        for _, _, record in loadgen.schedule(loadgen.run_spec(PLAN, seed=seed, start=START)):
            try:
                ids.append((seed, json.loads(record)["event_id"]))
            except (ValueError, KeyError, TypeError):
                continue
    first = {event_id for seed, event_id in ids if seed == 10}
    second = {event_id for seed, event_id in ids if seed == 11}
    assert first and second and not first & second


def test_send_paced_sends_each_record_when_due_and_flushes_before_idling():
    clock = FakeClock()
    producer = FakeProducer(clock)
    rows = [(0.0, b"1", b"a"), (0.05, b"2", b"b"), (2.5, b"3", b"c"), (2.5, b"4", b"d"), (4.0, b"5", b"e")]
    assert loadgen.send_paced(producer, "t", iter(rows), clock=clock, sleep=clock.sleep) == 5
    began = 1000.0
    for (sent_at, topic, key, value), (due, want_key, want_value) in zip(producer.sent, rows, strict=True):
        assert (topic, key, value) == ("t", want_key, want_value)
        assert due - loadgen.EARLY_S <= sent_at - began  # never earlier than allowed
        assert sent_at - began <= max(due, 0) + 1e-9  # and not later than due
    assert max(clock.slept) <= 1.0
    assert producer.flushes >= 3  # before each idle, and at the end


def test_grant_records_are_valid_contract_records():
    grants, caps = loadgen.grant_records(START)
    parsed = [CreditGrantRecord.model_validate_json(g) for g in grants if json.loads(g)["grant_id"] != "demo-bad"]
    assert len(parsed) == len(grants) - 1  # one deliberately invalid grant (negative amount) shows the dead letters
    assert [SpendCap.model_validate_json(c).customer_id for c in caps] == ["cust-00000"]


def test_load_plan_validates():
    with pytest.raises(ValueError):
        loadgen.LoadPlan(events=0)
    with pytest.raises(ValueError):
        loadgen.LoadPlan(runs=0)


def test_produce_command_topic_defaults_equal_the_billing_job_defaults():
    from jobs.billing import Topics

    args = build_parser().parse_args(["produce", "--bootstrap", "kafka:29092"])
    defaults = Topics()
    assert (args.topic_usage_events, args.topic_credit_grants, args.topic_spend_caps) == (
        defaults.usage_events, defaults.credit_grants, defaults.spend_caps)
