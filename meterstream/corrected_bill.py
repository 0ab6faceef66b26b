"""The bill after corrections by the specification alone, never from a job's output: which corrections the spec's
ledger (`udfs.corrections.CorrectionLedger`) applies when every usage event was seen first, the events as corrected,
and what each (tenant, customer, meter, group) series costs per billing period over them. The expected side of the
corrected-bill Kafka test and of `meterstream chaos`: how a job split a period's money into lines (usage, late
adjustments, corrections) depends on when each correction met its window; the period's money does not, since every
line is rounded-after minus rounded-before of the period to date."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from udfs.catalog import Catalog, Meter
from udfs.corrections import AppliedCorrection, CorrectionLedger, CorrectionRejection
from udfs.grouping import Group, group_of
from udfs.money import round_amount
from udfs.periods import billing_period
from udfs.pricing.rate import price

EventKey = tuple[str, str]  # (tenant_id, event_id)
Series = tuple[str, str, str, Group]  # (tenant, customer, meter, group as sorted items)
SeriesPeriod = tuple[str, str, str, Group, datetime]  # a series and the start of one of its billing periods


@dataclass
class CorrectedUsage:
    """The events after the corrections the ledger applied, and what it decided for each correction."""

    events: dict[EventKey, UsageEvent]
    outcomes: Counter = field(default_factory=Counter)  # "applied" or the rejection reason -> corrections
    decisions: list[tuple[UsageCorrection, AppliedCorrection | CorrectionRejection]] = field(default_factory=list)

    @property
    def touched_series(self) -> frozenset[Series]:
        """Every series an applied correction removed usage from or added usage to (a dimension amend: two)."""
        return frozenset(part.series for _, outcome in self.decisions if isinstance(outcome, AppliedCorrection)
                         for part in (outcome.remove, outcome.add) if part is not None)


def correct_events(events: Mapping[EventKey, UsageEvent], corrections: Iterable[UsageCorrection], catalog: Catalog,
                   window: timedelta) -> CorrectedUsage:
    """`events` (the valid first copies, late ones included) after `corrections` in arrival order, decided by the
    spec's ledger with every event observed first: a cancel removes its event, an amend replaces its value and/or
    dimensions."""
    ledger = CorrectionLedger({t: tenant.meters for t, tenant in catalog.tenants.items()}, window)
    for event in events.values():
        ledger.observe_event(event, now_ms=1)
    out = CorrectedUsage(dict(events))
    for correction in corrections:
        outcome = ledger.correct(correction, now_ms=2)
        out.decisions.append((correction, outcome))
        if isinstance(outcome, CorrectionRejection):
            out.outcomes[outcome.reason.value] += 1
            continue
        out.outcomes["applied"] += 1
        key = (correction.tenant_id, correction.event_id)
        if correction.action == "cancel":
            del out.events[key]
        else:
            update: dict = {"value": correction.value} if correction.value is not None else {}
            if correction.dimensions is not None:
                update["dimensions"] = correction.dimensions
            out.events[key] = out.events[key].model_copy(update=update)
    return out


def expected_period_amounts(events: Iterable[UsageEvent], catalog: Catalog) -> dict[SeriesPeriod, Decimal]:
    """Per (tenant, customer, meter, group, period start): the price of the period quantity over the events of the
    period, however they were windowed or late, rounded as the tenant's amounts are."""
    by_period: dict[SeriesPeriod, list[UsageEvent]] = defaultdict(list)
    for event in events:
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


def period_quantity(meter: Meter, events: list[UsageEvent]) -> Decimal:
    """The period rule of each aggregation, on events: sum adds values, count counts, max and min keep the extreme,
    last the value of the latest (timestamp, event_id), unique_count counts distinct values of the unique
    dimension."""
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


def billed_period_amounts(lines: Iterable[dict]) -> dict[SeriesPeriod, Decimal]:
    """What a run billed per (tenant, customer, meter, group, period start), summed over every kind of line item
    (JSON dicts); a line's `period_start` is its window's period, also for a prior-period adjustment."""
    billed: dict[SeriesPeriod, Decimal] = defaultdict(Decimal)
    for line in lines:
        period_start = datetime.fromisoformat(line["period_start"].replace("Z", "+00:00"))
        billed[(line["tenant_id"], line["customer_id"], line["meter"], tuple(sorted(line["group"].items())),
                period_start)] += Decimal(line["amount"])
    return dict(billed)


def nonzero(amounts: Mapping[SeriesPeriod, Decimal]) -> dict[SeriesPeriod, Decimal]:
    """Without the series-periods that cost 0: a series whose every event was cancelled has no expected entry, and
    a run may still have its lines (usage, then the correction), adding up to 0."""
    return {key: amount for key, amount in amounts.items() if amount != 0}
