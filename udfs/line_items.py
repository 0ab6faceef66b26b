"""The period-to-date accumulator: one pure step per fired window, Bytewax-style
`(state | None, window) -> (state, line item)`.

Why "rounded to-date after minus rounded to-date before": the customer is billed the rounded price of the
period's total quantity. Rating each window on its own and rounding per line would drift by a cent per line
(and break tiers, which depend on the total). Taking differences of rounded period totals makes the lines of
one period telescope: they always sum *exactly* to the rounded price of the period quantity. A line can be
negative (a volume tier lowers every unit's price, `last` and `min` go down, a price change re-rates the
period); it is never clamped, or the sum would stop matching the total.

Ordering: Flink fires the windows of one key in window order. A window that is not newer than the last one
applied (older period, or same/earlier window_start in the current period) raises `StaleWindowError`; since
the state is immutable the caller's state is untouched, and the job does not bill the window (it counts it in
`windows_stale` and logs an error) instead of double counting it.

Price changes mid-period: the state keeps the exact priced breakdown it billed so far, so the next line
re-rates the whole period at the current price and carries the difference.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from schemas.invoice_line_item import InvoiceLineItem, LineItemTier, datetime_to_wire
from udfs.aggregations import Aggregator, Group, WindowAggregate, aggregator_for, normalize_group
from udfs.catalog import TenantCatalog
from udfs.invoices import closes_at, invoice_id
from udfs.money import exact, round_amount
from udfs.periods import billing_period
from udfs.pricing.priced import ZERO, Priced, TierCharge
from udfs.pricing.rate import price

# Fixed forever: uuid5(NAMESPACE_URL, "urn:meterstream:invoice-line-item"). Changing it changes every id.
LINE_ITEM_NAMESPACE = uuid.UUID("7605a076-ac45-5316-afe8-45e0991fb188")
LINE_ITEM_ID_VERSION = "v1"
USAGE = "usage"
LATE_ADJUSTMENT = "late_adjustment"
CORRECTION = "correction"
PRIOR_PERIOD_ADJUSTMENT = "prior_period_adjustment"
# An earlier period's state is kept until its end is this much older than the oldest event validation accepts
# (`max_age`), counted from the start of the series' latest period: past that, no event can reach it.
PRIOR_PERIOD_MARGIN = timedelta(days=1)
_NOTHING_PRICED = Priced(ZERO, ())


class StaleWindowError(ValueError):
    """A window not newer than the state's last window (or from an earlier period); state was not changed."""


@dataclass(frozen=True)
class PeriodState:
    """Keyed state of one (tenant, customer, meter, group) for the current billing period.

    `quantity_state` is the aggregator's period accumulator (Decimal, set, or last observation);
    `priced` is the exact breakdown that `amount_to_date` (its rounded amount) was computed from.
    """

    tenant_id: str
    customer_id: str
    meter: str
    group: Group
    period_start: datetime
    period_end: datetime
    quantity_state: Any
    period_quantity: Decimal
    priced: Priced
    amount_to_date: Decimal
    last_window_start: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str, Group]:
        return (self.tenant_id, self.customer_id, self.meter, self.group)


def window_key(window: WindowAggregate) -> tuple[str, str, str, Group]:
    return (window.tenant_id, window.customer_id, window.meter, window.group)


def line_item_id(
    tenant_id: str,
    customer_id: str,
    meter: str,
    group: Mapping[str, str] | Group,
    window_start: datetime,
    *,
    kind: str = USAGE,
    watermark: datetime | None = None,
) -> str:
    """uuid5 over `v1|tenant|customer|meter|k=v,...|window_start` (group sorted by dimension, window_start as
    RFC 3339 ms UTC). Each part is percent-encoded so a `|`, `,` or `=` inside a value cannot make two
    different keys spell the same name. An adjustment appends `|kind|watermark`: the late events of one window that
    came after the same watermark make one line, whose id a replay or a restore gives again."""
    group_text = ",".join(f"{_part(k)}={_part(v)}" for k, v in normalize_group(group))
    parts = [LINE_ITEM_ID_VERSION, *map(_part, (tenant_id, customer_id, meter)), group_text]
    name = "|".join([*parts, datetime_to_wire(window_start)])
    if kind != USAGE:
        if watermark is None:
            raise ValueError(f"a {kind} line item id needs the watermark its events came after")
        name = f"{name}|{kind}|{datetime_to_wire(watermark)}"
    elif watermark is not None:
        raise ValueError("a usage line item id has no watermark")
    return str(uuid.uuid5(LINE_ITEM_NAMESPACE, name))


