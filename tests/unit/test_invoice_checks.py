"""`meterstream.invoice_checks` finds each way invoices can disagree with their line items and drawdowns."""

from __future__ import annotations

from decimal import Decimal

from meterstream.invoice_checks import invoice_problems
from tests.unit import test_invoices as spec  # its line and drawdown builders
from udfs.invoices import add_drawdown, add_line, end_of_input


def _run():
    lines = [spec._line(0, Decimal("2.5")), spec._line(1, Decimal("1"), kind="late_adjustment"),
             spec._line(2, Decimal("4"), kind="prior_period_adjustment", period=spec.PRIOR),
             spec._line(3, Decimal("3"), meter="seats")]
    state = None
    for line in lines:
        state = add_line(state, line, spec.TENANT, clock=None)
    drawdown = spec._drawdown(1, Decimal("1.5"))
    state = add_drawdown(state, drawdown, spec.TENANT, clock=None)
    invoices = [i.model_dump(mode="json") for i in end_of_input(state, emitted_at=spec.EMITTED)]
    return invoices, [li.model_dump(mode="json") for li in lines], [drawdown.model_dump(mode="json")]


def test_the_spec_s_invoices_are_exact():
    invoices, lines, drawdowns = _run()
    by_id, problems = invoice_problems(invoices, lines, drawdowns)
    assert problems == [] and len(by_id) == 1


def test_each_disagreement_is_named():
    invoices, lines, drawdowns = _run()
    cases = {
        "written twice": (invoices * 2, lines, drawdowns),
        "never written": (invoices, [*lines, {**lines[0], "invoice_id": "x", "line_item_id": "l-x"}], drawdowns),
        "line_count": (invoices, lines[:-1], drawdowns),
        "usage_total": (invoices, [{**lines[0], "amount": "2.6"}, *lines[1:]], drawdowns),
        "another period": (invoices, [{**lines[1], "period_start": lines[2]["period_start"]}, lines[0], *lines[2:]],
                           drawdowns),
        "subtotals for": (invoices, [{**lines[3], "meter": "storage_gb"}, *lines[:3]], drawdowns),
        "credits applied": (invoices, lines, [*drawdowns, {**drawdowns[0], "drawdown_id": "d2"}]),
        "not a valid invoice": ([{**invoices[0], "total": "0"}], lines, drawdowns),
    }
    for expected, (inv, li, dd) in cases.items():
        _, problems = invoice_problems(inv, li, dd)
        assert any(expected in p for p in problems), (expected, problems)
