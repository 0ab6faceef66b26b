"""Corrections of unique_count meters as the job bills them: the keyed Python accumulator retains its fired windows'
contents (`udfs.corrections.RetainedWindows`: each value with how many events carry it) and a frozen part per period
(what it held before it began to retain), and the window operator hands it windows, late events and corrections in
the columns `udfs.window_rows` reads. Whatever was fired before retaining, late, cancelled or amended, the period's
quantity is the distinct values of the usage as corrected, and its lines sum to that quantity's rounded price."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_correction_lines import KEY, MAX_AGE, WATERMARK, period_price
from tests.unit.test_line_items import EMITTED, HOUR, MARCH, tenant_catalog
from udfs.aggregations import WindowAggregate, aggregator_for
from udfs.corrections import (
    RetainedWindows,
    begin_retaining,
    correct_retained,
    freeze_settled,
    retain_late,
    retain_window,
    retained_for_ms,
    tick,
)
from udfs.grouping import unique_token
from udfs.line_items import CORRECTION, LATE_ADJUSTMENT, SeriesPeriods, bill_late, bill_window
from udfs.window_rows import parse_unique_corrections, parse_unique_tokens, unique_window_contents

DAY_MS = 24 * 3600 * 1000
FROZEN = 1 << 30  # io.meterstream.rating.WindowContents.FROZEN: a value held before the window operator retained


def _columns(values: Counter) -> tuple[str | None, str | None]:
    """`unique_tokens` and `unique_token_counts` as `WindowRating` writes them (sorted by token)."""
    tokens = sorted((unique_token(v), n) for v, n in values.items())
    if not tokens:
        return None, None
    return ",".join(t for t, _ in tokens), ",".join(str(n) for _, n in tokens)


def _window(start, joined, event_count):
    return WindowAggregate(*KEY, start, start + HOUR, event_count, distinct_values=parse_unique_tokens(joined))


def _changes_json(records):
    return json.dumps([[e, action, None if v is None else unique_token(v)] for e, action, v in records])


class Accumulator:
    """`jobs.billing_functions.PeriodToDateFunction` on one series, by the same pure steps."""

    def __init__(self, tenant, retain_ms: int = retained_for_ms(DAY_MS)):
        self.tenant = tenant
        self.now_ms = 0  # processing time (wall)
        self.retain_ms = retain_ms
        self.periods = SeriesPeriods()
        self.retained: RetainedWindows | None = None
        self.lines = []
        meter = tenant.meter("m")
        self.aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
        self.dimension = meter.unique_dimension

    def retain(self):
        self.retained = begin_retaining(self.periods)

    def clock(self) -> int:
        """The series' clock ticked at the wall time `now_ms`, as the job ticks it on each element."""
        self.retained = tick(self.retained, self.now_ms, self.retain_ms)
        return self.retained.clock_ms

    def run_for(self, ms: int):
        """`ms` of processing time with the series active (ticked every eighth of `retain_ms`, as elements would)."""
        end = self.now_ms + ms
        while self.now_ms < end:
            self.now_ms = min(end, self.now_ms + self.retain_ms // 8)
            self.clock()

    def fire(self, start, values: Counter, event_count):
        joined, counts = _columns(values)
        window = _window(start, joined, event_count)
        self.periods, line = bill_window(self.periods, window, self.tenant, emitted_at=EMITTED, max_age=MAX_AGE)
        self.lines.append(line)
        if self.retained is not None:
            now = self.clock()
            self.retained = freeze_settled(
                retain_window(self.retained, window, unique_window_contents(joined, counts, event_count),
                              self.periods, self.tenant, now_ms=now),
                self.aggregator, self.tenant, now_ms=now, retain_ms=self.retain_ms)

    def late(self, start, values: Counter, event_count, watermark):
        joined, counts = _columns(values)
        window = _window(start, joined, event_count)
        self.periods, line = bill_late(self.periods, window, self.tenant, watermark=watermark, emitted_at=EMITTED)
        if line is not None:
            assert line.kind == LATE_ADJUSTMENT
            self.lines.append(line)
        now = self.clock()
        self.retained = retain_late(self.retained, window, unique_window_contents(joined, counts, event_count),
                                    self.aggregator, now_ms=now)

    def correct(self, start, records, watermark):
        changes, corrections = parse_unique_corrections(_changes_json(records), self.dimension)
        now = self.clock()
        self.periods, self.retained, line = correct_retained(
            self.periods, self.retained, changes, self.tenant, key=KEY, window_start=start,
            window_end=start + HOUR, corrections=corrections, watermark=watermark, emitted_at=EMITTED, now_ms=now)
        if line is not None:
            assert line.kind == CORRECTION
            assert line.event_count == corrections
            self.lines.append(line)
        return line


def test_a_cancel_takes_a_value_out_only_when_no_other_event_of_the_period_carries_it():
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    acc.retain()
    acc.fire(MARCH, Counter({"u1": 2, "u2": 1}), 3)
    acc.fire(MARCH + HOUR, Counter({"u2": 1, "u3": 1}), 2)
    assert acc.periods.period(MARCH).period_quantity == 3
    # one of u1's two events: u1 stays
    assert acc.correct(MARCH, [("e1", "remove", "u1")], WATERMARK) is None
    # u2's event in the first window: the second window still has u2
    assert acc.correct(MARCH, [("e3", "remove", "u2")], WATERMARK + timedelta(milliseconds=1)) is None
    # u3's only event: out of the period
    line = acc.correct(MARCH + HOUR, [("e5", "remove", "u3")], WATERMARK + timedelta(milliseconds=2))
    assert line.period_quantity_to_date == 2 and line.quantity == -1
    assert line.amount == period_price(tenant, 2) - period_price(tenant, 3)
    # an amend of u1's last event to a new value: u1 out, u9 in (one correction, quantity unchanged: no line)
    assert acc.correct(MARCH, [("e2", "remove", "u1"), ("e2", "add", "u9")], WATERMARK + HOUR) is None
    assert acc.periods.period(MARCH).quantity_state == frozenset({"u2", "u9"})


def test_values_held_before_retaining_stay_counted():
    """The frozen part: a period billed before the accumulator retained (restored, or corrections were off) keeps its
    values, and an open window's values from before the window operator retained come with multiplicity FROZEN."""
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    acc.fire(MARCH, Counter({"u1": 1}), 1)
    acc.retain()
    acc.fire(MARCH + HOUR, Counter({"u1": 1, "u2": FROZEN + 1}), 3)
    # u1's retained event cancelled: the frozen first window still holds u1; u2's retained one: FROZEN remain
    assert acc.correct(MARCH + HOUR, [("e2", "remove", "u1"), ("e3", "remove", "u2")], WATERMARK) is None
    assert acc.periods.period(MARCH).quantity_state == frozenset({"u1", "u2"})


def test_a_late_value_into_a_window_fired_before_retaining_can_be_cancelled():
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    acc.fire(MARCH, Counter({"u1": 1}), 1)
    acc.retain()
    acc.late(MARCH, Counter({"u5": 2}), 2, WATERMARK)
    assert acc.periods.period(MARCH).period_quantity == 2
    assert acc.correct(MARCH, [("e7", "remove", "u5")], WATERMARK + HOUR) is None
    line = acc.correct(MARCH, [("e8", "remove", "u5")], WATERMARK + 2 * HOUR)
    assert line.period_quantity_to_date == 1


def test_an_amend_moving_usage_into_a_window_the_series_never_had():
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    acc.retain()
    acc.fire(MARCH + HOUR, Counter({"u1": 1}), 1)
    line = acc.correct(MARCH, [("e9", "add", "u4")], WATERMARK)
    assert line.period_quantity_to_date == 2 and line.quantity == 1


def test_windows_are_frozen_two_correction_horizons_after_their_latest_contribution():
    """`freeze_settled`: a fired window whose latest contribution (its firing, a late event, a correction) is
    `retained_for_ms(horizon)` behind on the series' clock is folded into its period's frozen part and its contents
    dropped; the period does not change, and a late event for a frozen window is retained (and correctable) beside
    the frozen part."""
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    assert acc.retain_ms == 2 * DAY_MS
    acc.retain()
    acc.fire(MARCH, Counter({"u1": 1, "u2": 1}), 2)
    acc.fire(MARCH + HOUR, Counter({"u3": 1}), 1)
    acc.run_for(acc.retain_ms - 1)
    acc.late(MARCH + HOUR, Counter({"u4": 1}), 1, WATERMARK)  # the second window is seen again
    acc.run_for(1)
    acc.fire(MARCH + 2 * HOUR, Counter({"u5": 1}), 1)
    assert set(acc.retained.windows) == {MARCH + HOUR, MARCH + 2 * HOUR}
    assert acc.retained.frozen[MARCH] == frozenset({"u1", "u2"})
    assert acc.periods.period(MARCH).quantity_state == frozenset({"u1", "u2", "u3", "u4", "u5"})
    # the retained windows are still corrected exactly, beside the frozen part
    line = acc.correct(MARCH + HOUR, [("e3", "remove", "u3")], WATERMARK + HOUR)
    assert line.period_quantity_to_date == 4
    # a late event for the frozen window is retained and correctable; the frozen values stay
    acc.late(MARCH, Counter({"u1": 1, "u9": 1}), 2, WATERMARK + 2 * HOUR)
    assert acc.correct(MARCH, [("e7", "remove", "u1")], WATERMARK + 3 * HOUR) is None  # u1 is frozen in
    line = acc.correct(MARCH, [("e8", "remove", "u9")], WATERMARK + 4 * HOUR)
    assert line.period_quantity_to_date == 4
    assert sum(x.amount for x in acc.lines) == period_price(tenant, 4)
    acc.run_for(acc.retain_ms)
    acc.fire(MARCH + 3 * HOUR, Counter(), 0)
    assert set(acc.retained.windows) == {MARCH + 3 * HOUR}
    # looked for at most every retain_ms / 16 of the series' clock
    assert acc.retained.next_freeze_check_ms == acc.retained.clock_ms + acc.retain_ms // 16


def test_a_stopped_job_or_a_silent_series_moves_the_clock_by_a_quarter_horizon():
    """The series' clock follows processing time by at most `retain_ms` / 8 per tick: ten days without a tick (the
    job stopped, the series silent) count a quarter horizon, so a correction accepted before a stop still finds its
    window retained after it; a series active all along freezes its windows after two horizons."""
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    acc.retain()
    acc.fire(MARCH, Counter({"u1": 1}), 1)
    acc.now_ms += 10 * DAY_MS
    acc.fire(MARCH + HOUR, Counter({"u2": 1}), 1)
    assert acc.retained.clock_ms == acc.retain_ms // 8 and set(acc.retained.windows) == {MARCH, MARCH + HOUR}
    line = acc.correct(MARCH, [("e1", "remove", "u1")], WATERMARK)
    assert line.period_quantity_to_date == 1


def test_retained_windows_without_their_time_count_from_the_next_look():
    """A state of the previous version (no clock, no `seen`): every window counts from the first `freeze_settled`
    after it."""
    tenant = tenant_catalog("unique_count", "per_unit")
    acc = Accumulator(tenant)
    acc.retain()
    acc.fire(MARCH, Counter({"u1": 1}), 1)
    acc.retained = RetainedWindows(dict(acc.retained.windows), dict(acc.retained.frozen))
    acc.now_ms = 10 * acc.retain_ms
    acc.fire(MARCH + HOUR, Counter({"u2": 1}), 1)
    assert set(acc.retained.windows) == {MARCH, MARCH + HOUR}
    assert acc.retained.seen == {MARCH: 0, MARCH + HOUR: 0} and acc.retained.wall_ms == acc.now_ms


def test_the_columns_round_trip_values_with_commas_percents_and_no_value():
    values = Counter({"a,b": 2, "50%": 1, "": 1})
    joined, counts = _columns(values)
    contents = unique_window_contents(joined, counts, 5)
    assert dict(contents.members) == dict(values) and contents.event_count == 5
    changes, corrections = parse_unique_corrections(
        _changes_json([("e1", "remove", "a,b"), ("e1", "add", None), ("e2", "remove", "50%")]), "user_id")
    assert corrections == 2
    assert [(r is not None, a is not None) for r, a in changes] == [(True, False), (False, True), (True, False)]
    assert changes[0][0].dimensions == {"user_id": "a,b"} and changes[1][1].dimensions == {}
    with pytest.raises(ValueError, match="multiplicities"):
        unique_window_contents("a,b", "1", 2)
    with pytest.raises(ValueError, match="action"):
        parse_unique_corrections('[["e1", "amend", "x"]]', "user_id")


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_history_leaves_the_period_at_the_distinct_values_of_the_corrected_usage(data):
    """Windows fired before and after retaining, late events, then cancels and amends of the events the ledger holds
    as correctable (those observed since retaining), a window at a time: the period's distinct values are those of
    the corrected usage, and the lines sum to their rounded price."""
    tenant = tenant_catalog("unique_count", data.draw(st.sampled_from(["per_unit", "graduated", "volume"])))
    values = st.sampled_from(["u1", "u2", "u3", "u,4", None])
    frozen_events = {}  # event id -> (window, value): fired before retaining, never corrected
    events = {}  # correctable: event id -> (window, value)
    acc = Accumulator(tenant)
    n = 0
    for window in range(data.draw(st.integers(0, 2))):
        for _ in range(data.draw(st.integers(1, 3))):
            frozen_events[f"f{n}"] = (window, data.draw(values))
            n += 1
        _fire(acc, window, {e: v for e, v in frozen_events.items() if v[0] == window})
    acc.retain()
    first = len({w for w, _ in frozen_events.values()})
    for window in range(first, first + data.draw(st.integers(1, 3))):
        for _ in range(data.draw(st.integers(1, 3))):
            events[f"e{n}"] = (window, data.draw(values))
            n += 1
        _fire(acc, window, {e: v for e, v in events.items() if v[0] == window})
    fired = first + len({w for w, _ in events.values()})
    if data.draw(st.booleans()):
        # a correction horizon (twice over) later one more window fires: the retained ones are frozen, their events
        # no longer correctable (the ledger forgot them); late events may still come for any window
        acc.run_for(acc.retain_ms)
        frozen_events.update(events)
        events = {f"e{n}": (fired, data.draw(values))}
        n += 1
        _fire(acc, fired, events)
        assert set(acc.retained.windows) == {MARCH + fired * HOUR}
        fired += 1
    watermark = WATERMARK
    for _ in range(data.draw(st.integers(0, 3))):
        window = data.draw(st.integers(0, fired - 1))
        late = {}
        for _ in range(data.draw(st.integers(1, 2))):
            late[f"e{n}"] = (window, data.draw(values))
            n += 1
        events.update(late)
        acc.late(MARCH + window * HOUR, Counter(v for _, v in late.values() if v is not None), len(late), watermark)
        watermark += timedelta(milliseconds=1)
    current = dict(events)
    for _ in range(data.draw(st.integers(1, 6))):
        if not current:
            break
        event_id = data.draw(st.sampled_from(sorted(current)))
        window, old = current[event_id]
        records = [(event_id, "remove", old)]
        if data.draw(st.booleans()):
            del current[event_id]
        else:
            new = data.draw(values)
            current[event_id] = (window, new)
            records.append((event_id, "add", new))
        acc.correct(MARCH + window * HOUR, records, watermark)
        watermark += timedelta(milliseconds=1)
    expected = {v for _, v in [*frozen_events.values(), *current.values()] if v is not None}
    state = acc.periods.period(MARCH)
    assert state.quantity_state == frozenset(expected)
    assert sum(line.amount for line in acc.lines) == state.amount_to_date == period_price(tenant, len(expected))


def _fire(acc, window, events):
    values = Counter(v for _, v in events.values() if v is not None)
    acc.fire(MARCH + window * HOUR, values, len(events))
