"""The `usage-dead-letters` record: a usage record we could not accept, with a stable reason.

`raw` carries the record as received so it can be inspected and replayed: as text when the bytes are valid
UTF-8 (`raw_encoding = "utf-8"`), otherwise base64 (`raw_encoding = "base64"`). A record over the size limit
is kept only up to that limit (`raw_truncated = true`, `raw_size_bytes` is the original size), so a dead
letter can never be larger than what the input topic accepts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from schemas.wire import UtcMillis


class DeadLetterReason(StrEnum):
    """Why a usage record was rejected. The values are stable codes; the member order is the precedence.

    When several reasons apply, the first one in this order wins (a record is checked top to bottom and the
    first failing check decides). The Java parser reads this order from the generated `io.meterstream.rules.Rules`.
    """

    TOO_LARGE = "too_large"  # more than MAX_RECORD_BYTES bytes
    NOT_UTF8 = "not_utf8"  # bytes are not valid UTF-8
    MALFORMED_JSON = "malformed_json"  # not one JSON text (incl. NaN/Infinity, empty, trailing data, BOM)
    NOT_AN_OBJECT = "not_an_object"  # valid JSON, but not an object at the top level
    MISSING_FIELD = "missing_field"  # a required field is absent or null
    INVALID_FIELD = "invalid_field"  # id or dimensions field of the wrong type, length or form
    INVALID_TIMESTAMP = "invalid_timestamp"  # timestamp neither RFC 3339 with offset nor epoch ms in range
    INVALID_VALUE = "invalid_value"  # value present but not a decimal that fits DECIMAL(38,18)
    NEGATIVE_VALUE = "negative_value"  # value < 0
    # read from a tenant topic (--usage-topic-prefix) and tenant_id is not that topic's tenant
    TENANT_MISMATCH = "tenant_mismatch"
    UNKNOWN_TENANT = "unknown_tenant"  # tenant_id not in the catalog
    UNKNOWN_METER = "unknown_meter"  # meter not in the tenant's catalog
    MISSING_VALUE = "missing_value"  # value absent/null for a meter whose aggregation needs one
    TOO_OLD = "too_old"  # timestamp < now - max_age
    TOO_FAR_IN_FUTURE = "too_far_in_future"  # timestamp > now + max_future_skew

    @property
    def precedence(self) -> int:
        return _PRECEDENCE[self]


_PRECEDENCE = {reason: index for index, reason in enumerate(DeadLetterReason)}


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: StrictStr = Field(description="the record as received: text, or base64 when not valid UTF-8")
    raw_encoding: Literal["utf-8", "base64"]
    raw_truncated: bool = Field(description="true when only the first MAX_RECORD_BYTES bytes are kept")
    raw_size_bytes: int = Field(ge=0, description="size of the record as received")
    reason: DeadLetterReason
    detail: StrictStr = Field(description="a human sentence; not stable, do not parse")
    source_topic: StrictStr = Field(min_length=1)
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    received_at: UtcMillis
