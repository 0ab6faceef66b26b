"""The bill after corrections, end to end through Kafka: what every (tenant, customer, meter, group) series costs per
billing period, summed over all its line items (usage, late adjustments, corrections), is the price of the period
quantity of the events as corrected, for all six aggregations: the valid first copies (late ones included), with
each applied cancel removing its event and each applied amend replacing its value or dimensions (a changed `model`
moves the usage to another series; max, min and last windows are corrected from the contents the window operator
retains, unique_count ones from those the Python accumulator retains, where an amended user id may join or leave the
period's distinct users).
The expected side is computed from the records with the specification alone (`udfs.validation` here;
`meterstream.corrected_bill`: `udfs.corrections.CorrectionLedger` for which corrections apply, `udfs.pricing`), never
from the job's output.

The run is bounded (a replay), so the job holds the corrections until the usage input has ended: every correction
finds its event, as in the expected computation, which observes all usage first."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from meterstream.corrected_bill import billed_period_amounts, correct_events, expected_period_amounts, nonzero
from meterstream.topics import produce
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from tests.integration.test_billing_kafka import CATALOG_PATH, make_topics, read_json, run_billing
from tests.invoice_checks import assert_invoices_exact
from tests.scripted_usage import REFERENCE_NOW, WINDOW_MS, scripted_usage
from udfs.catalog import load_catalog
from udfs.corrections import BILLED_CORRECTION_AGGREGATIONS
from udfs.validation import validate_usage_record

pytestmark = pytest.mark.integration

SENT_AT = "2026-11-01T04:29:00Z"


def billed_events(records: list[bytes], catalog) -> dict[tuple[str, str], UsageEvent]:
    """The valid first copy of each (tenant, event_id), in arrival order (one input partition)."""
    first: dict[tuple[str, str], UsageEvent] = {}
    for raw in records:
        event = validate_usage_record(raw, meters_by_tenant=catalog.meters_by_tenant(), now=REFERENCE_NOW)
        if isinstance(event, UsageEvent):
            first.setdefault((event.tenant_id, event.event_id), event)
    return first


def corrections_for(events: dict[tuple[str, str], UsageEvent], catalog) -> list[dict]:
    """Every 20th billed event of a meter whose corrections are billed (all six aggregations) gets a correction, in
    turn: a cancel, an amend of the value (doubled, plus 1), an amend of the dimensions (another model, and for a
    unique_count meter another user: one shared by every such amend, so several events come to carry it), a cancel
    followed by an amend (already cancelled, or applied and then cancelled: the bill is the same); plus a retry of a
    correction id and a correction of an unknown event."""
    out: list[dict] = []
    candidates = [e for e in events.values()
                  if catalog.tenant(e.tenant_id).meters[e.meter].aggregation in BILLED_CORRECTION_AGGREGATIONS]
    for i, event in enumerate(candidates[::20]):
        base = {"tenant_id": event.tenant_id, "event_id": event.event_id, "sent_at": SENT_AT}
        kind = i % 4
        if kind in (0, 3):
            out.append({**base, "correction_id": f"cx-{i}", "action": "cancel"})
        if kind == 1 and event.value is not None:
            out.append({**base, "correction_id": f"cx-{i}", "action": "amend", "value": str(event.value * 2 + 1)})
        if kind == 2 or kind == 3:
            dims = {**event.dimensions, "model": "nova-small" if event.dimensions.get("model") != "nova-small"
                    else "nova-large"}
            unique = catalog.tenant(event.tenant_id).meters[event.meter].unique_dimension
            if unique is not None:
                dims[unique] = "amended-user"
            out.append({**base, "correction_id": f"cx-{i}-d", "action": "amend", "dimensions": dims})
    out.append(dict(out[0]))  # a retry: duplicate_correction
    out.append({"tenant_id": "acme-ai", "event_id": "never-sent", "sent_at": SENT_AT, "correction_id": "cx-none",
                "action": "cancel"})
    return out


def test_the_bill_after_corrections_is_the_price_of_the_corrected_usage(kafka_bootstrap, kafka_topic):
    catalog = load_catalog(CATALOG_PATH)
    records = scripted_usage(seed=31, events=2000)
    events = billed_events(records, catalog)
    corrections = corrections_for(events, catalog)
    decided = correct_events(events, [UsageCorrection.model_validate(c) for c in corrections], catalog,
                             timedelta(milliseconds=WINDOW_MS))
    outcomes = decided.outcomes
    assert outcomes["applied"] >= 30 and outcomes["already_cancelled"] >= 5 and outcomes["unknown_event"] == 1
    assert outcomes["duplicate_correction"] == 1

    topics = make_topics(kafka_topic, input_partitions=1)
    topics.update(usage_corrections=kafka_topic("corrections", partitions=1),
                  correction_dead_letters=kafka_topic("correction-dead", partitions=1))
    produce(kafka_bootstrap, topics["usage_events"], records)
    produce(kafka_bootstrap, topics["usage_corrections"], [json.dumps(c).encode() for c in corrections])
    stdout = run_billing(kafka_bootstrap, topics, parallelism=2, extra=["--corrections"])
    assert "identity corrections = applied + rejected: HOLDS" in stdout, stdout[-3000:]

    lines = read_json(kafka_bootstrap, topics["line_items"])
    twice = [li for li, n in Counter(x["line_item_id"] for x in lines).items() if n > 1]
    assert not twice, f"exactly once, unique ids: {twice[:3]}"
    assert sum(1 for li in lines if li["kind"] == "correction") >= 20
    corrected_kinds = {catalog.tenant(li["tenant_id"]).meters[li["meter"]].aggregation for li in lines
                       if li["kind"] in ("correction", "prior_period_adjustment") and li.get("adjusts_line_item_id")}
    assert "unique_count" in corrected_kinds, corrected_kinds
    # every aggregation's lines, unique_count's (rated in Python) included; a series whose every event was cancelled
    # costs 0, the job may still have lines for it (usage, then correction)
    assert nonzero(billed_period_amounts(lines)) == nonzero(expected_period_amounts(decided.events.values(), catalog))

    letters = read_json(kafka_bootstrap, topics["correction_dead_letters"])
    rejected = Counter(letter["reason"] for letter in letters)
    assert rejected["unknown_event"] == 1 and rejected["duplicate_correction"] == 1
    # A cancel and an amend of one event travel apart (keyed by their correction ids): which is decided first is
    # arrival order, so whether the amend applies (then the cancel) or finds the event cancelled may differ from the
    # expected computation's; the bill does not (the event ends cancelled either way).
    assert set(rejected) <= {"unknown_event", "duplicate_correction", "already_cancelled"}
    assert len(letters) - rejected["already_cancelled"] == 2
    assert_invoices_exact(read_json(kafka_bootstrap, topics["invoices"]), lines)
