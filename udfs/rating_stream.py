"""What the window operator does with a stream of usage and correction records: the specification of
`io.meterstream.rating.WindowRating` over whole streams (golden `rating-stream.json`,
`WindowRatingStreamGoldenTest`).

Every money rule has its own home (`udfs.line_items`: a fired window, late usage, a correction into the period to
date; `udfs.corrections`: what a correction does to a window; `udfs.lateness`: when a record is late). This module
is only their order, per series (tenant, customer, meter, group), which is what makes a line's existence, kind, id
and amount independent of when records reach the operator:

- Each record comes after a watermark (its `floor`, the one the routing operator had forwarded before it; None:
  none yet). A usage record whose window end - 1 its floor has not reached is **on time**: it joins its window,
  opening it (fire time: its end - 1). Such a record can never find its window fired.
- A usage record past the watermark at routing, and every correction, waits until the operator's watermark is past
  its floor. Then the records of that floor are **decided together**, after every window due by the floor fired and
  before any due later: first the usage records in arrival order (one joins its window if the series holds it open,
  is **late** if the series fired that window or a later one, else opens it: fire time the floor + 1, and its line
  names the floor it was opened after), then the late ones of each window make one late adjustment (`bill_late`),
  windows in order; then the corrections, by window in order: an open window's contents change (its usage line bills
  them), a fired window's make one correction line (`correct_window`, with the series' other fired windows of the
  period as they stand), and one neither open nor fired is opened by its first add (usage moved into the series),
  after which the rest change it as an open window (a remove before any add there breaks an invariant).
- Windows fire in window order (`bill_window`) when the watermark reaches their fire time.

A correction line's event count is the number of corrections, not of records (`udfs.corrections.corrections_count`).

Freezing retained windows (`udfs.corrections.freeze_settled`) runs on processing time and is not modelled here: a
stream here is decided at one processing time, so nothing freezes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.invoice_line_item import InvoiceLineItem
from udfs.aggregations import Aggregator, Group, UsageSample, WindowAggregate, aggregate_window, aggregator_for
from udfs.catalog import Catalog
from udfs.corrections import (
    WindowContents,
    apply_to_window,
    correct_window,
    corrections_count,
    window_contents,
    window_payload,
)
from udfs.line_items import SeriesPeriods, bill_late, bill_window
from udfs.periods import billing_period
from udfs.windows import from_epoch_ms, to_epoch_ms

SeriesKey = tuple[str, str, str, Group]  # (tenant, customer, meter, group)


@dataclass(frozen=True)
class Correction:
    """One side of an applied correction in one series: what the ledger's contribution takes out (`remove`, the
    event as billed) and puts in (`add`); an amend within one series and window has both, a cancel only `remove`, an
    amend that moves usage to another series a remove here and an add there."""

    event_id: str
    remove: UsageSample | None
    add: UsageSample | None


@dataclass
class _OpenWindow:
    fire_at_ms: int
    opened_after_ms: int | None
    contents: WindowContents


@dataclass
class _Series:
    key: SeriesKey
    aggregator: Aggregator
    periods: SeriesPeriods = field(default_factory=SeriesPeriods)
    open: dict[int, _OpenWindow] = field(default_factory=dict)
    # every fired window as it stands (late usage and corrections included): what a correction of it folds over
    fired: dict[int, tuple[WindowAggregate, WindowContents]] = field(default_factory=dict)
    last_fired_ms: int | None = None
    pending: list[tuple[int, UsageSample | Correction]] = field(default_factory=list)  # (floor, record), arrival order


def corrections_in(records: list[Correction]) -> int:
    """How many corrections these records of one window are (`udfs.corrections.corrections_count`)."""
    return corrections_count((r.event_id, r.remove is not None, r.add is not None) for r in records)


@dataclass
class RatingStream:
    """The window operator's state over every series it has seen, as one pure stateful step: `usage` and `correct`
    take records, `advance` the watermark and returns the line items, in the order each series emits them."""

    catalog: Catalog
    window_ms: int
    max_age: timedelta
    emitted_at: datetime
    series: dict[SeriesKey, _Series] = field(default_factory=dict)
    watermark_ms: int | None = None

    def usage(self, key: SeriesKey, sample: UsageSample, floor_ms: int | None) -> None:
        """A first-seen usage record of series `key` that came after watermark `floor_ms` (None: none yet)."""
        s = self._series(key)
        start = self._start(sample)
        if floor_ms is not None and start + self.window_ms - 1 <= floor_ms:
            s.pending.append((floor_ms, sample))
        else:
            self._add(s, sample, floor_ms)

    def correct(self, key: SeriesKey, correction: Correction, floor_ms: int) -> None:
        """One applied correction's side in series `key`, after watermark `floor_ms`."""
        self._series(key).pending.append((floor_ms, correction))

    def advance(self, watermark_ms: int) -> dict[SeriesKey, list[InvoiceLineItem]]:
        """The watermark moves to `watermark_ms` (never back): what is due fires and is decided; lines per series."""
        if self.watermark_ms is not None and watermark_ms <= self.watermark_ms:
            return {}
        self.watermark_ms = watermark_ms
        out: dict[SeriesKey, list[InvoiceLineItem]] = {}
        for key, s in self.series.items():
            lines = self._run_due(s, watermark_ms)
            if lines:
                out[key] = lines
        return out

    # ---- one series ------------------------------------------------------------------------------------------

    def _series(self, key: SeriesKey) -> _Series:
        s = self.series.get(key)
        if s is None:
            meter = self.catalog.tenant(key[0]).meter(key[2])
            if meter.aggregation == "unique_count":
                raise ValueError("unique_count periods are rated by the Python accumulator, not the window operator")
            s = self.series[key] = _Series(key, aggregator_for(meter.aggregation, meter.unique_dimension))
        return s

    def _start(self, sample: UsageSample) -> int:
        t = to_epoch_ms(sample.event_time)
        return t - t % self.window_ms

    def _add(self, s: _Series, sample: UsageSample, floor_ms: int | None) -> None:
        start = self._start(sample)
        window = s.open.get(start)
        if window is None:
            if s.last_fired_ms is not None and start <= s.last_fired_ms:
                raise ValueError(f"a record not past the watermark found its window {start} fired in {s.key}")
            fire_at = start + self.window_ms - 1
            opened_after = None
            if floor_ms is not None and floor_ms + 1 > fire_at:
                fire_at, opened_after = floor_ms + 1, floor_ms
            window = s.open[start] = _OpenWindow(fire_at, opened_after, window_contents(s.aggregator, ()))
        window.contents = apply_to_window(window.contents, s.aggregator, add=sample)

    def _run_due(self, s: _Series, t: int) -> list[InvoiceLineItem]:
        lines: list[InvoiceLineItem] = []
        while True:
            due = [floor for floor, _ in s.pending if floor + 1 <= t]
            floor = min(due) if due else None
            fire_by = t if floor is None else floor
            while True:
                ready = [start for start, w in s.open.items() if w.fire_at_ms <= fire_by]
                if not ready:
                    break
                lines.append(self._fire(s, min(ready)))
            if floor is None:
                return lines
            batch = [record for f, record in s.pending if f == floor]
            s.pending = [(f, record) for f, record in s.pending if f != floor]
            lines.extend(self._decide(s, batch, floor))

    def _tenant(self, s: _Series):
        return self.catalog.tenant(s.key[0])

    def _aggregate(self, s: _Series, start: int, contents: WindowContents) -> WindowAggregate:
        return WindowAggregate(*s.key, from_epoch_ms(start), from_epoch_ms(start + self.window_ms),
                               contents.event_count, **window_payload(contents, s.aggregator))

    def _fire(self, s: _Series, start: int) -> InvoiceLineItem:
        window = s.open.pop(start)
        s.last_fired_ms = start
        aggregate = self._aggregate(s, start, window.contents)
        opened_after = None if window.opened_after_ms is None else from_epoch_ms(window.opened_after_ms)
        s.periods, line = bill_window(s.periods, aggregate, self._tenant(s), emitted_at=self.emitted_at,
                                      max_age=self.max_age, opened_after=opened_after)
        s.fired[start] = (aggregate, window.contents)
        return line

    def _fired(self, s: _Series, start: int) -> bool:
        return start not in s.open and s.last_fired_ms is not None and start <= s.last_fired_ms

    def _decide(self, s: _Series, batch: list[UsageSample | Correction], floor: int) -> list[InvoiceLineItem]:
        lines: list[InvoiceLineItem] = []
        late: dict[int, list[UsageSample]] = defaultdict(list)
        corrections: dict[int, list[Correction]] = defaultdict(list)
        for record in batch:
            if isinstance(record, Correction):
                sample = record.remove if record.remove is not None else record.add
                corrections[self._start(sample)].append(record)
            elif self._fired(s, self._start(record)):
                late[self._start(record)].append(record)
            else:
                self._add(s, record, floor)
        tenant = self._tenant(s)
        for start in sorted(late):
            late_window = aggregate_window(s.aggregator, late[start], tenant_id=s.key[0], customer_id=s.key[1],
                                           meter=s.key[2], group=s.key[3], window_start=from_epoch_ms(start),
                                           window_end=from_epoch_ms(start + self.window_ms))
            s.periods, line = bill_late(s.periods, late_window, tenant, watermark=from_epoch_ms(floor),
                                        emitted_at=self.emitted_at)
            _, contents = s.fired.get(start, (None, window_contents(s.aggregator, ())))
            for sample in late[start]:
                contents = apply_to_window(contents, s.aggregator, add=sample)
            s.fired[start] = (self._aggregate(s, start, contents), contents)
            if line is not None:
                lines.append(line)
        for start in sorted(corrections):
            group = corrections[start]
            if start in s.open:
                window = s.open[start]
                for c in group:
                    window.contents = apply_to_window(window.contents, s.aggregator, remove=c.remove, add=c.add)
            elif self._fired(s, start):
                line = self._correct_fired(s, start, group, floor)
                if line is not None:
                    lines.append(line)
            else:
                for c in group:  # an add opens it, as a record would; what follows changes it as an open window
                    if start in s.open:
                        window = s.open[start]
                        window.contents = apply_to_window(window.contents, s.aggregator, remove=c.remove, add=c.add)
                    elif c.remove is not None:
                        raise ValueError(f"a correction removes usage from window {start} of {s.key}, which its "
                                         "series neither holds open nor has fired")
                    else:
                        self._add(s, c.add, floor)
        return lines

    def _correct_fired(self, s: _Series, start: int, group: list[Correction], floor: int) -> InvoiceLineItem | None:
        tenant = self._tenant(s)
        schedule = tenant.billing_period
        period_of = {w: billing_period(from_epoch_ms(w), schedule.anchor_day, schedule.zone)[0] for w in s.fired}
        period = billing_period(from_epoch_ms(start), schedule.anchor_day, schedule.zone)[0]
        window, contents = s.fired.get(start, (None, None))
        others = [w for w_start, (w, _) in s.fired.items() if w_start != start and period_of[w_start] == period]
        corrected = correct_window(
            s.periods, window, contents, [(c.remove, c.add) for c in group], tenant, key=s.key,
            window_start=from_epoch_ms(start), window_end=from_epoch_ms(start + self.window_ms), fired=True,
            period_windows=others, corrections=corrections_in(group), watermark=from_epoch_ms(floor),
            emitted_at=self.emitted_at)
        s.periods = corrected.series
        s.fired[start] = (corrected.window, corrected.contents)
        return corrected.line


__all__ = ["Correction", "RatingStream", "SeriesKey", "corrections_in"]
