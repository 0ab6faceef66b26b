"""The invoice checks of `meterstream.invoice_checks` as a test assertion (job, integration and chaos tests)."""

from __future__ import annotations

from meterstream.invoice_checks import invoice_problems
from schemas.invoice import Invoice


def assert_invoices_exact(invoices: list[dict], line_items: list[dict],
                          drawdowns: list[dict] | None = None) -> dict[str, Invoice]:
    """Every invoice is exact against the lines (and drawdowns); returns the invoices by id."""
    by_id, problems = invoice_problems(invoices, line_items, drawdowns)
    assert not problems, "\n".join(problems[:20])
    return by_id
