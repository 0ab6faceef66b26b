"""Invoices: the line items of one (tenant, customer, period, currency) folded into an open invoice, closed into an
`invoices` record (`schemas.invoice.Invoice`) when the event-time clock reaches period end + grace. The
specification of the job's invoice stage (`io.meterstream.invoices.InvoiceFolding`, keyed per (tenant, customer);
bound to this module by `golden/invoices.json`).

Pure steps on an immutable `CustomerInvoices` (Bytewax style, `None` = nothing open), the open invoices of one
customer by `invoice_id`:

- `add_line(state, line, tenant, *, clock)`: a line item (`schemas.invoice_line_item.InvoiceLineItem`). It goes on
  the invoice it names (`invoice_id`, which `udfs.line_items` decided): its own period's for `usage`,
  `late_adjustment` and `correction` lines, the customer's next open period's for a `prior_period_adjustment` (usage
  of a closed period, rated against that period's own total, `udfs.line_items.line_kind`). A line names an invoice
  that is still open: every line of a period is decided before the clock reaches the period's end + grace, and
  reaches this step ahead of that clock (Flink forwards a watermark after the records emitted before it). A line
  whose invoice has closed breaks that invariant in money and raises `InvoiceClosed`: the job fails loudly rather
  than change a final invoice or drop the line. Each line is folded once: the job's state and its input rewind
  together on a restore, so no line item id reaches the stage twice (the fold keeps no per-line memory: an invoice of
  a month holds one entry per series, not per line).
- `add_drawdown(state, drawdown, tenant, *, clock)`: a credit movement (`schemas.credits.CreditDrawdown`) of a line
  (`usage`, `catch_up` and `adjustment` records; `expiry` and `void` belong to no line and change nothing). It counts
  in `credits_applied` of the invoice of its line's period (`period_start`) while that invoice is open; once that
  one has closed (a prior-period adjustment's drawdown, or credit moved by a grant or void that came after the
  close), on the customer's open invoice at `clock`: a final invoice never changes. The credits stage computes a
  line's drawdowns from the line before the clock passes the line's window, so the drawdowns of a period's own lines
  reach its invoice before it closes (`jobs/credits.py`, `udfs.credits.event_order`).
- `close_due(state, clock, *, emitted_at) -> (state | None, [Invoice])`: the invoices whose period end + grace
  (`closes_at`, the tenant's `billing_period.grace`, default 1 h) is at or before `clock`, as `final` records, in
  (closes_at, invoice_id) order. Inclusive, as Flink fires a timer at its timestamp.
- `end_of_input(state, *, emitted_at) -> [Invoice]`: a bounded input ended (the job's watermark jumps to its maximum,
  which is not time passing): the invoices still open, as `open` previews (same `invoice_id`; a later run over more
  input finalizes them).

Sums are exact (Decimal, no rounding: each line's amount is already rounded money, `udfs.line_items`): an invoice's
totals are the sums of its lines' amounts. A series' `quantity` is the `period_quantity_to_date` of its line folded
last (one keyed operator writes a series' lines in order, each carrying the period quantity after it).

State size: per open invoice one entry per (meter, group) series of the period (~150 B) plus its totals; nothing
once it has closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from schemas.credits import CreditDrawdown
from schemas.invoice import Invoice, InvoiceCharge, InvoiceSubtotal
from schemas.invoice_line_item import InvoiceLineItem
from schemas.wire import datetime_to_wire
from udfs.aggregations import Group, normalize_group
from udfs.catalog import TenantCatalog
from udfs.money import exact
from udfs.periods import billing_period

# Fixed forever: uuid5(NAMESPACE_URL, "urn:meterstream:invoice"). Changing it changes every id.
INVOICE_NAMESPACE = uuid.UUID("abbc75e6-0c62-540b-ab54-e0524486a1b6")
INVOICE_ID_VERSION = "v1"
DEFAULT_GRACE = timedelta(hours=1)
PRIOR_PERIOD = "prior_period_adjustment"
_CREDIT_KINDS = ("usage", "catch_up", "adjustment")
# A prior-period adjustment's invoice is a few periods after the line's own at most (usage older than the max event
# age is never billed); a line naming none of these breaks the id rule.
MAX_PERIODS_AHEAD = 64
ZERO = Decimal(0)


class InvoiceMismatch(ValueError):
    """A line or drawdown that does not belong to this customer, or names an invoice its period does not give."""


class InvoiceClosed(InvoiceMismatch):
    """A line for an invoice that has closed: the invariant that lines reach the stage before its close is broken."""


def invoice_id(tenant_id: str, customer_id: str, period_start: datetime, currency: str) -> str:
    """uuid5 over `v1|tenant|customer|period_start|currency` (period_start as RFC 3339 ms UTC), each part
    percent-encoded so a `|` inside an id cannot make two keys spell the same name."""
    parts = [INVOICE_ID_VERSION, *(quote(p, safe="") for p in (tenant_id, customer_id)), datetime_to_wire(period_start)]
    return str(uuid.uuid5(INVOICE_NAMESPACE, "|".join([*parts, quote(currency, safe="")])))


def closes_at(period_end: datetime, grace: timedelta = DEFAULT_GRACE) -> datetime:
    if grace < timedelta(0):
        raise ValueError(f"grace must not be negative, got {grace}")
    return period_end + grace


@dataclass(frozen=True, slots=True)
class SeriesTotal:
    """One (meter, group) series of an open invoice: its lines of this period, by kind."""

    quantity: Decimal  # period_quantity_to_date of the series' line folded last
    usage: Decimal = ZERO
    late_adjustment: Decimal = ZERO
    correction: Decimal = ZERO
    line_count: int = 0


@dataclass(frozen=True)
class OpenInvoice:
    tenant_id: str
    customer_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    closes_at: datetime
    series: Mapping[tuple[str, Group], SeriesTotal] = field(default_factory=dict)
    prior_period_adjustment_total: Decimal = ZERO
    prior_period_line_count: int = 0
    credits_applied: Decimal = ZERO

    @property
    def invoice_id(self) -> str:
        return invoice_id(self.tenant_id, self.customer_id, self.period_start, self.currency)


@dataclass(frozen=True)
class CustomerInvoices:
    """A customer's open invoices by invoice_id (one per open period and currency)."""

    open: Mapping[str, OpenInvoice] = field(default_factory=dict)


