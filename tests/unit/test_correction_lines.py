"""What a correction does to its series (`udfs.corrections.correct_window`, `udfs.line_items.accumulate_correction`):
an open window's contents change with no line, a fired window's correction is a `correction` line (the change of
the rounded period-to-date price), a closed period's a `prior_period_adjustment` on the next open invoice; every
aggregation, tier crossings, amends that move usage between series, ids, and the period's money equal to the price
of the corrected usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_line_items import EMITTED, HOUR, KINDS, MARCH, assert_line_invariants, tenant_catalog
from udfs.aggregations import UsageSample, aggregate_window, aggregator_for
from udfs.corrections import correct_window, window_contents
from udfs.invoices import invoice_id
from udfs.line_items import (
    CORRECTION,
    PRIOR_PERIOD_ADJUSTMENT,
    SeriesPeriods,
    accumulate_correction,
    bill_window,
    line_item_id,
)
from udfs.money import round_amount
from udfs.periods import billing_period
from udfs.pricing.rate import price

MAX_AGE = timedelta(days=35)
NOVA = (("model", "nova"),)
ECHO = (("model", "echo"),)
KEY = ("acme-ai", "cust-1", "m", NOVA)
WATERMARK = MARCH + 3 * HOUR
APRIL = datetime(2025, 4, 1, 4, tzinfo=UTC)  # April's period starts at 00:00 New York (EDT); March closes 1 h later


def sample(event_id, start, value, *, minute=5, user=None):
    dims = {"user_id": user} if user is not None else {}
    return UsageSample(event_id, start + timedelta(minutes=minute), None if value is None else D(value), dims)


def aggregator(tenant):
    meter = tenant.meter("m")
    return aggregator_for(meter.aggregation, meter.unique_dimension)


def window_of(tenant, key, start, samples):
    return aggregate_window(aggregator(tenant), samples, tenant_id=key[0], customer_id=key[1], meter=key[2],
                            group=key[3], window_start=start, window_end=start + HOUR)


class Series:
    """One series billed as the window operator will: fired windows with their contents, the period states."""

    def __init__(self, tenant, key=KEY):
        self.tenant, self.key = tenant, key
        self.periods = SeriesPeriods()
        self.windows = {}  # start -> (aggregate, contents)
        self.lines = []

    def fire(self, start, samples):
        window = window_of(self.tenant, self.key, start, samples)
        self.periods, line = bill_window(self.periods, window, self.tenant, emitted_at=EMITTED, max_age=MAX_AGE)
        self.windows[start] = (window, window_contents(aggregator(self.tenant), samples))
        self.lines.append(line)
        return line

    def correct(self, start, changes, *, watermark=WATERMARK, fired=True):
        window, contents = self.windows.get(start, (None, None))
        schedule = self.tenant.billing_period
        period = billing_period(start, schedule.anchor_day, schedule.zone)
        others = [w for s, (w, _) in self.windows.items() if s != start and period[0] <= s < period[1]]
        result = correct_window(self.periods, window, contents, changes, self.tenant, key=self.key,
                                window_start=start, window_end=start + HOUR, fired=fired, period_windows=others,
                                watermark=watermark, emitted_at=EMITTED)
        self.periods = result.series
        self.windows[start] = (result.window, result.contents)
        if result.line is not None:
            self.lines.append(result.line)
        return result


def period_price(tenant, quantity, group=NOVA):
    return round_amount(price(quantity, tenant.price_for("m", group)).amount, tenant.amount_precision)


def test_a_cancel_in_a_fired_window_is_a_negative_correction_line_across_a_tier_boundary():
    tenant = tenant_catalog("sum", "graduated")
    series = Series(tenant)
    usage = series.fire(MARCH, [sample("a", MARCH, "8"), sample("b", MARCH, "5")])
    series.fire(MARCH + HOUR, [sample("c", MARCH + HOUR, "1")])
    result = series.correct(MARCH, [(sample("b", MARCH, "5"), None)])
    line = result.line
    assert (line.kind, line.quantity, line.period_quantity_to_date, line.event_count) == (CORRECTION, D(-5), D(9), 1)
    # 14 -> 9 crosses the graduated tier boundary at 10 down: tier 1 gives back 4 (and its flat fee), tier 0 one unit
    assert [(t.tier_index, t.quantity) for t in line.tiers] == [(0, D(-1)), (1, D(-4))]
    assert line.amount < 0 and sum(x.amount for x in series.lines) == line.period_amount_to_date == period_price(
        tenant, D(9))
    assert line.line_item_id == line_item_id(*KEY, MARCH, kind=CORRECTION, watermark=WATERMARK)
    assert line.adjusts_line_item_id == usage.line_item_id and line.invoice_id == usage.invoice_id
    assert (result.window.quantity, result.window.event_count) == (D(8), 1)
    assert_line_invariants(line)


def test_an_amend_up_crosses_the_tier_upwards():
    tenant = tenant_catalog("sum", "graduated")
    series = Series(tenant)
    series.fire(MARCH, [sample("a", MARCH, "8")])
    line = series.correct(MARCH, [(sample("a", MARCH, "8"), sample("a", MARCH, "12"))]).line
    assert (line.quantity, line.period_quantity_to_date) == (D(4), D(12))
    assert [(t.tier_index, t.quantity) for t in line.tiers] == [(0, D(2)), (1, D(2))]
    assert sum(x.amount for x in series.lines) == period_price(tenant, D(12))


def test_a_correction_of_an_open_window_changes_its_contents_and_makes_no_line():
    tenant = tenant_catalog("max", "per_unit")
    series = Series(tenant)
    samples = [sample("a", MARCH, "9"), sample("b", MARCH, "4")]
    contents = window_contents(aggregator(tenant), samples)
    open_window = window_of(tenant, KEY, MARCH, samples)
    result = correct_window(series.periods, open_window, contents, [(sample("a", MARCH, "9"), None)], tenant,
                            key=KEY, window_start=MARCH, window_end=MARCH + HOUR, fired=False,
                            watermark=WATERMARK, emitted_at=EMITTED)
    assert result.line is None and result.series == series.periods
    assert result.window == window_of(tenant, KEY, MARCH, [sample("b", MARCH, "4")])
    # when it fires, its usage line bills the corrected contents
    assert series.fire(MARCH, [sample("b", MARCH, "4")]).quantity == D(4)


def test_a_correction_of_a_closed_period_is_a_prior_period_adjustment_on_the_next_open_invoice():
    tenant = tenant_catalog("sum", "graduated")
    series = Series(tenant)
    usage = series.fire(MARCH, [sample("a", MARCH, "8"), sample("b", MARCH, "5")])
    series.fire(APRIL, [sample("c", APRIL, "50")])
    before_close = APRIL + HOUR - timedelta(milliseconds=1)
    still_open = Series(tenant)
    still_open.fire(MARCH, [sample("a", MARCH, "8"), sample("b", MARCH, "5")])
    open_line = still_open.correct(MARCH, [(sample("b", MARCH, "5"), None)], watermark=before_close).line
    closed = series.correct(MARCH, [(sample("b", MARCH, "5"), None)], watermark=APRIL + HOUR).line
    assert (open_line.kind, open_line.invoice_id) == (CORRECTION, usage.invoice_id)
    assert (closed.kind, closed.invoice_id) == (PRIOR_PERIOD_ADJUSTMENT, invoice_id("acme-ai", "cust-1", APRIL, "USD"))
    # rated against March's own total (13 -> 8), whatever April holds
    assert (closed.period_start, closed.period_quantity_to_date, closed.amount) == (MARCH, D(8), open_line.amount)
    assert closed.line_item_id == line_item_id(*KEY, MARCH, kind=CORRECTION, watermark=APRIL + HOUR)
    # never the id of late usage of the same window after the same watermark
    assert closed.line_item_id != line_item_id(*KEY, MARCH, kind=PRIOR_PERIOD_ADJUSTMENT, watermark=APRIL + HOUR)
    assert closed.adjusts_line_item_id == usage.line_item_id
    assert series.periods.period(APRIL).period_quantity == D(50)  # April untouched


def test_an_amend_of_a_group_by_dimension_moves_usage_between_two_series():
    """Series nova loses the event (a negative line), series echo gains it in a window it never had usage in but
    has fired past (a later window fired): a correction line adjusting the usage line that window would have."""
    tenant = tenant_catalog("sum", "graduated")
    nova, echo = Series(tenant), Series(tenant, ("acme-ai", "cust-1", "m", ECHO))
    nova.fire(MARCH, [sample("a", MARCH, "8"), sample("b", MARCH, "3")])
    echo.fire(MARCH + HOUR, [sample("e", MARCH + HOUR, "2")])
    removed = nova.correct(MARCH, [(sample("b", MARCH, "3"), None)]).line
    added = echo.correct(MARCH, [(None, sample("b", MARCH, "3"))]).line
    assert (removed.quantity, removed.period_quantity_to_date) == (D(-3), D(8))
    assert (added.quantity, added.period_quantity_to_date, added.group) == (D(3), D(5), {"model": "echo"})
    assert added.adjusts_line_item_id == line_item_id("acme-ai", "cust-1", "m", ECHO, MARCH)
    assert sum(x.amount for x in nova.lines) == period_price(tenant, D(8))
    assert sum(x.amount for x in echo.lines) == period_price(tenant, D(5), ECHO)


def test_several_corrections_of_one_window_after_one_watermark_make_one_line():
    tenant = tenant_catalog("count", "per_unit")
    series = Series(tenant)
    series.fire(MARCH, [sample(f"e{i}", MARCH, None) for i in range(5)])
    line = series.correct(MARCH, [(sample("e1", MARCH, None), None), (sample("e2", MARCH, None), None)]).line
    assert (line.quantity, line.period_quantity_to_date, line.event_count) == (D(-2), D(3), 2)


# Per aggregation: the period's windows, then corrections (window, [(remove, add)]) and the period quantity after.
CASES = {
    # cancel of the period's maximum: the runner-up of another window wins
    "max": ([("a", 0, "9"), ("b", 0, "4"), ("c", 1, "7")], [(0, [("a", "9", None)])], D(7)),
    # amend of the period's minimum upwards, then a cancel of the new minimum
    "min": ([("a", 0, "2"), ("b", 0, "6"), ("c", 1, "5")], [(0, [("a", "2", "8")]), (1, [("c", "5", None)])], D(6)),
    # cancel of the latest window's last: the earlier window's last is the period's again
    "last": ([("a", 0, "4"), ("b", 1, "6")], [(1, [("b", "6", None)])], D(4)),
    # a user counted in two windows stays counted when one of them is cancelled; one counted once leaves
    "unique_count": ([("a", 0, "u1"), ("b", 1, "u1"), ("c", 1, "u2")], [(0, [("a", "u1", None)]),
                                                                        (1, [("c", "u2", "u3")])], D(2)),
    "sum": ([("a", 0, "8"), ("b", 1, "5")], [(1, [("b", "5", "7")]), (0, [("a", "8", None)])], D(7)),
    "count": ([("a", 0, None), ("b", 0, None), ("c", 1, None)], [(0, [("a", None, None)])], D(2)),
}


def _sample(kind, event_id, window, value):
    start = MARCH + window * HOUR
    minute = {"a": 5, "b": 10, "c": 15}.get(event_id, 20)
    if kind == "unique_count":
        return sample(event_id, start, None, minute=minute, user=value)
    return sample(event_id, start, value if kind != "count" else None, minute=minute)


@pytest.mark.parametrize("kind", KINDS)
def test_every_aggregation_is_corrected_to_the_price_of_the_corrected_usage(kind):
    tenant = tenant_catalog(kind, "graduated")
    events, corrections, expected = CASES[kind]
    series = Series(tenant)
    for window in sorted({w for _, w, _ in events}):
        series.fire(MARCH + window * HOUR, [_sample(kind, e, w, v) for e, w, v in events if w == window])
    for window, changes in corrections:
        deltas = []
        for event_id, old, new in changes:
            remove = _sample(kind, event_id, window, old)
            add = None if new is None else _sample(kind, event_id, window, new)
            deltas.append((remove, add))
        series.correct(MARCH + window * HOUR, deltas)
    state = series.periods.period(MARCH)
    assert state.period_quantity == expected
    assert sum(line.amount for line in series.lines) == state.amount_to_date == period_price(tenant, expected)
    for line in series.lines[len({w for _, w, _ in events}):]:
        assert line.kind == CORRECTION
        assert_line_invariants(line)


def test_a_correction_that_leaves_the_period_quantity_alone_makes_no_line():
    tenant = tenant_catalog("max", "per_unit")
    series = Series(tenant)
    series.fire(MARCH, [sample("a", MARCH, "9"), sample("b", MARCH, "4")])
    result = series.correct(MARCH, [(sample("b", MARCH, "4"), None)])
    assert result.line is None and result.window.event_count == 1
    assert series.periods.period(MARCH).period_quantity == D(9)


def test_the_window_and_period_must_match_the_state():
    tenant = tenant_catalog("sum", "per_unit")
    series = Series(tenant)
    series.fire(MARCH, [sample("a", MARCH, "1")])
    state = series.periods.period(MARCH)
    other = window_of(tenant, ("acme-ai", "cust-2", "m", NOVA), MARCH, [sample("x", MARCH, "1")])
    with pytest.raises(ValueError, match="state of"):
        accumulate_correction(state, None, other, tenant, corrections=1, watermark=WATERMARK, emitted_at=EMITTED)
    mine = window_of(tenant, KEY, MARCH, [sample("a", MARCH, "1")])
    with pytest.raises(ValueError, match="same series and window"):
        accumulate_correction(state, other, mine, tenant, corrections=1, watermark=WATERMARK, emitted_at=EMITTED)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_any_cancels_and_amends_leave_the_period_at_the_price_of_the_corrected_usage(kind, data):
    """Windows fired, then cancels and amends in any order, a window at a time: the period quantity is that of the
    corrected events folded from scratch, and the lines sum to its rounded price."""
    tenant = tenant_catalog(kind, data.draw(st.sampled_from(["per_unit", "graduated", "volume"])))
    values = st.sampled_from(["0", "1", "3", "7", "12", "40"]) if kind != "unique_count" else st.sampled_from(
        ["u1", "u2", "u3"])
    current = {}  # event id -> (window, value)
    for i in range(data.draw(st.integers(1, 6))):
        current[f"e{i}"] = (data.draw(st.integers(0, 2)), data.draw(values))
    series = Series(tenant)
    for window in sorted({w for w, _ in current.values()}):
        series.fire(MARCH + window * HOUR, [_event(kind, e, w, v) for e, (w, v) in sorted(current.items())
                                            if w == window])
    for _ in range(data.draw(st.integers(1, 5))):
        if not current:
            break
        event_id = data.draw(st.sampled_from(sorted(current)))
        window, old = current[event_id]
        if data.draw(st.booleans()):
            del current[event_id]
            add = None
        else:
            current[event_id] = (window, data.draw(values))
            add = _event(kind, event_id, window, current[event_id][1])
        series.correct(MARCH + window * HOUR, [(_event(kind, event_id, window, old), add)],
                       watermark=WATERMARK + timedelta(milliseconds=len(series.lines)))
    agg = aggregator(tenant)
    acc = agg.period_initialize()
    for window in sorted({w for w, _ in current.values()}):
        acc = agg.period_combine(acc, window_of(tenant, KEY, MARCH + window * HOUR, [
            _event(kind, e, w, v) for e, (w, v) in sorted(current.items()) if w == window]))
    expected = agg.period_quantity(acc)
    state = series.periods.period(MARCH)
    assert state.period_quantity == expected
    assert sum(line.amount for line in series.lines) == state.amount_to_date == period_price(tenant, expected)


def _event(kind, event_id, window, value):
    start = MARCH + window * HOUR
    minute = int(event_id[1:]) + 1
    if kind == "unique_count":
        return sample(event_id, start, None, minute=minute, user=value)
    return sample(event_id, start, None if kind == "count" else value, minute=minute)
