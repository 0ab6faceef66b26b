"""Invoices: line items of one (tenant, customer, period, currency) folded into an open invoice, closed into an
`invoices` record (`schemas.invoice.Invoice`) when the event-time clock reaches period end + grace. The
specification; no job runs it yet (issue 17: the invoice stage is wired later).

Pure steps on an immutable `OpenInvoice` (Bytewax style, `None` = nothing open):

- `add_line(state | None, line, *, period=None) -> OpenInvoice`: a line item
  (`schemas.invoice_line_item.InvoiceLineItem` or its dict). Lines are upserts by `line_item_id` (a replayed or
  restored window writes the same id again): the latest version of each id counts, once. The line's `kind` (`usage`
  | `late_adjustment` | `correction` | `prior_period_adjustment`) is read with a default of `usage` (the model knows
  `usage` and `late_adjustment` so far: the other kinds come as dicts until it gains them, and a dict's `kind` and
  `invoice_id` are read before the rest is validated), and so is an `invoice_id` when the line carries one (it must
  be this invoice's). A `prior_period_adjustment` is usage of a closed period billed on the customer's next open
  invoice: it belongs to the invoice it is added to whatever its own `period_start`, and when no invoice is open the
  caller names the open period (`period=`). Any other line must be of the invoice's period. A line of another
  tenant, customer or currency is an `InvoiceMismatch`.
- `apply_drawdown(state, drawdown) -> OpenInvoice`: a credit drawdown (`schemas.credits.CreditDrawdown`) of one of
  the invoice's lines; idempotent by `drawdown_id`. `usage`, `catch_up` and `adjustment` records count (their sum per
  line is what credit paid of it, `udfs/credits/ledger.py`); `expiry` and `void` records belong to no line and
  change nothing.
- `closes_at(period_end, grace)` and `close_due(state, clock, grace)`: the close rule. A period closes once the
  event-time clock (the watermark of the stage that folds the lines) reaches `period_end + grace`, grace 1 h by
  default (the tenant's catalog setting comes later). Inclusive, as Flink fires a timer at its timestamp: every
  line of the period has a window that ended by `period_end`, and the grace is how long the stream waits for late
  lines of it; a line after the close is billed as a `prior_period_adjustment` on the next invoice, never by
  changing a final invoice.
- `on_clock(state, clock, *, grace, emitted_at) -> (state | None, Invoice | None)`: closes when due (state None,
  a `final` invoice), else nothing. `invoice(state, status=..., emitted_at=...)` renders any state (`open` for a
  preview).

Sums are exact (Decimal, no rounding: each line's amount is already rounded money, `udfs.line_items`): the invoice's
totals equal the sums of its lines' amounts. A series' `quantity` is the `period_quantity_to_date` of its line folded
last (one keyed operator writes a series' lines in order, each carrying the period quantity after it). A close with a
drawdown for a line the invoice does not hold raises `InvoiceMismatch`: the lines must reach this step before their
drawdowns, which are computed from them.

State size: per line 1 entry (kind, series, amount, quantity; ~100 B) and per drawdown 1 entry (~60 B) until the
close, then nothing. The state holds plain dicts treated as immutable (copied on write, never mutated in place).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from schemas.credits import CreditDrawdown
from schemas.invoice import LINE_KINDS, Invoice, InvoiceCharge, InvoiceSubtotal
from schemas.invoice_line_item import InvoiceLineItem
from schemas.wire import datetime_to_wire
from udfs.aggregations import Group, normalize_group
from udfs.money import exact

# Fixed forever: uuid5(NAMESPACE_URL, "urn:meterstream:invoice"). Changing it changes every id.
INVOICE_NAMESPACE = uuid.UUID("abbc75e6-0c62-540b-ab54-e0524486a1b6")
INVOICE_ID_VERSION = "v1"
DEFAULT_GRACE = timedelta(hours=1)
PRIOR_PERIOD = "prior_period_adjustment"
_THIS_PERIOD_KINDS = ("usage", "late_adjustment", "correction")
_CREDIT_KINDS = ("usage", "catch_up", "adjustment")
ZERO = Decimal(0)


class InvoiceMismatch(ValueError):
    """A line or drawdown that does not belong to this invoice; the state was not changed."""


def invoice_id(tenant_id: str, customer_id: str, period_start: datetime, currency: str) -> str:
    """uuid5 over `v1|tenant|customer|period_start|currency` (period_start as RFC 3339 ms UTC), each part
    percent-encoded so a `|` inside an id cannot make two keys spell the same name."""
    parts = [INVOICE_ID_VERSION, *(quote(p, safe="") for p in (tenant_id, customer_id)), datetime_to_wire(period_start)]
    return str(uuid.uuid5(INVOICE_NAMESPACE, "|".join([*parts, quote(currency, safe="")])))


@dataclass(frozen=True, slots=True)
class LineEntry:
    kind: str
    meter: str
    group: Group
    amount: Decimal
    period_quantity_to_date: Decimal
    sequence: int  # fold order of its latest version: the series' quantity is that of its latest line


@dataclass(frozen=True)
class OpenInvoice:
    tenant_id: str
    customer_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    lines: Mapping[str, LineEntry] = field(default_factory=dict)
    drawdowns: Mapping[str, tuple[str, Decimal]] = field(default_factory=dict)  # drawdown_id -> (line, amount)
    sequence: int = 0

    @property
    def invoice_id(self) -> str:
        return invoice_id(self.tenant_id, self.customer_id, self.period_start, self.currency)


def closes_at(period_end: datetime, grace: timedelta = DEFAULT_GRACE) -> datetime:
    if grace < timedelta(0):
        raise ValueError(f"grace must not be negative, got {grace}")
    return period_end + grace


def close_due(state: OpenInvoice, clock: datetime, grace: timedelta = DEFAULT_GRACE) -> bool:
    return clock >= closes_at(state.period_end, grace)


def _line_fields(line: InvoiceLineItem | Mapping[str, Any]) -> tuple[InvoiceLineItem, str, str | None]:
    """The line as the model knows it today, its kind (default usage) and its invoice_id, if it carries them."""
    if isinstance(line, Mapping):
        kind, carried_id = line.get("kind", "usage"), line.get("invoice_id")
        model = InvoiceLineItem.model_validate({k: v for k, v in line.items() if k not in ("kind", "invoice_id")})
    else:
        model = line
        kind, carried_id = getattr(line, "kind", "usage"), getattr(line, "invoice_id", None)
    if kind not in LINE_KINDS:
        raise ValueError(f"unknown line kind {kind!r}")
    return model, kind, carried_id


def add_line(
    state: OpenInvoice | None,
    line: InvoiceLineItem | Mapping[str, Any],
    *,
    period: tuple[datetime, datetime] | None = None,
) -> OpenInvoice:
    """The open invoice with this line (its latest version, if the id was seen). See the module docstring."""
    model, kind, carried_id = _line_fields(line)
    if state is None:
        if kind == PRIOR_PERIOD:
            if period is None:
                raise ValueError("a prior_period_adjustment opens an invoice only with the open period given")
            start, end = period
        else:
            start, end = model.period_start, model.period_end
        state = OpenInvoice(model.tenant_id, model.customer_id, model.currency, start, end)
    _check_belongs(state, model, kind, carried_id)
    entry = LineEntry(
        kind, model.meter, normalize_group(model.group), model.amount, model.period_quantity_to_date, state.sequence
    )
    return replace(state, lines={**state.lines, model.line_item_id: entry}, sequence=state.sequence + 1)


def _check_belongs(state: OpenInvoice, line: InvoiceLineItem, kind: str, carried_id: str | None) -> None:
    owner = (line.tenant_id, line.customer_id, line.currency)
    if owner != (state.tenant_id, state.customer_id, state.currency):
        raise InvoiceMismatch(f"line {line.line_item_id} is for {owner}, the invoice for "
                              f"{(state.tenant_id, state.customer_id, state.currency)}")
    if carried_id is not None and carried_id != state.invoice_id:
        raise InvoiceMismatch(f"line {line.line_item_id} names invoice {carried_id}, not {state.invoice_id}")
    if kind == PRIOR_PERIOD:
        if line.period_start >= state.period_start:
            raise InvoiceMismatch(f"prior-period line {line.line_item_id} is not of an earlier period")
    elif (line.period_start, line.period_end) != (state.period_start, state.period_end):
        raise InvoiceMismatch(f"{kind} line {line.line_item_id} is of period {line.period_start}, the invoice's "
                              f"is {state.period_start}")


def apply_drawdown(state: OpenInvoice, drawdown: CreditDrawdown) -> OpenInvoice:
    """The invoice with this credit movement (upsert by drawdown_id); records of no line change nothing."""
    if drawdown.kind not in _CREDIT_KINDS or drawdown.line_item_id is None:
        return state
    if (drawdown.tenant_id, drawdown.customer_id, drawdown.currency) != (
        state.tenant_id, state.customer_id, state.currency
    ):
        raise InvoiceMismatch(f"drawdown {drawdown.drawdown_id} is not for this invoice's customer and currency")
    entry = (drawdown.line_item_id, drawdown.amount)
    return replace(state, drawdowns={**state.drawdowns, drawdown.drawdown_id: entry})


def _sum(amounts: Any) -> Decimal:
    return exact(lambda: sum(amounts, ZERO))


def invoice(
    state: OpenInvoice,
    *,
    status: str = "open",
    emitted_at: datetime,
    grace: timedelta = DEFAULT_GRACE,
    charges: tuple[InvoiceCharge, ...] = (),
) -> Invoice:
    """The `invoices` record of this state (`final` when it closes)."""
    unknown = sorted({line for line, _ in state.drawdowns.values() if line not in state.lines})
    if unknown:
        raise InvoiceMismatch(f"drawdowns for lines the invoice does not hold: {', '.join(unknown)}")
    by_kind = {kind: _sum(e.amount for e in state.lines.values() if e.kind == kind) for kind in LINE_KINDS}
    series: dict[tuple[str, Group], list[LineEntry]] = {}
    for entry in state.lines.values():
        if entry.kind in _THIS_PERIOD_KINDS:
            series.setdefault((entry.meter, entry.group), []).append(entry)
    subtotals = tuple(_subtotal(meter, group, entries) for (meter, group), entries in sorted(series.items()))
    lines_total = _sum(by_kind.values())
    charges_total = _sum(c.amount for c in charges)
    total = exact(lambda: lines_total + charges_total)
    credits = _sum(amount for _, amount in state.drawdowns.values())
    return Invoice(
        invoice_id=state.invoice_id,
        tenant_id=state.tenant_id,
        customer_id=state.customer_id,
        currency=state.currency,
        period_start=state.period_start,
        period_end=state.period_end,
        status=status,
        subtotals=subtotals,
        usage_total=by_kind["usage"],
        late_adjustment_total=by_kind["late_adjustment"],
        correction_total=by_kind["correction"],
        prior_period_adjustment_total=by_kind[PRIOR_PERIOD],
        lines_total=lines_total,
        charges=charges,
        charges_total=charges_total,
        total=total,
        credits_applied=credits,
        amount_due=exact(lambda: total - credits),
        line_count=len(state.lines),
        closes_at=closes_at(state.period_end, grace),
        emitted_at=emitted_at,
    )


def _subtotal(meter: str, group: Group, entries: list[LineEntry]) -> InvoiceSubtotal:
    amounts = {kind: _sum(e.amount for e in entries if e.kind == kind) for kind in _THIS_PERIOD_KINDS}
    return InvoiceSubtotal(
        meter=meter,
        group=dict(group),
        quantity=max(entries, key=lambda e: e.sequence).period_quantity_to_date,
        usage_amount=amounts["usage"],
        late_adjustment_amount=amounts["late_adjustment"],
        correction_amount=amounts["correction"],
        amount=_sum(amounts.values()),
        line_count=len(entries),
    )


def on_clock(
    state: OpenInvoice | None,
    clock: datetime,
    *,
    emitted_at: datetime,
    grace: timedelta = DEFAULT_GRACE,
    charges: tuple[InvoiceCharge, ...] = (),
) -> tuple[OpenInvoice | None, Invoice | None]:
    """The event-time clock advanced to `clock`: close the invoice when due (state None + the final invoice)."""
    if state is None or not close_due(state, clock, grace):
        return state, None
    return None, invoice(state, status="final", emitted_at=emitted_at, grace=grace, charges=charges)