def _part(text: str) -> str:
    return quote(text, safe="")


def fresh_state(
    window: WindowAggregate, period: tuple[datetime, datetime], aggregator: Aggregator
) -> PeriodState:
    """State at the start of a period: nothing used, nothing billed."""
    tenant_id, customer_id, meter, group = window_key(window)
    return PeriodState(
        tenant_id=tenant_id,
        customer_id=customer_id,
        meter=meter,
        group=group,
        period_start=period[0],
        period_end=period[1],
        quantity_state=aggregator.period_initialize(),
        period_quantity=ZERO,
        priced=_NOTHING_PRICED,
        amount_to_date=ZERO,
    )


def state_for_window(
    state: PeriodState | None,
    window: WindowAggregate,
    period: tuple[datetime, datetime],
    aggregator: Aggregator,
) -> PeriodState:
    """The state this window builds on: the current one, or a fresh one when the window opens a new period."""
    if state is not None and state.key != window_key(window):
        raise ValueError(f"state of {state.key} given a window of {window_key(window)}")
    if state is None or period[0] > state.period_start:
        return fresh_state(window, period, aggregator)
    if period[0] < state.period_start:
        raise StaleWindowError(
            f"window {window.window_start.isoformat()} is in a period before {state.period_start.isoformat()}"
        )
    if state.last_window_start is not None and window.window_start <= state.last_window_start:
        raise StaleWindowError(
            f"window {window.window_start.isoformat()} is not after the last applied window "
            f"{state.last_window_start.isoformat()}"
        )
    return state


def tier_deltas(before: Priced, after: Priced) -> tuple[LineItemTier, ...]:
    """Per tier, the change in billed quantity and exact amount; unchanged tiers are left out."""
    old = {tier.tier_index: tier for tier in before.tiers}
    new = {tier.tier_index: tier for tier in after.tiers}
    deltas = []
    for index in sorted(old.keys() | new.keys()):
        was, now = old.get(index), new.get(index)
        shape = now or was
        quantity = exact(lambda was=was, now=now: _q(now) - _q(was))
        amount = exact(lambda was=was, now=now: _a(now) - _a(was))
        if quantity or amount:
            deltas.append(
                LineItemTier(
                    tier_index=index,
                    lower_bound=shape.lower_bound,
                    up_to=shape.up_to,
                    unit_price=shape.unit_price,
                    flat_fee=shape.flat_fee,
                    quantity=quantity,
                    amount=amount,
                )
            )
    return tuple(deltas)


def _q(tier: TierCharge | None) -> Decimal:
    return tier.quantity if tier is not None else ZERO


def _a(tier: TierCharge | None) -> Decimal:
    return tier.amount if tier is not None else ZERO


def accumulate_window(
    state: PeriodState | None,
    window: WindowAggregate,
    catalog_tenant: TenantCatalog,
    *,
    emitted_at: datetime,
    opened_after: datetime | None = None,
) -> tuple[PeriodState, InvoiceLineItem]:
    """Apply one fired window to the period-to-date state and emit its line item. `opened_after`: the watermark its
    first record came after, when that had passed the window already (`udfs.lateness`): if its period had closed by
    then, the line is a prior-period adjustment on the next open invoice (`line_kind`)."""
    meter = catalog_tenant.meter(window.meter)
    aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
    schedule = catalog_tenant.billing_period
    period = billing_period(window.window_start, schedule.anchor_day, schedule.zone)
    before = state_for_window(state, window, period, aggregator)

    quantity_state = aggregator.period_combine(before.quantity_state, window)
    return _rated(before, window, aggregator, catalog_tenant, period, quantity_state, window.window_start,
                  emitted_at=emitted_at, decided_after=opened_after, late=False)


