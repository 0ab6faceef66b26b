"""The `usage-corrections` record (input): a tenant cancels or amends one usage event it sent earlier.

A correction names the event by (`tenant_id`, `event_id`) and carries its own idempotency key, `correction_id`
(unique per tenant, like `event_id` is for events: the first copy by arrival decides, every later copy of the id is
a duplicate). `udfs.corrections` validates it (`validate_correction_record`) and decides it against the correction
ledger; rejected corrections go to `usage-correction-dead-letters` (`schemas.correction_dead_letter`).

- `correction_id`, `tenant_id`, `event_id`: JSON strings of 1..128 characters, the limits of `usage-events` ids.
- `action`: `cancel` (the event's contribution is reversed as if it had never been sent) or `amend` (the event's
  `value` and/or `dimensions` are replaced; every other field stays the original's).
- `value` (amend only): the replacement value, under the `usage-events` value rule (non-negative, fits
  DECIMAL(38,18), a decimal string or a JSON number token without exponent). Absent/null: the value is kept.
- `dimensions` (amend only): the replacement dimension map, **whole** (not merged key by key: a merge could never
  remove a dimension), under the `usage-events` dimension rules. Absent/null: the dimensions are kept; `{}`
  replaces them with none. Changing a group-by dimension moves the event to another series of the same customer,
  meter and window, which is why the correction's output is a remove and an add (`udfs.corrections`).
- An amend must carry `value` or `dimensions`; a cancel must carry neither.
- `customer_id`, `meter` and `timestamp` can **not** be amended (`unamendable_field`): each decides the series
  or the window the event was billed in, and moving usage to another customer, meter or window is not a change
  of the event but another event. Send a `cancel` and a new event with a new `event_id` (which is then checked
  like any event: catalog, age, lateness).
- `sent_at`: when the tenant issued the correction, RFC 3339 with an explicit offset or epoch milliseconds (the
  `usage-events` timestamp rule). For audit only: the correction horizon is measured in processing time from
  when the event was first seen (as the dedup horizon), never by a client clock.
- `note`: an optional free text of at most 1024 characters (why the correction was made), carried to the audit
  trail and not interpreted.
- A `null` in an optional field means the field is absent. Unknown fields are **rejected** (as for
  `credit-grants`): a misspelt `vaule` silently ignored would bill the wrong amount.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictStr, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from schemas.usage_event import (
    DIMENSION_KEY_MAX_LENGTH,
    DIMENSION_KEY_MIN_LENGTH,
    DIMENSION_VALUE_MAX_LENGTH,
    Dimensions,
    EventTimestamp,
    EventValue,
    IdString,
)
from schemas.wire import ExactJsonModel

# ---- the rules as data ------------------------------------------------------------------------------------
CORRECTION_ACTIONS = ("cancel", "amend")
REQUIRED_FIELDS = ("correction_id", "tenant_id", "event_id", "action", "sent_at")
# Field order: used to pick which field a detail names when several fields are wrong for the same reason.
FIELD_ORDER = (*REQUIRED_FIELDS, "value", "dimensions", "note")
AMENDABLE_FIELDS = ("value", "dimensions")
# Fields of the event that decide its series or window: a correction carrying one is rejected (unamendable_field).
UNAMENDABLE_FIELDS = ("customer_id", "meter", "timestamp")
NOTE_MAX_LENGTH = 1024
# ----------------------------------------------------------------------------------------------------------

_DIMENSIONS_SCHEMA = {
    "type": "object",
    "propertyNames": {"minLength": DIMENSION_KEY_MIN_LENGTH, "maxLength": DIMENSION_KEY_MAX_LENGTH},
    "additionalProperties": {"type": "string", "maxLength": DIMENSION_VALUE_MAX_LENGTH},
}


def _absent(field: str) -> dict[str, Any]:
    return {"anyOf": [{"not": {"required": [field]}}, {"properties": {field: {"type": "null"}}}]}


def _present(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"not": {"type": "null"}}}}


# What the model validators say, in JSON Schema: a cancel carries no payload, an amend carries one.
_ACTION_RULES = {
    "allOf": [
        {
            "if": {"properties": {"action": {"const": "cancel"}}, "required": ["action"]},
            "then": {"allOf": [_absent(field) for field in AMENDABLE_FIELDS]},
        },
        {
            "if": {"properties": {"action": {"const": "amend"}}, "required": ["action"]},
            "then": {"anyOf": [_present(field) for field in AMENDABLE_FIELDS]},
        },
    ]
}


class UsageCorrection(ExactJsonModel):
    """A validated correction of one usage event (see the module docstring for every rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_ACTION_RULES)

    correction_id: IdString = Field(description="idempotency key of the correction, unique per tenant")
    tenant_id: IdString
    event_id: IdString = Field(description="the usage event corrected (its event_id in usage-events)")
    action: Literal["cancel", "amend"]
    value: EventValue = Field(default=None, description="amend: the replacement value; null/absent: kept")
    dimensions: Annotated[
        Dimensions | None,
        WithJsonSchema(
            {
                "anyOf": [_DIMENSIONS_SCHEMA, {"type": "null"}],
                "description": "amend: the replacement dimension map, whole; null/absent: kept",
            }
        ),
    ] = None
    sent_at: EventTimestamp = Field(description="when the tenant issued the correction; audit only")
    note: Annotated[StrictStr, Field(max_length=NOTE_MAX_LENGTH)] | None = Field(
        default=None, description="free text for the audit trail, not interpreted"
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent_and_nothing_unamendable(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        unamendable = [name for name in UNAMENDABLE_FIELDS if data.get(name) is not None]
        if unamendable:
            raise PydanticCustomError(
                "unamendable_field",
                "{fields}: a correction cannot change the customer, meter or timestamp of an event (they decide "
                "its series and window); cancel it and send a new event",
                {"fields": ", ".join(unamendable)},
            )
        return {
            k: v for k, v in data.items() if not (v is None and (k in FIELD_ORDER or k in UNAMENDABLE_FIELDS))
        }

    @model_validator(mode="after")
    def _payload_fits_action(self) -> UsageCorrection:
        has_payload = self.value is not None or self.dimensions is not None
        if self.action == "cancel" and has_payload:
            raise PydanticCustomError("payload_on_cancel", "a cancel carries no value and no dimensions")
        if self.action == "amend" and not has_payload:
            raise PydanticCustomError("nothing_to_amend", "an amend must carry a value or dimensions")
        return self
