"""When a first-seen usage record is late: per series, never by another series' clock (the specification; the job
runs the Java twin in `io.meterstream.rating.WindowRating` / `Series.fired`).

A series is one (tenant, customer, meter, group). Each record comes after some watermark (`udfs.watermarks`: the
partition's watermark after the records before it). A window opened by a record fires once the watermark reaches its
fire time: its end - 1, or, when the watermark the record came after had already passed that, the first watermark
after it (that watermark + 1 ms). Windows of a series fire in window order. A first-seen record:

- joins its window if the series has it open;
- is **late** if the series has already fired that window or a later one: it cannot join that window's line, so
  it is billed as a late adjustment of it (`udfs.line_items.accumulate_late`; the late records of one window that
  came after the same watermark make one);
- otherwise opens its window and is billed, even when the watermark has passed the window already (a new series, or
  one that has not reached that window yet): the window then fires at the next watermark advance.

So lateness depends only on the record's own series' history. A customer seen for the first time after a client
running far ahead moved the watermark (or after an idle spell) is billed as if it had been there all along; a
record is late only if its own series had moved past its window. Only a record whose window the watermark had passed
(`udfs.watermarks.past_watermark`) can be late.

The shape is a pure stateful step (as bytewax's `stateful_map`): `offer` a record, `advance` the watermark; both
return what happened, nothing else changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field


def window_start_ms(event_time_ms: int, window_ms: int) -> int:
    return event_time_ms - event_time_ms % window_ms


@dataclass
class SeriesLateness:
    """The lateness state of every series: open windows and the latest fired one."""

    window_ms: int
    open_windows: dict[Hashable, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))  # start -> fire
    last_fired: dict[Hashable, int] = field(default_factory=dict)
    watermark: int | None = None
    # (series, window start) -> the watermark its first record came after, for a window opened past the watermark:
    # if that had reached its period's end + grace, its line is a prior-period adjustment (`udfs.line_items`)
    opened_after: dict[tuple[Hashable, int], int] = field(default_factory=dict)

    def offer(self, series: Hashable, event_time_ms: int) -> bool:
        """A first-seen valid record of `series`: True when it is billed (its window is or becomes open), False when
        it is late."""
        start = window_start_ms(event_time_ms, self.window_ms)
        if start in self.open_windows[series]:
            return True
        if series in self.last_fired and start <= self.last_fired[series]:
            return False
        fire_at = start + self.window_ms - 1
        if self.watermark is not None and self.watermark + 1 > fire_at:
            fire_at = self.watermark + 1
            self.opened_after[(series, start)] = self.watermark
        self.open_windows[series][start] = fire_at
        return True

    def advance(self, watermark: int | None) -> list[tuple[Hashable, int]]:
        """The watermark after a record (None: none yet; it never goes back). Every open window whose fire time it
        has reached fires; returns the (series, window start) pairs fired, in window order per series."""
        if watermark is None or (self.watermark is not None and watermark <= self.watermark):
            return []
        self.watermark = watermark
        fired = []
        for series, windows in self.open_windows.items():
            for start in sorted(s for s, fire_at in windows.items() if fire_at <= watermark):
                del windows[start]
                self.last_fired[series] = start
                fired.append((series, start))
        return fired
