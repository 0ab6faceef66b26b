"""Properties on generated histories: the accounting identities, and order independence of covered usage."""

from __future__ import annotations

from decimal import Decimal

from credit_factories import CUSTOMER, NO_ALERTS, TENANT, Tick, at, customer_balance, grant, line, run, void
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.credits import CreditGrant
from schemas.invoice_line_item import InvoiceLineItem
from udfs.credits import DRAWN_KINDS, CreditPolicy, ledger_identity

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
    assert total(actual, DRAWN_KINDS) == total(expected, DRAWN_KINDS)
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


def interleavings(first: list, second: list):
    """Every merge of the two sequences that keeps the order within each."""
    import itertools

    size = len(first) + len(second)
    for slots in itertools.combinations(range(size), len(first)):
        a, b = iter(first), iter(second)
        yield [next(a) if index in slots else next(b) for index in range(size)]


@st.composite
def usage_with_returns(draw):
    """Grant events (grants of any priority, effective instant, expiry and meter list; voids at any instant) and the
    lines of one period in event-time order, negative ones included: a line may give back up to what its meter's
    period total holds (period-to-date rating never goes below zero)."""
    grant_events = []
    for index in range(draw(st.integers(1, 3))):
        effective = draw(st.integers(0, 10))
        expires = draw(st.none() | st.integers(effective + 1, 45))
        grant_events.append(grant(
            f"g{index}", draw(cents), priority=draw(st.integers(0, 3)), effective_at=at(effective),
            expires_at=None if expires is None else at(expires),
            applies_to=draw(st.none() | st.sampled_from([("input_tokens",), ("output_tokens",)])), category="paid",
        ))
    for grant_id in draw(st.lists(st.sampled_from([g.grant_id for g in grant_events]), max_size=2, unique=True)):
        grant_events.append(void(grant_id, at(draw(st.integers(0, 45)))))
    lines, totals = [], {"input_tokens": Decimal(0), "output_tokens": Decimal(0)}
    for hour in sorted(draw(st.lists(st.integers(0, 40), min_size=1, max_size=5, unique=True))):
        meter = draw(st.sampled_from(sorted(totals)))
        cents_ = draw(st.integers(-int(totals[meter] * 100), 5000).filter(lambda c: c != 0))
        amount = Decimal(cents_) / 100
        totals[meter] += amount
        lines.append(line(hour, amount, meter=meter))
    return grant_events, lines, draw(st.randoms(use_true_random=False))


def money_of(result) -> dict[str, Decimal]:
    def total(kinds) -> Decimal:
        return sum((d.amount for d in result.drawdowns if d.kind in kinds), Decimal(0))

    return {
        "balance": customer_balance(result.state),
        "drawn": total(DRAWN_KINDS),
        "expired": total({"expiry"}),
        "voided": total({"void"}),
        "uncovered": sum((d.uncovered_amount for d in result.drawdowns), Decimal(0)),
    }


def money_in_detail(result) -> dict:
    """Per grant: drawn, expired, voided, balance; per line: uncovered; and the customer's totals."""
    detail: dict = {"customer": money_of(result)}
    for d in result.drawdowns:
        if d.grant_id is not None:
            column = "drawn" if d.kind in DRAWN_KINDS else d.kind
            key = ("grant", d.grant_id, column)
            detail[key] = detail.get(key, Decimal(0)) + d.amount
        if d.line_item_id is not None:
            key = ("uncovered", d.line_item_id)
            detail[key] = detail.get(key, Decimal(0)) + d.uncovered_amount
    for g in result.state.grants if result.state else ():
        detail[("grant", g.grant_id, "balance")] = g.balance
    return {key: value for key, value in detail.items() if not (isinstance(value, Decimal) and value == 0)}


@settings(max_examples=80, deadline=None)
@given(usage_with_returns())
def test_every_interleaving_of_grant_events_and_lines_gives_the_same_money(history):
    """Issue 15.2. The rule: a customer's money is a function of event time, not of arrival. Whatever order grants,
    voids and line items (negative ones included) arrive in, each grant's drawn, expired and voided amounts and
    balance, each line's uncovered amount and the customer's totals are those of the event-time order (grant events
    known first, lines by window, deadlines between them). Checked over every interleaving of the grant events into
    the lines (the job delivers lines in event-time order), and one random order of everything."""
    grant_events, lines, rng = history
    end = Tick(at(70))
    expected = money_in_detail(run([*grant_events, *lines, end]))
    for order in interleavings(grant_events, lines):
        assert money_in_detail(run([*order, end])) == expected, order
    shuffled = [*grant_events, *lines]
    rng.shuffle(shuffled)
    assert money_in_detail(run([*shuffled, end])) == expected, shuffled


def test_credit_given_back_by_a_negative_line_pays_uncovered_usage_as_a_late_grant_would():
    """Issue 15.2, as reported: one grant of 3000 for every meter; storage +1000 and seats +5000 in window 0,
    storage -800 in window 1. Grant first and grant last both end at balance 0 and 2200 uncovered."""
    grant_3000 = grant("g", "3000")
    lines = sorted(  # in event-time order: (window end, line_item_id), as the job applies them
        [line(0, "1000", meter="storage_gb"), line(0, "5000", meter="seats"), line(1, "-800", meter="storage_gb")],
        key=lambda item: (item.window_end, item.line_item_id),
    )
    for order in ([grant_3000, *lines], [*lines, grant_3000]):
        result = run(order)
        assert money_of(result)["balance"] == Decimal("0"), order
        assert money_of(result)["uncovered"] == Decimal("2200"), order
        assert money_of(result)["drawn"] == Decimal("3000"), order
    ids = [d.drawdown_id for d in run([grant_3000, *lines]).drawdowns]
    assert len(ids) == len(set(ids))


def test_credit_given_back_pays_the_oldest_uncovered_usage_it_covers_at_once():
    storage, seats, give_back = line(0, "1000", meter="storage_gb"), line(1, "5000", meter="seats"), line(
        2, "-800", meter="storage_gb")
    result = run([grant("g", "3000"), storage, seats, give_back])
    assert [(d.kind, d.line_item_id, d.amount, d.uncovered_amount, d.cause) for d in result.drawdowns[2:]] == [
        ("usage", give_back.line_item_id, Decimal("-800"), Decimal("0"), None),
        ("catch_up", seats.line_item_id, Decimal("800"), Decimal("-800"), f"line:{give_back.line_item_id}"),
    ]
    assert money_of(result)["balance"] == 0 and money_of(result)["uncovered"] == Decimal("2200")


@settings(max_examples=80, deadline=None)
@given(usage_with_returns())
def test_the_last_record_written_reports_the_balance_now_whatever_order_the_lines_came_in(history):
    """Lines out of event-time order make the ledger recompute: the records of such a step report the balances once
    it is done (a replayed line's own records too, not the balance at its place in event time), so a consumer that
    reads a customer's records in the order written (the sink keys them by customer) ends on its balance now."""
    grant_events, lines, rng = history
    shuffled = list(lines)
    rng.shuffle(shuffled)
    result = run([*grant_events, *shuffled, Tick(at(70))])
    customers, grants = {}, {}
    for record in result.drawdowns:
        customers[record.currency] = record.customer_balance_after
        if record.grant_id is not None:
            grants[record.grant_id] = record.grant_balance_after
    state = result.state
    for currency, reported in customers.items():
        assert reported == (state.balance(currency) if state else 0), currency
    held = {g.grant_id: g.balance for g in state.grants} if state else {}
    for grant_id, reported in grants.items():
        assert reported == held.get(grant_id, 0), grant_id
