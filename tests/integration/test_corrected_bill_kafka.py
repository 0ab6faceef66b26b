"""The bill after corrections, end to end through Kafka: what every (tenant, customer, meter, group) series costs per
billing period, summed over all its line items (usage, late adjustments, corrections), is the price of the period
quantity of the events as corrected, for all six aggregations: the valid first copies (late ones included), with
each applied cancel removing its event and each applied amend replacing its value or dimensions (a changed `model`
moves the usage to another series; max, min and last windows are corrected from the contents the window operator
retains, unique_count ones from those the Python accumulator retains, where an amended user id may join or leave the
period's distinct users).
The expected side is computed here from the records with the specification alone (`udfs.validation`,
`udfs.corrections.CorrectionLedger` for which corrections apply, `udfs.pricing`), never from the job's output.

The run is bounded (a replay), so the job holds the corrections until the usage input has ended: every correction
finds its event, as in the expected computation, which observes all usage first."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from meterstream.topics import produce
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from tests.integration.test_billing_kafka import CATALOG_PATH, make_topics, read_json, run_billing
from tests.invoice_checks import assert_invoices_exact
from tests.scripted_usage import REFERENCE_NOW, WINDOW_MS, scripted_usage
from udfs.catalog import load_catalog
from udfs.corrections import BILLED_CORRECTION_AGGREGATIONS, CorrectionLedger, CorrectionRejection
from udfs.grouping import group_of
from udfs.money import round_amount
from udfs.periods import billing_period
from udfs.pricing.rate import price
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


def corrected(events: dict[tuple[str, str], UsageEvent], corrections: list[dict], catalog) -> tuple[dict, Counter]:
    """The billed events after the corrections the spec's ledger applies (usage observed first), and the outcomes."""
    ledger = CorrectionLedger({t: tenant.meters for t, tenant in catalog.tenants.items()},
                              timedelta(milliseconds=WINDOW_MS))
    for event in events.values():
        ledger.observe_event(event, now_ms=1)
    now = dict(events)
    outcomes: Counter = Counter()
    for record in corrections:
        correction = UsageCorrection.model_validate(record)
        outcome = ledger.correct(correction, now_ms=2)
        if isinstance(outcome, CorrectionRejection):
            outcomes[outcome.reason.value] += 1
            continue
        outcomes["applied"] += 1
        key = (correction.tenant_id, correction.event_id)
        if correction.action == "cancel":
            del now[key]
        else:
            update = {"value": correction.value} if correction.value is not None else {}
            if correction.dimensions is not None:
                update["dimensions"] = correction.dimensions
            now[key] = now[key].model_copy(update=update)
    return now, outcomes


def expected_period_amounts(events: dict[tuple[str, str], UsageEvent], catalog) -> dict[tuple, Decimal]:
    """Per (tenant, customer, meter, group, period start): the price of the period quantity over the events of the
    period, however they were windowed or late, rounded as the tenant's amounts are. The period rule of each
    aggregation, on events: sum adds values, count counts, max and min keep the extreme, last the value of the latest
    (timestamp, event_id), unique_count counts distinct values of the unique dimension."""
    by_period: dict[tuple, list[UsageEvent]] = defaultdict(list)
    for event in events.values():
        tenant = catalog.tenant(event.tenant_id)
        meter = tenant.meters[event.meter]
        schedule = tenant.billing_period
        period_start = billing_period(event.timestamp, schedule.anchor_day, schedule.zone)[0]
        by_period[(event.tenant_id, event.customer_id, event.meter, group_of(event.dimensions, meter.group_by),
                   period_start)].append(event)
    amounts = {}
    for key, period_events in by_period.items():
        tenant = catalog.tenant(key[0])
        quantity = period_quantity(tenant.meters[key[2]], period_events)
        amounts[key] = round_amount(price(quantity, tenant.price_for(key[2], key[3])).amount, tenant.amount_precision)
    return amounts


def period_quantity(meter, events: list[UsageEvent]) -> Decimal:
    values = [e.value for e in events if e.value is not None]
    if meter.aggregation == "sum":
        return sum(values, Decimal(0))
    if meter.aggregation == "count":
        return Decimal(len(events))
    if meter.aggregation in ("max", "min"):
        return (max if meter.aggregation == "max" else min)(values, default=Decimal(0))
    if meter.aggregation == "last":
        return max(events, key=lambda e: (e.timestamp, e.event_id)).value or Decimal(0)
    return Decimal(len({e.dimensions[meter.unique_dimension] for e in events
                        if meter.unique_dimension in e.dimensions}))


def test_the_bill_after_corrections_is_the_price_of_the_corrected_usage(kafka_bootstrap, kafka_topic):
    catalog = load_catalog(CATALOG_PATH)
    records = scripted_usage(seed=31, events=2000)
    events = billed_events(records, catalog)
    corrections = corrections_for(events, catalog)
    after, outcomes = corrected(events, corrections, catalog)
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
    billed: dict[tuple, Decimal] = defaultdict(Decimal)
    for line in lines:  # every aggregation's, unique_count's (rated in Python) included
        tenant = catalog.tenant(line["tenant_id"])
        schedule = tenant.billing_period
        window_start = datetime.fromisoformat(line["window_start"].replace("Z", "+00:00"))
        period_start = billing_period(window_start, schedule.anchor_day, schedule.zone)[0]
        key = (line["tenant_id"], line["customer_id"], line["meter"], tuple(sorted(line["group"].items())),
               period_start)
        billed[key] += Decimal(line["amount"])
    expected = expected_period_amounts(after, catalog)
    # A series whose every event was cancelled costs 0; the job may still have lines for it (usage, then correction)
    assert {k: v for k, v in billed.items() if v != 0} == {k: v for k, v in expected.items() if v != 0}

    letters = read_json(kafka_bootstrap, topics["correction_dead_letters"])
    rejected = Counter(letter["reason"] for letter in letters)
    assert rejected["unknown_event"] == 1 and rejected["duplicate_correction"] == 1
    # A cancel and an amend of one event travel apart (keyed by their correction ids): which is decided first is
    # arrival order, so whether the amend applies (then the cancel) or finds the event cancelled may differ from the
    # expected computation's; the bill does not (the event ends cancelled either way).
    assert set(rejected) <= {"unknown_event", "duplicate_correction", "already_cancelled"}
    assert len(letters) - rejected["already_cancelled"] == 2
    assert_invoices_exact(read_json(kafka_bootstrap, topics["invoices"]), lines)