def _period_of(tenant: TenantCatalog, instant: datetime) -> tuple[datetime, datetime]:
    schedule = tenant.billing_period
    return billing_period(instant, schedule.anchor_day, schedule.zone)


def _opened(state: CustomerInvoices | None, tenant_id: str, customer_id: str, currency: str,
            period: tuple[datetime, datetime], tenant: TenantCatalog) -> tuple[CustomerInvoices, OpenInvoice]:
    state = state or CustomerInvoices()
    key = invoice_id(tenant_id, customer_id, period[0], currency)
    current = state.open.get(key)
    if current is None:
        current = OpenInvoice(tenant_id, customer_id, currency, period[0], period[1],
                              closes_at(period[1], tenant.billing_period.grace))
    return state, current


def _with(state: CustomerInvoices, current: OpenInvoice) -> CustomerInvoices:
    return replace(state, open={**state.open, current.invoice_id: current})


def invoice_period(line: InvoiceLineItem, tenant: TenantCatalog) -> tuple[datetime, datetime]:
    """The period of the invoice the line names: its own for lines of this period; for a prior-period adjustment the
    first later period whose invoice id it is."""
    own = (line.period_start, line.period_end)
    named = line.invoice_id
    if line.kind != PRIOR_PERIOD:
        if named is not None and named != invoice_id(line.tenant_id, line.customer_id, own[0], line.currency):
            raise InvoiceMismatch(f"{line.kind} line {line.line_item_id} names invoice {named}, not its period's")
        return own
    if named is None:
        raise InvoiceMismatch(f"prior-period line {line.line_item_id} names no invoice")
    period = own
    for _ in range(MAX_PERIODS_AHEAD):
        period = _period_of(tenant, period[1])
        if invoice_id(line.tenant_id, line.customer_id, period[0], line.currency) == named:
            return period
    raise InvoiceMismatch(f"prior-period line {line.line_item_id} names invoice {named}, of no period within "
                          f"{MAX_PERIODS_AHEAD} after its own")


def add_line(
    state: CustomerInvoices | None, line: InvoiceLineItem, tenant: TenantCatalog, *, clock: datetime | None
) -> CustomerInvoices:
    """The customer's open invoices with this line folded into the one it names (see the module docstring)."""
    period = invoice_period(line, tenant)
    state, current = _opened(state, line.tenant_id, line.customer_id, line.currency, period, tenant)
    if clock is not None and current.closes_at <= clock:
        raise InvoiceClosed(f"line {line.line_item_id} ({line.kind}) is for invoice {current.invoice_id}, which closed "
                            f"at {current.closes_at.isoformat()} (clock {clock.isoformat()})")
    if line.kind == PRIOR_PERIOD:
        current = replace(current, prior_period_adjustment_total=exact(
            lambda: current.prior_period_adjustment_total + line.amount),
            prior_period_line_count=current.prior_period_line_count + 1)
        return _with(state, current)
    key = (line.meter, normalize_group(line.group))
    before = current.series.get(key) or SeriesTotal(quantity=ZERO)
    amounts = {"usage": before.usage, "late_adjustment": before.late_adjustment, "correction": before.correction}
    amounts[line.kind] = exact(lambda: amounts[line.kind] + line.amount)
    after = SeriesTotal(line.period_quantity_to_date, amounts["usage"], amounts["late_adjustment"],
                        amounts["correction"], before.line_count + 1)
    return _with(state, replace(current, series={**current.series, key: after}))


