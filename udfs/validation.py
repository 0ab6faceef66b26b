"""Validate one raw `usage-events` record: bytes in, a `UsageEvent` or a `Rejection` out. Never raises.

Checks run in a fixed order and the first failing check decides the reason (the order of `DeadLetterReason`):

     1 too_large          len(raw) > MAX_RECORD_BYTES
     2 not_utf8           raw is not strict UTF-8
     3 malformed_json     not exactly one JSON text (NaN/Infinity, a BOM, trailing data, empty input included)
     4 not_an_object      the JSON text is not an object
     5 missing_field      a REQUIRED_FIELDS member is absent or null
     6 invalid_field      an id field or `dimensions` has the wrong type, length, or a lone surrogate
     7 invalid_timestamp  `timestamp` is not RFC 3339-with-offset nor epoch ms in range
     8 invalid_value      `value` present but its text does not match VALUE_PATTERN (fits DECIMAL(38,18))
     9 negative_value     `value` < 0 (zero and "-0" are fine)
    10 tenant_mismatch    read from a tenant topic (`topic_tenant` given) and tenant_id is not that topic's tenant
    11 unknown_tenant     tenant_id not in meters_by_tenant
    12 unknown_meter      meter not in meters_by_tenant[tenant_id]
    13 missing_value      value absent/null and the meter's aggregation is not in VALUE_OPTIONAL_AGGREGATIONS
    14 too_old            timestamp < now - max_age
    15 too_far_in_future  timestamp > now + max_future_skew

Reasons 5-9 are all the structural problems at once; the reason is the one earliest in the list above, and the
detail names the first affected field in FIELD_ORDER. Boundaries are inclusive on the accepted side: an
event exactly `max_age` old or exactly `max_future_skew` ahead is accepted. Time checks use the event
timestamp after truncation to milliseconds and `now` exactly as given.

Decisions:
- `count` and `unique_count` meters do not need a value. If one is present it must still be a valid,
  non-negative decimal (checks 8-9 run before the catalog is consulted), and it is kept on the event; the
  aggregations ignore it.
- Unknown aggregation names in `meters_by_tenant` are treated as needing a value (the safe default).
- Tenant topics (`--usage-topic-prefix`): the tenant of a record read from topic `<prefix><tenant>` is the topic
  name after the prefix (`tenant_of_topic`); Kafka ACLs decide who may write each topic, so the topic, not the record,
  says whose usage it is. A record naming another tenant is `tenant_mismatch` (the detail names both). It needs a
  valid `tenant_id`, so it comes after the structural checks 5-9, and before `unknown_tenant`: a record in tenant
  A's topic that names tenant B was written by A's producer whether or not B exists, and it is reported as the
  authorisation failure it is (a record naming its own topic's tenant, which the catalog lacks, is still
  `unknown_tenant`). Without a tenant topic (`topic_tenant=None`) the check does not exist.
- A `None` record (a Kafka tombstone) is treated as empty bytes, hence malformed_json.
- JSON nested deeper than MAX_JSON_DEPTH arrays/objects is malformed_json (counted outside strings, even when
  the text is malformed anyway; Jackson's own default cap is 1000, so the SQL side needs its own check).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.usage_event import (
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    DIMENSION_KEY_MAX_LENGTH,
    DIMENSION_KEY_MIN_LENGTH,
    DIMENSION_VALUE_MAX_LENGTH,
    EPOCH_MILLIS_PATTERN,
    FIELD_ORDER,
    ID_FIELDS,
    ID_MAX_LENGTH,
    ID_MIN_LENGTH,
    MAX_EPOCH_MILLIS,
    MIN_EPOCH_MILLIS,
    REQUIRED_FIELDS,
    TIMESTAMP_PATTERN,
    VALUE_MAX_INTEGER_DIGITS,
    VALUE_PATTERN,
    IdString,
    UsageEvent,
)
from schemas.wire import loads_exact

# ---- the rules as data (generated into Java by udfs.java_rules; see schemas.usage_event) -----------------
MAX_RECORD_BYTES = 65_536
# Deeper JSON nesting is malformed_json. Explicit, because Python's own limit depends on the caller's stack.
MAX_JSON_DEPTH = 512
DEFAULT_MAX_AGE = timedelta(days=35)
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
VALUE_OPTIONAL_AGGREGATIONS = frozenset({"count", "unique_count"})
REASON_PRECEDENCE: tuple[DeadLetterReason, ...] = tuple(DeadLetterReason)
__all__ = [
    "DECIMAL_PRECISION",
    "DECIMAL_SCALE",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_FUTURE_SKEW",
    "DIMENSION_KEY_MAX_LENGTH",
    "DIMENSION_KEY_MIN_LENGTH",
    "DIMENSION_VALUE_MAX_LENGTH",
    "EPOCH_MILLIS_PATTERN",
    "FIELD_ORDER",
    "ID_FIELDS",
    "ID_MAX_LENGTH",
    "ID_MIN_LENGTH",
    "MAX_EPOCH_MILLIS",
    "MAX_JSON_DEPTH",
    "MAX_RECORD_BYTES",
    "MIN_EPOCH_MILLIS",
    "REASON_PRECEDENCE",
    "REQUIRED_FIELDS",
    "Rejection",
    "TENANT_TOPIC_PREFIX_PATTERN",
    "TIMESTAMP_PATTERN",
    "VALUE_MAX_INTEGER_DIGITS",
    "VALUE_OPTIONAL_AGGREGATIONS",
    "VALUE_PATTERN",
    "dead_letter_for",
    "invalid_tenant_topics",
    "json_object_of",
    "raw_record_fields",
    "rejected_record_ids",
    "tenant_of_topic",
    "tenant_topic_pattern",
    "tenant_topics",
    "validate_usage_record",
]
# ----------------------------------------------------------------------------------------------------------

_FIELD_RANK = {name: index for index, name in enumerate(FIELD_ORDER)}
_ID = TypeAdapter(IdString)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: DeadLetterReason
    detail: str


def validate_usage_record(
    raw: bytes | bytearray | memoryview | None,
    *,
    meters_by_tenant: Mapping[str, Mapping[str, str]],
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    topic_tenant: str | None = None,
) -> UsageEvent | Rejection:
    """`meters_by_tenant[tenant_id][meter]` is the meter's aggregation name; `now` must be timezone-aware;
    `topic_tenant`: the tenant of the tenant topic the record was read from (`tenant_of_topic(topic, prefix)`), None
    when the job reads one shared topic (no tenant check).

    Raises only for a programming error in the arguments (a naive `now`), never because of `raw`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    obj = json_object_of(raw)
    if isinstance(obj, tuple):
        return Rejection(DeadLetterReason(obj[0]), obj[1])

    try:
        event = UsageEvent.model_validate(obj)
    except ValidationError as exc:
        return _structural_rejection(exc)

    if topic_tenant is not None and event.tenant_id != topic_tenant:
        return Rejection(
            DeadLetterReason.TENANT_MISMATCH,
            f"tenant_id {event.tenant_id!r} is not {topic_tenant!r}, the tenant of the topic the record was read from",
        )
    meters = meters_by_tenant.get(event.tenant_id)
    if meters is None:
        return Rejection(DeadLetterReason.UNKNOWN_TENANT, f"tenant {event.tenant_id!r} is not in the catalog")
    aggregation = meters.get(event.meter)
    if aggregation is None:
        return Rejection(
            DeadLetterReason.UNKNOWN_METER,
            f"meter {event.meter!r} is not in tenant {event.tenant_id!r}'s catalog",
        )
    if event.value is None and aggregation not in VALUE_OPTIONAL_AGGREGATIONS:
        return Rejection(
            DeadLetterReason.MISSING_VALUE,
            f"meter {event.meter!r} aggregates with {aggregation}, which needs a value",
        )
    if event.timestamp < now - max_age:
        return Rejection(DeadLetterReason.TOO_OLD, f"timestamp is older than {max_age} before now")
    if event.timestamp > now + max_future_skew:
        return Rejection(DeadLetterReason.TOO_FAR_IN_FUTURE, f"timestamp is more than {max_future_skew} after now")
    return event


