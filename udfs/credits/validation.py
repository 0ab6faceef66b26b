"""Validate one raw `credit-grants` (or `spend-caps`) record: bytes in, a model or a `GrantRejection` out.

Never raises because of `raw`. Checks run top to bottom and the first failing one decides the reason
(`GrantRejectionReason` member order):

     1 too_large                 len(raw) > MAX_RECORD_BYTES (64 KiB, as usage events)
     2 not_utf8                  not strict UTF-8
     3 malformed_json            not exactly one JSON text (NaN/Infinity, empty, trailing data included)
     4 not_an_object             top-level JSON is not an object
     5 missing_field             a required field (or `type`) is absent or null
     6 invalid_field             wrong type, length or range; unknown `type`; an unknown field; bad applies_to
     7 invalid_timestamp         a time that is not RFC 3339 with an explicit offset
     8 invalid_amount            amount not a positive plain decimal string fitting DECIMAL(38,18)
     9 expires_before_effective  expires_at <= effective_at
    10 unknown_tenant            tenant_id not in the catalog
    11 currency_mismatch         currency differs from the tenant's catalog currency
    12 amount_too_precise        more decimal places than the tenant's amount_precision (trailing zeros ignored)

Reasons 5-8 are all the structural problems at once; the earliest reason wins, the detail names its field.
A void only needs the tenant to be known (its grant may not have arrived yet).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from schemas.credits import (
    CreditGrant,
    CreditGrantDeadLetter,
    CreditGrantRecord,
    GrantEvent,
    GrantRejectionReason,
    SpendCap,
)
from udfs.validation import MAX_RECORD_BYTES, raw_record_fields

_REQUIRED_BY_TYPE = {
    "grant": {"type", "grant_id", "tenant_id", "customer_id", "amount", "currency", "effective_at", "category"},
    "void": {"type", "grant_id", "tenant_id", "customer_id", "voided_at"},
    "spend_cap": {"tenant_id", "customer_id", "amount", "currency", "effective_at"},
}


class TenantMoney(Protocol):
    """What validation needs of a tenant: `udfs.catalog.TenantCatalog` fits (pass `catalog.tenants`)."""

    currency: str
    amount_precision: int


@dataclass(frozen=True, slots=True)
class GrantRejection:
    reason: GrantRejectionReason
    detail: str


def validate_grant_record(
    raw: bytes | bytearray | memoryview | None, *, tenants: Mapping[str, TenantMoney]
) -> GrantEvent | GrantRejection:
    """A `CreditGrant` or `CreditVoid`, or why not. `tenants` is `Catalog.tenants`."""
    parsed = _parse(raw, CreditGrantRecord)
    if isinstance(parsed, GrantRejection):
        return parsed
    return _check_tenant(parsed.root, tenants)


def validate_spend_cap_record(
    raw: bytes | bytearray | memoryview | None, *, tenants: Mapping[str, TenantMoney]
) -> SpendCap | GrantRejection:
    """A `SpendCap`, or why not (same reason codes as grants)."""
    parsed = _parse(raw, SpendCap)
    if isinstance(parsed, GrantRejection):
        return parsed
    return _check_tenant(parsed, tenants)


def _parse(raw: bytes | bytearray | memoryview | None, model: type[BaseModel]) -> Any:
    data = b"" if raw is None else bytes(raw)
    if len(data) > MAX_RECORD_BYTES:
        return GrantRejection(
            GrantRejectionReason.TOO_LARGE, f"record is {len(data)} bytes, more than the limit of {MAX_RECORD_BYTES}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return GrantRejection(GrantRejectionReason.NOT_UTF8, f"record is not valid UTF-8 (byte {exc.start})")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return GrantRejection(GrantRejectionReason.MALFORMED_JSON, f"record is not valid JSON: {str(exc)[:200]}")
    if not isinstance(obj, dict):
        return GrantRejection(GrantRejectionReason.NOT_AN_OBJECT, "record is not a JSON object")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        return _structural_rejection(exc, obj, grant_union=model is CreditGrantRecord)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _structural_rejection(exc: ValidationError, obj: dict[str, Any], *, grant_union: bool) -> GrantRejection:
    if grant_union:
        record_type = obj.get("type")
        required = _REQUIRED_BY_TYPE.get(record_type, {"type"}) if isinstance(record_type, str) else {"type"}
    else:
        required = _REQUIRED_BY_TYPE["spend_cap"]
    candidates = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if grant_union and loc and loc[0] in ("grant", "void"):
            loc = loc[1:]
        field = loc[0] if loc else ""
        reason = _reason_for(field, error["type"], error.get("input"), required)
        path = ".".join(loc) or "record"
        candidates.append((reason.precedence, path, reason, str(error["msg"])))
    _, path, reason, message = min(candidates)
    if reason is GrantRejectionReason.MISSING_FIELD:
        return GrantRejection(reason, f"field {path!r} is required (absent or null)")
    return GrantRejection(reason, f"field {path!r}: {message}")


def _reason_for(field: str, error_type: str, value: Any, required: set[str]) -> GrantRejectionReason:
    if error_type in ("missing", "union_tag_not_found") or (value is None and field in required):
        return GrantRejectionReason.MISSING_FIELD
    if error_type in ("invalid_timestamp", "utc_datetime"):
        return GrantRejectionReason.INVALID_TIMESTAMP
    if error_type == "invalid_amount":
        return GrantRejectionReason.INVALID_AMOUNT
    if error_type == "expires_before_effective":
        return GrantRejectionReason.EXPIRES_BEFORE_EFFECTIVE
    return GrantRejectionReason.INVALID_FIELD


def _check_tenant(record: Any, tenants: Mapping[str, TenantMoney]) -> Any:
    tenant = tenants.get(record.tenant_id)
    if tenant is None:
        return GrantRejection(GrantRejectionReason.UNKNOWN_TENANT, f"tenant {record.tenant_id!r} is not in the catalog")
    if not isinstance(record, CreditGrant | SpendCap):
        return record
    if record.currency != tenant.currency:
        return GrantRejection(
            GrantRejectionReason.CURRENCY_MISMATCH,
            f"currency {record.currency} is not tenant {record.tenant_id!r}'s currency {tenant.currency}",
        )
    if _decimal_places(record.amount) > tenant.amount_precision:
        return GrantRejection(
            GrantRejectionReason.AMOUNT_TOO_PRECISE,
            f"amount {record.amount} has more than {tenant.amount_precision} decimal places",
        )
    return record


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def dead_letter_for_grant(
    raw: bytes | bytearray | memoryview | None,
    rejection: GrantRejection,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    received_at: datetime,
) -> CreditGrantDeadLetter:
    """The `credit-grant-dead-letters` record, raw record encoded as for usage events."""
    return CreditGrantDeadLetter(
        **raw_record_fields(raw),
        reason=rejection.reason,
        detail=rejection.detail,
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        received_at=received_at,
    )
