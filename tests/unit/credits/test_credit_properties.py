"""Properties on generated histories: the accounting identities, and order independence of covered usage."""

from __future__ import annotations

from decimal import Decimal

from credit_factories import CUSTOMER, NO_ALERTS, TENANT, Tick, at, customer_balance, grant, line, run, void
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.credits import CreditGrant
from schemas.invoice_line_item import InvoiceLineItem
from udfs.credits import CreditPolicy, ledger_identity

POLICY = CreditPolicy(low_balance_thresholds=["5"], low_balance_percent=["20"], spend_cap_default="30")
cents = st.integers(1, 5000).map(lambda c: Decimal(c) / 100)
signed_cents = st.integers(-2000, 5000).map(lambda c: Decimal(c) / 100)
GRANT_IDS = [f"g{i}" for i in range(6)]


@st.composite
def grants(draw):
    effective = draw(st.integers(0, 30))
    expires = draw(st.none() | st.integers(effective + 1, 60))
    return grant(
        draw(st.sampled_from(GRANT_IDS)),
        draw(cents),
        priority=draw(st.integers(0, 3)),
        effective_at=at(effective),
        expires_at=None if expires is None else at(expires),
        applies_to=draw(st.none() | st.sampled_from([("input_tokens",), ("output_tokens",)])),
        category=draw(st.sampled_from(["paid", "promotional"])),
    )


events = st.one_of(
    grants(),
    st.builds(lambda g, h: void(g, at(h)), st.sampled_from(GRANT_IDS), st.integers(0, 60)),
    st.builds(
        lambda h, amount, meter: line(h, amount, meter=meter),
        st.integers(0, 59),
        signed_cents,
        st.sampled_from(["input_tokens", "output_tokens"]),
    ),
    st.integers(0, 70).map(lambda h: Tick(at(h))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=40))
def test_accounting_identities_hold_on_any_history(history):
    result = run(history, POLICY)
    applied: dict[str, InvoiceLineItem] = {}
    for event in history:
        if isinstance(event, InvoiceLineItem):
            applied.setdefault(event.line_item_id, event)
    checks = ledger_identity(
        [e for e in history if isinstance(e, CreditGrant)], result.drawdowns, list(applied.values())
    )
    check = checks.get((TENANT, CUSTOMER, "USD"))
    if check is None:
        assert result.drawdowns == [] and customer_balance(result.state) == 0
        return
    # sum(grants) - drawn - expired - voided = balance; sum(lines) = drawn + uncovered
    assert check.balance == customer_balance(result.state)
    assert check.usage_identity_holds
    assert all(g.balance >= 0 for g in (result.state.grants if result.state else ()))
    assert all(d.customer_balance_after >= 0 for d in result.drawdowns)
    assert all(d.grant_balance_after is None or d.grant_balance_after >= 0 for d in result.drawdowns)
    # every line item is accounted for by at least one usage record
    usage_lines = {d.line_item_id for d in result.drawdowns if d.kind == "usage"}
    assert usage_lines == set(applied)
    ids = [d.drawdown_id for d in result.drawdowns]
    assert len(ids) == len(set(ids))
    alert_ids = [a.alert_id for a in result.alerts]
    assert len(alert_ids) == len(set(alert_ids))


@st.composite
def covered_histories(draw):
    """Grants that each cover every line (all meters, whole range, no expiry) and positive usage lines."""
    n_grants = draw(st.integers(1, 4))
    grant_list = [
        grant(f"g{i}", draw(cents), priority=draw(st.integers(0, 3)), category="paid") for i in range(n_grants)
    ]
    hours = draw(st.lists(st.integers(0, 50), min_size=1, max_size=8, unique=True))
    lines = [line(h, draw(cents), meter=draw(st.sampled_from(["input_tokens", "output_tokens"]))) for h in hours]
    in_order = grant_list + lines
    shuffled = draw(st.permutations(in_order))
    return in_order, shuffled


@settings(max_examples=300, deadline=None)
@given(covered_histories())
def test_arrival_order_does_not_change_balances_of_covered_usage(histories):
    in_order, shuffled = histories
    expected, actual = run(in_order, NO_ALERTS), run(shuffled, NO_ALERTS)
    assert customer_balance(actual.state) == customer_balance(expected.state)
    total = lambda r, kinds: sum((d.amount for d in r.drawdowns if d.kind in kinds), Decimal(0))  # noqa: E731
    assert total(actual, {"usage", "catch_up"}) == total(expected, {"usage", "catch_up"})
    assert sum(d.uncovered_amount for d in actual.drawdowns) == sum(d.uncovered_amount for d in expected.drawdowns)
    # per line item, the uncovered amount to invoice is the same too when credit covers everything or nothing
    granted = sum(g.amount for g in in_order if isinstance(g, CreditGrant))
    used = sum(x.amount for x in in_order if isinstance(x, InvoiceLineItem))
    if granted >= used:
        assert all(d.uncovered_amount == 0 for d in expected.drawdowns)
        per_line = {}
        for d in actual.drawdowns:
            per_line[d.line_item_id] = per_line.get(d.line_item_id, Decimal(0)) + d.uncovered_amount
        assert set(per_line.values()) == {Decimal(0)}


@settings(max_examples=100, deadline=None)
@given(covered_histories())
def test_a_single_grant_ends_with_the_same_balance_in_any_order(histories):
    in_order, shuffled = histories
    only_first = [e for e in in_order if not isinstance(e, CreditGrant) or e.grant_id == "g0"]
    reordered = [e for e in shuffled if not isinstance(e, CreditGrant) or e.grant_id == "g0"]
    expected, actual = run(only_first), run(reordered)
    assert [(g.grant_id, g.balance) for g in actual.state.grants] == [
        (g.grant_id, g.balance) for g in expected.state.grants
    ]
