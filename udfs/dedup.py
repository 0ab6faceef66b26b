"""Dedup of usage records: which copy of an event is billed and what the others count as (the specification; the
job runs the Java twin, `io.meterstream.routing.UsageRouting` with its `DedupTable`s).

An event is identified by (tenant_id, event_id). Per such key, the **first copy by arrival wins**: it goes on to the
window operator (which makes it `windowed` or `late`, `udfs.lateness`). Every later copy leaves nothing but a count:

- `duplicate_same_payload` when its canonical fingerprint (`udfs.grouping.fingerprint`: SHA-256 of customer, meter,
  event time in ms, value, dimensions) equals the first copy's: a retry;
- `duplicate_conflicting_payload` otherwise: the idempotency key reused for other content. The first copy still
  wins; the conflict is only counted.

The Java twin keeps only the **first 64 bits** of the first copy's fingerprint (16 hex digits) per key while the
key is in its heap tables, and the **first 32 bits** once the key is sealed (`io.meterstream.routing.DedupRuns`: 23
bytes per id), and compares those. So a conflicting copy whose fingerprint agrees with the first copy's in those bits
would be counted as `duplicate_same_payload` there: for one conflicting copy the chance is at most 2^-32 (SHA-256 bits
are uniform). The outcome it could change is a count, never what is billed (a later copy is dropped either way). The
golden vectors hold no such pair. Likewise the Java twin keys by the 128-bit hash of (tenant_id, event_id)
(`HashedKey`), not the strings: two keys colliding (about n^2 / 2^129 for n keys) would be one key there.

**Horizon (dedup TTL)**: each key is remembered for `ttl_ms` of processing time from its first copy, later copies do
not extend it (the first copy's entry is written once). A copy arriving at processing time `now_ms` finds the key
forgotten when `first_seen_ms + ttl_ms <= now_ms`: exactly Flink's state TTL rule (expired once the expiration
timestamp is reached), as `DedupTable.expired` applies it. Such a copy is a first copy again: it is billed, and its
fingerprint and `now_ms` start a new horizon. Processing times are positive epoch milliseconds (`DedupTable` marks an
empty slot with 0 and records a processing time of 0 as 1). Processing time is the operator's clock, not event time:
a replay of old events finds every key new, a duplicate sent after the horizon is billed twice.

The shape is Bytewax's `stateful_map`: per key, `dedup(state | None, copy) -> (state, outcome)`; `expire` returns
None for a forgotten key (what the state holds after the horizon: nothing). `DedupMemory` runs the step for every
key of a stream.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["first", "duplicate_same_payload", "duplicate_conflicting_payload"]
FIRST: Outcome = "first"
DUPLICATE_SAME_PAYLOAD: Outcome = "duplicate_same_payload"
DUPLICATE_CONFLICTING_PAYLOAD: Outcome = "duplicate_conflicting_payload"


@dataclass(frozen=True)
class FirstCopy:
    """What a key remembers: the first copy's fingerprint (hex SHA-256) and the processing time it arrived at."""

    fingerprint: str
    first_seen_ms: int


def expired(first_seen_ms: int, now_ms: int, ttl_ms: int) -> bool:
    """Flink's TTL rule: a value written at `first_seen_ms` is gone once `first_seen_ms + ttl_ms <= now_ms`."""
    return first_seen_ms + ttl_ms <= now_ms


def expire(state: FirstCopy | None, now_ms: int, ttl_ms: int) -> FirstCopy | None:
    """The key's state at processing time `now_ms`: None once its horizon has passed."""
    if state is None or expired(state.first_seen_ms, now_ms, ttl_ms):
        return None
    return state


def dedup(state: FirstCopy | None, fingerprint: str, now_ms: int, ttl_ms: int) -> tuple[FirstCopy, Outcome]:
    """One copy of a key, arriving at processing time `now_ms` with this fingerprint: the key's new state and the
    copy's outcome (`first`: billed; otherwise the duplicate count it lands in)."""
    remembered = expire(state, now_ms, ttl_ms)
    if remembered is None:
        return FirstCopy(fingerprint, now_ms), FIRST
    if remembered.fingerprint == fingerprint:
        return remembered, DUPLICATE_SAME_PAYLOAD
    return remembered, DUPLICATE_CONFLICTING_PAYLOAD


@dataclass
class DedupMemory:
    """`dedup` over a stream: the state of every key, `(tenant_id, event_id)`."""

    ttl_ms: int
    keys: dict[Hashable, FirstCopy] = field(default_factory=dict)

    def offer(self, key: Hashable, fingerprint: str, now_ms: int) -> Outcome:
        self.keys[key], outcome = dedup(self.keys.get(key), fingerprint, now_ms, self.ttl_ms)
        return outcome

    def live(self, now_ms: int) -> int:
        """How many keys are still remembered at `now_ms`."""
        return sum(1 for state in self.keys.values() if expire(state, now_ms, self.ttl_ms) is not None)
