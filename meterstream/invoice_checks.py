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


def invoice_problems(
    invoices: list[dict], line_items: list[dict], drawdowns: list[dict] | None = None
) -> tuple[dict[str, Invoice], list[str]]:
    """The invoices by id (validated models) and what does not hold, in words (empty: exact)."""
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
    lines_of: dict[str, list[dict]] = defaultdict(list)
    for line in line_items:
        if line["invoice_id"] not in by_id:
            problems.append(f"line {line['line_item_id']} names invoice {line['invoice_id']}, never written")
        lines_of[line["invoice_id"]].append(line)
    for invoice_id, invoice in by_id.items():
        lines = lines_of.get(invoice_id, [])
        where = f"invoice {invoice_id} ({invoice.tenant_id}/{invoice.customer_id}, {_wire(invoice.period_start)})"
        if invoice.line_count != len(lines):
            problems.append(f"{where}: line_count {invoice.line_count}, {len(lines)} lines name it")
        for kind, field in LINE_KINDS_TOTALS:
            lines_sum = sum((Decimal(li["amount"]) for li in lines if li["kind"] == kind), Decimal(0))
            if getattr(invoice, field) != lines_sum:
                problems.append(f"{where}: {field} {getattr(invoice, field)}, its {kind} lines sum to {lines_sum}")
        this_period = [li for li in lines if li["kind"] != "prior_period_adjustment"]
        if any(li["period_start"] != _wire(invoice.period_start) for li in this_period):
            problems.append(f"{where}: holds lines of another period that are no prior-period adjustment")
        series: dict[tuple, list[dict]] = defaultdict(list)
        for li in this_period:
            series[_series(li)].append(li)
        subtotals = {(s.meter, tuple(sorted(s.group.items()))): s for s in invoice.subtotals}
        if set(subtotals) != set(series):
            problems.append(f"{where}: subtotals for {sorted(subtotals)}, lines of {sorted(series)}")
        for key, own in series.items():
            subtotal = subtotals.get(key)
            amount = sum((Decimal(li["amount"]) for li in own), Decimal(0))
            if subtotal is not None and (subtotal.line_count, subtotal.amount) != (len(own), amount):
                problems.append(f"{where}: subtotal {key} is {subtotal.line_count} lines {subtotal.amount}, "
                                f"its lines {len(own)} {amount}")
    if drawdowns is not None:
        moved = sum((Decimal(d["amount"]) for d in drawdowns
                     if d["kind"] in CREDIT_KINDS and d["line_item_id"] is not None), Decimal(0))
        applied = sum((i.credits_applied for i in by_id.values()), Decimal(0))
        if applied != moved:
            problems.append(f"credits applied on all invoices {applied}, credit moved by line drawdowns {moved}")
    return by_id, problems
