"""Late usage billed as late adjustments (`udfs.line_items.accumulate_late`, `bill_window`, `bill_late`): every
aggregation by its own rule, no line when nothing changes, earlier periods, ids, and the money of a period equal to
the rounded price of all its usage whatever order it was billed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_line_items import EMITTED, HOUR, KINDS, MARCH, assert_line_invariants, make_window, tenant_catalog
from udfs.aggregations import LastObservation, WindowAggregate
from udfs.line_items import (
    LATE_ADJUSTMENT,
    PRIOR_PERIOD_ADJUSTMENT,
    SeriesPeriods,
    accumulate_late,
    accumulate_window,
    bill_late,
    bill_window,
    line_item_id,
)
from udfs.money import round_amount
from udfs.pricing.rate import price

WATERMARK = MARCH + 3 * HOUR
MAX_AGE = timedelta(days=35)


def late(kind, start, value, *, users=(), event_count=1, at_minute=10):
    window = make_window(kind, start, value, users=users, event_count=event_count)
    if kind == "last":  # a late event's own time inside the window
        window = WindowAggregate("acme-ai", "cust-1", "m", (("model", "nova"),), start, start + HOUR, event_count,
                                 last=LastObservation(D(value), start + timedelta(minutes=at_minute), "late-evt"))
    return window


def test_a_late_sum_adds_to_the_period_and_the_lines_telescope():
    tenant = tenant_catalog("sum", "graduated")
    state, first = accumulate_window(None, make_window("sum", MARCH, "8"), tenant, emitted_at=EMITTED)
    state, second = accumulate_window(state, make_window("sum", MARCH + HOUR, "1"), tenant, emitted_at=EMITTED)
    state, line = accumulate_late(state, late("sum", MARCH, "5", event_count=2), tenant, watermark=WATERMARK,
                                  emitted_at=EMITTED)
    assert line is not None and line.kind == LATE_ADJUSTMENT
    assert (line.window_start, line.quantity, line.period_quantity_to_date, line.event_count) == (MARCH, D(5), D(14), 2)
    # crosses the graduated tier at 10: tier 0 gets 1 more, tier 1 gets 4 (and its flat fee)
    assert [(t.tier_index, t.quantity) for t in line.tiers] == [(0, D(1)), (1, D(4))]
    assert first.amount + second.amount + line.amount == line.period_amount_to_date == round_amount(
        price(D(14), tenant.price_for("m", (("model", "nova"),))).amount, 2)
    assert_line_invariants(line)
    assert state.period_quantity == D(14) and state.last_window_start == MARCH + HOUR


def test_the_adjustment_ids_name_the_window_and_the_watermark():
    tenant = tenant_catalog("count")
    state, usage = accumulate_window(None, make_window("count", MARCH, "3", event_count=3), tenant, emitted_at=EMITTED)
    _, line = accumulate_late(state, late("count", MARCH, "1"), tenant, watermark=WATERMARK, emitted_at=EMITTED)
    _, again = accumulate_late(state, late("count", MARCH, "1"), tenant, watermark=WATERMARK, emitted_at=EMITTED)
    _, other = accumulate_late(state, late("count", MARCH, "1"), tenant, watermark=WATERMARK + timedelta(
        milliseconds=1), emitted_at=EMITTED)
    assert line.adjusts_line_item_id == usage.line_item_id != line.line_item_id
    assert line.line_item_id == again.line_item_id != other.line_item_id
    assert line.line_item_id == line_item_id("acme-ai", "cust-1", "m", {"model": "nova"}, MARCH,
                                             kind=LATE_ADJUSTMENT, watermark=WATERMARK)
    assert usage.kind == "usage" and usage.adjusts_line_item_id is None
    with pytest.raises(ValueError, match="watermark"):
        line_item_id("acme-ai", "cust-1", "m", {}, MARCH, kind=LATE_ADJUSTMENT)
    with pytest.raises(ValueError, match="no watermark"):
        line_item_id("acme-ai", "cust-1", "m", {}, MARCH, watermark=WATERMARK)


@pytest.mark.parametrize(("kind", "on_time", "late_value", "users", "changes", "after"), [
    ("max", "7", "5", (), False, D(7)),  # below the period's maximum: nothing to bill
    ("max", "7", "9", (), True, D(9)),
    ("min", "7", "9", (), False, D(7)),
    ("min", "7", "2", (), True, D(2)),
    ("unique_count", "0", "0", ("u1",), False, D(2)),  # u1 already counted in the period
    ("unique_count", "0", "0", ("u9",), True, D(3)),
    ("sum", "7", "0", (), False, D(7)),  # a zero adds nothing
])
def test_each_aggregation_adjusts_only_when_the_period_quantity_moves(kind, on_time, late_value, users, changes,
                                                                        after):
    tenant = tenant_catalog(kind, "per_unit")
    state, _ = accumulate_window(None, make_window(kind, MARCH, on_time, users=("u1", "u2")), tenant,
                                 emitted_at=EMITTED)
    state, line = accumulate_late(state, late(kind, MARCH, late_value, users=users), tenant, watermark=WATERMARK,
                                  emitted_at=EMITTED)
    assert (line is not None) == changes
    assert state.period_quantity == after


def test_a_late_last_counts_only_when_it_is_the_latest_of_the_period():
    tenant = tenant_catalog("last", "per_unit")
    state, _ = accumulate_window(None, make_window("last", MARCH, "4"), tenant, emitted_at=EMITTED)
    state, _ = accumulate_window(state, make_window("last", MARCH + HOUR, "6"), tenant, emitted_at=EMITTED)
    # a later value of an earlier window: not the period's last
    state, line = accumulate_late(state, late("last", MARCH, "100", at_minute=50), tenant, watermark=WATERMARK,
                                  emitted_at=EMITTED)
    assert line is None and state.period_quantity == D(6)
    # in the latest window, after its last event (at :30): it is the period's last now
    state, line = accumulate_late(state, late("last", MARCH + HOUR, "2", at_minute=40), tenant, watermark=WATERMARK,
                                  emitted_at=EMITTED)
    assert line is not None and (line.quantity, line.period_quantity_to_date) == (D(2), D(2))
    assert line.amount == D("-0.01")  # 0.0035 per unit: 0.021 -> 0.02 before, 0.007 -> 0.01 after
    # before the latest window's last: not the last
    state, line = accumulate_late(state, late("last", MARCH + HOUR, "50", at_minute=5), tenant, watermark=WATERMARK,
                                  emitted_at=EMITTED)
    assert line is None and state.period_quantity == D(2)


def test_late_usage_of_an_earlier_period_adjusts_that_period_and_leaves_the_latest_alone():
    tenant = tenant_catalog("sum", "graduated")
    april = datetime(2025, 4, 1, 4, tzinfo=UTC)  # April's period starts at 00:00 New York (EDT)
    series = SeriesPeriods()
    series, _ = bill_window(series, make_window("sum", MARCH, "9"), tenant, emitted_at=EMITTED, max_age=MAX_AGE)
    series, _ = bill_window(series, make_window("sum", april, "50"), tenant, emitted_at=EMITTED, max_age=MAX_AGE)
    series, line = bill_late(series, late("sum", MARCH + HOUR, "3"), tenant, watermark=april + HOUR,
                             emitted_at=EMITTED)
    assert line is not None
    assert (line.period_start, line.period_quantity_to_date) == (MARCH, D(12))  # crosses March's tier at 10
    assert [p.period_quantity for p in series.periods] == [D(12), D(50)]
    # an earlier period the series never billed starts from nothing
    february = datetime(2025, 2, 20, 5, tzinfo=UTC)
    series, line = bill_late(series, late("sum", february, "4"), tenant, watermark=april + HOUR, emitted_at=EMITTED)
    assert line.period_start == datetime(2025, 2, 1, 5, tzinfo=UTC) and line.period_quantity_to_date == D(4)
    assert [p.period_quantity for p in series.periods] == [D(4), D(12), D(50)]


def test_earlier_periods_are_forgotten_once_no_event_can_reach_them():
    tenant = tenant_catalog("sum")
    series = SeriesPeriods()
    starts = [MARCH, datetime(2025, 4, 1, 4, tzinfo=UTC), datetime(2025, 5, 1, 4, tzinfo=UTC),
              datetime(2025, 6, 1, 4, tzinfo=UTC)]
    for start in starts:
        series, _ = bill_window(series, make_window("sum", start, "1"), tenant, emitted_at=EMITTED, max_age=MAX_AGE)
    # at June's start, March (ended April 1) is more than 35 days + 1 day back; April (ended May 1) is not
    assert [p.period_start for p in series.periods] == starts[1:]


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_a_periods_money_is_the_price_of_all_its_usage_in_any_billing_order(kind, data):
    """On time or late, in whatever order the late usage comes: the lines of the period sum to the rounded price
    of the period quantity of all its windows' usage together."""
    tenant = tenant_catalog(kind, data.draw(st.sampled_from(["per_unit", "package", "graduated", "volume"])))
    values = data.draw(st.lists(st.integers(0, 40), min_size=2, max_size=8))
    windows = [make_window(kind, MARCH + i * HOUR, str(v), users=(f"u{v % 5}",)) for i, v in enumerate(values)]
    on_time = data.draw(st.lists(st.booleans(), min_size=len(windows), max_size=len(windows)))
    on_time[0] = True
    series, lines = SeriesPeriods(), []
    held = []
    for window, timely in zip(windows, on_time, strict=True):
        if timely:
            series, line = bill_window(series, window, tenant, emitted_at=EMITTED, max_age=MAX_AGE)
            lines.append(line)
        else:
            held.append(window)
    for n, window in enumerate(data.draw(st.permutations(held))):
        series, line = bill_late(series, window, tenant, watermark=WATERMARK + timedelta(milliseconds=n),
                                 emitted_at=EMITTED)
        if line is not None:
            lines.append(line)
    everything = None
    for window in windows:
        everything, _ = accumulate_window(everything, window, tenant, emitted_at=EMITTED)
    assert series.periods[-1].period_quantity == everything.period_quantity
    assert sum((line.amount for line in lines), D(0)) == everything.amount_to_date
    assert len({line.line_item_id for line in lines}) == len(lines)


