from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udfs.periods import anchor_date, billing_period


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "anchor", "zone", "start", "end"),
    [
        # New York, DST starts 2025-03-09: start at -05:00, end at -04:00.
        (utc(2025, 3, 15), 1, "America/New_York", utc(2025, 3, 1, 5), utc(2025, 4, 1, 4)),
        # New York, DST ends 2025-11-02: start at -04:00, end at -05:00.
        (utc(2025, 11, 15), 1, "America/New_York", utc(2025, 11, 1, 4), utc(2025, 12, 1, 5)),
        # Anchor on the DST day itself: midnight exists (the switch is at 02:00).
        (utc(2025, 3, 20), 9, "America/New_York", utc(2025, 3, 9, 5), utc(2025, 4, 9, 4)),
        # 00:30 local on Mar 1 is still February's period in New York (05:30Z is after 05:00Z though).
        (utc(2025, 3, 1, 4, 59), 1, "America/New_York", utc(2025, 2, 1, 5), utc(2025, 3, 1, 5)),
        # Berlin anchor 15, DST starts 2025-03-30.
        (utc(2025, 3, 20), 15, "Europe/Berlin", utc(2025, 3, 14, 23), utc(2025, 4, 14, 22)),
        (utc(2025, 10, 20), 15, "Europe/Berlin", utc(2025, 10, 14, 22), utc(2025, 11, 14, 23)),
        # Kathmandu +05:45: periods start at 18:15Z the previous day.
        (utc(2025, 6, 10), 1, "Asia/Kathmandu", utc(2025, 5, 31, 18, 15), utc(2025, 6, 30, 18, 15)),
        # Tokyo has no DST: a January period straddles the UTC year boundary.
        (utc(2024, 12, 31, 15, 0), 1, "Asia/Tokyo", utc(2024, 12, 31, 15), utc(2025, 1, 31, 15)),
        # Anchor 31 is clamped to Feb 28 (2025 is not a leap year), then back to 31 in March.
        (utc(2025, 3, 1), 31, "UTC", utc(2025, 2, 28), utc(2025, 3, 31)),
        (utc(2025, 2, 27), 31, "UTC", utc(2025, 1, 31), utc(2025, 2, 28)),
        (utc(2025, 4, 30, 12), 31, "UTC", utc(2025, 4, 30), utc(2025, 5, 31)),
        # Anchor 29: Feb 29 in a leap year, Feb 28 otherwise.
        (utc(2024, 3, 1), 29, "UTC", utc(2024, 2, 29), utc(2024, 3, 29)),
        (utc(2025, 3, 1), 29, "UTC", utc(2025, 2, 28), utc(2025, 3, 29)),
        (utc(2024, 2, 28, 23, 59), 29, "UTC", utc(2024, 1, 29), utc(2024, 2, 29)),
        # Midnight swallowed by a DST gap: the day starts when the clock jumps (00:00 -03 -> 01:00 -02).
        (utc(2018, 11, 10), 4, "America/Sao_Paulo", utc(2018, 11, 4, 3), utc(2018, 12, 4, 2)),
        # Midnight happens twice: the earlier one (-04:00) is used.
        (utc(2018, 11, 10), 4, "America/Havana", utc(2018, 11, 4, 4), utc(2018, 12, 4, 5)),
    ],
)
def test_billing_period(instant, anchor, zone, start, end):
    assert billing_period(instant, anchor, zone) == (start, end)


def test_offsets_of_start_and_end_differ_across_dst():
    start, end = billing_period(utc(2025, 3, 15), 1, "America/New_York")
    zone = ZoneInfo("America/New_York")
    assert start.astimezone(zone).utcoffset() == timedelta(hours=-5)
    assert end.astimezone(zone).utcoffset() == timedelta(hours=-4)
    assert start.astimezone(zone).hour == end.astimezone(zone).hour == 0


def test_start_is_inclusive_and_end_exclusive():
    start, end = billing_period(utc(2025, 3, 15), 1, "America/New_York")
    assert billing_period(start, 1, "America/New_York")[0] == start
    assert billing_period(end, 1, "America/New_York")[0] == end
    assert billing_period(start - timedelta(microseconds=1), 1, "America/New_York")[1] == start


def test_naive_instant_rejected():
    with pytest.raises(ValueError):
        billing_period(datetime(2025, 1, 1), 1, "UTC")  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("year", "month", "anchor", "day"), [(2025, 2, 31, 28), (2024, 2, 30, 29), (2025, 4, 31, 30)]
)
def test_anchor_date_clamps(year, month, anchor, day):
    assert anchor_date(year, month, anchor).day == day


ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "America/Sao_Paulo",
    "America/Havana",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
]


@given(
    # hypothesis takes naive bounds and attaches the zone itself
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2040, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(min_value=1, max_value=31),
    st.sampled_from(ZONES),
)
def test_periods_contain_the_instant_and_tile_time(instant, anchor, zone):
    start, end = billing_period(instant, anchor, zone)
    assert start <= instant < end
    assert billing_period(end, anchor, zone)[0] == end
    assert billing_period(start - timedelta(microseconds=1), anchor, zone)[1] == start
    local_start = start.astimezone(ZoneInfo(zone))
    assert local_start.day == anchor_date(local_start.year, local_start.month, anchor).day
    assert timedelta(days=27) < end - start < timedelta(days=32)