def tenant_of_topic(topic: str, prefix: str) -> str:
    """The tenant of a tenant topic: the topic name after `prefix` (`usage-events.acme-ai` -> `acme-ai` for the
    prefix `usage-events.`). The job subscribes to the topics `<prefix>` + one or more characters, so every topic
    it reads has one; raises ValueError for a topic without the prefix or with nothing after it. A remainder that is
    no valid tenant id (more than ID_MAX_LENGTH characters: Kafka allows 249) is returned as it is: no record's
    `tenant_id` can equal it, so all of that topic's valid records are `tenant_mismatch` (the job refuses to start
    while such a topic exists, `invalid_tenant_topics`)."""
    if not prefix:
        raise ValueError("a tenant topic prefix must not be empty")
    if not topic.startswith(prefix) or len(topic) == len(prefix):
        raise ValueError(f"topic {topic!r} is not a tenant topic of prefix {prefix!r} (<prefix><tenant>)")
    return topic[len(prefix):]


# What a tenant topic prefix may be: Kafka's topic name characters (so the topic pattern needs no escape but '.').
TENANT_TOPIC_PREFIX_PATTERN = r"[A-Za-z0-9._-]{1,248}"


def tenant_topic_pattern(prefix: str) -> str:
    """The regular expression of the tenant topics of `prefix`: the prefix, then one or more characters (a tenant).
    Java's `Pattern` (the Kafka source's subscription) and Python's `re` read it alike; raises ValueError for a
    prefix that is no start of a Kafka topic name (`TENANT_TOPIC_PREFIX_PATTERN`)."""
    if not re.fullmatch(TENANT_TOPIC_PREFIX_PATTERN, prefix):
        raise ValueError(f"{prefix!r} is not a Kafka topic name prefix (1-248 of A-Z a-z 0-9 . _ -)")
    return prefix.replace(".", "\\.") + ".+"


