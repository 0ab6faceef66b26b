"""The `invoice-line-items` record: one priced tumbling window of one (tenant, customer, meter, group), a late
adjustment of one, or usage of a closed period billed on the next invoice (`kind`).

Wire rules: decimals are canonical strings (plain notation, no exponent, no trailing fractional zeros, "0" not
"-0"; `schemas.wire.decimal_to_wire`, which `udfs.money.to_wire` also uses);
datetimes are RFC 3339 UTC with milliseconds and a `Z` (`2025-03-01T05:00:00.000Z`), sub-millisecond
digits are truncated. Invariants a consumer may rely on:
- `sum(t.amount for t in tiers) + rounding_adjustment == amount`, exactly;
- the `amount`s of all lines of one period and key sum exactly to the `period_amount_to_date` of the last one
  written (the window operator writes a series' lines in order; a late adjustment can come after a later window's);
- `line_item_id` is a pure function of (tenant, customer, meter, group, window_start) for a `usage` line, and of
  those plus its kind and the watermark its usage came after for an adjustment (`udfs.line_items.line_item_id`), so
  a replayed window or adjustment produces the same id and sinks can upsert;
- a `late_adjustment` bills valid usage that arrived after its series had fired the window (or a later one): it
  changes the period to date of the window's billing period like any line (`amount` = rounded to-date price after
  minus before), and `adjusts_line_item_id` is the id the window's `usage` line has (or would have, had the window
  had on-time usage);
- a `correction` bills cancels and amends (`usage-corrections`) of events of an already fired window the same way:
  the change of the rounded period-to-date price (often negative), `quantity` the change of the window's quantity,
  `event_count` the corrections it bills, its id naming the kind `correction` and the watermark the corrections came
  after (`udfs.line_items.accumulate_correction`);
- a `prior_period_adjustment` is the same for a period already closed (its end + the tenant's grace reached): rated
  against that period's own total, its `invoice_id` is the customer's next open invoice (`udfs.line_items.line_kind`);
  one that bills corrections has an id naming the kind `correction`;
- an adjustment's `decided_after` is the watermark its events came after (the one its id names): a window's
  adjustments in decision order, after its usage line (null), which is the order the credits ledger applies them in.
`amount` may be negative (volume tiers, `last`/`min` meters, price changes); it is never clamped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from schemas.wire import DECIMAL_PATTERN, UTC_PATTERN, datetime_to_wire, decimal_to_wire


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money and quantities are decimal strings, never floats")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


WireDecimal = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(allow_inf_nan=False),
    PlainSerializer(decimal_to_wire, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}),
]
UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(datetime_to_wire, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": UTC_PATTERN}),
]


class LineItemTier(BaseModel):
    """The change of one tier's exact charge caused by this window (after minus before)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier_index: int = Field(ge=0)
    lower_bound: WireDecimal = Field(description="exclusive lower bound of the tier")
    up_to: WireDecimal | None = Field(description="inclusive upper bound; null for the open-ended last tier")
    unit_price: WireDecimal
    flat_fee: WireDecimal = Field(description="the tier's flat fee (charged once per period when touched)")
    quantity: WireDecimal = Field(description="change of the quantity billed in this tier")
    amount: WireDecimal = Field(description="change of the tier's exact (unrounded) amount")


LineItemKind = Literal["usage", "late_adjustment", "correction", "prior_period_adjustment"]
"""What a line bills: `usage`, the on-time usage of its window; `late_adjustment`, usage of an already fired window
of a period still open; `correction`, cancels and amends (`usage-corrections`) of an already fired window of a
period still open; `prior_period_adjustment`, usage or corrections of a period already closed (its invoice final),
billed on the customer's next open invoice (`udfs.line_items.line_kind`)."""


class InvoiceLineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line_item_id: str = Field(
        description="uuid5 of v1|tenant|customer|meter|group|window_start (usage), with |kind|watermark appended for "
        "an adjustment"
    )
    kind: LineItemKind = Field(default="usage", description="usage: the window's on-time usage; late_adjustment: usage "
                               "that came after the window had fired; correction: cancels and amends of events of a "
                               "fired window; prior_period_adjustment: usage or corrections of a closed period, on "
                               "the next open invoice")
    adjusts_line_item_id: str | None = Field(
        default=None, description="an adjustment's window: the line_item_id of that window's usage line; null for usage"
    )
    decided_after: UtcDatetime | None = Field(
        default=None, description="an adjustment's place among its window's lines: the watermark its events came "
        "after (the one its id names); null for a usage line. The credits ledger applies a window's usage line first, "
        "then its adjustments in this order"
    )
    invoice_id: str | None = Field(
        default=None, description="the invoice this line is on (udfs.invoices.invoice_id): its own period's, or for a "
        "prior_period_adjustment the customer's next open one; null only in lines written before invoices existed"
    )
    tenant_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    meter: str = Field(min_length=1)
    group: dict[str, str] = Field(default_factory=dict)
    window_start: UtcDatetime
    window_end: UtcDatetime
    period_start: UtcDatetime
    period_end: UtcDatetime
    quantity: WireDecimal = Field(description="the quantity of the events this line bills, by the meter's window rule")
    period_quantity_to_date: WireDecimal
    amount: WireDecimal = Field(description="this line: rounded to-date total after minus before; may be < 0")
    period_amount_to_date: WireDecimal = Field(description="rounded price of the period quantity to date")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    tiers: tuple[LineItemTier, ...] = ()
    rounding_adjustment: WireDecimal = Field(description="amount - sum(tiers.amount), exactly")
    event_count: int = Field(ge=0, description="the events this line bills")
    emitted_at: UtcDatetime
    price_ref: str = Field(description="id of the catalog price entry used")
