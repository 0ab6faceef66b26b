"""An independent expected computation of the billing job's outputs, for job and integration tests.

It replays the records in arrival order with plain loops and bookkeeping, and takes every rule from its home in
`udfs/`, never from the job or the Java code: record validation (`udfs.validation`), dedup (`udfs.dedup`: first copy
wins, same vs conflicting payload by the canonical fingerprint of `udfs.grouping`), the partition's watermark
(`udfs.watermarks`), windows (`udfs.windows`) and groups (`udfs.grouping`), lateness per series (`udfs.lateness`), the
window fold (`udfs.aggregations`) and the period to date of each series' fired windows and late adjustments, in the
order the series decides them (`udfs.line_items.bill_window` and `bill_late`: period boundaries, the period fold of
`udfs.aggregations`, price models, rounding, amounts that telescope; the late events of one window that came after
the same watermark make one adjustment). A test run is far shorter than the dedup TTL: every record arrives at one
processing time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from udfs.aggregations import UsageSample, aggregate_window, aggregator_for
from udfs.catalog import Catalog
from udfs.dedup import FIRST, DedupMemory
from udfs.grouping import fingerprint, group_of
from udfs.lateness import SeriesLateness
from udfs.line_items import SeriesPeriods, bill_late, bill_window
from udfs.validation import Rejection, validate_usage_record
from udfs.watermarks import PartitionClock
from udfs.windows import from_epoch_ms, to_epoch_ms, window_bounds

DEDUP_TTL_MS = 35 * 86_400_000  # the job's default (--dedup-ttl-days 35)
MAX_AGE = timedelta(days=35)  # the job's default (--max-age-days 35)
END_OF_INPUT = 2**62  # the watermark a bounded job ends with: every open window fires


@dataclass
class ExpectedLine:
    line_item_id: str
    kind: str
    invoice_id: str
    tenant_id: str
    customer_id: str
    meter: str
    group: dict[str, str]
    window_start: datetime
    quantity: Decimal
    period_quantity_to_date: Decimal
    amount: Decimal
    period_amount_to_date: Decimal
    event_count: int


@dataclass
class Expected:
    counts: Counter = field(default_factory=Counter)
    dead_letter_reasons: Counter = field(default_factory=Counter)
    late_event_ids: set[tuple[str, str]] = field(default_factory=set)
    lines: list[ExpectedLine] = field(default_factory=list)


def expected_outputs(
    records: list[bytes], catalog: Catalog, *, now: datetime, window_ms: int, out_of_orderness_ms: int,
    ingestion_ms: list[int] | None = None, idle_timeout_ms: int = 5_000,
) -> Expected:
    """The outputs of one partition read in order (or of a file source): `ingestion_ms` are the records' Kafka
    timestamps (None: none, as from a file)."""
    out = Expected()
    meters_by_tenant = catalog.meters_by_tenant()
    clock = PartitionClock(out_of_orderness_ms, idle_timeout_ms)
    lateness = SeriesLateness(window_ms)
    dedup = DedupMemory(DEDUP_TTL_MS)
    processing_ms = to_epoch_ms(now)
    size = timedelta(milliseconds=window_ms)
    windows: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    # per series, what it decides, in order: ("fire", window start, the watermark it was opened after if it was
    # opened past the watermark, else None) or ("late", window start, watermark, event)
    decided: dict[tuple, list[tuple]] = defaultdict(list)

    def advance(watermark: int | None) -> None:
        for series, start in lateness.advance(watermark):
            decided[series].append(("fire", start, lateness.opened_after.pop((series, start), None)))

    for index, raw in enumerate(records):
        out.counts["received"] += 1
        result = validate_usage_record(raw, meters_by_tenant=meters_by_tenant, now=now)
        if isinstance(result, Rejection):
            out.counts["dead_lettered"] += 1
            out.dead_letter_reasons[result.reason.value] += 1
            continue
        event = result
        rt = to_epoch_ms(event.timestamp)
        key = (event.tenant_id, event.event_id)
        outcome = dedup.offer(key, fingerprint(event), processing_ms)
        if outcome != FIRST:
            out.counts[outcome] += 1
        else:
            window_start = to_epoch_ms(window_bounds(rt, size)[0])
            group = group_of(event.dimensions, catalog.meter(event.tenant_id, event.meter).group_by)
            series = (event.tenant_id, event.customer_id, event.meter, group)
            floor = lateness.watermark  # the watermark the record came after
            if lateness.offer(series, rt):
                out.counts["windowed"] += 1
                windows[series][window_start].append(event)
            else:
                out.counts["billed_late"] += 1
                out.late_event_ids.add(key)
                decided[series].append(("late", window_start, floor, event))
        # The watermark follows every valid record (duplicates and late ones included), after the record, and fires
        # the windows it passes.
        clock.observe((event.tenant_id, event.customer_id), rt, None if ingestion_ms is None else ingestion_ms[index])
        advance(clock.watermark)
    advance(END_OF_INPUT)

    for series, steps in decided.items():
        tenant_id, customer_id, meter_name, group = series
        tenant = catalog.tenant(tenant_id)
        meter = catalog.meter(tenant_id, meter_name)
        aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)

        def window_of(start_ms: int, events: list, key=series, aggregator=aggregator):
            start, end = window_bounds(start_ms, size)
            return aggregate_window(
                aggregator, [UsageSample(e.event_id, e.timestamp, e.value, e.dimensions) for e in events],
                tenant_id=key[0], customer_id=key[1], meter=key[2], group=key[3], window_start=start, window_end=end,
            )

        periods = SeriesPeriods()
        index = 0
        while index < len(steps):
            if steps[index][0] == "fire":
                start_ms, opened_after = steps[index][1], steps[index][2]
                periods, line = bill_window(periods, window_of(start_ms, windows[series][start_ms]), tenant,
                                            emitted_at=now, max_age=MAX_AGE,
                                            opened_after=None if opened_after is None else from_epoch_ms(opened_after))
                out.lines.append(_expected(line))
                index += 1
                continue
            # A run of late events after the same watermark: decided together, one adjustment per window.
            floor = steps[index][2]
            groups: dict[int, list] = defaultdict(list)
            while index < len(steps) and steps[index][0] == "late" and steps[index][2] == floor:
                groups[steps[index][1]].append(steps[index][3])
                index += 1
            for start_ms in sorted(groups):
                periods, line = bill_late(periods, window_of(start_ms, groups[start_ms]), tenant,
                                          watermark=from_epoch_ms(floor), emitted_at=now)
                if line is not None:
                    out.lines.append(_expected(line))
    return out


def _expected(line) -> ExpectedLine:
    return ExpectedLine(
        line.line_item_id, line.kind, line.invoice_id, line.tenant_id, line.customer_id, line.meter, dict(line.group),
        line.window_start, line.quantity, line.period_quantity_to_date, line.amount, line.period_amount_to_date,
        line.event_count,
    )

