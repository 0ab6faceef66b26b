"""Burn order (every tie-break) and eligibility (window, meter, currency)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from credit_factories import HOUR, T0, at, grant, line, run

from udfs.credits import GrantBalance, burn_order, covers


def balance(grant_id, *, priority=50, expires_at=None, effective_at=T0) -> GrantBalance:
    from decimal import Decimal

    return GrantBalance(grant_id, "USD", Decimal(1), Decimal(1), priority, effective_at, expires_at, None, "paid")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(balance("z", priority=1), balance("a", priority=2), id="lower priority number first"),
        pytest.param(
            balance("z", expires_at=at(10)), balance("a", expires_at=at(20)), id="same priority: earliest expiry"
        ),
        pytest.param(balance("z", expires_at=at(500)), balance("a"), id="never expiring goes last"),
        pytest.param(
            balance("z", effective_at=T0), balance("a", effective_at=at(1)), id="same expiry: earliest effective"
        ),
        pytest.param(balance("a"), balance("b"), id="all equal: grant_id"),
        pytest.param(
            balance("b", priority=0, expires_at=None),
            balance("a", priority=1, expires_at=at(1)),
            id="priority beats expiry",
        ),
    ],
)
def test_burn_order_and_every_tie_break(first, second):
    assert burn_order([second, first]) == (first, second)
    assert burn_order([first, second]) == (first, second)


def test_ledger_draws_in_burn_order_across_grants():
    events = [
        grant("late-expiry", 10, expires_at=at(100)),
        grant("no-expiry", 10),
        grant("urgent", 10, priority=5),
        grant("early-expiry", 10, expires_at=at(50)),
        line(1, 35),
    ]
    result = run(events)
    assert [(d.grant_id, str(d.amount)) for d in result.drawdowns] == [
        ("urgent", "10"),
        ("early-expiry", "10"),
        ("late-expiry", "10"),
        ("no-expiry", "5"),
    ]
    assert [str(d.uncovered_amount) for d in result.drawdowns] == ["0", "0", "0", "0"]
    assert [str(d.customer_balance_after) for d in result.drawdowns] == ["30", "20", "10", "5"]


def test_window_must_lie_inside_the_grant_range():
    window = {"meter": "m", "window_start": at(1), "window_end": at(2), "currency": "USD"}
    base = balance("g")
    assert covers(base, **window)
    assert covers(replace(base, effective_at=at(1)), **window)  # inclusive start
    assert not covers(replace(base, effective_at=at(1) + HOUR / 2), **window)  # starts mid-window
    assert covers(replace(base, expires_at=at(2)), **window)  # exclusive end: window_end == expires_at is in
    assert not covers(replace(base, expires_at=at(2) - HOUR / 2), **window)  # expires mid-window
    assert not covers(replace(base, voided_at=at(1) + HOUR / 2), **window)  # voided mid-window
    assert not covers(base, **{**window, "currency": "EUR"})
    assert covers(replace(base, applies_to=frozenset({"m"})), **window)
    assert not covers(replace(base, applies_to=frozenset({"other"})), **window)


def test_grants_outside_window_or_meter_list_are_not_used():
    events = [
        grant("future", 100, effective_at=at(5)),
        grant("past", 100, expires_at=at(1)),
        grant("other-meter", 100, applies_to=("output_tokens",)),
        grant("mine", 3, priority=99, applies_to=("input_tokens",)),
        line(2, 10),
    ]
    result = run(events)
    assert [(d.grant_id, str(d.amount), str(d.uncovered_amount)) for d in result.drawdowns if d.kind == "usage"] == [
        ("mine", "3", "7")]
    usage = next(d for d in result.drawdowns if d.kind == "usage")
    assert str(usage.customer_balance_after) == "200"  # not-yet-effective grants count as held (past expired)
