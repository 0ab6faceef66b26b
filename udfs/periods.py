"""Billing period alignment: monthly periods that start at local midnight on the anchor day, in the customer's
time zone.

Rules (each tested in tests/unit/test_periods.py):
- The anchor day is clamped to the month's length: anchor 31 starts on Feb 28 (29 in leap years), Apr 30, ...
- A period starts at the *first instant of the anchor day* in local time. Normally that is 00:00. Where 00:00
  does not exist (a DST gap at midnight, e.g. America/Sao_Paulo 2018-11-04) the day starts at the end of the
  gap; where 00:00 happens twice (America/Havana 2018-11-04) the earlier one is used. One rule, so the result
  is deterministic and periods tile time with no gap or overlap.
- Periods are half-open [start, end), compared as UTC instants; across DST the UTC offsets of start and end
  differ, so a period is not a whole number of 24-hour days.
- A window belongs to the period containing its window_start (windows are UTC-aligned and may straddle a
  period boundary in zones with non-hour offsets such as +05:45; the whole window bills in the earlier
  period).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def anchor_date(year: int, month: int, anchor_day: int) -> date:
    """The anchor day of a month, clamped to the month's last day."""
    if not 1 <= anchor_day <= 31:
        raise ValueError(f"anchor_day must be 1..31, got {anchor_day}")
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def start_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant whose local date in `zone` is `day` (see module doc for gaps and overlaps)."""
    midnight = datetime.combine(day, time())
    candidates = [midnight.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    earliest, latest = min(candidates), max(candidates)
    if _local_date(earliest, zone) == day:
        return earliest
    return _first_instant_on(day, zone, earliest, latest)


def _local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _first_instant_on(day: date, zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """Binary search (to the microsecond) for the end of a DST gap that swallowed midnight."""
    step = timedelta(microseconds=1)
    while after - before > step:
        middle = before + (after - before) / 2
        if _local_date(middle, zone) >= day:
            after = middle
        else:
            before = middle
    return after


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


@lru_cache(maxsize=4096)  # every window of every customer of a tenant asks for the same few months
def period_start_in_month(year: int, month: int, anchor_day: int, zone: ZoneInfo) -> datetime:
    return start_of_local_day(anchor_date(year, month, anchor_day), zone)


def billing_period(instant_utc: datetime, anchor_day: int, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """(period_start, period_end) as aware UTC datetimes of the monthly period containing `instant_utc`."""
    if instant_utc.tzinfo is None or instant_utc.utcoffset() is None:
        raise ValueError(f"naive datetime {instant_utc!r}: instants must be timezone-aware")
    zone = _zone(tz)
    instant = instant_utc.astimezone(UTC)
    local = instant.astimezone(zone)
    year, month = local.year, local.month
    start = period_start_in_month(year, month, anchor_day, zone)
    if instant < start:
        year, month = _shift_month(year, month, -1)
        start = period_start_in_month(year, month, anchor_day, zone)
    end = period_start_in_month(*_shift_month(year, month, 1), anchor_day, zone)
    return start, end
