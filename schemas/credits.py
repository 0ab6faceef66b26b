"""Prepaid credits: the records of `credit-grants`, `spend-caps` (inputs), `credit-drawdowns`, `billing-alerts`
and `credit-grant-dead-letters` (outputs).

Wire rules are the house rules (`schemas/wire.py`): decimals are strings, datetimes RFC 3339. Outputs always
write canonical decimals and `...sssZ` UTC milliseconds. Inputs accept any plain decimal string (`"10.50"` is
fine, a JSON number is not: a float must never touch money) and RFC 3339 with an explicit offset, normalised
to UTC and truncated to milliseconds.

Input records forbid unknown fields (unlike `usage-events`): a misspelt `expire_at` silently ignored would hand
out a grant that never expires, which is a money bug, not a forward-compatibility feature.

Invariants a consumer of `credit-drawdowns` may rely on, per (tenant, customer, currency):
- sum(grant amounts) - sum(amount of usage, catch_up and adjustment records) - sum(expiry) - sum(void) = balance;
- per line item: line amount = sum(amount of its usage, catch_up and adjustment records) + sum(their
  uncovered_amount); a catch_up record carries `uncovered_amount = -amount` (returned credit paid usage that was
  uncovered before);
- every line item has at least one `usage` record (a `grant_id: null` one when no grant touched it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    RootModel,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.usage_event import TIMESTAMP_PATTERN, IdString, parse_rfc3339
from schemas.wire import UtcMillis, WireDecimal, datetime_to_wire, decimal_to_wire

# ---- the rules as data ------------------------------------------------------------------------------------
CURRENCY_PATTERN = r"^[A-Z]{3}$"
AMOUNT_MAX_INTEGER_DIGITS = 20
AMOUNT_MAX_FRACTION_DIGITS = 18  # DECIMAL(38,18), as usage values
# A plain positive decimal: no sign, no exponent, no leading zeros; zero itself does not match. The fraction
# length limit of the `0.xxx` branch is checked by the model (the regex subset we use has no look-ahead).
POSITIVE_AMOUNT_PATTERN = (
    rf"^([1-9][0-9]{{0,{AMOUNT_MAX_INTEGER_DIGITS - 1}}}(\.[0-9]{{1,{AMOUNT_MAX_FRACTION_DIGITS}}})?"
    r"|0\.[0-9]*[1-9][0-9]*)$"
)
MIN_PRIORITY = 0
MAX_PRIORITY = 100
DEFAULT_PRIORITY = 50
# ----------------------------------------------------------------------------------------------------------

_POSITIVE_AMOUNT_RE = re.compile(POSITIVE_AMOUNT_PATTERN)


def _positive_amount(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise PydanticCustomError("invalid_amount", "must be a decimal string, never a float or bool")
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PydanticCustomError("invalid_amount", "must be finite")
        value = format(value, "f")
    if not isinstance(value, str) or len(value) > 64 or _POSITIVE_AMOUNT_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "invalid_amount", "must be a positive plain decimal string like 25 or 12.50 (no sign, no exponent)"
        )
    integer, _, fraction = value.partition(".")
    if len(integer) > AMOUNT_MAX_INTEGER_DIGITS or len(fraction) > AMOUNT_MAX_FRACTION_DIGITS:
        raise PydanticCustomError(
            "invalid_amount",
            f"must fit DECIMAL(38,18): at most {AMOUNT_MAX_INTEGER_DIGITS} integer and "
            f"{AMOUNT_MAX_FRACTION_DIGITS} fraction digits",
        )
    return Decimal(value)


def _input_instant(value: Any) -> datetime:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        utc = value.astimezone(UTC)
        return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    raise PydanticCustomError("invalid_timestamp", "must be an RFC 3339 string with an explicit offset")


# An input amount: positive, exact, serialised canonically.
PositiveAmount = Annotated[
    Decimal,
    PlainValidator(_positive_amount),
    PlainSerializer(decimal_to_wire, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": POSITIVE_AMOUNT_PATTERN}),
]
# An input instant: RFC 3339 with an offset, held as UTC milliseconds, written back as `...sssZ`.
InputInstant = Annotated[
    datetime,
    PlainValidator(_input_instant),
    PlainSerializer(datetime_to_wire, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
Currency = Annotated[StrictStr, Field(pattern=CURRENCY_PATTERN, description="ISO 4217 code")]


def _unique_meters(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise ValueError("applies_to has duplicate meters")
    return value


class GrantRejectionReason(StrEnum):
    """Why a `credit-grants` record was rejected. Stable codes; member order is the precedence (first wins).

    Kept apart from `DeadLetterReason` on purpose: that enum's order is mirrored by the job's Java usage
    parser. Codes that mean the same thing are spelt the same (`malformed_json`, `missing_field`, ...).
    """

    TOO_LARGE = "too_large"  # more than MAX_RECORD_BYTES bytes
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"  # a required field (or `type`) is absent or null
    INVALID_FIELD = "invalid_field"  # wrong type/length/range, unknown `type`, unknown field, bad applies_to
    INVALID_TIMESTAMP = "invalid_timestamp"  # effective_at / expires_at / voided_at not RFC 3339 with offset
    INVALID_AMOUNT = "invalid_amount"  # not a positive plain decimal fitting DECIMAL(38,18)
    EXPIRES_BEFORE_EFFECTIVE = "expires_before_effective"  # expires_at <= effective_at
    UNKNOWN_TENANT = "unknown_tenant"
    CURRENCY_MISMATCH = "currency_mismatch"  # grant currency is not the tenant's catalog currency
    AMOUNT_TOO_PRECISE = "amount_too_precise"  # more decimal places than the tenant's amount_precision

    @property
    def precedence(self) -> int:
        return list(GrantRejectionReason).index(self)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreditGrant(_Input):
    """Prepaid credit for one customer. Idempotent by `grant_id` (per tenant and customer)."""

    type: Literal["grant"]
    grant_id: IdString
    tenant_id: IdString
    customer_id: IdString
    amount: PositiveAmount
    currency: Currency
    priority: StrictInt = Field(
        default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY, description="lower is used first"
    )
    effective_at: InputInstant = Field(description="usage with window_start >= effective_at may draw")
    expires_at: InputInstant | None = Field(
        default=None, description="exclusive: usage with window_end <= expires_at may draw; null = never"
    )
    applies_to: Annotated[tuple[IdString, ...], Field(min_length=1), AfterValidator(_unique_meters)] | None = Field(
        default=None, description="meter keys this grant pays for; null = every meter"
    )
    category: Literal["paid", "promotional"]

    @model_validator(mode="after")
    def _expires_after_effective(self) -> CreditGrant:
        if self.expires_at is not None and self.expires_at <= self.effective_at:
            raise PydanticCustomError("expires_before_effective", "expires_at must be after effective_at")
        return self


class CreditVoid(_Input):
    """Removes the remaining balance of `grant_id` from `voided_at` on. A void may arrive before its grant."""

    type: Literal["void"]
    grant_id: IdString
    tenant_id: IdString
    customer_id: IdString
    voided_at: InputInstant


GrantEvent = CreditGrant | CreditVoid


class CreditGrantRecord(RootModel[Annotated[GrantEvent, Field(discriminator="type")]]):
    """One `credit-grants` record: a grant or a void, told apart by `type`."""

    model_config = ConfigDict(frozen=True)


class SpendCap(_Input):
    """A customer's spend cap per billing period; overrides the tenant's `credits.spend_cap_default` for every
    period that ends after `effective_at` (of several overrides, the latest `effective_at` wins)."""

    tenant_id: IdString
    customer_id: IdString
    amount: PositiveAmount
    currency: Currency
    effective_at: InputInstant


DrawdownKind = Literal["usage", "catch_up", "adjustment", "expiry", "void"]


class CreditDrawdown(BaseModel):
    """One movement of credit. `usage`: a line item drew (`amount` > 0) or returned (`amount` < 0) credit;
    `catch_up`: credit a negative line item gave back (`cause` = `line:<its id>`) paid earlier uncovered usage
    (`uncovered_amount = -amount`); `adjustment`: a correction of a line's drawdown from one grant after a grant,
    void or line item arrived out of event-time order (`cause` = `revision:<n>`; `amount` may be negative, the
    line's change of uncovered amount is on its last adjustment); `expiry` / `void`: the remaining balance of a grant
    went away (`amount` = that balance; a correction of it carries `cause` = `revision:<n>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drawdown_id: str = Field(
        description="uuid5 of v1|tenant|customer|kind|line_item_id|grant_id, then |cause if present")
    tenant_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    kind: DrawdownKind
    line_item_id: str | None = Field(description="null for expiry and void records")
    grant_id: str | None = Field(description="null on the one record of a line item no grant touched")
    meter: str | None = Field(description="the line item's meter; null for expiry and void")
    period_start: UtcMillis | None = Field(description="the line item's billing period; null for expiry and void")
    currency: Currency
    amount: WireDecimal = Field(description="credit drawn from the grant; negative = returned to it")
    grant_balance_after: WireDecimal | None = Field(description="null when grant_id is null; as written (see "
                                                    "customer_balance_after)")
    customer_balance_after: WireDecimal = Field(
        description="sum of the balances of all live grants in currency, as written: a record of a recomputation "
        "(a line or grant event out of event-time order) reports the balance once it is done, so a customer's last "
        "record written reports its balance now")
    uncovered_amount: WireDecimal = Field(description="part of the line no grant paid (to be invoiced)")
    event_time: UtcMillis
    emitted_at: UtcMillis
    cause: str | None = Field(
        default=None,
        description="null for a line's own records and a grant's expiry or void; `line:<line_item_id>` when credit a "
                    "negative line item gave back paid usage (catch_up); `revision:<n>` for corrections",
    )


AlertType = Literal["balance_low", "balance_exhausted", "spend_cap_reached", "balance_recovered"]


class BillingAlert(BaseModel):
    """A threshold crossing. Each fires once per crossing; `balance_low` and `balance_exhausted` are re-armed
    by a `balance_recovered` with the same threshold; `spend_cap_reached` fires once per billing period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: str = Field(description="uuid5 of v1|tenant|customer|type|currency|threshold key|cause")
    tenant_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    type: AlertType
    threshold: WireDecimal = Field(description="the absolute threshold crossed (0 for exhaustion)")
    threshold_percent: WireDecimal | None = Field(
        description="set when the threshold is a percent of the customer's granted live credit"
    )
    value: WireDecimal = Field(description="the balance (or, for the spend cap, the period spend) that crossed it")
    currency: Currency
    period_start: UtcMillis | None = Field(description="the billing period concerned, when known")
    action: Literal["block"] | None = Field(description="'block' for spend_cap_reached, else null")
    event_time: UtcMillis
    emitted_at: UtcMillis

    @model_validator(mode="after")
    def _action_only_for_spend_cap(self) -> BillingAlert:
        if (self.action == "block") != (self.type == "spend_cap_reached"):
            raise ValueError("action is 'block' exactly for spend_cap_reached")
        return self


class CreditGrantDeadLetter(BaseModel):
    """A rejected `credit-grants` record, shaped like `usage-dead-letters` but with grant reason codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: StrictStr = Field(description="the record as received: text, or base64 when not valid UTF-8")
    raw_encoding: Literal["utf-8", "base64"]
    raw_truncated: bool
    raw_size_bytes: int = Field(ge=0)
    reason: GrantRejectionReason
    detail: StrictStr = Field(description="a human sentence; not stable, do not parse")
    source_topic: StrictStr = Field(min_length=1)
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    received_at: UtcMillis
