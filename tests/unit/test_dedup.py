"""Dedup (`udfs.dedup`): the first copy by arrival wins per (tenant_id, event_id); later copies are counted as the
same or a conflicting payload; each key is forgotten a TTL of processing time after its first copy."""

from __future__ import annotations

from udfs.dedup import (
    DUPLICATE_CONFLICTING_PAYLOAD,
    DUPLICATE_SAME_PAYLOAD,
    FIRST,
    DedupMemory,
    FirstCopy,
    dedup,
    expire,
)

TTL = 1_000
A, B = "a" * 64, "b" * 64


def test_the_first_copy_wins_and_later_ones_are_told_apart_by_fingerprint():
    state, outcome = dedup(None, A, 10, TTL)
    assert (state, outcome) == (FirstCopy(A, 10), FIRST)
    assert dedup(state, A, 11, TTL) == (state, DUPLICATE_SAME_PAYLOAD)
    assert dedup(state, B, 11, TTL) == (state, DUPLICATE_CONFLICTING_PAYLOAD)


def test_the_horizon_counts_from_the_first_copy_and_ends_exactly_at_first_seen_plus_ttl():
    memory = DedupMemory(TTL)
    assert memory.offer(("t", "e"), A, 10) == FIRST
    assert memory.offer(("t", "e"), A, 500) == DUPLICATE_SAME_PAYLOAD  # does not extend the horizon
    assert memory.offer(("t", "e"), B, 10 + TTL - 1) == DUPLICATE_CONFLICTING_PAYLOAD
    assert memory.live(10 + TTL - 1) == 1 and memory.live(10 + TTL) == 0
    assert memory.offer(("t", "e"), B, 10 + TTL) == FIRST  # forgotten: a first copy again, with its own content
    assert memory.keys[("t", "e")] == FirstCopy(B, 10 + TTL)
    assert memory.offer(("t", "e"), A, 10 + TTL + 1) == DUPLICATE_CONFLICTING_PAYLOAD


def test_keys_are_per_tenant_and_expire_returns_nothing_after_the_horizon():
    memory = DedupMemory(TTL)
    assert memory.offer(("t1", "e"), A, 1) == FIRST
    assert memory.offer(("t2", "e"), A, 1) == FIRST
    assert expire(FirstCopy(A, 1), 1 + TTL - 1, TTL) == FirstCopy(A, 1)
    assert expire(FirstCopy(A, 1), 1 + TTL, TTL) is None
    assert expire(None, 5, TTL) is None
