"""The ledger's semantics: drawdown, uncovered, negative lines, catch-up, expiry, voids, idempotency, cleanup."""

from __future__ import annotations

import pickle
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from credit_factories import (
    CUSTOMER,
    DEC,
    EMITTED,
    NO_ALERTS,
    NOV,
    TENANT,
    Tick,
    adjustment,
    at,
    balance_of,
    customer_balance,
    grant,
    line,
    run,
    step,
    void,
)

from udfs.credits import (
    DEFAULT_POLICY,
    DRAWN_KINDS,
    apply_grant_event,
    apply_line_item,
    drawdown_id,
    ledger_identity,
    next_timer,
    on_time,
)
from udfs.credits.ledger import History

AFTER_RETENTION = NOV[1] + DEFAULT_POLICY.period_grace + DEFAULT_POLICY.grant_id_retention + timedelta(days=400)


def summary(drawdowns):
    return [(d.kind, d.grant_id, str(d.amount), str(d.uncovered_amount)) for d in drawdowns]


def test_line_no_grant_covers_gets_one_null_record():
    result = run([line(1, "4.5")])
    (record,) = result.drawdowns
    assert (record.kind, record.grant_id, record.amount, record.uncovered_amount) == ("usage", None, 0, Decimal("4.5"))
    assert record.grant_balance_after is None and record.customer_balance_after == 0
    assert record.line_item_id == line(1, "4.5").line_item_id and record.event_time == at(2)


def test_zero_line_is_accounted_for_too():
    result = run([grant("g", 5), line(1, 0)])
    assert summary(result.drawdowns) == [("usage", None, "0", "0")]


def test_balance_never_below_zero_and_rest_is_uncovered():
    result = run([grant("g", 5), line(1, 8), line(2, 1)])
    assert summary(result.drawdowns) == [("usage", "g", "5", "3"), ("usage", None, "0", "1")]
    assert balance_of(result.state, "g") == 0


def test_negative_line_returns_credit_most_recent_grant_first_then_lowers_uncovered():
    events = [grant("a", 10, priority=1), grant("b", 10, priority=2), line(1, 15), line(2, 8), line(3, -30)]
    result = run(events)
    assert summary(result.drawdowns) == [
        ("usage", "a", "10", "0"),
        ("usage", "b", "5", "0"),
        ("usage", "b", "5", "3"),  # b drawn 10 in all, 3 uncovered
        ("usage", "b", "-10", "0"),  # b drew last: returned first, never above its net draw
        ("usage", "a", "-10", "-10"),  # then a; the remaining 10 lowers the uncovered amount
    ]
    assert balance_of(result.state, "a") == 10 and balance_of(result.state, "b") == 10
    # A late grant (known from the start in event time) would have paid the 3 left uncovered on the 2nd line and
    # been given them back by the 3rd, last drawn first: corrections that move money between lines, not in total.
    late_state, corrections, _ = step(result.state, grant("late", 50), NO_ALERTS)
    assert summary(corrections) == [("adjustment", "late", "3", "-3"), ("adjustment", "late", "-3", "3")]
    assert [c.line_item_id for c in corrections] == [line(2, 8).line_item_id, line(3, -30).line_item_id]
    assert {c.cause for c in corrections} == {"revision:1"}
    assert late_state.balance("USD") == 70


def test_negative_line_only_returns_what_its_meter_drew():
    events = [grant("g", 10), line(1, 4, meter="output_tokens"), line(1, 3), line(2, -5)]
    result = run(events)
    assert summary(result.drawdowns)[-1] == ("usage", "g", "-3", "-2")
    assert balance_of(result.state, "g") == 6


def test_negative_line_skips_grants_that_expired():
    events = [grant("old", 10, expires_at=at(3)), grant("new", 10, priority=60), line(1, 12), Tick(at(3)), line(4, -6)]
    result = run(events)
    assert summary(result.drawdowns)[-1] == ("usage", "new", "-2", "-4")


