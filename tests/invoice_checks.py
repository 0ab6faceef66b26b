"""What every run's invoices must satisfy against its line items (and drawdowns): shared by the job, integration
and chaos tests. Each invoice is a valid `schemas.invoice.Invoice` (its own sums hold), written once, and sums
exactly the line items that name it; every line item names exactly one written invoice."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from schemas.invoice import Invoice


def assert_invoices_exact(invoices: list[dict], line_items: list[dict], drawdowns: list[dict] | None = None) -> dict:
    """Returns the invoices by id (validated models)."""
    by_id: dict[str, Invoice] = {}
    for record in invoices:
        model = Invoice.model_validate(record)
        assert model.invoice_id not in by_id, f"invoice {model.invoice_id} written twice"
        by_id[model.invoice_id] = model
    lines_of: dict[str, list[dict]] = defaultdict(list)
    for line in line_items:
        assert line["invoice_id"] in by_id, f"line {line['line_item_id']} names an invoice never written"
        lines_of[line["invoice_id"]].append(line)
    for invoice_id, invoice in by_id.items():
        lines = lines_of[invoice_id]
        where = f"invoice {invoice_id} ({invoice.customer_id}, {invoice.period_start})"
        assert invoice.line_count == len(lines), where
        assert invoice.lines_total == sum((Decimal(li["amount"]) for li in lines), Decimal(0)), where
        for kind, total in (("usage", invoice.usage_total), ("late_adjustment", invoice.late_adjustment_total),
                            ("correction", invoice.correction_total),
                            ("prior_period_adjustment", invoice.prior_period_adjustment_total)):
            assert total == sum((Decimal(li["amount"]) for li in lines if li["kind"] == kind), Decimal(0)), (
                where, kind)
        this_period = [li for li in lines if li["kind"] != "prior_period_adjustment"]
        assert all((li["period_start"], li["customer_id"]) == (_wire(invoice.period_start), invoice.customer_id)
                   for li in this_period), where
        series = defaultdict(list)
        for li in this_period:
            series[(li["meter"], tuple(sorted(li["group"].items())))].append(li)
        assert {(s.meter, tuple(sorted(s.group.items()))) for s in invoice.subtotals} == set(series), where
        for subtotal in invoice.subtotals:
            own = series[(subtotal.meter, tuple(sorted(subtotal.group.items())))]
            assert subtotal.line_count == len(own), where
            assert subtotal.amount == sum((Decimal(li["amount"]) for li in own), Decimal(0)), where
    if drawdowns is not None:
        counted = sum((Decimal(d["amount"]) for d in drawdowns
                       if d["kind"] in ("usage", "catch_up", "adjustment") and d["line_item_id"] is not None),
                      Decimal(0))
        assert sum((i.credits_applied for i in by_id.values()), Decimal(0)) == counted, "every credit movement counted"
    return by_id


def _wire(instant) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
