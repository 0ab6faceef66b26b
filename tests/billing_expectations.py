"""An independent expected computation of the billing job's outputs, for job and integration tests.

It replays the records in arrival order with the documented semantics (first copy wins, a first-seen event is late
when its own series had already fired its window or a later one, windows fire in order, period-to-date amounts
telescope) using plain loops, and only borrows the pieces that have their own unit tests: record validation, the
partition's watermark rule (`udfs.watermarks`), lateness per series (`udfs.lateness`), price models, billing-period
alignment and currency rounding.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from udfs.catalog import Catalog
from udfs.lateness import SeriesLateness
from udfs.money import round_amount
from udfs.periods import billing_period
from udfs.pricing.rate import price
from udfs.validation import Rejection, validate_usage_record
from udfs.watermarks import PartitionClock
from udfs.windows import from_epoch_ms, to_epoch_ms


@dataclass
class ExpectedLine:
    tenant_id: str
    customer_id: str
    meter: str
    group: dict[str, str]
    window_start: datetime
    quantity: Decimal
    period_quantity_to_date: Decimal
    amount: Decimal
    period_amount_to_date: Decimal
    event_count: int


@dataclass
class Expected:
    counts: Counter = field(default_factory=Counter)
    dead_letter_reasons: Counter = field(default_factory=Counter)
    late_event_ids: set[tuple[str, str]] = field(default_factory=set)
    lines: list[ExpectedLine] = field(default_factory=list)


def _content(event) -> tuple:
    return (event.customer_id, event.meter, event.timestamp, event.value, tuple(sorted(event.dimensions.items())))


def expected_outputs(
    records: list[bytes], catalog: Catalog, *, now: datetime, window_ms: int, out_of_orderness_ms: int,
    ingestion_ms: list[int] | None = None, idle_timeout_ms: int = 5_000,
) -> Expected:
    """The outputs of one partition read in order (or of a file source): `ingestion_ms` are the records' Kafka
    timestamps (None: none, as from a file)."""
    out = Expected()
    meters_by_tenant = catalog.meters_by_tenant()
    clock = PartitionClock(out_of_orderness_ms, idle_timeout_ms)
    lateness = SeriesLateness(window_ms)
    first_content: dict[tuple[str, str], tuple] = {}
    windows: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))

    for index, raw in enumerate(records):
        out.counts["received"] += 1
        result = validate_usage_record(raw, meters_by_tenant=meters_by_tenant, now=now)
        if isinstance(result, Rejection):
            out.counts["dead_lettered"] += 1
            out.dead_letter_reasons[result.reason.value] += 1
            continue
        event = result
        rt = to_epoch_ms(event.timestamp)
        key = (event.tenant_id, event.event_id)
        if key in first_content:
            same = first_content[key] == _content(event)
            out.counts["duplicate_same_payload" if same else "duplicate_conflicting_payload"] += 1
        else:
            first_content[key] = _content(event)
            window_start = rt - rt % window_ms
            meter = catalog.meter(event.tenant_id, event.meter)
            group = tuple(sorted((d, event.dimensions[d]) for d in meter.group_by if d in event.dimensions))
            series = (event.tenant_id, event.customer_id, event.meter, group)
            if lateness.offer(series, rt):
                out.counts["windowed"] += 1
                windows[series][window_start].append(event)
            else:
                out.counts["late"] += 1
                out.late_event_ids.add(key)
        # The watermark follows every valid record (duplicates and late ones included), after the record, and fires
        # the windows it passes.
        clock.observe((event.tenant_id, event.customer_id), rt, None if ingestion_ms is None else ingestion_ms[index])
        lateness.advance(clock.watermark)

    for (tenant_id, customer_id, meter_name, group), by_window in windows.items():
        tenant = catalog.tenant(tenant_id)
        meter = catalog.meter(tenant_id, meter_name)
        spec = tenant.price_for(meter_name, group)
        period = None
        period_state = None
        amount_to_date = Decimal(0)
        for window_start in sorted(by_window):
            events = by_window[window_start]
            start = from_epoch_ms(window_start)
            this_period = billing_period(start, tenant.billing_period.anchor_day, tenant.billing_period.time_zone)
            if this_period != period:
                period, period_state, amount_to_date = this_period, None, Decimal(0)
            quantity, period_state = _apply(meter, events, period_state, start)
            period_quantity = _period_quantity(meter, period_state)
            to_date = round_amount(price(period_quantity, spec).amount, tenant.amount_precision)
            out.lines.append(
                ExpectedLine(
                    tenant_id, customer_id, meter_name, dict(group), start, quantity, period_quantity,
                    to_date - amount_to_date, to_date, len(events),
                )
            )
            amount_to_date = to_date
    return out


def _apply(meter, events, state, window_start):
    """(window quantity, new period state) for one window, by the meter's aggregation."""
    kind = meter.aggregation
    if kind == "count":
        q = Decimal(len(events))
        return q, (state or Decimal(0)) + q
    if kind == "sum":
        q = sum((e.value for e in events), Decimal(0))
        return q, (state or Decimal(0)) + q
    if kind in ("max", "min"):
        pick = max if kind == "max" else min
        q = pick(e.value for e in events)
        return q, q if state is None else pick(state, q)
    if kind == "last":
        latest = max(events, key=lambda e: (e.timestamp, e.event_id))
        return latest.value, latest.value  # windows arrive in order: the latest window's last wins
    if kind == "unique_count":
        values = {e.dimensions[meter.unique_dimension] for e in events if meter.unique_dimension in e.dimensions}
        union = (state or frozenset()) | values
        return Decimal(len(values)), union
    raise AssertionError(kind)


def _period_quantity(meter, state) -> Decimal:
    if meter.aggregation == "unique_count":
        return Decimal(len(state))
    return state
