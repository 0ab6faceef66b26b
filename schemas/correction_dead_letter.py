"""The `usage-correction-dead-letters` record: a `usage-corrections` record we did not apply, with a stable reason.

Shaped like `usage-dead-letters` (`raw` as received: text when UTF-8, else base64; truncated at the record size
limit, `raw_size_bytes` the original size) plus what a billing user needs to join a rejection to its source without
parsing `raw`: `correction_id`, `tenant_id` and `event_id` as far as the record gave them (null when the record did
not parse that far), and, for `event_dead_lettered`, the usage dead-letter reason of the event.

Every `usage-corrections` record is accounted for: applied (with or without a change of the bill) or here with
exactly one reason. A rejection is final for its `correction_id` (the first copy by arrival decides, as for event
ids): to retry a correction rejected as `unknown_event` (sent before its event arrived), send it with a new
`correction_id`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from schemas.dead_letter import DeadLetterReason
from schemas.wire import UtcMillis


class CorrectionRejectionReason(StrEnum):
    """Why a correction was rejected. The values are stable codes; the member order is the precedence.

    A record is checked top to bottom and the first failing check decides. 1-12 depend on the record alone (the
    JSON Schema and the model reject those records, except `too_large` and, for the JSON Schema, `not_utf8`);
    13 needs the catalog, 14-15 the memory of correction ids, 16-19 the correction ledger, 20-21 the ledger
    and the catalog (`udfs.corrections`).
    Kept apart from `DeadLetterReason`, whose order the Java usage parser mirrors; equal meanings use equal codes.
    """

    TOO_LARGE = "too_large"  # more than MAX_RECORD_BYTES bytes
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"  # not exactly one JSON text
    NOT_AN_OBJECT = "not_an_object"
    UNAMENDABLE_FIELD = "unamendable_field"  # customer_id, meter or timestamp given: cancel + new event instead
    MISSING_FIELD = "missing_field"  # correction_id, tenant_id, event_id, action or sent_at absent or null
    INVALID_FIELD = "invalid_field"  # wrong type/length, unknown action, unknown field, bad dimensions or note
    INVALID_TIMESTAMP = "invalid_timestamp"  # sent_at neither RFC 3339 with offset nor epoch ms in range
    INVALID_VALUE = "invalid_value"  # value present but not a decimal that fits DECIMAL(38,18)
    NEGATIVE_VALUE = "negative_value"  # value < 0
    PAYLOAD_ON_CANCEL = "payload_on_cancel"  # a cancel carrying value or dimensions (which one was meant?)
    NOTHING_TO_AMEND = "nothing_to_amend"  # an amend carrying neither value nor dimensions
    UNKNOWN_TENANT = "unknown_tenant"  # tenant_id not in the catalog
    DUPLICATE_CORRECTION = "duplicate_correction"  # correction_id seen before with the same payload (a retry)
    CONFLICTING_CORRECTION = "conflicting_correction"  # correction_id seen before with another payload
    EVENT_DEAD_LETTERED = "event_dead_lettered"  # the event itself went to usage-dead-letters: nothing was billed
    UNKNOWN_EVENT = "unknown_event"  # no such event seen (not yet, never, or forgotten after the dedup horizon)
    OUTSIDE_HORIZON = "outside_horizon"  # the event was first seen more than the correction horizon ago
    ALREADY_CANCELLED = "already_cancelled"  # the event is cancelled: a second cancel, or an amend after it
    UNKNOWN_METER = "unknown_meter"  # the event's meter is no longer in the tenant's catalog
    # the event's meter is a unique_count one (rated in Python, no window contents kept yet), or a max/min/last one
    # billed before the job retained window contents: rejected, never counted applied with the bill unchanged
    AGGREGATION_NOT_CORRECTABLE = "aggregation_not_correctable"

    @property
    def precedence(self) -> int:
        return _PRECEDENCE[self]


_PRECEDENCE = {reason: index for index, reason in enumerate(CorrectionRejectionReason)}


# The model validator below, in JSON Schema: the event's reason is given exactly for event_dead_lettered.
_EVENT_REASON_RULE = {
    "if": {"properties": {"reason": {"const": CorrectionRejectionReason.EVENT_DEAD_LETTERED.value}}},
    "then": {"properties": {"event_dead_letter_reason": {"type": "string"}}},
    "else": {"properties": {"event_dead_letter_reason": {"type": "null"}}},
}


class CorrectionDeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_EVENT_REASON_RULE)

    raw: StrictStr = Field(description="the record as received: text, or base64 when not valid UTF-8")
    raw_encoding: Literal["utf-8", "base64"]
    raw_truncated: bool = Field(description="true when only the first MAX_RECORD_BYTES bytes are kept")
    raw_size_bytes: int = Field(ge=0, description="size of the record as received")
    reason: CorrectionRejectionReason
    detail: StrictStr = Field(description="a human sentence; not stable, do not parse")
    correction_id: StrictStr | None = Field(description="as given, when the record had a valid one; else null")
    tenant_id: StrictStr | None = Field(description="as given, when the record had a valid one; else null")
    event_id: StrictStr | None = Field(description="as given, when the record had a valid one; else null")
    event_dead_letter_reason: DeadLetterReason | None = Field(
        description="for event_dead_lettered: why the event was rejected; else null"
    )
    source_topic: StrictStr = Field(min_length=1)
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    received_at: UtcMillis

    @model_validator(mode="after")
    def _event_reason_only_for_event_dead_lettered(self) -> CorrectionDeadLetter:
        dead_lettered = self.reason is CorrectionRejectionReason.EVENT_DEAD_LETTERED
        if (self.event_dead_letter_reason is not None) != dead_lettered:
            raise ValueError("event_dead_letter_reason is given exactly when reason is event_dead_lettered")
        return self
