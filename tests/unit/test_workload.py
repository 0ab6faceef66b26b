"""The workload generator keeps its promises: same seed same bytes, the rates it was asked for, every record of
the kind it claims (valid, late at its position, a real re-send, rejected with the intended reason)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from meterstream.workload import (
    MALFORMED_REASONS,
    GroundTruth,
    RecordKind,
    Workload,
    WorkloadSpec,
    generate_workload,
    iter_workload,
)
from schemas.usage_event import UsageEvent
from udfs.catalog import load_catalog
from udfs.validation import Rejection, validate_usage_record

CATALOG = load_catalog(WorkloadSpec().catalog_path)
METERS_BY_TENANT = CATALOG.meters_by_tenant()
SPEC = WorkloadSpec(seed=7, events=20_000, customers_per_tenant=50)


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate_workload(SPEC)


@pytest.fixture(scope="module")
def validated(workload: Workload) -> list[UsageEvent | Rejection]:
    now = workload.reference_time
    return [validate_usage_record(r, meters_by_tenant=METERS_BY_TENANT, now=now) for r in workload.records]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    spec = WorkloadSpec(seed=3, events=3_000)
    first, second = generate_workload(spec), generate_workload(spec)
    assert first.records == second.records
    assert first.kinds == second.kinds
    assert first.truth == second.truth
    assert generate_workload(WorkloadSpec(seed=4, events=3_000)).records != first.records


def test_streaming_variant_yields_the_same_records(workload: Workload) -> None:
    truth = GroundTruth()
    streamed = [(kind, record) for kind, record, _, _ in iter_workload(SPEC, truth=truth)]
    assert [record for _, record in streamed] == workload.records
    assert bytes(kind for kind, _ in streamed) == bytes(workload.kinds)
    assert truth == workload.truth


def test_counts_add_up_and_rates_are_roughly_as_requested(workload: Workload) -> None:
    counts = Counter(RecordKind(k) for k in workload.kinds)
    truth = workload.truth
    assert len(workload.records) == SPEC.events == truth.records
    assert counts[RecordKind.ON_TIME] == truth.on_time
    assert counts[RecordKind.LATE] == truth.intended_late
    assert counts[RecordKind.DUPLICATE] + counts[RecordKind.DUPLICATE_CONFLICT] == truth.intended_duplicates
    assert counts[RecordKind.DUPLICATE_CONFLICT] == truth.intended_conflicting_duplicates
    assert counts[RecordKind.MALFORMED] == truth.intended_malformed == len(workload.malformed_reasons)
    assert truth.valid + truth.intended_malformed == SPEC.events
    assert truth.intended_duplicates / SPEC.events == pytest.approx(SPEC.duplicate_rate, abs=0.01)
    assert truth.intended_late / SPEC.events == pytest.approx(SPEC.late_rate, abs=0.004)
    assert truth.intended_malformed / SPEC.events == pytest.approx(SPEC.malformed_rate, abs=0.004)
    assert truth.intended_conflicting_duplicates / truth.intended_duplicates == pytest.approx(0.2, abs=0.06)


def test_every_non_malformed_record_is_valid(workload: Workload, validated: list) -> None:
    for index, result in enumerate(validated):
        if workload.kinds[index] != RecordKind.MALFORMED:
            assert isinstance(result, UsageEvent), (workload.records[index], result)


def test_every_malformed_record_is_rejected_with_its_reason(workload: Workload, validated: list) -> None:
    seen = Counter()
    for index, reason in workload.malformed_reasons.items():
        result = validated[index]
        assert isinstance(result, Rejection), workload.records[index]
        assert result.reason is reason, (workload.records[index], result)
        seen[reason] += 1
    assert set(seen) == set(MALFORMED_REASONS), "every reason the generator knows should occur in 20k records"
    assert dict(workload.truth.malformed_by_reason) == {reason.value: n for reason, n in seen.items()}


def test_late_events_are_older_than_the_bound_and_on_time_events_are_not(
    workload: Workload, validated: list
) -> None:
    lag = SPEC.late_bound_lag
    max_seen: datetime | None = None
    late = 0
    for index, result in enumerate(validated):
        kind = workload.kinds[index]
        if kind == RecordKind.MALFORMED:
            continue
        ts = result.timestamp
        if kind == RecordKind.LATE:
            assert max_seen is not None and ts < max_seen - lag, (index, ts, max_seen)
            late += 1
        elif kind == RecordKind.ON_TIME and max_seen is not None:
            # Within the watermark's out-of-orderness: never dropped as late by the job.
            assert ts >= max_seen - SPEC.out_of_orderness, (index, ts, max_seen)
        max_seen = ts if max_seen is None else max(max_seen, ts)
    assert late == workload.intended_late > 0
    assert max_seen == workload.max_event_time < workload.reference_time
    assert SPEC.start <= min(r.timestamp for r in validated if isinstance(r, UsageEvent))


def test_duplicates_resend_an_earlier_event_of_the_same_tenant(workload: Workload, validated: list) -> None:
    first_copy: dict[tuple[str, str], int] = {}
    for index, result in enumerate(validated):
        kind = workload.kinds[index]
        if kind == RecordKind.MALFORMED:
            continue
        key = (result.tenant_id, result.event_id)
        if kind in (RecordKind.ON_TIME, RecordKind.LATE):
            assert key not in first_copy, f"first-seen event {key} was sent before"
            first_copy[key] = index
            continue
        assert key in first_copy, f"duplicate {key} at {index} precedes its first copy"
        original = workload.records[first_copy[key]]
        if kind == RecordKind.DUPLICATE:
            assert workload.records[index] == original
        else:
            assert workload.records[index] != original
            before = validated[first_copy[key]]
            assert (before.customer_id, before.meter, before.timestamp) == (
                result.customer_id, result.meter, result.timestamp)
            assert (before.value, before.dimensions) != (result.value, result.dimensions)
        assert workload.partition_keys[index] == workload.partition_keys[first_copy[key]]


def test_records_mix_spellings_and_cover_the_catalog(workload: Workload, validated: list) -> None:
    styles, value_kinds, meters = Counter(), Counter(), set()
    for index, result in enumerate(validated):
        if not isinstance(result, UsageEvent):
            continue
        raw = json.loads(workload.records[index])
        ts = raw["timestamp"]
        styles["epoch_ms" if isinstance(ts, int) else ts[-6:] if ts.endswith("+02:00") else ts[-1]] += 1
        if "value" in raw:
            value_kinds[type(raw["value"]).__name__] += 1
        meters.add((result.tenant_id, result.meter))
        meter = CATALOG.meter(result.tenant_id, result.meter)
        needed = set(meter.group_by) | ({meter.unique_dimension} if meter.unique_dimension else set())
        assert needed <= set(result.dimensions)
    assert set(styles) == {"epoch_ms", "Z", "+02:00"}
    assert {"str", "int", "float"} <= set(value_kinds)
    assert meters == {(t, m) for t, ms in METERS_BY_TENANT.items() for m in ms}


def test_tenant_and_meter_subsets_are_respected() -> None:
    spec = WorkloadSpec(seed=1, events=2_000, tenants=["bolt-ml"], meters=("requests", "seats"), malformed_rate=0)
    workload = generate_workload(spec)
    now = workload.reference_time
    events = [validate_usage_record(r, meters_by_tenant=METERS_BY_TENANT, now=now) for r in workload.records]
    assert {(e.tenant_id, e.meter) for e in events} == {("bolt-ml", "requests"), ("bolt-ml", "seats")}


def test_records_fit_on_one_line_each(workload: Workload) -> None:
    """The throughput benchmark writes records one per line (`write_partition_files`): none may hold a newline."""
    assert workload.records and all(b"\n" not in record for record in workload.records)


@pytest.mark.parametrize(
    "changes",
    [
        {"start": datetime(2026, 11, 24, 10, 0)},  # noqa: DTZ001 - the naive datetime is the point
        {"duplicate_rate": 0.6, "late_rate": 0.3, "malformed_rate": 0.2},
        {"timestamp_styles": ("iso_week",)},
        {"duration": timedelta(0)},
    ],
)
def test_spec_rejects_nonsense(changes: dict) -> None:
    with pytest.raises(ValueError):
        WorkloadSpec(**changes)


def test_short_stream_has_no_room_for_late_events_and_stays_valid() -> None:
    spec = WorkloadSpec(seed=2, events=1_000, duration=timedelta(seconds=30))
    workload = generate_workload(spec)
    assert workload.intended_late == 0
    assert workload.reference_time - workload.max_event_time <= timedelta(seconds=1)
    assert workload.reference_time.tzinfo is UTC
