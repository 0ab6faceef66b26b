"""Lateness per series (`udfs.lateness`): a record is late only when its own series fired its window or a later one."""

from __future__ import annotations

import random

import pytest

from udfs.lateness import SeriesLateness

MIN = 60_000
A, B = ("acme-ai", "c1", "requests", ()), ("acme-ai", "c2", "requests", ())


def test_a_record_of_an_open_window_is_billed_even_past_the_watermark():
    lateness = SeriesLateness(MIN)
    assert lateness.offer(A, 10 * MIN + 5)
    assert lateness.advance(5 * MIN) == []
    assert lateness.offer(A, 10 * MIN + 30_000)


def test_a_window_fires_at_the_first_advance_that_passes_it_and_then_its_records_are_late():
    lateness = SeriesLateness(MIN)
    lateness.offer(A, 10 * MIN)
    assert lateness.advance(11 * MIN - 2) == []
    assert lateness.advance(11 * MIN - 1) == [(A, 10 * MIN)]
    assert not lateness.offer(A, 10 * MIN + 59_999)
    assert not lateness.offer(A, 3 * MIN)  # an earlier window of a series that moved on
    assert lateness.offer(A, 11 * MIN)


def test_a_new_series_past_the_watermark_is_billed_and_fires_at_the_next_advance_only():
    lateness = SeriesLateness(MIN)
    lateness.offer(B, 100 * MIN)
    assert lateness.advance(100 * MIN) == []  # B's window [100, 101) min not passed yet
    assert lateness.offer(A, 10 * MIN)  # A's window is far behind the watermark: A never fired it
    assert lateness.advance(100 * MIN) == []  # no advance, nothing fires
    assert lateness.offer(A, 10 * MIN + 1)  # still open
    assert lateness.advance(100 * MIN + 1) == [(A, 10 * MIN)]
    assert not lateness.offer(A, 10 * MIN + 2)


def test_windows_of_a_series_fire_in_window_order():
    lateness = SeriesLateness(MIN)
    for minute in (7, 3, 5):
        lateness.offer(A, minute * MIN)
    assert lateness.advance(8 * MIN) == [(A, 3 * MIN), (A, 5 * MIN), (A, 7 * MIN)]
    assert lateness.last_fired[A] == 7 * MIN


@pytest.mark.parametrize("seed", range(30))
def test_a_records_outcome_depends_only_on_its_own_series(seed):
    """The same records of series A, interleaved with any records of other series, and any watermark: A's outcomes
    are those of A alone under the same watermark sequence."""
    rng = random.Random(seed)
    alone, mixed = SeriesLateness(MIN), SeriesLateness(MIN)
    outcomes_alone, outcomes_mixed = [], []
    watermark = 0
    for _ in range(300):
        if rng.random() < 0.5:
            mixed.offer(rng.choice([B, ("bolt-ml", "c1", "requests", ())]), rng.randrange(0, 200 * MIN))
        else:
            at = rng.randrange(0, 200 * MIN)
            outcomes_alone.append(alone.offer(A, at))
            outcomes_mixed.append(mixed.offer(A, at))
        if rng.random() < 0.3:
            watermark += rng.randrange(0, 5 * MIN)
            alone.advance(watermark)
            mixed.advance(watermark)
    assert outcomes_alone == outcomes_mixed
    assert False in outcomes_alone and True in outcomes_alone  # the stream exercises both outcomes