def test_catch_up_when_grant_arrives_after_usage():
    events = [line(1, 6), line(2, 4, meter="output_tokens"), line(3, 5), grant("g", 9, applies_to=("input_tokens",))]
    result = run(events)
    # Known in event time before the usage, g would have paid it: the correction is the same as that.
    assert summary(result.drawdowns)[3:] == [("adjustment", "g", "6", "-6"), ("adjustment", "g", "3", "-3")]
    catch_up = result.drawdowns[3]
    assert catch_up.line_item_id == line(1, 6).line_item_id and catch_up.event_time == at(2)
    assert [u.remaining for u in result.state.uncovered] == [4, 2]
    assert ledger_identity(
        [grant("g", 9)], result.drawdowns, [line(1, 6), line(2, 4, meter="output_tokens"), line(3, 5)]
    )


def test_late_grant_only_catches_up_usage_inside_its_range():
    events = [line(1, 5), line(10, 5), grant("g", 100, effective_at=at(5), expires_at=at(20))]
    result = run(events)
    assert summary(result.drawdowns)[2:] == [("adjustment", "g", "5", "-5")]
    assert result.drawdowns[2].line_item_id == line(10, 5).line_item_id


def test_expiry_mid_window_is_not_used_and_expires_whole_balance():
    events = [grant("g", 10, expires_at=at(2) + timedelta(minutes=30)), line(1, 3), line(2, 4)]
    result = run(events)
    # Applying the 2:00 window means the clock reached its end: the expiry at 2:30 comes first.
    assert summary(result.drawdowns) == [("usage", "g", "3", "0"), ("expiry", "g", "7", "0"), ("usage", None, "0", "4")]
    expiry = result.drawdowns[1]
    assert expiry.event_time == at(2.5) and expiry.grant_balance_after == 0
    assert balance_of(result.state, "g") is None


def test_on_time_before_expiry_changes_nothing():
    result = run([grant("g", 10, expires_at=at(5))])
    state, drawdowns, alerts = on_time(result.state, at(4), NO_ALERTS, emitted_at=EMITTED)
    assert replace(state, history=History()) == replace(result.state, history=History())
    assert drawdowns == [] and alerts == [] and state.history.clock == at(4)


def test_spent_grant_expiring_writes_no_record():
    result = run([grant("g", 3, expires_at=at(5)), line(1, 3), Tick(at(5))])
    assert [d.kind for d in result.drawdowns] == ["usage"]


def test_void_after_grant_removes_remaining_balance_at_voided_at():
    events = [grant("g", 10), line(1, 4), void("g", at(5)), line(3, 1), line(6, 2)]
    result = run(events)
    assert summary(result.drawdowns) == [
        ("usage", "g", "4", "0"), ("usage", "g", "1", "0"), ("void", "g", "5", "0"), ("usage", None, "0", "2")]
    assert result.drawdowns[2].event_time == at(5)
    assert result.state.balance("USD") == 0


def test_void_before_grant_arrives_is_kept_and_applied_when_it_comes():
    state = run([void("g", at(5))]).state
    assert [t.grant_id for t in state.voids] == ["g"]
    result = run([line(1, 2), grant("g", 10), Tick(at(5))], state=state)
    assert summary(result.drawdowns) == [
        ("usage", None, "0", "2"),
        ("adjustment", "g", "2", "-2"),
        ("void", "g", "8", "0"),
    ]
    assert result.state.voids == ()


def test_void_at_or_before_effective_at_voids_the_grant_at_once():
    state = run([void("g", at(1))]).state
    result = run([grant("g", 10, effective_at=at(1)), line(1, 2)], state=state)
    assert summary(result.drawdowns) == [("void", "g", "10", "0"), ("usage", None, "0", "2")]
    # already held grant voided retroactively: settles at once too
    result = run([grant("h", 10, effective_at=at(3)), void("h", at(2))])
    assert summary(result.drawdowns) == [("void", "h", "10", "0")]


def test_repeated_grant_and_void_and_line_are_no_ops():
    state = run([grant("g", 10), line(1, 4), void("g", at(9))]).state
    for event in (grant("g", 99), void("g", at(9)), void("g", at(10)), line(1, 4)):
        again, drawdowns, alerts = step(state, event)
        assert again is state and drawdowns == [] and alerts == []


@pytest.mark.parametrize("first_void", [3, 9])
def test_the_earliest_void_wins_whichever_arrives_first(first_void):
    second_void = 12 - first_void
    result = run([grant("g", 10), line(1, 4), void("g", at(first_void)), void("g", at(second_void)), Tick(at(10))])
    assert [(d.kind, str(d.amount), d.event_time) for d in result.drawdowns if d.kind == "void"] == [
        ("void", "6", at(3))]