def _rated(
    before: PeriodState, window: WindowAggregate, aggregator: Aggregator, catalog_tenant: TenantCatalog,
    period: tuple[datetime, datetime], quantity_state: Any, last_window_start: datetime, *, emitted_at: datetime,
    decided_after: datetime | None,
    late: bool,
    correction: bool = False,
    quantity: Decimal | None = None,
    event_count: int | None = None,
) -> tuple[PeriodState, InvoiceLineItem]:
    """The state after `window` combined into `before` (`quantity_state`), priced, and the line of the change
    (`correction`, `quantity`, `event_count`: as `build_line_item` takes them)."""
    period_quantity = aggregator.period_quantity(quantity_state)
    entry = catalog_tenant.price_for(window.meter, window.group)
    priced = price(period_quantity, entry)
    after = replace(
        before,
        quantity_state=quantity_state,
        period_quantity=period_quantity,
        priced=priced,
        amount_to_date=round_amount(priced.amount, catalog_tenant.amount_precision),
        last_window_start=last_window_start,
    )
    line = build_line_item(
        window, aggregator, catalog_tenant, entry.id, period,
        priced_before=before.priced, amount_before=before.amount_to_date,
        priced_after=after.priced, amount_after=after.amount_to_date, period_quantity=period_quantity,
        emitted_at=emitted_at, decided_after=decided_after, late=late, correction=correction, quantity=quantity,
        event_count=event_count,
    )
    return after, line


def rate_window(
    window: WindowAggregate,
    catalog_tenant: TenantCatalog,
    *,
    period_quantity_before: Decimal | None,
    period_quantity_after: Decimal,
    emitted_at: datetime,
    decided_after: datetime | None = None,
    late: bool = False,
) -> InvoiceLineItem:
    """The line item of one window from the period quantities before and after it, without state.

    The job's window operator (`io.meterstream.rating.WindowRating`) keeps the period quantities in keyed state
    and calls the Java twin of this function (`RateLineItem`, held to it through
    `udfs.window_rows.line_item_from_period_row` by `tests/job/test_rating_parity.py`) per fired window;
    `period_quantity_before` is None for the first window of a period. Both sides are priced
    with the current catalog, so the lines of a period telescope to the rounded price of its total as long as the
    catalog does not change in the middle of a period (`accumulate_window` keeps what it billed instead).
    """
    meter = catalog_tenant.meter(window.meter)
    aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
    schedule = catalog_tenant.billing_period
    period = billing_period(window.window_start, schedule.anchor_day, schedule.zone)
    entry = catalog_tenant.price_for(window.meter, window.group)
    if period_quantity_before is None:
        priced_before, amount_before = _NOTHING_PRICED, ZERO
    else:
        priced_before = price(period_quantity_before, entry)
        amount_before = round_amount(priced_before.amount, catalog_tenant.amount_precision)
    priced_after = price(period_quantity_after, entry)
    return build_line_item(
        window, aggregator, catalog_tenant, entry.id, period,
        priced_before=priced_before, amount_before=amount_before,
        priced_after=priced_after, amount_after=round_amount(priced_after.amount, catalog_tenant.amount_precision),
        period_quantity=period_quantity_after, emitted_at=emitted_at, decided_after=decided_after, late=late,
    )


def open_period(catalog_tenant: TenantCatalog, clock: datetime) -> tuple[datetime, datetime]:
    """The customer's earliest open billing period at event-time `clock`: the one containing clock - grace (every
    earlier one ended by then, so closed at its end + grace <= clock; `udfs.invoices.closes_at`)."""
    schedule = catalog_tenant.billing_period
    return billing_period(clock - schedule.grace, schedule.anchor_day, schedule.zone)