def test_usage_of_a_closed_period_is_a_prior_period_adjustment_on_the_next_open_invoice():
    """March closes at April 1st 04:00Z + grace (1 h): late usage decided after that is billed on April's invoice,
    rated against March's own total; decided before it, it stays a late adjustment on March's invoice."""
    from udfs.invoices import invoice_id

    tenant = tenant_catalog("sum", "graduated")
    april = datetime(2025, 4, 1, 4, tzinfo=UTC)
    state, usage = accumulate_window(None, make_window("sum", MARCH, "9"), tenant, emitted_at=EMITTED)
    assert usage.invoice_id == invoice_id("acme-ai", "cust-1", MARCH, "USD")
    before_close = april + HOUR - timedelta(milliseconds=1)
    _, still_open = accumulate_late(state, late("sum", MARCH, "3"), tenant, watermark=before_close, emitted_at=EMITTED)
    _, closed = accumulate_late(state, late("sum", MARCH, "3"), tenant, watermark=april + HOUR, emitted_at=EMITTED)
    assert (still_open.kind, still_open.invoice_id) == (LATE_ADJUSTMENT, usage.invoice_id)
    assert (closed.kind, closed.invoice_id) == (PRIOR_PERIOD_ADJUSTMENT, invoice_id("acme-ai", "cust-1", april, "USD"))
    assert (closed.period_start, closed.period_quantity_to_date, closed.amount) == (
        still_open.period_start, still_open.period_quantity_to_date, still_open.amount)  # March's tiers either way
    assert closed.line_item_id != still_open.line_item_id and closed.adjusts_line_item_id == usage.line_item_id
    # a window first opened after March closed: its own line is a prior-period adjustment too
    _, opened_late = accumulate_window(None, make_window("sum", MARCH + HOUR, "2"), tenant, emitted_at=EMITTED,
                                       opened_after=april + 2 * HOUR)
    assert opened_late.kind == PRIOR_PERIOD_ADJUSTMENT and opened_late.invoice_id == closed.invoice_id
    _, opened_open = accumulate_window(None, make_window("sum", MARCH + HOUR, "2"), tenant, emitted_at=EMITTED,
                                       opened_after=MARCH + 2 * HOUR)
    assert opened_open.kind == "usage" and opened_open.line_item_id == line_item_id(
        "acme-ai", "cust-1", "m", {"model": "nova"}, MARCH + HOUR)


