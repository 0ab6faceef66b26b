import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udfs.windows import (
    SECONDS_PER_DAY,
    check_window_size_ms,
    from_epoch_ms,
    to_epoch_ms,
    window_bounds,
    window_seconds,
)

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


@pytest.mark.parametrize(("text", "seconds"), [
    ("1", 1), ("60", 60), ("60.0", 60), ("100", 100), ("300", 300), ("3600", 3600), ("86400", 86400),
    (" 900 ", 900), (43200, 43200),
])
def test_window_seconds_accepts_whole_divisors_of_a_day(text, seconds):
    assert window_seconds(text) == seconds
    assert check_window_size_ms(seconds * 1000) == seconds * 1000


@pytest.mark.parametrize(("text", "words"), [
    ("0", "outside 1 to 86400"), ("-60", "outside 1 to 86400"), ("172800", "outside 1 to 86400"),
    ("7", "does not divide a day"), ("86399", "does not divide a day"), ("1e3", "does not divide a day"),
    ("0.5", "not a whole number"), ("100.5", "not a whole number"), ("nan", "not a whole number"),
    ("inf", "not a whole number"), ("sixty", "not a number"), ("", "not a number"),
])
def test_window_seconds_rejects_everything_else_naming_the_value(text, words):
    with pytest.raises(ValueError) as caught:
        window_seconds(text)
    assert words in str(caught.value)
    assert text.strip() in str(caught.value)


def test_exactly_the_divisors_of_a_day_are_supported():
    supported = set()
    for seconds in range(1, SECONDS_PER_DAY + 2):
        with contextlib.suppress(ValueError):
            supported.add(window_seconds(seconds))
    assert supported == {d for d in range(1, SECONDS_PER_DAY + 1) if SECONDS_PER_DAY % d == 0}
    assert len(supported) == 96  # 86400 = 2^7 * 3^3 * 5^2: 8 * 4 * 3 divisors


@pytest.mark.parametrize("size_ms", [1500, 7000, 0, 2 * SECONDS_PER_DAY * 1000])
def test_check_window_size_ms_rejects_unsupported_sizes(size_ms):
    with pytest.raises(ValueError):
        check_window_size_ms(size_ms)


@given(st.integers(min_value=-10**13, max_value=10**13), st.sampled_from([60, 300, 3600, SECONDS_PER_DAY]))
def test_supported_windows_start_every_utc_day_at_midnight(ts_ms, seconds):
    """A size that divides a day tiles each UTC day the same way: some window starts at every midnight."""
    start, end = window_bounds(ts_ms, timedelta(seconds=seconds))
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    assert (start - midnight) % timedelta(seconds=seconds) == timedelta(0)
    assert end <= midnight + timedelta(days=1)