def line_kind(
    period: tuple[datetime, datetime], catalog_tenant: TenantCatalog, *, late: bool, decided_after: datetime | None,
    correction: bool = False,
) -> tuple[str, datetime]:
    """What a line of a window of `period` is, and the start of the period whose invoice it goes on: usage (or a
    correction) that came after the watermark had reached the period's end + grace (`decided_after`; its invoice is
    final) is a `prior_period_adjustment` on the customer's next open invoice (`open_period`), rated against the
    closed period's own total; a correction of a fired window of an open period is a `correction`, other late usage
    a `late_adjustment`, on-time usage `usage`, all three on their own period's invoice."""
    if decided_after is not None and decided_after >= closes_at(period[1], catalog_tenant.billing_period.grace):
        return PRIOR_PERIOD_ADJUSTMENT, open_period(catalog_tenant, decided_after)[0]
    if correction:
        return CORRECTION, period[0]
    return (LATE_ADJUSTMENT if late else USAGE), period[0]


def build_line_item(
    window: WindowAggregate,
    aggregator: Aggregator,
    catalog_tenant: TenantCatalog,
    price_ref: str,
    period: tuple[datetime, datetime],
    *,
    priced_before: Priced,
    amount_before: Decimal,
    priced_after: Priced,
    amount_after: Decimal,
    period_quantity: Decimal,
    emitted_at: datetime,
    decided_after: datetime | None = None,
    late: bool = False,
    correction: bool = False,
    quantity: Decimal | None = None,
    event_count: int | None = None,
) -> InvoiceLineItem:
    """`late`: the line bills late events of a fired window; `decided_after`: the watermark they came after (for a
    window's own line: the one its first record came after, when that had passed the window; else None).
    `correction`: the line bills corrections of a fired window (`quantity`: the change of the window's quantity,
    `event_count`: the corrections; else both are the window's). A correction's line id names the kind
    `correction` also when the line is a prior-period adjustment, so that it never equals the id of the late usage
    of the same window after the same watermark."""
    amount = exact(lambda: amount_after - amount_before)
    tiers = tier_deltas(priced_before, priced_after)
    adjustment = exact(lambda: amount - sum((tier.amount for tier in tiers), ZERO))
    usage_id = line_item_id(*window_key(window), window.window_start)
    kind, invoice_period_start = line_kind(period, catalog_tenant, late=late, decided_after=decided_after,
                                           correction=correction)
    return InvoiceLineItem(
        line_item_id=usage_id if kind == USAGE else line_item_id(
            *window_key(window), window.window_start, kind=CORRECTION if correction else kind,
            watermark=decided_after),
        kind=kind,
        adjusts_line_item_id=None if kind == USAGE else usage_id,
        decided_after=None if kind == USAGE else decided_after,
        invoice_id=invoice_id(window.tenant_id, window.customer_id, invoice_period_start, catalog_tenant.currency),
        tenant_id=window.tenant_id,
        customer_id=window.customer_id,
        meter=window.meter,
        group=window.group_dict,
        window_start=window.window_start,
        window_end=window.window_end,
        period_start=period[0],
        period_end=period[1],
        quantity=aggregator.window_quantity(window) if quantity is None else quantity,
        period_quantity_to_date=period_quantity,
        amount=amount,
        period_amount_to_date=amount_after,
        currency=catalog_tenant.currency,
        tiers=tiers,
        rounding_adjustment=adjustment,
        event_count=window.event_count if event_count is None else event_count,
        emitted_at=emitted_at,
        price_ref=price_ref,
    )


