"""Whether a run's invoices are exact against its line items (and drawdowns): each is a valid
`schemas.invoice.Invoice` (its own sums hold), written once, and sums exactly the line items that name it; every line
item names a written invoice; with drawdowns, every credit movement of a line counts on exactly one invoice. Used by
the demo, `meterstream chaos` and the tests (`tests/invoice_checks.py`)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from schemas.invoice import Invoice

LINE_KINDS_TOTALS = (("usage", "usage_total"), ("late_adjustment", "late_adjustment_total"),
                     ("correction", "correction_total"), ("prior_period_adjustment", "prior_period_adjustment_total"))
CREDIT_KINDS = ("usage", "catch_up", "adjustment")


def _wire(instant) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _series(line: dict) -> tuple:
    return line["meter"], tuple(sorted(line["group"].items()))


class LineTotals:
    """What the invoice check needs of the line items, added one at a time: per invoice id its line count, the sum
    of each kind, the billing periods of its lines that are no prior-period adjustment and per series (meter, group)
    the count and sum of those. Memory grows with invoices and series, not with lines (a 25M-event run writes
    millions of them)."""

    def __init__(self) -> None:
        self.count: dict[str, int] = defaultdict(int)
        self.by_kind: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.periods: dict[str, set[str]] = defaultdict(set)
        self.series: dict[str, dict[tuple, list]] = defaultdict(dict)  # invoice -> series -> [count, amount]
        self.first_line: dict[str, str] = {}  # invoice id -> a line naming it (for the message of an unknown one)

    def add(self, line: dict) -> None:
        invoice_id = line["invoice_id"]
        amount = Decimal(line["amount"])
        self.count[invoice_id] += 1
        self.first_line.setdefault(invoice_id, line["line_item_id"])
        self.by_kind[invoice_id][line["kind"]] += amount
        if line["kind"] != "prior_period_adjustment":
            self.periods[invoice_id].add(line["period_start"])
            own = self.series[invoice_id].setdefault(_series(line), [0, Decimal(0)])
            own[0] += 1
            own[1] += amount


def invoice_problems(
    invoices: list[dict], line_items, drawdowns: list[dict] | None = None
) -> tuple[dict[str, Invoice], list[str]]:
    """The invoices by id (validated models) and what does not hold, in words (empty: exact). `line_items`: the
    line items (any iterable, read once) or their `LineTotals`."""
    problems: list[str] = []
    by_id: dict[str, Invoice] = {}
    for record in invoices:
        try:
            model = Invoice.model_validate(record)
        except ValueError as exc:
            problems.append(f"invoice {record.get('invoice_id')} is not a valid invoice: {exc}")
            continue
        if model.invoice_id in by_id:
            problems.append(f"invoice {model.invoice_id} written twice")
        by_id[model.invoice_id] = model
    totals = line_items
    if not isinstance(totals, LineTotals):
        totals = LineTotals()
        for line in line_items:
            totals.add(line)
    for invoice_id, count in totals.count.items():
        if invoice_id not in by_id:
            problems.append(f"{count} line(s) name invoice {invoice_id}, never written "
                            f"(line {totals.first_line[invoice_id]} and others)")
    for invoice_id, invoice in by_id.items():
        where = f"invoice {invoice_id} ({invoice.tenant_id}/{invoice.customer_id}, {_wire(invoice.period_start)})"
        count = totals.count.get(invoice_id, 0)
        if invoice.line_count != count:
            problems.append(f"{where}: line_count {invoice.line_count}, {count} lines name it")
        kinds = totals.by_kind.get(invoice_id, {})
        for kind, field in LINE_KINDS_TOTALS:
            lines_sum = kinds.get(kind, Decimal(0))
            if getattr(invoice, field) != lines_sum:
                problems.append(f"{where}: {field} {getattr(invoice, field)}, its {kind} lines sum to {lines_sum}")
        if totals.periods.get(invoice_id, set()) - {_wire(invoice.period_start)}:
            problems.append(f"{where}: holds lines of another period that are no prior-period adjustment")
        series = totals.series.get(invoice_id, {})
        subtotals = {(s.meter, tuple(sorted(s.group.items()))): s for s in invoice.subtotals}
        if set(subtotals) != set(series):
            problems.append(f"{where}: subtotals for {sorted(subtotals)}, lines of {sorted(series)}")
        for key, (lines, amount) in series.items():
            subtotal = subtotals.get(key)
            if subtotal is not None and (subtotal.line_count, subtotal.amount) != (lines, amount):
                problems.append(f"{where}: subtotal {key} is {subtotal.line_count} lines {subtotal.amount}, "
                                f"its lines {lines} {amount}")
    if drawdowns is not None:
        moved = sum((Decimal(d["amount"]) for d in drawdowns
                     if d["kind"] in CREDIT_KINDS and d["line_item_id"] is not None), Decimal(0))
        applied = sum((i.credits_applied for i in by_id.values()), Decimal(0))
        if applied != moved:
            problems.append(f"credits applied on all invoices {applied}, credit moved by line drawdowns {moved}")
    return by_id, problems