def test_a_finished_grant_id_stays_known_for_its_retention():
    result = run([grant("g", 10, expires_at=at(5)), Tick(at(5))])
    assert summary(step(result.state, grant("g", 10, expires_at=at(5)))[1]) == []
    gone = on_time(result.state, at(5) + DEFAULT_POLICY.grant_id_retention, NO_ALERTS, emitted_at=EMITTED)[0]
    assert gone is None


def test_state_goes_back_to_none_when_everything_is_spent_and_expired():
    result = run([grant("spent", 5, priority=1), grant("expiring", 5, expires_at=at(50)), line(1, 5), line(2, 1)])
    state = result.state
    assert state is not None
    timers = []
    while (wake := next_timer(state)) is not None:
        timers.append(wake)
        state, _, _ = on_time(state, wake, NO_ALERTS, emitted_at=EMITTED)
    assert state is None
    assert timers == sorted(timers) and len(timers) >= 3  # expiry, period retention, id retention


def test_uncovered_usage_is_dropped_with_its_period():
    state = run([line(1, 5)]).state
    state, _, _ = on_time(state, NOV[1] + DEFAULT_POLICY.period_grace, NO_ALERTS, emitted_at=EMITTED)
    assert state is None
    assert apply_grant_event(state, grant("g", 5), NO_ALERTS, emitted_at=EMITTED)[1] == []


def test_periods_are_kept_apart():
    result = run([grant("g", 100), line(1, 5), line(1, 5, period=DEC)])
    assert len(result.state.periods) == 2 and result.state.periods[0].spend == 5
    assert {d.period_start for d in result.drawdowns} == {NOV[0], DEC[0]}


def test_input_state_is_not_modified_and_state_pickles():
    state = run([grant("g", 10), line(1, 4), void("x", at(2))]).state
    snapshot = pickle.dumps(state)
    apply_line_item(state, line(2, 3), NO_ALERTS, emitted_at=EMITTED)
    assert pickle.dumps(state) == snapshot
    assert pickle.loads(snapshot) == state


def test_state_of_another_customer_is_refused():
    import pytest

    state = run([grant("g", 10)]).state
    with pytest.raises(ValueError, match="state of"):
        apply_grant_event(state, grant("h", 1, customer="other"), NO_ALERTS, emitted_at=EMITTED)


def test_ids_are_deterministic_and_distinct():
    events = [grant("a", 3), line(1, 5), grant("b", 10, expires_at=at(9)), line(2, -1), Tick(at(9))]
    first, second = run(events), run(events)
    assert [d.drawdown_id for d in first.drawdowns] == [d.drawdown_id for d in second.drawdowns]
    ids = [d.drawdown_id for d in first.drawdowns]
    assert len(set(ids)) == len(ids)
    # pinned: the namespace and the name layout are part of the contract
    assert drawdown_id(TENANT, CUSTOMER, "expiry", None, "b") == first.drawdowns[-1].drawdown_id
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:meterstream:credit-drawdown")
    assert drawdown_id("t", "c", "usage", "l", "g") == str(uuid.uuid5(namespace, "v1|t|c|usage|l|g"))
    assert drawdown_id("t|c", "", "expiry", None, "g") == str(uuid.uuid5(namespace, "v1|t%7Cc||expiry||g"))


def test_customer_balance_sums_live_grants_of_the_currency():
    result = run([grant("u", 10), grant("e", 7, currency="EUR"), line(1, 4)])
    assert customer_balance(result.state) == 6 and result.state.balance("EUR") == 7
    assert result.drawdowns[0].customer_balance_after == 6


