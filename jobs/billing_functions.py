"""PyFlink adapters of the billing job's Python stages: load state, call the pure function in `udfs/`, save state.

They only see few rows: unique_count windows, dead letters, late events and accounting updates (never every event;
other windows are rated in Java).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.functions import FlatMapFunction, MapFunction
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

from jobs import uids
from schemas.dead_letter import DeadLetterReason
from schemas.late_event import LateUsageEvent
from schemas.usage_event import UsageEvent
from udfs.aggregations import aggregator_for
from udfs.catalog import Catalog, parse_catalog
from udfs.corrections import (
    RetainedWindows,
    begin_retaining,
    correct_retained,
    freeze_settled,
    retain_late,
    retain_window,
    tick,
)
from udfs.line_items import PeriodState, SeriesPeriods, StaleWindowError, bill_late, bill_window
from udfs.line_items import window_key as window_key_of
from udfs.validation import Rejection, dead_letter_for
from udfs.window_rows import parse_unique_corrections, unique_window_contents, window_aggregate_from_row
from udfs.windows import from_epoch_ms

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def window_key(row: Row) -> str:
    """The period-to-date state's key: (tenant, customer, meter, group) joined with a separator ids cannot hold
    unnoticed (a collision would need the separator inside an id, and group_json is canonical JSON)."""
    return "\x1f".join((row.tenant_id, row.customer_id, row.meter, row.group_json))


def state_ttl(days: int) -> StateTtlConfig:
    """Processing-time TTL as a safety net behind the period-end timers. Background cleanup is off: in THREAD mode
    it would call back into the JVM gateway from the TaskManager (stack-facts trap 2)."""
    from pyflink.common.time import Time

    return (
        StateTtlConfig.new_builder(Time.days(days))
        .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
        .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
        .disable_cleanup_in_background()
        .build()
    )


class PeriodToDateFunction(KeyedProcessFunction):
    """unique_count windows of one (tenant, customer, meter, group) in, invoice line items (JSON) out: a fired window
    (`udfs.line_items.bill_window`), the late events of one that came after the same watermark (`bill_late`: a
    late adjustment line, or none when every value was already counted in the period), or, with corrections, the
    corrections of a fired window that came after one watermark (`udfs.corrections.correct_retained`: a correction
    or prior-period adjustment line, or none when the period's distinct values did not change).

    State: the series' `SeriesPeriods` (its latest billing period's distinct values and the earlier periods late
    usage can still reach). It is not cleared at period end: a window of the period can come after the watermark passed
    the period's end. Its TTL is the window operator's (BillingSettings.period_state_ttl_days), after the last write.
    State of the previous version (one `PeriodState`, `uids.PERIOD_TO_DATE_STATE_V1`) is read once and moved over.
    With `retain_contents` (the job's `--corrections`), the series' `RetainedWindows` too: each fired window's values
    with how many events carry each, so that a cancel or amend can take a value out of the period exactly, until
    `retain_ms` of the series' clock after a window's latest contribution (`udfs.corrections.tick` and
    `freeze_settled`, on each fired window); without, that state is dropped (what a later run with corrections retains
    begins frozen). The previous version's (`uids.PERIOD_TO_DATE_CONTENTS_STATE_V1`, before windows kept their time)
    is moved over.
    """

    def __init__(self, catalog_yaml: str, *, state_ttl_days: int, max_age_ms: int, retain_contents: bool = False,
                 retain_ms: int | None = None):
        if retain_contents and (retain_ms is None or retain_ms <= 0):
            raise ValueError(f"retaining window contents needs retain_ms > 0, got {retain_ms}")
        self.catalog_yaml = catalog_yaml
        self.state_ttl_days = state_ttl_days
        self.max_age = timedelta(milliseconds=max_age_ms)
        self.retain_contents = retain_contents
        self.retain_ms = retain_ms
        self.catalog: Catalog | None = None
        self.state = None
        self.state_v1 = None
        self.contents = None
        self.contents_v1 = None

    def open(self, runtime_context: RuntimeContext):
        # Once per operator instance, and only here: the function is pickled on the client and unpickled in each
        # Python worker, so every instance must build its catalog in its own process in any case (by unpickling a
        # parsed one or by parsing); parsing the YAML text the client validated at start-up is that one build (a
        # few ms per instance, nothing per record) and ships the catalog in its own, versioned form.
        self.catalog = parse_catalog(self.catalog_yaml)
        descriptor = ValueStateDescriptor(uids.PERIOD_TO_DATE_STATE, Types.PICKLED_BYTE_ARRAY())
        descriptor.enable_time_to_live(state_ttl(self.state_ttl_days))
        self.state = runtime_context.get_state(descriptor)
        descriptor_v1 = ValueStateDescriptor(uids.PERIOD_TO_DATE_STATE_V1, Types.PICKLED_BYTE_ARRAY())
        descriptor_v1.enable_time_to_live(state_ttl(self.state_ttl_days))
        self.state_v1 = runtime_context.get_state(descriptor_v1)
        contents = ValueStateDescriptor(uids.PERIOD_TO_DATE_CONTENTS_STATE, Types.PICKLED_BYTE_ARRAY())
        contents.enable_time_to_live(state_ttl(self.state_ttl_days))
        self.contents = runtime_context.get_state(contents)
        contents_v1 = ValueStateDescriptor(uids.PERIOD_TO_DATE_CONTENTS_STATE_V1, Types.PICKLED_BYTE_ARRAY())
        contents_v1.enable_time_to_live(state_ttl(self.state_ttl_days))
        self.contents_v1 = runtime_context.get_state(contents_v1)
        metrics = runtime_context.get_metrics_group().add_group("meterstream")
        self.windows_rated = metrics.counter("windows_rated")
        self.stale_windows = metrics.counter("windows_stale")

    def series_periods(self) -> SeriesPeriods:
        periods: SeriesPeriods | None = self.state.value()
        if periods is None:
            previous: PeriodState | None = self.state_v1.value()
            if previous is None:
                return SeriesPeriods()
            self.state_v1.clear()
            return SeriesPeriods((previous,))
        return periods

    def retained_windows(self) -> RetainedWindows | None:
        """The series' retained windows; those of the previous state version are rebuilt once and moved over."""
        retained = self.contents.value()
        if retained is None:
            old = self.contents_v1.value()
            if old is None:
                return None
            self.contents_v1.clear()
            retained = upgrade_retained_v1(old)
        return retained

    def process_element(self, row: Row, ctx: KeyedProcessFunction.Context):
        window = window_aggregate_from_row(
            tenant_id=row.tenant_id,
            customer_id=row.customer_id,
            meter=row.meter,
            group_json=row.group_json,
            aggregation=row.aggregation,
            window_start=from_epoch_ms(row.window_start_ms),
            window_end=from_epoch_ms(row.window_end_ms),
            event_count=row.event_count,
            quantity=None,
            last_key_value=None,
            unique_tokens=row.unique_tokens,
        )
        tenant = self.catalog.tenant(window.tenant_id)
        periods = self.series_periods()
        retained = None
        now_ms = 0
        if self.retain_contents:
            retained = tick(self.retained_windows() or begin_retaining(periods),
                            ctx.timer_service().current_processing_time(), self.retain_ms)
            now_ms = retained.clock_ms  # the series' clock: retained windows are timed by it
        if row.corrections is not None:
            if retained is None:
                raise ValueError(f"corrections of {window} reached an accumulator that retains no window contents")
            dimension = tenant.meter(window.meter).unique_dimension
            changes, corrections = parse_unique_corrections(row.corrections, dimension)
            periods, retained, line_item = correct_retained(
                periods, retained, changes, tenant, key=window_key_of(window), window_start=window.window_start,
                window_end=window.window_end, corrections=corrections,
                watermark=from_epoch_ms(row.late_watermark_ms), emitted_at=utc_now(), now_ms=now_ms)
        elif row.late_watermark_ms is not None:
            periods, line_item = bill_late(periods, window, tenant, watermark=from_epoch_ms(row.late_watermark_ms),
                                           emitted_at=utc_now())
            if retained is not None:
                meter = tenant.meter(window.meter)
                retained = retain_late(
                    retained, window, unique_window_contents(row.unique_tokens, row.unique_token_counts,
                                                             row.event_count),
                    aggregator_for(meter.aggregation, meter.unique_dimension), now_ms=now_ms)
        else:
            try:
                opened_after = None if row.opened_after_ms is None else from_epoch_ms(row.opened_after_ms)
                periods, line_item = bill_window(periods, window, tenant, emitted_at=utc_now(), max_age=self.max_age,
                                                 opened_after=opened_after)
            except StaleWindowError as exc:
                # Cannot happen while windows fire in order per key; if it does, it must be loud, never billed twice.
                self.stale_windows.inc()
                log.error("stale window not billed: %s (%s)", window, exc)
                self.state.update(periods)  # unchanged, but maybe just moved over from the previous state version
                return
            self.windows_rated.inc()
            if retained is not None:
                meter = tenant.meter(window.meter)
                retained = freeze_settled(
                    retain_window(retained, window, unique_window_contents(row.unique_tokens, row.unique_token_counts,
                                                                           row.event_count), periods, tenant,
                                  now_ms=now_ms),
                    aggregator_for(meter.aggregation, meter.unique_dimension), tenant, now_ms=now_ms,
                    retain_ms=self.retain_ms)
        self.state.update(periods)
        if retained is not None:
            self.contents.update(retained)
        else:
            self.contents.clear()
        if line_item is not None:
            yield line_item.model_dump_json()


def upgrade_retained_v1(old) -> RetainedWindows:
    """`RetainedWindows` pickled into `uids.PERIOD_TO_DATE_CONTENTS_STATE_V1`, before the series' clock and its
    windows' times: rebuilt through the constructor (the clock starts at the next tick; each window counts from the
    next `freeze_settled`)."""
    return RetainedWindows(dict(old.windows), dict(old.frozen))


class DeadLetterFormatter(MapFunction):
    """A rejected raw record -> the `usage-dead-letters` contract (text, or base64 when not UTF-8)."""

    def map(self, row: Row) -> str:
        letter = dead_letter_for(
            row.payload,
            Rejection(DeadLetterReason(row.reason), row.detail or ""),
            source_topic=row.src_topic,
            partition=row.src_partition,
            offset=row.src_offset,
            received_at=utc_now(),
        )
        return letter.model_dump_json()


class LateEventFormatter(MapFunction):
    """A first-seen event whose window had closed -> the `usage-late-events` contract."""

    def __init__(self, window_size_ms: int):
        self.window_size_ms = window_size_ms

    def map(self, row: Row) -> str:
        if row.watermark_at_routing_ms is None or row.payload is None:
            raise ValueError(f"a late row must carry its payload and the watermark at routing: {row}")
        event = UsageEvent.model_validate_json(row.payload)
        window_end = from_epoch_ms(row.window_end_ms)
        late = LateUsageEvent.from_event(
            event,
            window_start=window_end - timedelta(milliseconds=self.window_size_ms),
            window_end=window_end,
            watermark=from_epoch_ms(row.watermark_at_routing_ms),
            source_partition=row.src_partition,
            source_offset=row.src_offset,
            routed_at=utc_now(),
        )
        return late.model_dump_json()


class AccountingFunction(FlatMapFunction):
    """Running outcome counts (a changelog) -> Flink counters and `billing-accounting` records.

    Counters move by the difference to the last value this subtask saw for an outcome; one outcome's updates always
    come through the same subtask (the aggregation is hash-partitioned by outcome and this operator is forwarded).
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.last_seen: dict[tuple[str, str], int] = {}
        self.counters: dict[str, object] = {}
        self.metrics = None

    def open(self, runtime_context: RuntimeContext):
        self.metrics = runtime_context.get_metrics_group().add_group("meterstream")

    def _counter(self, outcome: str):
        if outcome not in self.counters:
            self.counters[outcome] = self.metrics.counter(f"records_{outcome}")
        return self.counters[outcome]

    def flat_map(self, row: Row):
        from pyflink.common import RowKind

        if row.get_row_kind() not in (RowKind.INSERT, RowKind.UPDATE_AFTER):
            return
        key = (row.outcome, row.detail or "")
        self._counter(row.outcome).inc(row.records - self.last_seen.get(key, 0))
        self.last_seen[key] = row.records
        yield json.dumps(
            {"run_id": self.run_id, "outcome": row.outcome, "detail": row.detail or "", "records": row.records},
            sort_keys=True,
        )
