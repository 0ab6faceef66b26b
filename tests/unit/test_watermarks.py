"""The partition watermark rule (`udfs.watermarks`): per-customer clocks, idleness by ingestion time, the cap."""

from __future__ import annotations

import random

import pytest

from udfs.watermarks import PartitionClock, is_late, main

H = 1_793_502_000_000  # 2026-11-01T03:00:00Z
MIN = 60_000


def test_the_golden_vectors_the_java_tests_replay_are_current():
    assert main(["--check"]) == 0, "python -m udfs.watermarks --write"


def test_issue_15_repro_another_tenants_clock_makes_nothing_late():
    clock = PartitionClock(10_000, 5_000)
    acme = [H + 58 * MIN + i * 10_000 for i in range(6)] + [None] + [H + 59 * MIN + i * 10_000 for i in range(6)]
    for at in acme:
        if at is None:
            clock.observe(("bolt-ml", "c9"), H + 63 * MIN, None)
            continue
        assert not is_late(at, MIN, clock.watermark)
        clock.observe(("acme-ai", "c1"), at, None)
    assert clock.watermark == H + 59 * MIN + 50_000 - 10_000


def test_a_silent_customer_stops_holding_the_clock_after_the_idle_timeout_of_ingestion_time():
    clock = PartitionClock(10_000, 5_000)
    ingested = H + 3_600_000
    clock.observe(("acme-ai", "slow"), H, ingested)
    clock.observe(("acme-ai", "c1"), H + 5 * MIN, ingested + 1_000)
    clock.observe(("acme-ai", "c1"), H + 5 * MIN, ingested + 5_000)
    assert clock.watermark == H - 10_000  # silent exactly the timeout: still holds
    clock.observe(("acme-ai", "c1"), H + 5 * MIN, ingested + 5_001)
    assert clock.watermark == H + 5 * MIN - 10_000


def test_the_clock_never_passes_ingestion_time_and_never_goes_back():
    clock = PartitionClock(10_000, 5_000)
    clock.observe(("acme-ai", "fast"), H + 4 * MIN, H)
    assert clock.watermark == H - 10_000
    clock.observe(("acme-ai", "slow"), H - 30 * MIN, H + 1_000)
    assert clock.watermark == H - 10_000


def test_without_ingestion_times_nobody_is_idle():
    clock = PartitionClock(10_000, 0)
    clock.observe(("acme-ai", "slow"), H, None)
    for i in range(100):
        clock.observe(("acme-ai", "c1"), H + i * MIN, None)
    assert clock.watermark == H - 10_000


@pytest.mark.parametrize("seed", range(40))
def test_adding_a_client_with_any_clock_makes_none_of_the_others_records_late(seed):
    """The same records with and without an extra client whose clock is off (behind, or up to an hour ahead): not
    one of the others' records is late with it that is not late without it. Record timestamps as live (the true
    time plus up to 0.5 s; the others' clocks up to 5 s behind, within the 10 s bound). Without record timestamps
    nothing caps a clock, so there the extra client starts once every other customer has been seen (a customer's
    first record is judged by the clocks of those seen before it: the rule's one blind spot)."""
    rng = random.Random(seed)
    customers = [(rng.choice(["acme-ai", "bolt-ml"]), f"c{k}") for k in range(rng.randrange(1, 8))]
    extra = ("acme-ai", "extra") if seed % 2 else ("zeta", "extra")
    skew = rng.choice([-20 * MIN, 30_000, 4 * MIN, 60 * MIN])
    with_ingestion = seed % 3 != 0
    without, with_extra = PartitionClock(10_000, 5_000), PartitionClock(10_000, 5_000)
    late_without, late_with = set(), set()
    seen: set[tuple[str, str]] = set()
    true_time = H
    for index in range(400):
        true_time += rng.randrange(0, 3_000) if rng.random() < 0.97 else rng.randrange(0, 60_000)
        stamp = true_time + rng.randrange(0, 500) if with_ingestion else None
        if rng.random() < 0.2 and (with_ingestion or seen == set(customers)):
            with_extra.observe(extra, true_time + skew, stamp)
            continue
        customer = rng.choice(customers)
        seen.add(customer)
        at = true_time - rng.randrange(0, 5_000)
        if is_late(at, MIN, without.watermark):
            late_without.add(index)
        if is_late(at, MIN, with_extra.watermark):
            late_with.add(index)
        without.observe(customer, at, stamp)
        with_extra.observe(customer, at, stamp)
    assert late_with <= late_without
