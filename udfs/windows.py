"""Tumbling window alignment, identical to Flink's TUMBLE with offset 0: windows are aligned to the Unix epoch
in UTC, [start, end) with start = ts - (ts mod size). Time zones play no part here; they only matter for
billing periods (udfs.periods). Sizes a run may use: `window_seconds` (whole seconds that divide a day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(instant: datetime) -> int:
    """Milliseconds since the epoch; refuses naive datetimes (an unknown zone is an unknown bill)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: timestamps must be timezone-aware")
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def window_bounds(ts: int | datetime, size: timedelta) -> tuple[datetime, datetime]:
    """(window_start, window_end) in aware UTC of the tumbling window of `size` containing `ts`.

    `ts` is epoch milliseconds (Flink's rowtime) or an aware datetime. The end is exclusive, as in Flink, so
    an event exactly at a boundary opens the next window. Floor modulo keeps pre-1970 instants correct.
    """
    size_ms = size // timedelta(milliseconds=1)
    if size_ms <= 0 or size != timedelta(milliseconds=size_ms):
        raise ValueError(f"window size must be a positive whole number of milliseconds, got {size}")
    ts_ms = ts if isinstance(ts, int) else to_epoch_ms(ts)
    start_ms = ts_ms - ts_ms % size_ms
    return from_epoch_ms(start_ms), from_epoch_ms(start_ms + size_ms)


SECONDS_PER_DAY = 86_400


def window_seconds(value: int | str | Decimal) -> int:
    """The tumbling window size a run may use, in whole seconds; `ValueError` (naming the value) for any other.

    Supported: every whole number of seconds from 1 to 86400 (one day) that divides a day. Windows are epoch-aligned
    (`window_bounds`) and the epoch is a UTC midnight, so such sizes tile every UTC day the same way, starting at its
    midnight: an hourly or daily line item covers a clock hour or a UTC calendar day, and no window depends on how
    many days lie between it and 1970. Sizes beyond a day would also hold usage back from invoices (and credits)
    for longer than a billing system should wait.
    """
    try:
        seconds = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not seconds.is_finite() or seconds != seconds.to_integral_value():
        raise ValueError(f"{value} is not a whole number of seconds")
    whole = int(seconds)
    if not 1 <= whole <= SECONDS_PER_DAY:
        raise ValueError(f"{value} seconds is outside 1 to {SECONDS_PER_DAY} (one day)")
    if SECONDS_PER_DAY % whole:
        raise ValueError(
            f"{value} seconds does not divide a day ({SECONDS_PER_DAY} s) evenly: use a divisor such as 60, 300, "
            f"900, 3600 or 86400")
    return whole


def check_window_size_ms(size_ms: int) -> int:
    """`size_ms` if it is a supported window size (`window_seconds`) in milliseconds; `ValueError` otherwise."""
    if size_ms % 1000:
        raise ValueError(f"window size {size_ms} ms is not a whole number of seconds")
    window_seconds(size_ms // 1000)
    return size_ms