def accumulate_late(
    state: PeriodState | None,
    late: WindowAggregate,
    catalog_tenant: TenantCatalog,
    *,
    watermark: datetime,
    emitted_at: datetime,
) -> tuple[PeriodState, InvoiceLineItem | None]:
    """Late events of one fired window that came after the same `watermark`, as one aggregate, into the state of the
    window's billing period (`state`: that period's, None when the series has none): the late adjustment line.

    The period rules are order-free (sum and count add, max and min keep the extreme, last keeps the latest by
    (window start, event time, event id), unique_count unites), so late usage folds into the period exactly as it
    would have on time; only the order of the lines differs. Each aggregation adjusts by its own rule: a late max
    only if it raises the period's maximum, a last only if it is later, a unique value only if it is new. Events that
    leave the period quantity unchanged are billed with no line (None): the state still takes them (a later last
    with the same value, a max below the period's), so that what follows builds on all the usage."""
    meter = catalog_tenant.meter(late.meter)
    aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
    schedule = catalog_tenant.billing_period
    period = billing_period(late.window_start, schedule.anchor_day, schedule.zone)
    if state is None:
        before = fresh_state(late, period, aggregator)
    elif state.key != window_key(late) or state.period_start != period[0]:
        raise ValueError(f"state of {state.key} from {state.period_start.isoformat()} given late usage of "
                         f"{window_key(late)} in the period from {period[0].isoformat()}")
    else:
        before = state
    quantity_state = aggregator.period_combine(before.quantity_state, late)
    period_quantity = aggregator.period_quantity(quantity_state)
    last_start = late.window_start if before.last_window_start is None else max(
        before.last_window_start, late.window_start)
    if period_quantity == before.period_quantity:
        return replace(before, quantity_state=quantity_state, last_window_start=last_start), None
    return _rated(before, late, aggregator, catalog_tenant, period, quantity_state, last_start, emitted_at=emitted_at,
                  decided_after=watermark, late=True)


def accumulate_correction(
    state: PeriodState | None,
    before: WindowAggregate | None,
    after: WindowAggregate,
    catalog_tenant: TenantCatalog,
    *,
    period_windows: Iterable[WindowAggregate] = (),
    frozen: Any = None,
    corrections: int,
    watermark: datetime,
    emitted_at: datetime,
) -> tuple[PeriodState, InvoiceLineItem | None]:
    """Corrections of one fired window that came after the same `watermark` (`corrections` of them), into the state
    of the window's billing period (`state`: that period's, None when the series has none): the correction line.

    `before` is the window's aggregate before them (late usage and earlier corrections included; None when the series
    had no usage in it, as when an amend moved usage into this series), `after` the same window after them
    (`udfs.corrections.recompute_window`). Sum and count periods take the difference of the window's quantity; max,
    min, last and unique_count cannot, so their period accumulator is folded again with `period_combine` over
    `period_windows` (every other window of the series in that period, as they stand) and `after`, starting from
    `frozen` (None: nothing), the period accumulator of the period's windows fired before the series began to retain
    them, whose events cannot be corrected (`udfs.corrections.RetainedWindows`). The line is the
    change of the rounded period-to-date price, as for every line, so the period still sums exactly; its `quantity`
    is the change of the window's quantity, its `event_count` the corrections. A `correction` line, or a
    `prior_period_adjustment` on the next open invoice when `watermark` had reached the period's end + grace
    (`line_kind`); its id is `line_item_id(..., kind="correction", watermark=watermark)` either way and
    `adjusts_line_item_id` the window's usage line. Corrections that leave the period quantity unchanged make no
    line (None); the state still takes them."""
    meter = catalog_tenant.meter(after.meter)
    aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
    schedule = catalog_tenant.billing_period
    period = billing_period(after.window_start, schedule.anchor_day, schedule.zone)
    if before is not None and (window_key(before), before.window_start) != (window_key(after), after.window_start):
        raise ValueError("a correction changes one window: before and after must be the same series and window")
    if state is None:
        current = fresh_state(after, period, aggregator)
    elif state.key != window_key(after) or state.period_start != period[0]:
        raise ValueError(f"state of {state.key} from {state.period_start.isoformat()} given a correction of "
                         f"{window_key(after)} in the period from {period[0].isoformat()}")
    else:
        current = state
    quantity_before = ZERO if before is None else aggregator.window_quantity(before)
    window_delta = exact(lambda: aggregator.window_quantity(after) - quantity_before)
    if meter.aggregation in ("sum", "count"):
        quantity_state = aggregator.period_combine(current.quantity_state, replace(after, quantity=window_delta))
    else:
        quantity_state = aggregator.period_initialize() if frozen is None else frozen
        for window in sorted(period_windows, key=lambda w: w.window_start):
            if window_key(window) != window_key(after) or window.window_start == after.window_start:
                raise ValueError("period_windows are the other windows of the corrected window's series")
            quantity_state = aggregator.period_combine(quantity_state, window)
        quantity_state = aggregator.period_combine(quantity_state, after)
    period_quantity = aggregator.period_quantity(quantity_state)
    last_start = after.window_start if current.last_window_start is None else max(
        current.last_window_start, after.window_start)
    if period_quantity == current.period_quantity:
        return replace(current, quantity_state=quantity_state, last_window_start=last_start), None
    return _rated(current, after, aggregator, catalog_tenant, period, quantity_state, last_start,
                  emitted_at=emitted_at, decided_after=watermark, late=True, correction=True, quantity=window_delta,
                  event_count=corrections)


