"""The workload's corrections (`WorkloadSpec.correction_rate`, the benchmark's `usage-corrections` input) keep their
promises: same seed same bytes and the usage untouched by them (A/B), the share and mix asked for, every record valid
by the spec, and each one's intended outcome the one the spec's ledger (`udfs.corrections.CorrectionLedger`) gives
when every usage event was seen first: the rejectable ones really rejected, with their reason."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from meterstream.workload import (
    APPLIED,
    CorrectionKind,
    CorrectionRecord,
    GroundTruth,
    RecordKind,
    Workload,
    WorkloadSpec,
    generate_workload,
    iter_workload,
)
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from udfs.catalog import load_catalog
from udfs.corrections import AppliedCorrection, CorrectionLedger, CorrectionRejection, validate_correction_record
from udfs.validation import validate_usage_record

CATALOG = load_catalog(WorkloadSpec().catalog_path)
METERS_BY_TENANT = CATALOG.meters_by_tenant()
BENCH_METERS = ("input_tokens", "requests", "gpu_seconds", "seats")  # benchmarks/billing_throughput.py's
# the benchmark's meters and a unique_count one (its corrections are billed too: cancels, value and user amends)
SPEC = WorkloadSpec(seed=5, events=40_000, customers_per_tenant=40, meters=(*BENCH_METERS, "active_users"),
                    correction_rate=0.05)


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate_workload(SPEC)


@pytest.fixture(scope="module")
def first_seen(workload: Workload) -> dict[int, UsageEvent]:
    """Stream position -> the validated first-seen event."""
    now = workload.reference_time
    events = {}
    for index, record in enumerate(workload.records):
        if workload.kinds[index] in (RecordKind.ON_TIME, RecordKind.LATE):
            event = validate_usage_record(record, meters_by_tenant=METERS_BY_TENANT, now=now)
            assert isinstance(event, UsageEvent), record
            events[index] = event
    return events


@pytest.fixture(scope="module")
def decided(workload: Workload, first_seen: dict[int, UsageEvent]) -> list[AppliedCorrection | CorrectionRejection]:
    """Every correction decided by the spec after all the usage: validation, correction-id idempotency, ledger."""
    ledger = CorrectionLedger({t: tenant.meters for t, tenant in CATALOG.tenants.items()}, SPEC.window_size)
    for event in first_seen.values():
        ledger.observe_event(event, 1)
    outcomes = []
    for correction in workload.corrections:
        result = validate_correction_record(correction.record, tenants=CATALOG.tenants)
        outcomes.append(result if isinstance(result, CorrectionRejection) else ledger.correct(result, 2))
    return outcomes


def test_same_seed_same_corrections_other_seed_other_ones(workload: Workload) -> None:
    again = generate_workload(SPEC)
    assert again.corrections == workload.corrections
    other = generate_workload(WorkloadSpec(**{**vars(SPEC), "seed": 6}))
    assert [c.record for c in other.corrections] != [c.record for c in workload.corrections]


def test_corrections_leave_the_usage_as_it_is_without_them(workload: Workload) -> None:
    """`--correction-rate 0` reproduces the run without corrections, and A/B compares the same usage."""
    plain = generate_workload(WorkloadSpec(**{**vars(SPEC), "correction_rate": 0.0}))
    assert plain.corrections == []
    assert plain.records == workload.records
    assert plain.kinds == workload.kinds
    assert plain.truth == workload.truth


def test_streaming_variant_yields_the_same_corrections(workload: Workload) -> None:
    streamed: list[CorrectionRecord] = []
    truth = GroundTruth()
    records = [record for _, record, _, _ in iter_workload(SPEC, truth=truth, corrections=streamed)]
    assert records == workload.records
    assert streamed == workload.corrections


def test_share_and_mix_are_as_requested(workload: Workload) -> None:
    corrections = workload.corrections
    assert len(corrections) / workload.truth.first_seen == pytest.approx(SPEC.correction_rate, rel=0.1)
    kinds = Counter(c.kind for c in corrections)
    rejectable = kinds[CorrectionKind.DUPLICATE] + kinds[CorrectionKind.UNKNOWN_EVENT] + kinds[
        CorrectionKind.NOT_CORRECTABLE]
    assert rejectable / len(corrections) == pytest.approx(SPEC.correction_reject_share, abs=0.03)
    # every aggregation's corrections are billed: none is meant as aggregation_not_correctable, and unknown_event
    # takes that third of the rejectable share
    assert kinds[CorrectionKind.NOT_CORRECTABLE] == 0
    third = SPEC.correction_reject_share / 3
    assert kinds[CorrectionKind.DUPLICATE] / len(corrections) == pytest.approx(third, abs=0.02)
    assert kinds[CorrectionKind.UNKNOWN_EVENT] / len(corrections) == pytest.approx(2 * third, abs=0.02)
    applicable = len(corrections) - rejectable
    assert kinds[CorrectionKind.CANCEL] / applicable == pytest.approx(SPEC.correction_cancel_share, abs=0.05)
    # Dimension amends only where the meter groups or counts a dimension (input_tokens, gpu_seconds, active_users),
    # else value amends.
    assert 0.05 < kinds[CorrectionKind.AMEND_DIMENSIONS] / applicable < SPEC.correction_dimension_share
    assert kinds[CorrectionKind.AMEND_VALUE] > kinds[CorrectionKind.AMEND_DIMENSIONS]


def test_every_correction_is_a_valid_record_of_an_earlier_first_seen_event(
    workload: Workload, first_seen: dict[int, UsageEvent]
) -> None:
    first_copies: dict[tuple[str, str], CorrectionRecord] = {}
    for correction in workload.corrections:
        assert b"\n" not in correction.record  # the benchmark writes one record per line
        parsed = validate_correction_record(correction.record, tenants=CATALOG.tenants)
        assert isinstance(parsed, UsageCorrection), (correction, parsed)
        key = (parsed.tenant_id, parsed.correction_id)
        if correction.kind is CorrectionKind.DUPLICATE:
            original = first_copies[key]  # a re-send comes after its first copy, in the same partition
            assert correction.partition_key == original.partition_key
            assert json.loads(original.record)["event_id"] == parsed.event_id
            continue
        assert key not in first_copies, f"correction id {key} used twice"
        first_copies[key] = correction
        if correction.kind is CorrectionKind.UNKNOWN_EVENT:
            assert correction.event_index == -1
            continue
        event = first_seen[correction.event_index]
        assert (event.tenant_id, event.event_id) == (parsed.tenant_id, parsed.event_id)
        if correction.kind is CorrectionKind.AMEND_DIMENSIONS:
            assert parsed.dimensions is not None and parsed.dimensions != event.dimensions
        if correction.kind is CorrectionKind.AMEND_VALUE:
            assert parsed.value is not None and parsed.value != event.value
    targets = [c.event_index for c in workload.corrections if c.event_index >= 0]
    assert len(targets) == len(set(targets)), "an event is corrected at most once"


def test_intended_outcomes_are_the_specs(workload: Workload, decided: list) -> None:
    by_reason = Counter()
    for correction, outcome in zip(workload.corrections, decided, strict=True):
        if correction.intended == APPLIED:
            assert isinstance(outcome, AppliedCorrection), (correction, outcome)
        else:
            assert isinstance(outcome, CorrectionRejection), (correction, outcome)
            assert outcome.reason.value == correction.intended, (correction, outcome)
            by_reason[outcome.reason.value] += 1
    assert set(by_reason) == {"duplicate_correction", "unknown_event"}


def test_applied_corrections_change_the_bill_as_their_kind_says(
    workload: Workload, first_seen: dict[int, UsageEvent], decided: list
) -> None:
    seen = Counter()
    for correction, outcome in zip(workload.corrections, decided, strict=True):
        if not isinstance(outcome, AppliedCorrection):
            continue
        event = first_seen[correction.event_index]
        aggregation = CATALOG.meter(event.tenant_id, event.meter).aggregation
        if correction.kind is CorrectionKind.CANCEL:
            assert outcome.remove is not None and outcome.add is None
        elif correction.kind is CorrectionKind.AMEND_DIMENSIONS and aggregation == "unique_count":
            user = outcome.remove.sample.dimensions["user_id"]
            assert user != outcome.add.sample.dimensions["user_id"]  # another user, counted in the same series
            assert outcome.remove.series == outcome.add.series
        elif correction.kind is CorrectionKind.AMEND_DIMENSIONS:
            assert outcome.remove.series != outcome.add.series  # moved to another group of the same customer
        elif aggregation in ("sum", "max", "min", "last"):
            assert outcome.remove.sample.value != outcome.add.sample.value
        else:  # a count or unique_count meter's value amend changes nothing it reads: applied, no delta
            assert aggregation in ("count", "unique_count") and not outcome.changed
        seen[(correction.kind, aggregation)] += 1
    assert seen[(CorrectionKind.AMEND_VALUE, "sum")] and seen[(CorrectionKind.CANCEL, "count")]
    assert seen[(CorrectionKind.CANCEL, "unique_count")] and seen[(CorrectionKind.AMEND_DIMENSIONS, "unique_count")]
    assert seen[(CorrectionKind.AMEND_DIMENSIONS, "sum")] and seen[(CorrectionKind.AMEND_VALUE, "count")]
    assert seen[(CorrectionKind.AMEND_VALUE, "max")] and seen[(CorrectionKind.CANCEL, "max")]


def test_without_uncorrectable_meters_unknown_events_take_their_share() -> None:
    spec = WorkloadSpec(seed=3, events=20_000, meters=("input_tokens", "requests"), correction_rate=0.05)
    kinds = Counter(c.kind for c in generate_workload(spec).corrections)
    assert kinds[CorrectionKind.NOT_CORRECTABLE] == 0
    assert kinds[CorrectionKind.UNKNOWN_EVENT] > 1.4 * kinds[CorrectionKind.DUPLICATE]


@pytest.mark.parametrize(
    "changes",
    [
        {"correction_rate": -0.1},
        {"correction_rate": 1.5},
        {"correction_reject_share": 1.2},
        {"correction_cancel_share": 0.9, "correction_dimension_share": 0.2},
    ],
)
def test_spec_rejects_nonsense_correction_settings(changes: dict) -> None:
    with pytest.raises(ValueError):
        WorkloadSpec(**changes)


def test_no_rate_no_corrections_and_no_extra_draws() -> None:
    spec = WorkloadSpec(seed=2, events=2_000, duration=timedelta(minutes=2))
    assert generate_workload(spec).corrections == []
