"""Group keys, unique-count tokens and event fingerprints, as the Java `PARSE_USAGE_EVENT` computes them.

The Flink job parses events in Java (`engine/`, one parse per record); this module is the same arithmetic in
plain Python, so the rest of the Python core (and the parity test, `tests/job/test_parse_parity.py`) can
reproduce every derived column exactly.

Canonical JSON everywhere: `json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`.
That writes `"` and `\\` escaped, `\\b \\f \\n \\r \\t` short, every other character below U+0020 as `\\u00xx`
(lowercase hex), and everything else (DEL, U+2028, non-ASCII) as is; keys in code point order (Python's `str`
order). The Java side (`CanonicalJson`) writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.usage_event import UsageEvent
from schemas.wire import decimal_to_wire

Group = tuple[tuple[str, str], ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

__all__ = [
    "Group",
    "canonical_json",
    "decode_unique_token",
    "epoch_millis",
    "fingerprint",
    "fingerprint_text",
    "group_json",
    "group_of",
    "unique_token",
]


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def group_of(dimensions: Mapping[str, str], group_by: tuple[str, ...] | list[str]) -> Group:
    """The meter's group_by dimensions present in the event, sorted by key; missing dimensions are left out."""
    return tuple(sorted((key, dimensions[key]) for key in set(group_by) if key in dimensions))


def group_json(group: Group) -> str:
    """`{"model":"nova-large"}`; `{}` for the empty group."""
    return canonical_json(dict(group))


def unique_token(value: str) -> str:
    """The value with `%` -> `%25` then `,` -> `%2C`: it never contains a comma, so tokens can be joined by one."""
    return value.replace("%", "%25").replace(",", "%2C")


def decode_unique_token(token: str) -> str:
    """Inverse of `unique_token` (`%2C` first, then `%25`, so an encoded `%2C` text survives)."""
    return token.replace("%2C", ",").replace("%25", "%")


def epoch_millis(instant: datetime) -> int:
    return (instant - _EPOCH) // _MS


def fingerprint_text(event: UsageEvent) -> str:
    """The canonical rendering hashed by `fingerprint`:
    `[customer_id, meter, event_time_ms, value_text, dimensions]` as canonical JSON, where `event_time_ms` is a
    JSON integer (UTC epoch ms), `value_text` is `decimal_to_wire(value)` ("0" for any zero, no trailing
    fractional zeros; Java's `stripTrailingZeros().toPlainString()`) or `""` when the value is absent, and
    `dimensions` is the whole dimensions object (`{}` when absent). tenant_id and event_id are left out:
    duplicates share them by definition.
    """
    value = "" if event.value is None else decimal_to_wire(event.value)
    return canonical_json(
        [event.customer_id, event.meter, epoch_millis(event.timestamp), value, dict(event.dimensions)]
    )


def fingerprint(event: UsageEvent) -> str:
    """Lowercase hex SHA-256 of the UTF-8 of `fingerprint_text(event)`: equal for same-content retries."""
    return hashlib.sha256(fingerprint_text(event).encode("utf-8")).hexdigest()
