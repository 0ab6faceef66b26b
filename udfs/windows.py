"""Tumbling window alignment, identical to Flink's TUMBLE with offset 0: windows are aligned to the Unix epoch
in UTC, [start, end) with start = ts - (ts mod size). Time zones play no part here; they only matter for
billing periods (udfs.periods).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