@dataclass(frozen=True)
class SeriesPeriods:
    """The period-to-date states of one series: its latest period's and the earlier ones late usage can still
    reach (oldest first). What the window operator keeps per series; `bill_window`, `bill_late` and
    `bill_correction` are its steps."""

    periods: tuple[PeriodState, ...] = ()

    def period(self, period_start: datetime) -> PeriodState | None:
        return next((p for p in self.periods if p.period_start == period_start), None)

    def with_period(self, state: PeriodState) -> SeriesPeriods:
        others = [p for p in self.periods if p.period_start != state.period_start]
        return SeriesPeriods(tuple(sorted([*others, state], key=lambda p: p.period_start)))


def bill_window(
    series: SeriesPeriods, window: WindowAggregate, catalog_tenant: TenantCatalog, *, emitted_at: datetime,
    max_age: timedelta, opened_after: datetime | None = None,
) -> tuple[SeriesPeriods, InvoiceLineItem]:
    """A fired window into its series' latest period (`accumulate_window`, which starts a new one from nothing when
    the window is of a later period); then the earlier periods no event can reach any more are forgotten: those
    that ended `max_age` + `PRIOR_PERIOD_MARGIN` or more before the latest period's start."""
    latest = series.periods[-1] if series.periods else None
    state, line = accumulate_window(latest, window, catalog_tenant, emitted_at=emitted_at, opened_after=opened_after)
    horizon = state.period_start - max_age - PRIOR_PERIOD_MARGIN
    kept = tuple(p for p in series.periods if p.period_start != state.period_start and p.period_end > horizon)
    return SeriesPeriods((*kept, state)), line


def bill_late(
    series: SeriesPeriods, late: WindowAggregate, catalog_tenant: TenantCatalog, *, watermark: datetime,
    emitted_at: datetime,
) -> tuple[SeriesPeriods, InvoiceLineItem | None]:
    """Late events of one fired window into the state of its period, whichever period it is (`accumulate_late`)."""
    schedule = catalog_tenant.billing_period
    period_start = billing_period(late.window_start, schedule.anchor_day, schedule.zone)[0]
    state, line = accumulate_late(series.period(period_start), late, catalog_tenant, watermark=watermark,
                                  emitted_at=emitted_at)
    return series.with_period(state), line


def bill_correction(
    series: SeriesPeriods, before: WindowAggregate | None, after: WindowAggregate, catalog_tenant: TenantCatalog,
    *, period_windows: Iterable[WindowAggregate] = (), frozen: Any = None, corrections: int, watermark: datetime,
    emitted_at: datetime,
) -> tuple[SeriesPeriods, InvoiceLineItem | None]:
    """Corrections of one fired window into the state of its period, whichever period it is
    (`accumulate_correction`)."""
    schedule = catalog_tenant.billing_period
    period_start = billing_period(after.window_start, schedule.anchor_day, schedule.zone)[0]
    state, line = accumulate_correction(
        series.period(period_start), before, after, catalog_tenant, period_windows=period_windows, frozen=frozen,
        corrections=corrections, watermark=watermark, emitted_at=emitted_at)
    return series.with_period(state), line
