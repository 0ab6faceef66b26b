"""The partition watermark rule (`udfs.watermarks`): per-customer clocks, idleness by ingestion time, the cap; with
lateness per series (`udfs.lateness`), what makes a record late."""

from __future__ import annotations

import random

import pytest

from udfs.lateness import SeriesLateness
from udfs.watermarks import PartitionClock, main, past_watermark

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
        assert not past_watermark(at, MIN, clock.watermark)
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


class Stream:
    """A partition's watermark and its series' lateness, fed record by record as the job sees them."""

    def __init__(self) -> None:
        self.clock = PartitionClock(10_000, 5_000)
        self.lateness = SeriesLateness(MIN)
        self.late: set[int] = set()

    def record(self, index: int | None, customer: tuple[str, str], meter: str, at: int, stamp: int | None) -> None:
        """`index` None: a record of the extra client (its own outcome is not the point)."""
        if not self.lateness.offer((*customer, meter), at) and index is not None:
            self.late.add(index)
        self.clock.observe(customer, at, stamp)
        self.lateness.advance(self.clock.watermark)


@pytest.mark.parametrize("seed", range(60))
def test_adding_a_client_with_any_clock_makes_none_of_the_others_records_late(seed):
    """The same records with and without an extra client whose clock is off (behind, or up to an hour ahead), which
    may come first: not one of the others' records is late with it that is not late without it. Record timestamps
    as live (the true time plus up to 0.5 s; the others' clocks up to 5 s behind, within the 10 s bound), or none
    (a file). A customer seen for the first time after the extra client moved the watermark is billed: lateness is
    per series (`udfs.lateness`)."""
    rng = random.Random(seed)
    customers = [(rng.choice(["acme-ai", "bolt-ml"]), f"c{k}") for k in range(rng.randrange(1, 8))]
    extra = ("acme-ai", "extra") if seed % 2 else ("zeta", "extra")
    skew = rng.choice([-20 * MIN, 30_000, 4 * MIN, 60 * MIN])
    with_ingestion = seed % 3 != 0
    without, with_extra = Stream(), Stream()
    true_time = H
    if seed % 4 == 0:  # the extra client first
        with_extra.record(None, extra, "requests", true_time + skew, true_time if with_ingestion else None)
    for index in range(400):
        true_time += rng.randrange(0, 3_000) if rng.random() < 0.97 else rng.randrange(0, 60_000)
        stamp = true_time + rng.randrange(0, 500) if with_ingestion else None
        if rng.random() < 0.2:
            with_extra.record(None, extra, "requests", true_time + skew, stamp)
            continue
        customer = rng.choice(customers)
        meter = rng.choice(["requests", "tokens"])
        at = true_time - rng.randrange(0, 5_000)
        without.record(index, customer, meter, at, stamp)
        with_extra.record(index, customer, meter, at, stamp)
    assert with_extra.late <= without.late


def test_issue_15_repro_with_the_fast_tenant_first_bills_every_record_of_the_others():
    """bolt-ml's client runs 5 minutes ahead and is seen first: the watermark is past acme-ai's windows before
    acme-ai's first record, and all twelve are still billed (each series had not fired those windows)."""
    stream = Stream()
    stream.record(None, ("bolt-ml", "c9"), "requests", H + 63 * MIN, None)
    acme = [H + 58 * MIN + i * 10_000 for i in range(6)] + [H + 59 * MIN + i * 10_000 for i in range(6)]
    for index, at in enumerate(acme):
        assert past_watermark(at, MIN, stream.clock.watermark)
        stream.record(index, ("acme-ai", "c1"), "requests", at, None)
    assert stream.late == set()
