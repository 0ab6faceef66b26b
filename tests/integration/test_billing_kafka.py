"""The billing job Kafka -> Kafka on a real broker: exactly-once outputs, the accounting identity, period totals."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from meterstream.topics import produce, read_committed
from tests.billing_expectations import expected_outputs
from tests.invoice_checks import assert_invoices_exact
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from udfs.catalog import load_catalog
from udfs.money import round_amount
from udfs.pricing.rate import price

pytestmark = pytest.mark.integration

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"


def billing_command(bootstrap: str, topics: dict[str, str], *, parallelism: int, extra: list[str] = ()) -> list[str]:
    """The bounded billing run of these tests: the scripted usage's reference time and windows, `topics` by field."""
    args = [
        sys.executable, "-m", "jobs.billing", "--bootstrap", bootstrap, "--catalog", str(CATALOG_PATH), "--bounded",
        "--parallelism", str(parallelism), "--reference-time", REFERENCE_NOW.isoformat(),
        "--window-seconds", str(WINDOW_MS / 1000), "--out-of-orderness-seconds", str(OUT_OF_ORDERNESS_MS / 1000),
        "--checkpoint-interval-ms", "2000", *extra,
    ]
    for name, topic in topics.items():
        args += [f"--topic-{name.replace('_', '-')}", topic]
    return args


def run_billing(bootstrap: str, topics: dict[str, str], *, parallelism: int, extra: list[str] = ()) -> str:
    run = subprocess.run(billing_command(bootstrap, topics, parallelism=parallelism, extra=extra),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return run.stdout


def read_json(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(value) for value in read_committed(bootstrap, topic)]


def make_topics(kafka_topic, input_partitions: int) -> dict[str, str]:
    return {
        "usage_events": kafka_topic("usage", partitions=input_partitions),
        "dead_letters": kafka_topic("dead", partitions=2),
        "late_events": kafka_topic("late", partitions=2),
        "line_items": kafka_topic("lines", partitions=2),
        "accounting": kafka_topic("acct", partitions=2),
        "invoices": kafka_topic("invoices", partitions=2),
    }


def test_single_partition_matches_the_expected_computation(kafka_bootstrap, kafka_topic):
    """One input partition: arrival order is total, so every output is exactly predictable."""
    topics = make_topics(kafka_topic, input_partitions=1)
    records = scripted_usage(seed=23, events=2000)
    # One record timestamp for all: whatever the producer's pace, no customer goes idle by ingestion time, as in the
    # expected computation (which then needs no record timestamps).
    produce(kafka_bootstrap, topics["usage_events"], records, timestamps_ms=[int(time.time() * 1000)] * len(records))
    stdout = run_billing(kafka_bootstrap, topics, parallelism=1, extra=["--watermark-on-every-event"])
    assert "HOLDS" in stdout

    catalog = load_catalog(CATALOG_PATH)
    expected = expected_outputs(
        records, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS, out_of_orderness_ms=OUT_OF_ORDERNESS_MS
    )
    lines = read_json(kafka_bootstrap, topics["line_items"])
    assert len({li["line_item_id"] for li in lines}) == len(lines) == len(expected.lines), "exactly once"
    assert sum(Decimal(li["amount"]) for li in lines) == sum(line.amount for line in expected.lines)
    dead = read_json(kafka_bootstrap, topics["dead_letters"])
    assert len(dead) == expected.counts["dead_lettered"]
    late = read_json(kafka_bootstrap, topics["late_events"])
    assert {(e["tenant_id"], e["event_id"]) for e in late} == expected.late_event_ids
    # Through Kafka: one invoice per (customer, period), each the exact sum of the lines that name it.
    invoices = assert_invoices_exact(read_json(kafka_bootstrap, topics["invoices"]), lines)
    assert len(invoices) == len({li["invoice_id"] for li in lines})


def test_two_partitions_account_for_every_record_and_periods_sum(kafka_bootstrap, kafka_topic):
    """Two partitions, parallelism 2: which events are late depends on interleaving, everything else must hold."""
    topics = make_topics(kafka_topic, input_partitions=2)
    records = scripted_usage(seed=5, events=3000)
    produce(kafka_bootstrap, topics["usage_events"], records, keys=[str(i % 7).encode() for i in range(len(records))])
    run_billing(kafka_bootstrap, topics, parallelism=2)

    accounting: dict[tuple[str, str], int] = {}
    for record in read_json(kafka_bootstrap, topics["accounting"]):
        key = (record["outcome"], record["detail"])
        accounting[key] = max(accounting.get(key, 0), record["records"])
    totals: dict[str, int] = defaultdict(int)
    for (outcome, _), count in accounting.items():
        totals[outcome] += count
    assert set(totals) <= {
        "dead_lettered", "duplicate_same_payload", "duplicate_conflicting_payload", "windowed", "billed_late"
    }
    assert sum(totals.values()) == len(records), "every record has exactly one outcome"
    late = read_json(kafka_bootstrap, topics["late_events"])
    dead = read_json(kafka_bootstrap, topics["dead_letters"])
    assert len(late) == totals["billed_late"] and len(dead) == totals["dead_lettered"]

    lines = read_json(kafka_bootstrap, topics["line_items"])
    assert len({li["line_item_id"] for li in lines}) == len(lines), "no line item twice"
    assert sum(li["event_count"] for li in lines if li["kind"] == "usage") == totals["windowed"]
    # every late event is billed: on a late adjustment line, or with none when it changed nothing
    assert sum(li["event_count"] for li in lines if li["kind"] == "late_adjustment") <= totals["billed_late"]

    # Each period's lines sum exactly to the rounded price of the period's final quantity. Which line is the last of
    # a period is not visible here (the sink does not key by series, late adjustments come after later windows):
    # for meters whose period quantity only grows (sum, count, max) the final one is the largest; for every meter the
    # sum must be the to-date amount of one of its lines.
    catalog = load_catalog(CATALOG_PATH)
    by_period: dict[tuple, list[dict]] = defaultdict(list)
    for li in lines:
        key = (li["tenant_id"], li["customer_id"], li["meter"], tuple(sorted(li["group"].items())), li["period_start"])
        by_period[key].append(li)
    growing = 0
    for (tenant_id, _, meter, group, _), items in by_period.items():
        tenant = catalog.tenant(tenant_id)
        billed = sum(Decimal(li["amount"]) for li in items)
        assert billed in {Decimal(li["period_amount_to_date"]) for li in items}
        if catalog.meter(tenant_id, meter).aggregation in ("sum", "count", "max"):
            growing += 1
            final_quantity = max(Decimal(li["period_quantity_to_date"]) for li in items)
            total = round_amount(price(final_quantity, tenant.price_for(meter, group)).amount, tenant.amount_precision)
            assert billed == total
    assert growing > 100
    assert_invoices_exact(read_json(kafka_bootstrap, topics["invoices"]), lines)
