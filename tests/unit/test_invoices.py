"""`udfs.invoices` and `schemas.invoice`: exact sums for any line sequence, the invoice each line names, where credit
counts, the close rule, the end of a bounded input, ids, mismatches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.credits import CreditDrawdown
from schemas.invoice import Invoice, InvoiceCharge
from schemas.invoice_line_item import InvoiceLineItem
from udfs.catalog import parse_catalog
from udfs.invoices import (
    DEFAULT_GRACE,
    INVOICE_NAMESPACE,
    InvoiceClosed,
    InvoiceMismatch,
    add_drawdown,
    add_line,
    close_due,
    end_of_input,
    invoice,
    invoice_id,
    next_close,
)
from udfs.line_items import line_item_id

TENANT = parse_catalog(Path("catalogs/example-genai.yaml").read_text()).tenants["acme-ai"]  # New York, anchor 1
PERIOD = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 12, 1, 5, tzinfo=UTC))
PRIOR = (datetime(2026, 10, 1, 4, tzinfo=UTC), PERIOD[0])
NEXT = (PERIOD[1], datetime(2027, 1, 1, 5, tzinfo=UTC))
EMITTED = datetime(2026, 12, 1, 6, 0, 1, tzinfo=UTC)
KINDS = ("usage", "late_adjustment", "correction", "prior_period_adjustment")


def _line(n: int, amount: Decimal, *, kind: str = "usage", meter: str = "input_tokens", group: dict | None = None,
          quantity: Decimal = Decimal(1), period=PERIOD, invoice_period=None, customer: str = "cust",
          currency: str = "USD", **extra) -> InvoiceLineItem:
    window_start = period[0] + timedelta(minutes=n)
    named = invoice_period or (NEXT if kind == "prior_period_adjustment" and period == PERIOD else
                               PERIOD if kind == "prior_period_adjustment" else period)
    return InvoiceLineItem(
        line_item_id=line_item_id("acme-ai", customer, meter, group or {}, window_start) + kind,
        kind=kind, invoice_id=invoice_id("acme-ai", customer, named[0], currency),
        tenant_id="acme-ai", customer_id=customer, meter=meter, group=group or {},
        window_start=window_start, window_end=window_start + timedelta(minutes=1),
        period_start=period[0], period_end=period[1], quantity=quantity, period_quantity_to_date=quantity,
        amount=amount, period_amount_to_date=amount, currency=currency, tiers=(), rounding_adjustment=amount,
        event_count=1, emitted_at=window_start, price_ref="p", **extra,
    )


def _drawdown(n: int, amount: Decimal, *, period_start=PERIOD[0], kind: str = "usage",
              line: str | None = "line") -> CreditDrawdown:
    return CreditDrawdown(
        drawdown_id=f"d{n}", tenant_id="acme-ai", customer_id="cust", kind=kind, line_item_id=line, grant_id="g",
        meter="input_tokens", period_start=period_start, currency="USD", amount=amount,
        grant_balance_after=Decimal(0), customer_balance_after=Decimal(0), uncovered_amount=Decimal(0),
        event_time=PERIOD[0], emitted_at=PERIOD[0],
    )


_amounts = st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
_lines = st.lists(
    st.tuples(
        st.integers(0, 15),
        _amounts,
        st.sampled_from(KINDS),
        st.sampled_from(["input_tokens", "seats"]),
        st.sampled_from([None, {"model": "a"}, {"model": "b"}]),
        st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_lines, st.lists(_amounts, max_size=10))
def test_each_invoice_sums_exactly_the_lines_that_name_it(specs, credits):
    lines = []
    for n, amount, kind, meter, group, quantity in specs:
        period = PRIOR if kind == "prior_period_adjustment" else PERIOD
        lines.append(_line(n, amount, kind=kind, meter=meter, group=group, quantity=quantity, period=period))
    state = None
    for line in lines:
        state = add_line(state, line, TENANT, clock=PERIOD[0])
    for i, amount in enumerate(credits):
        state = add_drawdown(state, _drawdown(i, amount), TENANT, clock=PERIOD[0])
    state, finals = close_due(state, PERIOD[1] + DEFAULT_GRACE, emitted_at=EMITTED)
    assert state is None and [f.status for f in finals] == ["final"]
    result = finals[0]
    assert result.invoice_id == invoice_id("acme-ai", "cust", PERIOD[0], "USD")
    assert all(line.invoice_id == result.invoice_id for line in lines)
    assert result.line_count == len(lines)
    assert result.lines_total == sum((line.amount for line in lines), Decimal(0))
    for kind, total in [("usage", result.usage_total), ("late_adjustment", result.late_adjustment_total),
                        ("correction", result.correction_total),
                        ("prior_period_adjustment", result.prior_period_adjustment_total)]:
        assert total == sum((line.amount for line in lines if line.kind == kind), Decimal(0))
    this_period = [line for line in lines if line.kind != "prior_period_adjustment"]
    assert sum(s.line_count for s in result.subtotals) == len(this_period)
    for subtotal in result.subtotals:
        own = [line for line in this_period if (line.meter, line.group) == (subtotal.meter, subtotal.group)]
        assert subtotal.amount == sum((line.amount for line in own), Decimal(0))
        assert subtotal.quantity == own[-1].period_quantity_to_date  # the series' line folded last
    assert [(s.meter, sorted(s.group.items())) for s in result.subtotals] == sorted(
        (s.meter, sorted(s.group.items())) for s in result.subtotals)
    assert result.credits_applied == sum(credits, Decimal(0))
    assert result.amount_due == result.total - result.credits_applied
    assert Invoice.model_validate_json(result.model_dump_json()) == result


def test_a_prior_period_line_goes_on_the_invoice_it_names_and_opens_it():
    # usage of October billed after October closed, on November's invoice (still open) or December's
    for named in (PERIOD, NEXT):
        line = _line(0, Decimal(3), kind="prior_period_adjustment", period=PRIOR, invoice_period=named)
        state = add_line(None, line, TENANT, clock=named[0])
        (only,) = state.open.values()
        assert (only.period_start, only.period_end, only.invoice_id) == (*named, line.invoice_id)
        result = end_of_input(state, emitted_at=EMITTED)[0]
        assert (result.prior_period_adjustment_total, result.subtotals, result.line_count) == (3, (), 1)


def test_a_line_naming_an_invoice_its_period_does_not_give_is_a_mismatch():
    for line in [
        _line(1, Decimal(1), invoice_period=NEXT),  # a usage line names its own period's invoice
        _line(1, Decimal(1), kind="prior_period_adjustment", period=PRIOR, invoice_period=PRIOR),
        _line(1, Decimal(1), kind="prior_period_adjustment", period=PRIOR).model_copy(update={"invoice_id": None}),
        _line(1, Decimal(1), kind="prior_period_adjustment", period=PRIOR).model_copy(update={"invoice_id": "x"}),
    ]:
        with pytest.raises(InvoiceMismatch):
            add_line(None, line, TENANT, clock=None)


def test_a_line_for_a_closed_invoice_breaks_the_invariant_loudly():
    state = add_line(None, _line(0, Decimal(1)), TENANT, clock=PERIOD[0])
    closes = PERIOD[1] + DEFAULT_GRACE
    add_line(state, _line(1, Decimal(1)), TENANT, clock=closes - timedelta(milliseconds=1))
    with pytest.raises(InvoiceClosed):
        add_line(state, _line(1, Decimal(1)), TENANT, clock=closes)


def test_close_rule_is_period_end_plus_grace_inclusive_and_only_due_invoices_close():
    state = add_line(None, _line(0, Decimal("1.5")), TENANT, clock=None)
    state = add_line(state, _line(0, Decimal(2), kind="prior_period_adjustment"), TENANT, clock=None)  # on NEXT
    closes = PERIOD[1] + DEFAULT_GRACE
    assert next_close(state) == closes
    assert close_due(state, closes - timedelta(milliseconds=1), emitted_at=EMITTED) == (state, [])
    rest, finals = close_due(state, closes, emitted_at=EMITTED)
    assert [(f.period_start, f.status, f.closes_at, f.total) for f in finals] == [
        (PERIOD[0], "final", closes, Decimal("1.5"))]
    assert [i.period_start for i in rest.open.values()] == [NEXT[0]]
    assert next_close(rest) == NEXT[1] + DEFAULT_GRACE
    assert close_due(None, closes, emitted_at=EMITTED) == (None, [])
    assert next_close(None) is None


def test_the_grace_is_the_tenants():
    tenant = TENANT.model_copy(update={"billing_period": TENANT.billing_period.model_copy(
        update={"grace": timedelta(hours=6)})})
    state = add_line(None, _line(0, Decimal(1)), tenant, clock=None)
    assert close_due(state, PERIOD[1] + DEFAULT_GRACE, emitted_at=EMITTED)[1] == []
    assert close_due(state, PERIOD[1] + timedelta(hours=6), emitted_at=EMITTED)[1][0].closes_at == (
        PERIOD[1] + timedelta(hours=6))


def test_end_of_input_previews_every_open_invoice_in_close_order():
    state = add_line(None, _line(0, Decimal(2), kind="prior_period_adjustment"), TENANT, clock=None)  # NEXT
    state = add_line(state, _line(0, Decimal(1)), TENANT, clock=None)
    previews = end_of_input(state, emitted_at=EMITTED)
    assert [(p.period_start, p.status) for p in previews] == [(PERIOD[0], "open"), (NEXT[0], "open")]
    assert end_of_input(None, emitted_at=EMITTED) == []


def test_credit_counts_on_its_periods_invoice_while_open_then_on_the_open_one():
    closes = PERIOD[1] + DEFAULT_GRACE
    state = add_line(None, _line(0, Decimal(10)), TENANT, clock=None)
    state = add_drawdown(state, _drawdown(1, Decimal(4)), TENANT, clock=closes - timedelta(milliseconds=1))
    state = add_drawdown(state, _drawdown(2, Decimal(-1), kind="adjustment"), TENANT, clock=None)
    state, (november,) = close_due(state, closes, emitted_at=EMITTED)
    assert (november.credits_applied, november.amount_due) == (Decimal(3), Decimal(7))
    # after November closed: a catch-up for one of its lines counts on December's invoice (opened by it)
    state = add_drawdown(state, _drawdown(3, Decimal(2), kind="catch_up"), TENANT, clock=closes)
    (december,) = end_of_input(state, emitted_at=EMITTED)
    assert (december.period_start, december.credits_applied, december.amount_due, december.line_count) == (
        NEXT[0], Decimal(2), Decimal(-2), 0)


def test_records_of_no_line_change_nothing():
    state = add_line(None, _line(0, Decimal(10)), TENANT, clock=None)
    for kind in ("expiry", "void"):
        assert add_drawdown(state, _drawdown(1, Decimal(5), kind=kind, line=None, period_start=None), TENANT,
                            clock=None) is state
    assert add_drawdown(None, _drawdown(1, Decimal(5), kind="expiry", line=None, period_start=None), TENANT,
                        clock=None) is None


def test_invoice_id_is_uuid5_of_its_parts_stable_and_percent_encoded():
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:meterstream:invoice") == INVOICE_NAMESPACE
    expected = uuid.uuid5(INVOICE_NAMESPACE, "v1|acme-ai|cust|2026-11-01T04:00:00.000Z|USD")
    assert invoice_id("acme-ai", "cust", PERIOD[0], "USD") == str(expected)
    assert invoice_id("a|b", "c", PERIOD[0], "USD") != invoice_id("a", "b|c", PERIOD[0], "USD")
    assert invoice_id("acme-ai", "cust", PERIOD[0], "EUR") != invoice_id("acme-ai", "cust", PERIOD[0], "USD")


def test_charges_enter_the_total():
    (current,) = add_line(None, _line(0, Decimal(10)), TENANT, clock=None).open.values()
    fee = InvoiceCharge(charge_id="fee-1", kind="flat_fee", description="platform fee", amount=Decimal("4.5"))
    result = invoice(current, status="final", emitted_at=EMITTED, charges=(fee,))
    assert (result.charges_total, result.total, result.amount_due) == (Decimal("4.5"), Decimal("14.5"),
                                                                       Decimal("14.5"))


def test_the_model_refuses_sums_that_do_not_hold():
    (current,) = add_line(None, _line(0, Decimal(10)), TENANT, clock=None).open.values()
    good = invoice(current, status="final", emitted_at=EMITTED).model_dump(mode="json")
    for field, value in [("amount_due", "9"), ("lines_total", "11"), ("total", "11"), ("usage_total", "9"),
                         ("charges_total", "1"), ("closes_at", "2026-11-01T00:00:00.000Z")]:
        with pytest.raises(ValidationError):
            Invoice.model_validate({**good, field: value})
    subtotal = {**good["subtotals"][0], "amount": "11"}
    with pytest.raises(ValidationError):
        Invoice.model_validate({**good, "subtotals": [subtotal]})
