from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udfs.windows import from_epoch_ms, to_epoch_ms, window_bounds

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("ts_ms", "size", "start_ms"),
    [
        (0, HOUR, 0),
        (1, HOUR, 0),
        (3_599_999, HOUR, 0),
        (3_600_000, HOUR, 3_600_000),  # boundary opens the next window (end is exclusive)
        (1_740_805_199_999, HOUR, 1_740_801_600_000),
        (-1, HOUR, -3_600_000),  # floor, not truncation toward zero
        (90_000, timedelta(minutes=1), 60_000),
        (86_400_000 + 5, timedelta(days=1), 86_400_000),
    ],
)
def test_window_bounds_epoch_aligned(ts_ms, size, start_ms):
    start, end = window_bounds(ts_ms, size)
    assert to_epoch_ms(start) == start_ms
    assert end - start == size
    assert start.tzinfo is UTC


def test_window_bounds_ignore_the_input_zone():
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    local = datetime(2025, 6, 1, 0, 10, tzinfo=kathmandu)  # 2025-05-31T18:25Z
    assert window_bounds(local, HOUR) == (
        datetime(2025, 5, 31, 18, tzinfo=UTC),
        datetime(2025, 5, 31, 19, tzinfo=UTC),
    )


@pytest.mark.parametrize("size", [timedelta(0), timedelta(seconds=-1), timedelta(microseconds=1500)])
def test_window_bounds_reject_bad_sizes(size):
    with pytest.raises(ValueError):
        window_bounds(0, size)


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError):
        window_bounds(datetime(2025, 1, 1), HOUR)  # noqa: DTZ001 - the point of the test


@given(st.integers(min_value=-(10**13), max_value=10**13), st.sampled_from([1, 1000, 60_000, 3_600_000]))
def test_window_contains_its_timestamp(ts_ms, size_ms):
    start, end = window_bounds(ts_ms, timedelta(milliseconds=size_ms))
    assert to_epoch_ms(start) <= ts_ms < to_epoch_ms(end)
    assert to_epoch_ms(start) % size_ms == 0
    assert from_epoch_ms(to_epoch_ms(start)) == start
