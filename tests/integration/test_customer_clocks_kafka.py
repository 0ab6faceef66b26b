"""Lateness never depends on another tenant's or customer's clock (issue 15, item 3), Kafka -> job -> Kafka: the
issue's repro, the same usage with and without clients whose clocks run ahead over two partitions, and a silent
customer that stops holding the clock by ingestion time (the Kafka record timestamps, set explicitly here)."""

from __future__ import annotations

import json
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from meterstream.topics import produce
from tests.integration.test_billing_kafka import CATALOG_PATH, make_topics, read_json, run_billing
from tests.scripted_usage import REFERENCE_NOW, scripted_usage
from tests.skewed_usage import arrival_times, lines_of_others, with_skewed_client, without_tenant
from udfs.catalog import load_catalog
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.integration

H = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def event(event_id: str, tenant: str, customer: str, at: datetime) -> bytes:
    return json.dumps({"event_id": event_id, "tenant_id": tenant, "customer_id": customer, "meter": "requests",
                       "timestamp": at.isoformat().replace("+00:00", "Z")}).encode()


def partition_of(raw: bytes, partitions: int = 2) -> int:
    try:
        key = json.loads(raw)["event_id"]
    except (ValueError, TypeError, KeyError):
        key = raw
    return zlib.crc32(str(key).encode()) % partitions


def billed_events(lines: list[dict], tenant: str, customer: str | None = None) -> int:
    return sum(li["event_count"] for li in lines
               if li["tenant_id"] == tenant and customer in (None, li["customer_id"]))


@pytest.mark.parametrize("bolt_at", [6, 0])
def test_another_tenants_clock_ahead_makes_no_usage_late(kafka_bootstrap, kafka_topic, bolt_at):
    """Issue 15's repro: one partition, parallelism 1, a watermark after every record, now = H+1:00. bolt-ml's
    record between acme-ai's two minutes (the issue's order), or before all of them: then acme-ai is first seen after
    the watermark moved to bolt-ml's clock, past both of acme-ai's windows, and is billed all the same (lateness per
    series: acme-ai's series had fired nothing)."""
    topics = make_topics(kafka_topic, input_partitions=1)
    records = [event(f"a58-{i}", "acme-ai", "cust-1", H - timedelta(minutes=2) + timedelta(seconds=10 * i))
               for i in range(6)]
    records += [event(f"a59-{i}", "acme-ai", "cust-1", H - timedelta(minutes=1) + timedelta(seconds=10 * i))
                for i in range(6)]
    records.insert(bolt_at, event("b-1", "bolt-ml", "cust-9", H + timedelta(minutes=3)))  # inside the allowance
    produce(kafka_bootstrap, topics["usage_events"], records)
    stdout = run_billing(kafka_bootstrap, topics, parallelism=1,
                         extra=["--watermark-on-every-event", "--reference-time", H.isoformat()])
    assert "HOLDS" in stdout

    assert read_json(kafka_bootstrap, topics["late_events"]) == []
    lines = read_json(kafka_bootstrap, topics["line_items"])
    assert billed_events(lines, "acme-ai") == 12
    assert sorted((li["window_start"], li["event_count"]) for li in lines if li["tenant_id"] == "acme-ai") == [
        ("2026-11-01T03:58:00.000Z", 6), ("2026-11-01T03:59:00.000Z", 6)]
    assert billed_events(lines, "bolt-ml") == 1


