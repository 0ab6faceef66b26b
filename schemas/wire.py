"""Wire rules shared by the topic models: exact JSON numbers, decimal strings, UTC millisecond timestamps.

Every regex here is written in the subset that Python `re`, ECMAScript (JSON Schema `pattern`) and Java
(`java.util.regex`, as JVM JSON Schema validators use it) read the same way: ASCII classes (`[0-9]`, never
`\\d`), explicit `^...$` anchors.
Python callers use `re.fullmatch`, because Python's `$` also matches before a trailing newline.

`schemas/invoice_line_item.py` carries its own copy of `decimal_to_wire`/`datetime_to_wire`;
`tests/unit/test_contract.py` checks both copies agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, PlainSerializer, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

# Canonical decimal as we write it: plain notation, no trailing fractional zeros, "0" never "-0".
DECIMAL_PATTERN = r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"
# UTC instant as we write it: RFC 3339, always milliseconds, always `Z`.
UTC_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


@dataclass(frozen=True, slots=True)
class JsonNumber:
    """A JSON number token kept exactly as written, so no digit is lost to a binary float.

    `loads_exact` produces these for every number (integers included), which also keeps a 5000-digit
    integer from tripping Python's int-conversion limit inside the JSON parser.
    """

    text: str

    @property
    def is_integer_token(self) -> bool:
        return not any(c in self.text for c in ".eE")


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity/-Infinity by default; JSON (and Jackson) do not.
    raise ValueError(f"{name} is not valid JSON")


def loads_exact(text: str) -> Any:
    """`json.loads` keeping every number as a `JsonNumber`; of duplicate keys the last wins (as Jackson)."""
    return json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_reject_constant)


def decimal_to_wire(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"non-finite decimal {value}")
    if value.is_zero():
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def truncate_to_millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def datetime_to_wire(value: datetime) -> str:
    # isoformat of an aware UTC datetime ends in "+00:00"; it is several times faster than strftime.
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _utc_millis(value: Any) -> datetime:
    if isinstance(value, str):
        if re.fullmatch(UTC_PATTERN, value) is None:
            raise PydanticCustomError("utc_datetime", "must be an RFC 3339 UTC time like 2026-11-24T08:31:35.123Z")
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "utc_datetime", "not a valid calendar time: {error}", {"error": str(exc)}
            ) from None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("utc_datetime", "must be a timezone-aware datetime")
    try:
        return truncate_to_millis(value.astimezone(UTC))
    except OverflowError as exc:
        raise PydanticCustomError("utc_datetime", "out of range in UTC: {error}", {"error": str(exc)}) from None


def _wire_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str) and len(value) <= 200:
        if re.fullmatch(DECIMAL_PATTERN, value) is None:
            raise PydanticCustomError("wire_decimal", "must be a canonical decimal string like 12.5")
        result = Decimal(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    else:
        raise PydanticCustomError("wire_decimal", "must be a decimal string (never a float or bool)")
    if not result.is_finite():
        raise PydanticCustomError("wire_decimal", "must be finite")
    return result


# An output timestamp: accepts aware datetimes (or the wire string), holds UTC truncated to milliseconds,
# serialises as `2026-11-24T08:31:35.123Z`.
UtcMillis = Annotated[
    datetime,
    PlainValidator(_utc_millis),
    PlainSerializer(datetime_to_wire, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": UTC_PATTERN}),
]

# An output decimal: serialised as a canonical string.
WireDecimal = Annotated[
    Decimal,
    PlainValidator(_wire_decimal),
    PlainSerializer(decimal_to_wire, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}),
]


class ExactJsonModel(BaseModel):
    """Base of the input models whose JSON numbers are money or quantities (`usage-events`, `usage-corrections`):
    `model_validate_json` parses with `loads_exact`, so a JSON number keeps every digit (pydantic's own parser reads
    it as a binary float first); `to_wire` writes the canonical JSON form."""

    @classmethod
    def model_validate_json(
        cls, json_data: str | bytes | bytearray, *, strict: bool | None = None, context: Any = None, **_: Any
    ) -> Any:
        try:
            text = json_data if isinstance(json_data, str) else bytes(json_data).decode("utf-8")
            data = loads_exact(text)
        except (ValueError, RecursionError) as exc:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [{"type": "json_invalid", "loc": (), "input": json_data, "ctx": {"error": str(exc)}}],
            ) from None
        return cls.model_validate(data, strict=strict, context=context)

    def to_wire(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
