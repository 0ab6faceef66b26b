"""The `invoices` record (output): one customer's bill for one billing period in one currency.

One invoice per (tenant, customer, period, currency) that has at least one line item or credit movement;
`udfs.invoices` folds the line items (and the credit drawdowns) into it and closes it when the event-time clock
reaches period end + grace (the job's invoice stage, `io.meterstream.invoices.InvoiceFolding`). Wire rules are the
house rules (`schemas/wire.py`): decimals as canonical strings, UTC milliseconds with `Z`.

Invariants a consumer may rely on (the model checks the sums, exactly):
- `invoice_id` = uuid5(`INVOICE_NAMESPACE`, `v1|tenant|customer|period_start|currency`), parts percent-encoded,
  `period_start` as written on the wire: stable across replays and restores, so sinks can upsert;
- every line item carries the `invoice_id` of the one invoice it is on; `lines_total` = the sum of the `amount` of
  the line items that name this invoice
  = `usage_total + late_adjustment_total + correction_total + prior_period_adjustment_total`;
- the `amount`s of `subtotals` sum to `usage_total + late_adjustment_total + correction_total` (lines of this
  period; prior-period adjustments belong to a closed period's series and are only in their total);
- `charges_total` = sum of `charges[].amount`; `total` = `lines_total + charges_total`;
- `amount_due` = `total - credits_applied`, where `credits_applied` is the sum of the credit drawdowns (`usage`,
  `catch_up` and `adjustment` records) of the lines of this invoice's period, plus those that moved after their own
  invoice had closed (a final invoice never changes: they count on the customer's open invoice); it may be
  negative when credit was given back;
- `line_count` = the number of distinct line items.

Minimums and flat fees (a later issue) fit as `charges`: invoice-level amounts computed at close from the
period's totals (`flat_fee`: a fixed amount per period; `minimum_top_up`: max(0, minimum - usage) for a spend
minimum), each with its own deterministic `charge_id`, entering `total` and the credit drawdown like a line. The
array is in the contract today (always empty until then), so adding them changes no schema. A customer without
usage then gets an invoice only when the catalog asks for a flat fee or minimum.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from schemas.wire import UtcMillis, WireDecimal

INVOICE_STATUSES = ("open", "final")
LINE_KINDS = ("usage", "late_adjustment", "correction", "prior_period_adjustment")
CHARGE_KINDS = ("flat_fee", "minimum_top_up")


class InvoiceSubtotal(BaseModel):
    """One (meter, group) series of the period: a meter's groups are priced apart, so their quantities are never
    added. `amount` = `usage_amount + late_adjustment_amount + correction_amount`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meter: StrictStr = Field(min_length=1)
    group: dict[str, str] = Field(default_factory=dict)
    quantity: WireDecimal = Field(description="the series' period quantity: its latest line's period quantity to date")
    usage_amount: WireDecimal
    late_adjustment_amount: WireDecimal
    correction_amount: WireDecimal
    amount: WireDecimal = Field(description="the series' lines of this period, all kinds")
    line_count: int = Field(ge=1)

    @model_validator(mode="after")
    def _amount_is_its_parts(self) -> InvoiceSubtotal:
        if self.amount != self.usage_amount + self.late_adjustment_amount + self.correction_amount:
            raise ValueError("amount must equal usage_amount + late_adjustment_amount + correction_amount")
        return self


class InvoiceCharge(BaseModel):
    """An invoice-level amount that is no line item (flat fee, minimum top-up). None are produced yet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    charge_id: StrictStr = Field(min_length=1, description="deterministic, like line_item_id")
    kind: Literal["flat_fee", "minimum_top_up"]
    description: StrictStr
    amount: WireDecimal


class Invoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: StrictStr = Field(description="uuid5 of v1|tenant|customer|period_start|currency")
    tenant_id: StrictStr = Field(min_length=1)
    customer_id: StrictStr = Field(min_length=1)
    currency: StrictStr = Field(pattern=r"^[A-Z]{3}$")
    period_start: UtcMillis
    period_end: UtcMillis
    status: Literal["open", "final"] = Field(
        description="final: closed, never changes again; open: a preview of a period still open when a bounded input "
                    "ended (same invoice_id)"
    )
    subtotals: tuple[InvoiceSubtotal, ...] = Field(description="per (meter, group) of this period, sorted")
    usage_total: WireDecimal
    late_adjustment_total: WireDecimal
    correction_total: WireDecimal
    prior_period_adjustment_total: WireDecimal = Field(description="lines for closed periods billed on this invoice")
    lines_total: WireDecimal
    charges: tuple[InvoiceCharge, ...] = Field(description="flat fees and minimums (a later issue); empty today")
    charges_total: WireDecimal
    total: WireDecimal = Field(description="lines_total + charges_total")
    credits_applied: WireDecimal = Field(description="credit drawn by the invoice's lines (net of credit given back)")
    amount_due: WireDecimal = Field(description="total - credits_applied")
    line_count: int = Field(ge=0)
    closes_at: UtcMillis = Field(description="period_end + grace: when the event-time clock closes it")
    emitted_at: UtcMillis

    @model_validator(mode="after")
    def _sums_are_exact(self) -> Invoice:
        this_period = self.usage_total + self.late_adjustment_total + self.correction_total
        problems = [
            name
            for name, ok in (
                ("lines_total", self.lines_total == this_period + self.prior_period_adjustment_total),
                ("subtotals", sum((s.amount for s in self.subtotals), Decimal(0)) == this_period),
                ("charges_total", self.charges_total == sum((c.amount for c in self.charges), Decimal(0))),
                ("total", self.total == self.lines_total + self.charges_total),
                ("amount_due", self.amount_due == self.total - self.credits_applied),
                ("period", self.period_start < self.period_end <= self.closes_at),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"invoice sums do not hold: {', '.join(problems)}")
        return self