def add_drawdown(
    state: CustomerInvoices | None, drawdown: CreditDrawdown, tenant: TenantCatalog, *, clock: datetime | None
) -> CustomerInvoices | None:
    """The customer's open invoices with this credit movement counted (see the module docstring)."""
    if drawdown.kind not in _CREDIT_KINDS or drawdown.line_item_id is None or drawdown.period_start is None:
        return state
    own = _period_of(tenant, drawdown.period_start)
    period = own
    if clock is not None and closes_at(own[1], tenant.billing_period.grace) <= clock:
        period = _period_of(tenant, clock - tenant.billing_period.grace)  # udfs.line_items.open_period
    state, current = _opened(state, drawdown.tenant_id, drawdown.customer_id, drawdown.currency, period, tenant)
    current = replace(current, credits_applied=exact(lambda: current.credits_applied + drawdown.amount))
    return _with(state, current)


def _sum(amounts) -> Decimal:
    return exact(lambda: sum(amounts, ZERO))


def invoice(
    current: OpenInvoice, *, status: str, emitted_at: datetime, charges: tuple[InvoiceCharge, ...] = ()
) -> Invoice:
    """The `invoices` record of an open invoice (`final` when it closes, `open` for a preview)."""
    subtotals = tuple(
        InvoiceSubtotal(
            meter=meter, group=dict(group), quantity=s.quantity, usage_amount=s.usage,
            late_adjustment_amount=s.late_adjustment, correction_amount=s.correction,
            amount=_sum((s.usage, s.late_adjustment, s.correction)), line_count=s.line_count,
        )
        for (meter, group), s in sorted(current.series.items())
    )
    usage = _sum(s.usage for s in current.series.values())
    late = _sum(s.late_adjustment for s in current.series.values())
    correction = _sum(s.correction for s in current.series.values())
    lines_total = _sum((usage, late, correction, current.prior_period_adjustment_total))
    charges_total = _sum(c.amount for c in charges)
    total = exact(lambda: lines_total + charges_total)
    return Invoice(
        invoice_id=current.invoice_id,
        tenant_id=current.tenant_id,
        customer_id=current.customer_id,
        currency=current.currency,
        period_start=current.period_start,
        period_end=current.period_end,
        status=status,
        subtotals=subtotals,
        usage_total=usage,
        late_adjustment_total=late,
        correction_total=correction,
        prior_period_adjustment_total=current.prior_period_adjustment_total,
        lines_total=lines_total,
        charges=charges,
        charges_total=charges_total,
        total=total,
        credits_applied=current.credits_applied,
        amount_due=exact(lambda: total - current.credits_applied),
        line_count=sum(s.line_count for s in current.series.values()) + current.prior_period_line_count,
        closes_at=current.closes_at,
        emitted_at=emitted_at,
    )


def _in_close_order(invoices) -> list[OpenInvoice]:
    return sorted(invoices, key=lambda i: (i.closes_at, i.invoice_id))


def close_due(
    state: CustomerInvoices | None, clock: datetime, *, emitted_at: datetime
) -> tuple[CustomerInvoices | None, list[Invoice]]:
    """The event-time clock reached `clock`: every invoice due closes (`final`), the rest stay open."""
    if state is None:
        return None, []
    due = _in_close_order(i for i in state.open.values() if i.closes_at <= clock)
    if not due:
        return state, []
    rest = {key: i for key, i in state.open.items() if i.closes_at > clock}
    return (CustomerInvoices(rest) if rest else None), [invoice(i, status="final", emitted_at=emitted_at) for i in due]


def end_of_input(state: CustomerInvoices | None, *, emitted_at: datetime) -> list[Invoice]:
    """A bounded input ended: the invoices still open, as `open` previews (nothing closes: no time passed)."""
    if state is None:
        return []
    return [invoice(i, status="open", emitted_at=emitted_at) for i in _in_close_order(state.open.values())]


def next_close(state: CustomerInvoices | None) -> datetime | None:
    """When the earliest open invoice closes (the stage keeps one event-time timer per open invoice)."""
    return min((i.closes_at for i in state.open.values()), default=None) if state else None
