"""Fixed instants and record factories shared by the credit tests (imported as a sibling module)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.credits import CreditGrant, CreditVoid, SpendCap
from schemas.invoice_line_item import InvoiceLineItem
from udfs.credits import (
    DRAWN_KINDS,
    CreditPolicy,
    apply_grant_event,
    apply_line_item,
    apply_spend_cap,
    on_time,
)
from udfs.line_items import line_item_id

TENANT = "acme-ai"
CUSTOMER = "cust-42"
HOUR = timedelta(hours=1)
# November 2026 in New York: [11-01T04:00Z, 12-01T05:00Z); December starts where November ends.
NOV = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 12, 1, 5, tzinfo=UTC))
DEC = (datetime(2026, 12, 1, 5, tzinfo=UTC), datetime(2027, 1, 1, 5, tzinfo=UTC))
T0 = NOV[0]
EMITTED = datetime(2026, 11, 24, 12, tzinfo=UTC)
NO_ALERTS = CreditPolicy()


def D(text: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(text))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def grant(
    grant_id: str,
    amount: str | int,
    *,
    priority: int = 50,
    effective_at: datetime = T0,
    expires_at: datetime | None = None,
    applies_to: tuple[str, ...] | None = None,
    currency: str = "USD",
    category: str = "paid",
    customer: str = CUSTOMER,
) -> CreditGrant:
    return CreditGrant(
        type="grant",
        grant_id=grant_id,
        tenant_id=TENANT,
        customer_id=customer,
        amount=str(amount),
        currency=currency,
        priority=priority,
        effective_at=effective_at,
        expires_at=expires_at,
        applies_to=applies_to,
        category=category,
    )


def void(grant_id: str, voided_at: datetime) -> CreditVoid:
    return CreditVoid(type="void", grant_id=grant_id, tenant_id=TENANT, customer_id=CUSTOMER, voided_at=voided_at)


def cap(amount: str | int, effective_at: datetime = T0) -> SpendCap:
    return SpendCap(
        tenant_id=TENANT, customer_id=CUSTOMER, amount=str(amount), currency="USD", effective_at=effective_at
    )


def line(
    hour: int,
    amount: str | int,
    *,
    meter: str = "input_tokens",
    period: tuple[datetime, datetime] = NOV,
    currency: str = "USD",
    hours: int = 1,
) -> InvoiceLineItem:
    """The line item of the window [period_start + hour h, + hours h) of `meter`."""
    start = period[0] + hour * HOUR
    return InvoiceLineItem(
        line_item_id=line_item_id(TENANT, CUSTOMER, meter, {}, start),
        tenant_id=TENANT,
        customer_id=CUSTOMER,
        meter=meter,
        window_start=start,
        window_end=start + hours * HOUR,
        period_start=period[0],
        period_end=period[1],
        quantity=Decimal(0),
        period_quantity_to_date=Decimal(0),
        amount=Decimal(str(amount)),
        period_amount_to_date=Decimal(0),
        currency=currency,
        rounding_adjustment=Decimal(str(amount)),
        event_count=1,
        emitted_at=start + hours * HOUR,
        price_ref="test",
    )


def adjustment(
    usage: InvoiceLineItem,
    amount: str | int,
    *,
    decided_after: datetime,
    kind: str = "correction",
    line_id: str | None = None,
) -> InvoiceLineItem:
    """A late adjustment or correction of `usage`'s window, decided after watermark `decided_after`. Its id is the
    job's unless given: a test can pick ids that sort before or after the usage line's."""
    own_id = line_id or line_item_id(
        TENANT, CUSTOMER, usage.meter, usage.group, usage.window_start, kind=kind, watermark=decided_after)
    return usage.model_copy(update={
        "line_item_id": own_id, "kind": kind, "adjusts_line_item_id": usage.line_item_id,
        "decided_after": decided_after, "amount": Decimal(str(amount)), "rounding_adjustment": Decimal(str(amount)),
    })


@dataclass(frozen=True)
class Tick:
    """`on_time(now)`, as the adapter's event-time timer would call it."""

    now: datetime


@dataclass
class Run:
    state: object
    drawdowns: list
    alerts: list


def step(state, event, policy: CreditPolicy = NO_ALERTS):
    if isinstance(event, InvoiceLineItem):
        return apply_line_item(state, event, policy, emitted_at=EMITTED)
    if isinstance(event, CreditGrant | CreditVoid):
        return apply_grant_event(state, event, policy, emitted_at=EMITTED)
    if isinstance(event, SpendCap):
        return apply_spend_cap(state, event, policy, emitted_at=EMITTED)
    if isinstance(event, Tick):
        return on_time(state, event.now, policy, emitted_at=EMITTED)
    raise TypeError(event)


def run(events, policy: CreditPolicy = NO_ALERTS, state=None) -> Run:
    drawdowns, alerts = [], []
    for event in events:
        state, new_drawdowns, new_alerts = step(state, event, policy)
        drawdowns += new_drawdowns
        alerts += new_alerts
    return Run(state, drawdowns, alerts)


def balance_of(state, grant_id: str) -> Decimal | None:
    if state is None:
        return None
    return next((g.balance for g in state.grants if g.grant_id == grant_id), None)


def customer_balance(state, currency: str = "USD") -> Decimal:
    return Decimal(0) if state is None else state.balance(currency)


def drawn_from(drawdowns, grant_id: str) -> Decimal:
    return sum((d.amount for d in drawdowns if d.grant_id == grant_id and d.kind in DRAWN_KINDS), Decimal(0))


def uncovered_total(drawdowns) -> Decimal:
    return sum((d.uncovered_amount for d in drawdowns), Decimal(0))