def test_the_open_period_is_the_one_whose_end_plus_grace_the_clock_has_not_reached():
    from udfs.line_items import open_period

    tenant = tenant_catalog("sum")
    april = datetime(2025, 4, 1, 4, tzinfo=UTC)
    assert open_period(tenant, april + HOUR - timedelta(milliseconds=1))[0] == MARCH
    assert open_period(tenant, april + HOUR)[0] == april


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(("window_start", "period_start", "period_end"), [
    # October ends at November's local midnight, still daylight time (EDT, UTC-4); November ends in standard time
    (_utc(2026, 10, 31, 12), _utc(2026, 10, 1, 4), _utc(2026, 11, 1, 4)),
    (_utc(2026, 11, 30, 12), _utc(2026, 11, 1, 4), _utc(2026, 12, 1, 5)),
    # March's period starts in standard time and ends in daylight time (the clocks go forward on March 8th)
    (_utc(2026, 3, 20, 12), _utc(2026, 3, 1, 5), _utc(2026, 4, 1, 4)),
])
def test_a_period_closes_at_its_own_end_plus_grace_across_a_dst_change(window_start, period_start, period_end):
    """The close is the period's end in UTC (local midnight, whatever the offset that day) + grace: one millisecond
    before it late usage is a late adjustment on the period's invoice, at it a prior-period adjustment on the next."""
    from udfs.invoices import invoice_id
    from udfs.line_items import open_period

    tenant = tenant_catalog("sum")
    state, usage = accumulate_window(None, make_window("sum", window_start, "5"), tenant, emitted_at=EMITTED)
    assert (usage.period_start, usage.period_end) == (period_start, period_end)
    close = period_end + tenant.billing_period.grace
    _, before = accumulate_late(state, late("sum", window_start, "1"), tenant,
                                watermark=close - timedelta(milliseconds=1), emitted_at=EMITTED)
    _, after = accumulate_late(state, late("sum", window_start, "1"), tenant, watermark=close, emitted_at=EMITTED)
    assert (before.kind, before.invoice_id) == (LATE_ADJUSTMENT, invoice_id("acme-ai", "cust-1", period_start, "USD"))
    assert (after.kind, after.invoice_id) == (PRIOR_PERIOD_ADJUSTMENT,
                                              invoice_id("acme-ai", "cust-1", period_end, "USD"))
    assert open_period(tenant, close)[0] == period_end
