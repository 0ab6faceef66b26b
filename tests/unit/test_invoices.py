"""`udfs.invoices` and `schemas.invoice`: exact sums for any line sequence, the close rule, ids, mismatches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.credits import CreditDrawdown
from schemas.invoice import Invoice, InvoiceCharge
from schemas.invoice_line_item import InvoiceLineItem
from udfs.invoices import (
    DEFAULT_GRACE,
    INVOICE_NAMESPACE,
    InvoiceMismatch,
    add_line,
    apply_drawdown,
    close_due,
    invoice,
    invoice_id,
    on_clock,
)
from udfs.line_items import line_item_id

PERIOD = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 12, 1, 5, tzinfo=UTC))
PRIOR = (datetime(2026, 10, 1, 4, tzinfo=UTC), PERIOD[0])
EMITTED = datetime(2026, 12, 1, 6, 0, 1, tzinfo=UTC)
KINDS = ("usage", "late_adjustment", "correction", "prior_period_adjustment")


def _line(n: int, amount: Decimal, *, kind: str = "usage", meter: str = "tokens", group: dict | None = None,
          quantity: Decimal = Decimal(1), period=PERIOD, currency: str = "USD", customer: str = "cust",
          **extra) -> dict:
    window_start = period[0] + timedelta(minutes=n)
    line = InvoiceLineItem(
        line_item_id=line_item_id("acme-ai", customer, meter, group or {}, window_start),
        tenant_id="acme-ai", customer_id=customer, meter=meter, group=group or {},
        window_start=window_start, window_end=window_start + timedelta(minutes=1),
        period_start=period[0], period_end=period[1], quantity=quantity, period_quantity_to_date=quantity,
        amount=amount, period_amount_to_date=amount, currency=currency, tiers=(), rounding_adjustment=amount,
        event_count=1, emitted_at=window_start, price_ref="p",
    ).model_dump()
    return {**line, "kind": kind, **extra}


def _drawdown(n: int, line: dict, amount: Decimal, kind: str = "usage") -> CreditDrawdown:
    return CreditDrawdown(
        drawdown_id=f"d{n}", tenant_id="acme-ai", customer_id=line["customer_id"], kind=kind,
        line_item_id=line["line_item_id"], grant_id="g", meter=line["meter"], period_start=PERIOD[0],
        currency=line["currency"], amount=amount, grant_balance_after=Decimal(0), customer_balance_after=Decimal(0),
        uncovered_amount=Decimal(0), event_time=PERIOD[0], emitted_at=PERIOD[0],
    )


_amounts = st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
_lines = st.lists(
    st.tuples(
        st.integers(0, 15),  # window (several versions of one id = replays)
        _amounts,
        st.sampled_from(KINDS),
        st.sampled_from(["tokens", "seats"]),
        st.sampled_from([None, {"model": "a"}, {"model": "b"}]),
        st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=30,
)


def _build(specs):
    lines = []
    for n, amount, kind, meter, group, quantity in specs:
        period = PRIOR if kind == "prior_period_adjustment" else PERIOD
        lines.append(_line(n, amount, kind=kind, meter=meter, group=group, quantity=quantity, period=period))
    return lines


@settings(max_examples=200, deadline=None)
@given(_lines, st.lists(st.tuples(st.integers(0, 40), _amounts), max_size=10))
def test_invoice_sums_equal_its_lines_for_any_line_sequence(specs, credits):
    lines = _build(specs)
    state = None
    for line in lines:
        state = add_line(state, line, period=PERIOD)
    latest = {line["line_item_id"]: line for line in lines}  # upsert: the latest version of each id counts
    drawdowns = [_drawdown(i, lines[i % len(lines)], amount) for i, amount in credits]
    for drawdown in drawdowns:
        state = apply_drawdown(state, drawdown)
    result = invoice(state, status="final", emitted_at=EMITTED)

    assert result.line_count == len(latest)
    assert result.lines_total == sum((line["amount"] for line in latest.values()), Decimal(0))
    for kind, total in [("usage", result.usage_total), ("late_adjustment", result.late_adjustment_total),
                        ("correction", result.correction_total),
                        ("prior_period_adjustment", result.prior_period_adjustment_total)]:
        assert total == sum((line["amount"] for line in latest.values() if line["kind"] == kind), Decimal(0))
    this_period = [line for line in latest.values() if line["kind"] != "prior_period_adjustment"]
    assert sum(s.line_count for s in result.subtotals) == len(this_period)
    for subtotal in result.subtotals:
        own = [line for line in this_period if (line["meter"], line["group"]) == (subtotal.meter, subtotal.group)]
        assert subtotal.amount == sum((line["amount"] for line in own), Decimal(0))
    credit_by_id = {d.drawdown_id: d.amount for d in drawdowns}  # upsert by drawdown_id
    assert result.credits_applied == sum(credit_by_id.values(), Decimal(0))
    assert result.amount_due == result.total - result.credits_applied
    assert Invoice.model_validate_json(result.model_dump_json()) == result


def test_series_quantity_is_its_latest_lines_period_quantity():
    state = None
    for n, quantity in [(0, "5"), (1, "9"), (0, "12")]:  # window 0 replayed last (a correction of it, say)
        state = add_line(state, _line(n, Decimal(1), quantity=Decimal(quantity)))
    assert invoice(state, emitted_at=EMITTED).subtotals[0].quantity == Decimal(12)


def test_close_rule_is_period_end_plus_grace_inclusive():
    state = add_line(None, _line(0, Decimal("1.5")))
    end_plus_grace = PERIOD[1] + DEFAULT_GRACE
    assert not close_due(state, end_plus_grace - timedelta(milliseconds=1))
    assert on_clock(state, end_plus_grace - timedelta(milliseconds=1), emitted_at=EMITTED) == (state, None)
    closed_state, final = on_clock(state, end_plus_grace, emitted_at=EMITTED)
    assert closed_state is None and final.status == "final" and final.closes_at == end_plus_grace
    grace = timedelta(hours=6)
    assert on_clock(state, end_plus_grace, emitted_at=EMITTED, grace=grace)[1] is None
    assert on_clock(state, PERIOD[1] + grace, emitted_at=EMITTED, grace=grace)[1].closes_at == PERIOD[1] + grace
    assert on_clock(None, end_plus_grace, emitted_at=EMITTED) == (None, None)
    with pytest.raises(ValueError):
        close_due(state, end_plus_grace, timedelta(hours=-1))


def test_kind_defaults_to_usage_and_the_model_is_accepted_as_it_is():
    line = _line(0, Decimal(2))
    del line["kind"]
    state = add_line(None, InvoiceLineItem.model_validate(line))
    state = add_line(state, line)  # the dict form, same id: one line
    assert invoice(state, emitted_at=EMITTED).usage_total == Decimal(2)
    assert invoice(state, emitted_at=EMITTED).line_count == 1


def test_invoice_id_is_uuid5_of_its_parts_stable_and_percent_encoded():
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:meterstream:invoice") == INVOICE_NAMESPACE
    expected = uuid.uuid5(INVOICE_NAMESPACE, "v1|acme-ai|cust|2026-11-01T04:00:00.000Z|USD")
    assert invoice_id("acme-ai", "cust", PERIOD[0], "USD") == str(expected)
    assert invoice_id("a|b", "c", PERIOD[0], "USD") != invoice_id("a", "b|c", PERIOD[0], "USD")
    assert invoice_id("acme-ai", "cust", PERIOD[0], "EUR") != invoice_id("acme-ai", "cust", PERIOD[0], "USD")
    state = add_line(None, _line(0, Decimal(1)))
    assert invoice(state, emitted_at=EMITTED).invoice_id == str(expected)


def test_a_line_carrying_another_invoice_id_or_of_another_owner_or_period_is_a_mismatch():
    state = add_line(None, _line(0, Decimal(1)))
    own_id = invoice_id("acme-ai", "cust", PERIOD[0], "USD")
    assert add_line(state, _line(1, Decimal(1), invoice_id=own_id)).lines
    for line in [
        _line(1, Decimal(1), invoice_id="another"),
        _line(1, Decimal(1), currency="EUR"),
        _line(1, Decimal(1), customer="other"),
        _line(1, Decimal(1), period=PRIOR),  # a usage line of a closed period: must come as prior_period
        _line(1, Decimal(1), kind="prior_period_adjustment"),  # not of an earlier period
    ]:
        with pytest.raises(InvoiceMismatch):
            add_line(state, line)


def test_a_prior_period_line_opens_an_invoice_only_with_the_open_period_given():
    line = _line(0, Decimal(3), kind="prior_period_adjustment", period=PRIOR)
    with pytest.raises(ValueError):
        add_line(None, line)
    state = add_line(None, line, period=PERIOD)
    result = invoice(state, emitted_at=EMITTED)
    assert (result.period_start, result.prior_period_adjustment_total, result.subtotals) == (PERIOD[0], 3, ())


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        add_line(None, _line(0, Decimal(1), kind="bonus"))


def test_drawdowns_without_a_line_change_nothing_and_credits_for_unknown_lines_refuse_the_close():
    line = _line(0, Decimal(10))
    state = add_line(None, line)
    expiry = _drawdown(1, line, Decimal(5), kind="expiry").model_copy(update={"line_item_id": None})
    assert apply_drawdown(state, expiry) is state
    stray = _drawdown(2, _line(5, Decimal(1)), Decimal(1))
    with pytest.raises(InvoiceMismatch):
        on_clock(apply_drawdown(state, stray), PERIOD[1] + DEFAULT_GRACE, emitted_at=EMITTED)
    other_customer = _drawdown(3, _line(0, Decimal(1), customer="other"), Decimal(1))
    with pytest.raises(InvoiceMismatch):
        apply_drawdown(state, other_customer)


def test_charges_enter_the_total():
    state = add_line(None, _line(0, Decimal(10)))
    fee = InvoiceCharge(charge_id="fee-1", kind="flat_fee", description="platform fee", amount=Decimal("4.5"))
    result = invoice(state, emitted_at=EMITTED, charges=(fee,))
    assert (result.charges_total, result.total, result.amount_due) == (Decimal("4.5"), Decimal("14.5"),
                                                                       Decimal("14.5"))


def test_the_model_refuses_sums_that_do_not_hold():
    good = invoice(add_line(None, _line(0, Decimal(10))), emitted_at=EMITTED).model_dump(mode="json")
    for field, value in [("amount_due", "9"), ("lines_total", "11"), ("total", "11"), ("usage_total", "9"),
                         ("charges_total", "1"), ("closes_at", "2026-11-01T00:00:00.000Z")]:
        with pytest.raises(ValidationError):
            Invoice.model_validate({**good, field: value})
    subtotal = {**good["subtotals"][0], "amount": "11"}
    with pytest.raises(ValidationError):
        Invoice.model_validate({**good, "subtotals": [subtotal]})


def test_the_models_own_kind_is_read_from_a_model_and_a_dict():
    usage = _line(0, Decimal(2))
    late = {**_line(1, Decimal("0.5")), "kind": "late_adjustment", "adjusts_line_item_id": usage["line_item_id"]}
    state = add_line(None, InvoiceLineItem.model_validate(usage))
    state = add_line(state, InvoiceLineItem.model_validate(late))
    state = add_line(state, {**_line(2, Decimal(1)), "kind": "late_adjustment"})
    result = invoice(state, emitted_at=EMITTED)
    assert (result.usage_total, result.late_adjustment_total) == (Decimal(2), Decimal("1.5"))
    assert result.subtotals[0].late_adjustment_amount == Decimal("1.5")
