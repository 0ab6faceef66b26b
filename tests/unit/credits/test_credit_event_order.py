"""Line items and the ledger's deadlines in event-time order, whatever order the line items arrived in."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

import pytest
from credit_factories import EMITTED, NO_ALERTS, D, adjustment, at, grant, line, void

from udfs.credits import apply_grant_event, on_time
from udfs.credits.event_order import due_at, hold, release, wake
from udfs.credits.ledger import History


def granted(*events):
    state = None
    for event in events:
        state, _, _ = apply_grant_event(state, event, NO_ALERTS, emitted_at=EMITTED)
    return state


def summary(drawdowns) -> list[tuple]:
    return [(d.kind, d.grant_id, d.amount, d.uncovered_amount) for d in drawdowns]


def test_due_at_is_the_instant_the_window_fired():
    item = line(2, "1.00")
    assert due_at(item) == at(3) - timedelta(milliseconds=1)


def test_a_held_line_item_waits_for_the_clock_and_is_held_once():
    item = line(2, "1.00")
    pending = hold(hold((), item), item)
    assert pending == (item,)
    state = granted(grant("g", 10))
    state, left, drawdowns, _ = release(state, pending, at(2), NO_ALERTS, emitted_at=EMITTED)
    assert left == (item,) and drawdowns == []
    assert wake(state, left) == due_at(item)
    state, left, drawdowns, _ = release(state, left, due_at(item), NO_ALERTS, emitted_at=EMITTED)
    assert left == () and summary(drawdowns) == [("usage", "g", D("1.00"), D("0.00"))]


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))))
def test_a_void_between_two_line_items_applies_between_them_in_any_arrival_order(arrival):
    """g pays the 1:00 window; voided at 3:00 it pays neither the 3:00 window nor (it is gone) the 5:00 one."""
    items = [line(1, "2.00"), line(3, "3.00"), line(5, "4.00")]
    state = granted(grant("g", 100), void("g", at(3)))
    pending = ()
    for index in arrival:
        pending = hold(pending, items[index])
    state, left, drawdowns, _ = release(state, pending, at(7), NO_ALERTS, emitted_at=EMITTED)
    assert left == ()
    assert summary(drawdowns) == [
        ("usage", "g", D("2.00"), D("0.00")),
        ("void", "g", D("98.00"), D("0.00")),
        ("usage", None, D("0"), D("3.00")),
        ("usage", None, D("0"), D("4.00")),
    ]


def test_the_same_as_applying_on_time_when_everything_arrives_in_order():
    """Held and released equals the old arrival-order ledger when arrival was already in event-time order."""
    from udfs.credits import apply_line_item

    state = granted(grant("promo", 5, priority=10, expires_at=at(2)), grant("paid", 50))
    reference, expected = state, []
    for item, tick in ((line(0, "3.00"), at(1)), (line(2, "4.00"), at(3))):
        reference, drawdowns, _ = on_time(reference, tick, NO_ALERTS, emitted_at=EMITTED)
        expected += drawdowns
        reference, drawdowns, _ = apply_line_item(reference, item, NO_ALERTS, emitted_at=EMITTED)
        expected += drawdowns
    pending = hold(hold((), line(2, "4.00")), line(0, "3.00"))
    state, left, drawdowns, _ = release(state, pending, at(4), NO_ALERTS, emitted_at=EMITTED)
    assert left == () and summary(drawdowns) == summary(expected)
    assert replace(state, history=History()) == replace(reference, history=History())


def test_end_of_input_applies_every_held_line_item_and_no_deadline_after_the_last():
    state = granted(grant("promo", 5, priority=10, expires_at=at(2)), grant("late", 5, expires_at=at(9)))
    pending = hold((), line(3, "1.00"))
    state, left, drawdowns, _ = release(state, pending, at(-100), NO_ALERTS, emitted_at=EMITTED,
                                        end_of_input=True)
    assert left == ()
    assert summary(drawdowns) == [("expiry", "promo", D("5.00"), D("0.00")), ("usage", "late", D("1.00"), D("0.00"))]
    assert wake(state, left) == at(9)  # "late" expires after the data: the end of a replay does not expire it


def test_a_window_s_adjustments_are_held_after_its_usage_line_in_decision_order():
    usage = line(2, "8")
    late = adjustment(usage, "4", decided_after=at(5), kind="late_adjustment", line_id="~late")
    cancel = adjustment(usage, "-4", decided_after=at(6), line_id="!cancel")
    other_window = line(3, "1")
    pending = ()
    for item in (cancel, other_window, late, usage):
        pending = hold(pending, item)
    assert pending == (usage, late, cancel, other_window)