@pytest.mark.parametrize("parallelism", [1, 2])
def test_clients_clocks_ahead_change_nobody_elses_bill_over_two_partitions(kafka_bootstrap, kafka_topic, parallelism):
    """The same usage (no late records of its own, so that no interleaving of the two partitions can make any of it
    late) with and without a tenant and a customer of another tenant whose clocks run 4 minutes ahead, each present
    in both partitions: every other customer's line items are equal, and nothing is late. Record timestamps as live
    (ingestion time: the honest clients' time plus 0.5 s): they also cap the clock of a partition whose only active
    customer is a fast one, and make customers idle between their records."""
    catalog = load_catalog(CATALOG_PATH)
    base = without_tenant(scripted_usage(seed=41, events=1500, with_late=False), "bolt-ml")
    skewed = with_skewed_client(base, catalog, now=REFERENCE_NOW, tenant="bolt-ml", customer="fast-tenant",
                                ahead=timedelta(minutes=4), every=30)
    skewed = with_skewed_client(skewed, catalog, now=REFERENCE_NOW, tenant="acme-ai", customer="fast-customer",
                                ahead=timedelta(minutes=4), every=45)
    lines = {}
    for name, records in (("base", base), ("skewed", skewed)):
        topics = make_topics(kafka_topic, input_partitions=2)
        # By event id: the copies of one event share a partition, so which copy is first does not depend on timing.
        produce(kafka_bootstrap, topics["usage_events"], records,
                timestamps_ms=arrival_times(records, catalog, now=REFERENCE_NOW),
                partitions=[partition_of(r) for r in records])
        # A long idle timeout: a partition stalled for the default 5 s would be judged by the other's clock.
        run_billing(kafka_bootstrap, topics, parallelism=parallelism, extra=["--idle-timeout-seconds", "60"])
        assert read_json(kafka_bootstrap, topics["late_events"]) == [], name
        lines[name] = read_json(kafka_bootstrap, topics["line_items"])

    others = lines_of_others(lines["skewed"], tenant="bolt-ml", customer=("acme-ai", "fast-customer"))
    assert len(others) > 300
    baseline = lines_of_others(lines["base"])
    differing = {k: (baseline.get(k), v) for k, v in others.items() if baseline.get(k) != v}
    assert not differing and others.keys() == baseline.keys(), list(differing.items())[:3]
    assert billed_events(lines["skewed"], "bolt-ml", "fast-tenant") == sum(
        1 for r in skewed if b'"fast-tenant"' in r)
    assert billed_events(lines["skewed"], "acme-ai", "fast-customer") == sum(
        1 for r in skewed if b'"fast-customer"' in r)


def test_a_silent_customer_stops_holding_the_clock_after_the_idle_timeout_in_ingestion_time(
        kafka_bootstrap, kafka_topic):
    """Record timestamps (ingestion time) decide: `slow` holds the clock back until it has been silent for more than
    the idle timeout (5 s) of record timestamps; then the others' clock fires the window `slow` kept open, and a
    straggler of `slow` for that window is late. A new customer's record for the same window is billed: its series
    had fired nothing."""
    topics = make_topics(kafka_topic, input_partitions=1)
    ingested = int(time.time() * 1000) - 60_000
    t = H - timedelta(minutes=20)
    script = [
        (event("slow-1", "acme-ai", "slow", t), ingested),
        (event("c1-1", "acme-ai", "c1", t + timedelta(minutes=5)), ingested + 1_000),
        # slow silent for 5 s: still holds the clock at t - 10 s, so this window is open
        (event("c2-1", "acme-ai", "c2", t + timedelta(seconds=90)), ingested + 5_000),
        # slow silent for 6.001 s: idle; the clock is now min(c1, c2) = t + 90 s
        (event("c1-2", "acme-ai", "c1", t + timedelta(minutes=5, seconds=1)), ingested + 6_001),
        # slow's window [t, t + 1 min) fired at t + 90 s - 10 s: its straggler is late
        (event("slow-2", "acme-ai", "slow", t + timedelta(seconds=30)), ingested + 6_002),
        # c3 is new: its window [t, t + 1 min) opens past the watermark and is billed
        (event("c3-1", "acme-ai", "c3", t + timedelta(seconds=30)), ingested + 6_003),
    ]
    produce(kafka_bootstrap, topics["usage_events"], [r for r, _ in script], timestamps_ms=[ts for _, ts in script])
    run_billing(kafka_bootstrap, topics, parallelism=1, extra=["--watermark-on-every-event"])

    late = read_json(kafka_bootstrap, topics["late_events"])
    assert [(e["event_id"], e["watermark"]) for e in late] == [
        ("slow-2", (t + timedelta(seconds=80)).isoformat(timespec="milliseconds").replace("+00:00", "Z"))]
    lines = read_json(kafka_bootstrap, topics["line_items"])
    assert {li["customer_id"]: li["event_count"] for li in lines} == {"slow": 1, "c1": 2, "c2": 1, "c3": 1}
    assert to_epoch_ms(t) < ingested