def tenant_topics(topics: list[str], prefix: str) -> list[str]:
    """Those of `topics` that are tenant topics of `prefix` (what the source subscribes to), sorted."""
    pattern = re.compile(tenant_topic_pattern(prefix))
    return sorted(topic for topic in topics if pattern.fullmatch(topic))


def invalid_tenant_topics(topics: list[str], prefix: str) -> list[str]:
    """Those of `topics` (all starting with `prefix`) whose tenant part is no valid tenant id: an operator error."""
    bad = []
    for topic in topics:
        try:
            _ID.validate_python(tenant_of_topic(topic, prefix))
        except (ValueError, ValidationError):
            bad.append(topic)
    return bad


def rejected_record_ids(raw: bytes | bytearray | memoryview | None) -> tuple[str, str] | None:
    """The (tenant_id, event_id) a record names when it is a JSON object whose two ids are both valid (the id rule of
    `schemas.usage_event.IdString`), whatever else made it a dead letter; else None. The correction ledger remembers a
    dead-lettered record by them, so that a correction of it is `event_dead_lettered`, not `unknown_event`."""
    obj = json_object_of(raw)
    if isinstance(obj, tuple):
        return None
    try:
        return _ID.validate_python(obj.get("tenant_id")), _ID.validate_python(obj.get("event_id"))
    except ValidationError:
        return None


def json_object_of(raw: bytes | bytearray | memoryview | None) -> dict[str, Any] | tuple[str, str]:
    """The first four checks of every JSON input record (usage events, corrections): the decoded object (numbers
    as `JsonNumber`, exact), or (reason code, detail) with code `too_large`, `not_utf8`, `malformed_json` or
    `not_an_object`, the codes both reason enums share. Never raises because of `raw`."""
    data = b"" if raw is None else bytes(raw)
    if len(data) > MAX_RECORD_BYTES:
        return "too_large", f"record is {len(data)} bytes, more than the limit of {MAX_RECORD_BYTES}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "not_utf8", f"record is not valid UTF-8 (byte {exc.start})"
    if _nesting_exceeds(text, MAX_JSON_DEPTH):
        return "malformed_json", f"JSON nesting is deeper than {MAX_JSON_DEPTH}"
    try:
        obj = loads_exact(text)
    except (ValueError, RecursionError) as exc:
        return "malformed_json", f"record is not valid JSON: {_short(exc)}"
    if not isinstance(obj, dict):
        return "not_an_object", f"record is a JSON {_json_kind(obj)}, not an object"
    return obj


def _structural_rejection(exc: ValidationError) -> Rejection:
    """The earliest reason among all field errors; the detail names the first such field in FIELD_ORDER."""
    candidates = []
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        path = ".".join(str(part) for part in error["loc"]) or "record"
        reason = _reason_for(field, error["type"])
        candidates.append((reason.precedence, _FIELD_RANK.get(field, len(_FIELD_RANK)), reason, path, error["msg"]))
    if not candidates:  # pragma: no cover - pydantic always reports at least one error
        return Rejection(DeadLetterReason.INVALID_FIELD, "record is not a valid usage event")
    _, _, reason, field, message = min(candidates, key=lambda c: (c[0], c[1]))
    if reason is DeadLetterReason.MISSING_FIELD:
        return Rejection(reason, f"field {field!r} is required (absent or null)")
    return Rejection(reason, f"field {field!r}: {message}")


def _reason_for(field: str, error_type: str) -> DeadLetterReason:
    if error_type == "missing":
        return DeadLetterReason.MISSING_FIELD
    if field == "timestamp":
        return DeadLetterReason.INVALID_TIMESTAMP
    if field == "value":
        return DeadLetterReason.NEGATIVE_VALUE if error_type == "negative_value" else DeadLetterReason.INVALID_VALUE
    return DeadLetterReason.INVALID_FIELD


def _nesting_exceeds(text: str, limit: int) -> bool:
    if text.count("[") + text.count("{") <= limit:  # the usual case: no need to scan
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _json_kind(obj: object) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "boolean"
    return "number"


def _short(exc: BaseException, limit: int = 200) -> str:
    message = str(exc) or type(exc).__name__
    return message if len(message) <= limit else message[: limit - 3] + "..."


def raw_record_fields(raw: bytes | bytearray | memoryview | None) -> dict:
    """How a rejected record travels in any dead-letter topic: UTF-8 text when it decodes, base64 otherwise, at
    most MAX_RECORD_BYTES kept (with the original size, so truncation is visible)."""
    data = b"" if raw is None else bytes(raw)
    kept = data[:MAX_RECORD_BYTES]
    try:
        text, encoding = kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    return {"raw": text, "raw_encoding": encoding, "raw_truncated": len(kept) < len(data), "raw_size_bytes": len(data)}


def dead_letter_for(
    raw: bytes | bytearray | memoryview | None,
    rejection: Rejection,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    received_at: datetime,
) -> DeadLetter:
    """The dead-letter record for a rejected raw record."""
    return DeadLetter(
        **raw_record_fields(raw),
        reason=rejection.reason,
        detail=rejection.detail,
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        received_at=received_at,
    )
