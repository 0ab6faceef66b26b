"""The `usage-events` record (input): one metered usage fact sent by a tenant's producer.

The rules below are the contract; they are also data (the constants block), because the Java parser that runs
them in the job (`io.meterstream.validation.UsageEventParser`) reads them from constants generated from this block
(`python -m udfs.java_rules`), and golden vectors (`python -m udfs.golden`) hold the two together. Keep every
rule simple enough to state in one line.

- `event_id`, `tenant_id`, `customer_id`, `meter`: JSON strings of 1..128 characters (Unicode code points).
  `event_id` is the idempotency key, unique per tenant. A number is not a string.
- `timestamp`: either an RFC 3339 string with an explicit offset (`Z` or `+hh:mm`/`-hh:mm`; uppercase `T`
  and `Z`; 0 to 9 fraction digits; no leap second), or a JSON integer of epoch milliseconds in
  0..253402300799999. Normalised to UTC and truncated (not rounded) to milliseconds.
- `value`: a decimal that fits DECIMAL(38,18), as a JSON string or a JSON number token; either way its text
  must match `VALUE_PATTERN` (no exponent, no leading zeros, no `+`, at most 20 integer and 18 fraction
  digits; trailing fractional zeros count). Optional here; required for meters that are not
  `count`/`unique_count`, which `udfs.validation` checks against the catalog. Negative values are
  rejected; zero is fine.
- `dimensions`: an optional flat JSON object of string keys (1..128 chars) to string values (0..1024 chars).
- A `null` in any of these fields means the same as the field being absent.
- Unknown top-level fields are allowed and ignored (forward compatibility: producers may add fields before
  the job knows them). They are not carried into `UsageEvent`.
- Strings must be encodable as UTF-8 (no lone surrogates from `\\ud800` escapes): we must be able to write
  them back out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.wire import ExactJsonModel, JsonNumber, datetime_to_wire, decimal_to_wire

# ---- the rules as data (generated into Java by udfs.java_rules; regenerate after a change) ---------------
ID_FIELDS = ("event_id", "tenant_id", "customer_id", "meter")
REQUIRED_FIELDS = (*ID_FIELDS, "timestamp")
# Field order: used to pick which field a detail names when several fields are wrong for the same reason.
FIELD_ORDER = (*REQUIRED_FIELDS, "value", "dimensions")
ID_MIN_LENGTH = 1
ID_MAX_LENGTH = 128
DIMENSION_KEY_MIN_LENGTH = 1
DIMENSION_KEY_MAX_LENGTH = 128
DIMENSION_VALUE_MAX_LENGTH = 1024
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18
VALUE_MAX_INTEGER_DIGITS = DECIMAL_PRECISION - DECIMAL_SCALE  # 20
VALUE_PATTERN = rf"^-?(0|[1-9][0-9]{{0,{VALUE_MAX_INTEGER_DIGITS - 1}}})(\.[0-9]{{1,{DECIMAL_SCALE}}})?$"
# The JSON Schema's string form also excludes negatives (so the schema alone rejects negative_value examples);
# "-0" and "-0.00" are zero, not negative.
NON_NEGATIVE_VALUE_PATTERN = (
    rf"^(-?0(\.0{{1,{DECIMAL_SCALE}}})?"
    rf"|(0|[1-9][0-9]{{0,{VALUE_MAX_INTEGER_DIGITS - 1}}})(\.[0-9]{{1,{DECIMAL_SCALE}}})?)$"
)
TIMESTAMP_PATTERN = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
EPOCH_MILLIS_PATTERN = r"^-?(0|[1-9][0-9]*)$"  # a JSON integer token
MIN_EPOCH_MILLIS = 0
MAX_EPOCH_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# ----------------------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_VALUE_RE = re.compile(VALUE_PATTERN)
_EPOCH_MILLIS_RE = re.compile(EPOCH_MILLIS_PATTERN)


def _utf8_encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("not_utf8_encodable", "contains a lone surrogate (not encodable as UTF-8)") from None
    return value


IdString = Annotated[
    StrictStr,
    StringConstraints(min_length=ID_MIN_LENGTH, max_length=ID_MAX_LENGTH),
    AfterValidator(_utf8_encodable),
]
DimensionKey = Annotated[
    StrictStr,
    StringConstraints(min_length=DIMENSION_KEY_MIN_LENGTH, max_length=DIMENSION_KEY_MAX_LENGTH),
    AfterValidator(_utf8_encodable),
]
DimensionValue = Annotated[
    StrictStr, StringConstraints(max_length=DIMENSION_VALUE_MAX_LENGTH), AfterValidator(_utf8_encodable)
]
Dimensions = dict[DimensionKey, DimensionValue]


def _invalid_timestamp(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_timestamp", message)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 string with an explicit offset -> aware UTC datetime truncated to milliseconds."""
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise _invalid_timestamp("must be RFC 3339 with an explicit offset (Z or +hh:mm) or epoch milliseconds")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, offset = match.group(7), match.group(8)
    millis = int((fraction[1:] + "00")[:3]) if fraction else 0
    if offset == "Z":
        tz = UTC
    else:
        offset_hours, offset_minutes = int(offset[1:3]), int(offset[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            raise _invalid_timestamp("offset out of range")
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=offset_hours, minutes=offset_minutes))
    try:
        local = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid_timestamp("not a valid calendar time in years 0001..9999 UTC") from None