def test_a_retired_period_leaves_the_history_and_later_corrections_start_from_its_balances():
    """November's lines drew 30 of g's 100; once November leaves retention its lines fold into the history's base.
    A void arriving late in December then corrects only December's lines, from the balance November left."""
    nov_line, dec_line = line(1, 30), line(200, 50, period=DEC)  # December 9th, after the clock
    grace = DEFAULT_POLICY.period_grace
    result = run([grant("g", 100), nov_line, Tick(NOV[1] + grace), dec_line])
    assert [logged.line_item_id for logged in result.state.history.lines] == [dec_line.line_item_id]
    assert result.state.history.base is not None and result.state.history.grant_events == ()
    assert balance_of(result.state, "g") == 20
    # g voided from the start of December: December's 50 was not g's to pay; November's 30 stays drawn, and the
    # clock (past the grace) is past the void already, so the 70 left goes at once.
    state, corrections, _ = step(result.state, void("g", DEC[0]), NO_ALERTS)
    assert summary(corrections) == [("adjustment", "g", "-50", "50"), ("void", "g", "70", "0")]
    assert corrections[0].line_item_id == dec_line.line_item_id
    assert {c.cause for c in corrections} == {"revision:1"}
    assert state.balance("USD") == 0


def test_a_late_grant_does_not_reach_into_a_retired_period():
    nov_line = line(1, 30)
    result = run([nov_line, Tick(NOV[1] + DEFAULT_POLICY.period_grace), grant("g", 100)])
    assert [d.kind for d in result.drawdowns] == ["usage"]
    assert balance_of(result.state, "g") == 100 and result.state.history.lines == ()


def test_a_line_past_a_periods_retention_folds_that_period_too():
    """No on_time in between: applying a line past November's retention retires November (its deadline comes
    first) and folds its lines into the history's base, as on_time would."""
    nov_line = line(1, 30)
    after_grace = line(24 * 10, 5, period=DEC)  # December 11th, past November's end + 7 days
    result = run([grant("g", 100), nov_line, after_grace])
    assert [logged.line_item_id for logged in result.state.history.lines] == [after_grace.line_item_id]
    assert [book.period_start for book in result.state.periods] == [DEC[0]]
    assert balance_of(result.state, "g") == 65


# ---- a window's adjustments follow its usage line, in the order they were decided ------------------------------


@pytest.mark.parametrize("correction_id", ["!sorts-before-every-uuid", "~sorts-after-every-uuid", None])
@pytest.mark.parametrize("correction_first", [False, True])
def test_a_correction_is_applied_after_the_usage_it_corrects_whatever_its_id_and_arrival(correction_id,
                                                                                         correction_first):
    # Usage of 80 in hour 1, corrected by -30 after the watermark reached hour 3; the grant expires at hour 5. In
    # event time the correction returns 30 of the 80 drawn and 50 expires. Ordered by id alone, a correction whose
    # id sorted first returned nothing (no draw yet) and left -30 uncovered: 80 drawn, 20 expired.
    usage = line(1, 80)
    correction = adjustment(usage, -30, decided_after=at(3), line_id=correction_id)
    lines = [correction, usage] if correction_first else [usage, correction]
    result = run([grant("g", 100, expires_at=at(5)), *lines, Tick(at(6))])
    drawn = sum((d.amount for d in result.drawdowns if d.kind in DRAWN_KINDS), Decimal(0))
    assert drawn == 50
    assert sum((d.amount for d in result.drawdowns if d.kind == "expiry"), Decimal(0)) == 50
    assert sum((d.uncovered_amount for d in result.drawdowns), Decimal(0)) == 0


@pytest.mark.parametrize("arrival", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_adjustments_of_one_window_apply_in_decision_order_not_id_order(arrival):
    # Usage 80, then a late adjustment of +40 decided after hour 3, then a cancel of that late usage (-40) decided
    # after hour 4. In decision order the grant (100) pays 80, then 20 of the 40 (20 uncovered), and the cancel
    # gives 40 back, of which 20 catch up the 20 uncovered: 80 drawn, 20 left to expire, nothing owed.
    # The ids are chosen so that id order is the reverse of decision order.
    usage = line(1, 80)
    late = adjustment(usage, 40, decided_after=at(3), kind="late_adjustment", line_id="~late")
    cancel = adjustment(usage, -40, decided_after=at(4), line_id="!cancel")
    inputs = [(usage, late, cancel)[i] for i in arrival]
    result = run([grant("g", 100, expires_at=at(5)), *inputs, Tick(at(6))])
    drawn = sum((d.amount for d in result.drawdowns if d.kind in DRAWN_KINDS), Decimal(0))
    assert drawn == 80
    assert sum((d.amount for d in result.drawdowns if d.kind == "expiry"), Decimal(0)) == 20
    assert sum((d.uncovered_amount for d in result.drawdowns), Decimal(0)) == 0