def epoch_millis_to_datetime(millis: int) -> datetime:
    if not MIN_EPOCH_MILLIS <= millis <= MAX_EPOCH_MILLIS:
        raise _invalid_timestamp(f"epoch milliseconds must be in {MIN_EPOCH_MILLIS}..{MAX_EPOCH_MILLIS}")
    return _EPOCH + timedelta(milliseconds=millis)


def _event_timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, JsonNumber):
        if _EPOCH_MILLIS_RE.fullmatch(value.text) is None:
            raise _invalid_timestamp("epoch milliseconds must be a JSON integer")
        if len(value.text) > len(str(MAX_EPOCH_MILLIS)) + 1:  # too long to be in range; skip int()
            raise _invalid_timestamp(f"epoch milliseconds must be in {MIN_EPOCH_MILLIS}..{MAX_EPOCH_MILLIS}")
        return epoch_millis_to_datetime(int(value.text))
    if isinstance(value, int) and not isinstance(value, bool):
        return epoch_millis_to_datetime(value)
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        try:
            return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)
        except OverflowError:
            raise _invalid_timestamp("out of range in UTC") from None
    raise _invalid_timestamp("must be an RFC 3339 string with an offset or an integer of epoch milliseconds")


def _invalid_value(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_value", message)


def _event_value(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, JsonNumber):
        text = value.text
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 10**VALUE_MAX_INTEGER_DIGITS:
            raise _invalid_value(f"more than {VALUE_MAX_INTEGER_DIGITS} integer digits")
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise _invalid_value("must be finite")
        text = format(value, "f")
    elif isinstance(value, float):
        raise _invalid_value("a binary float is not an exact decimal; pass the JSON text or a string")
    else:
        raise _invalid_value("must be a decimal string or a JSON number")
    if _VALUE_RE.fullmatch(text) is None:
        raise _invalid_value(
            f"must be a plain decimal (no exponent) with at most {VALUE_MAX_INTEGER_DIGITS} integer and "
            f"{DECIMAL_SCALE} fraction digits, i.e. fit DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})"
        )
    result = Decimal(text)
    if result < 0:
        raise PydanticCustomError("negative_value", "must not be negative")
    return result


EventTimestamp = Annotated[
    datetime,
    PlainValidator(_event_timestamp),
    PlainSerializer(datetime_to_wire, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
                {"type": "integer", "minimum": MIN_EPOCH_MILLIS, "maximum": MAX_EPOCH_MILLIS},
            ],
            "description": "RFC 3339 with an explicit offset, or epoch milliseconds; normalised to UTC ms",
        }
    ),
]
EventValue = Annotated[
    Decimal | None,
    PlainValidator(_event_value),
    PlainSerializer(lambda v: None if v is None else decimal_to_wire(v), when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": NON_NEGATIVE_VALUE_PATTERN},
                {"type": "number", "minimum": 0},
                {"type": "null"},
            ],
            "description": "a non-negative DECIMAL(38,18); a JSON number must be written without exponent "
            "and match the same pattern",
        }
    ),
]


class UsageEvent(ExactJsonModel):
    """A validated, normalised usage event (unknown top-level fields dropped)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: IdString = Field(description="idempotency key, unique per tenant")
    tenant_id: IdString
    customer_id: IdString
    meter: IdString
    timestamp: EventTimestamp
    value: EventValue = Field(default=None)
    dimensions: Annotated[
        Dimensions,
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "object",
                        "propertyNames": {
                            "minLength": DIMENSION_KEY_MIN_LENGTH,
                            "maxLength": DIMENSION_KEY_MAX_LENGTH,
                        },
                        "additionalProperties": {"type": "string", "maxLength": DIMENSION_VALUE_MAX_LENGTH},
                    },
                    {"type": "null"},
                ],
                "description": "flat string -> string attributes (group-by keys, the unique_count key)",
            }
        ),
    ] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (v is None and k in FIELD_ORDER)}
        return data
