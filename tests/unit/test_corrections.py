"""`udfs.corrections`: validation of raw corrections, the correction ledger and the window recomputation."""

from __future__ import annotations

import json
import typing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.correction_dead_letter import CorrectionDeadLetter
from schemas.correction_dead_letter import CorrectionRejectionReason as R
from schemas.dead_letter import DeadLetterReason
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from udfs.aggregations import UsageSample, aggregate_window, aggregator_for, run_window_rule
from udfs.catalog import Aggregation, Meter
from udfs.corrections import (
    BILLED_CORRECTION_AGGREGATIONS,
    AppliedCorrection,
    Contribution,
    CorrectionLedger,
    CorrectionRejection,
    DeadLetteredEvent,
    PastHorizon,
    apply_to_window,
    contribution,
    correction_dead_letter_for,
    decide,
    expire_entry,
    observe_dead_letter,
    observe_event,
    recompute_window,
    validate_correction_record,
    window_contents,
    window_payload,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "usage-corrections"
TENANTS = {"acme-ai"}
MINUTE = timedelta(minutes=1)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = datetime(2026, 11, 24, 8, 31, 35, 123000, tzinfo=UTC)
METERS = {
    "tokens": Meter(aggregation="sum", group_by=("model",)),
    "requests": Meter(aggregation="count", group_by=("model",)),
    "seats": Meter(aggregation="max"),
    "floor": Meter(aggregation="min"),
    "balance": Meter(aggregation="last"),
    "users": Meter(aggregation="unique_count", unique_dimension="user"),
}
MEMBERS = {"acme-ai": METERS}
ALL_AGGREGATIONS = typing.get_args(Aggregation)  # the window rules are specified for all six


def _raw(**fields) -> bytes:
    base = {"correction_id": "c-1", "tenant_id": "acme-ai", "event_id": "e-1", "sent_at": "2026-11-24T09:00:00Z"}
    return json.dumps({**base, **fields}).encode()


def _correction(action: str = "cancel", correction_id: str = "c-1", event_id: str = "e-1", **fields):
    return UsageCorrection.model_validate(
        {"correction_id": correction_id, "tenant_id": "acme-ai", "event_id": event_id, "action": action,
         "sent_at": 0, **fields}
    )


def _event(meter: str = "tokens", value: str | None = "10", event_id: str = "e-1", **dimensions) -> UsageEvent:
    return UsageEvent.model_validate(
        {"event_id": event_id, "tenant_id": "acme-ai", "customer_id": "cust", "meter": meter, "timestamp": T0,
         "value": value, "dimensions": dimensions}
    )


# ---- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((EXAMPLES / "valid").glob("*.json")), ids=lambda p: p.stem)
def test_valid_examples_validate(path: Path):
    result = validate_correction_record(path.read_bytes(), tenants=TENANTS)
    assert isinstance(result, UsageCorrection)


EXPECTED_EXAMPLE_REASONS = {
    "amend_of_meter": R.UNAMENDABLE_FIELD,
    "amend_of_timestamp": R.UNAMENDABLE_FIELD,
    "cancel_with_value": R.PAYLOAD_ON_CANCEL,
    "amend_without_payload": R.NOTHING_TO_AMEND,
    "unknown_action": R.INVALID_FIELD,
    "negative_value": R.NEGATIVE_VALUE,
    "sent_at_without_offset": R.INVALID_TIMESTAMP,
    "unknown_field": R.INVALID_FIELD,
    "missing_correction_id": R.MISSING_FIELD,
}


def test_every_invalid_example_has_an_expected_reason():
    assert {p.stem for p in (EXAMPLES / "invalid").glob("*.json")} == set(EXPECTED_EXAMPLE_REASONS)


@pytest.mark.parametrize(("name", "reason"), sorted(EXPECTED_EXAMPLE_REASONS.items()))
def test_invalid_examples_yield_their_reason(name: str, reason: R):
    result = validate_correction_record((EXAMPLES / "invalid" / f"{name}.json").read_bytes(), tenants=TENANTS)
    assert isinstance(result, CorrectionRejection) and result.reason is reason, result


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * 65_537, R.TOO_LARGE),
        (b"\xff", R.NOT_UTF8),
        (b"", R.MALFORMED_JSON),
        (None, R.MALFORMED_JSON),
        (b"{} {}", R.MALFORMED_JSON),
        (b"[" * 600 + b"]" * 600, R.MALFORMED_JSON),
        (b'{"value": NaN}', R.MALFORMED_JSON),
        (b"[]", R.NOT_AN_OBJECT),
        (_raw(action="amend", value="1.0000000000000000001"), R.INVALID_VALUE),
        (_raw(action="amend", value="1e3"), R.INVALID_VALUE),
        (_raw(action="amend", dimensions={"k": 1}), R.INVALID_FIELD),
        (_raw(action="amend", value="1", note="n" * 1025), R.INVALID_FIELD),
        (_raw(action="amend", value="1", correction_id="c" * 129), R.INVALID_FIELD),
        (_raw(action="amend", value="1", tenant_id="nobody"), R.UNKNOWN_TENANT),
    ],
)
def test_reasons(raw: bytes | None, reason: R):
    result = validate_correction_record(raw, tenants=TENANTS)
    assert isinstance(result, CorrectionRejection) and result.reason is reason, result


def test_a_json_number_value_is_read_from_its_text():
    result = validate_correction_record(_raw(action="amend", value=1.5), tenants=TENANTS)
    assert isinstance(result, UsageCorrection) and result.value == Decimal("1.5")


def test_precedence_unamendable_before_missing_and_structural_reasons_before_the_catalog():
    no_id = json.dumps({"tenant_id": "nobody", "event_id": "e", "action": "amend", "meter": "m", "sent_at": 0})
    assert validate_correction_record(no_id.encode(), tenants=TENANTS).reason is R.UNAMENDABLE_FIELD
    both = _raw(action="cancel", value="-1", sent_at="yesterday", tenant_id="nobody")
    assert validate_correction_record(both, tenants=TENANTS).reason is R.INVALID_TIMESTAMP


def test_rejection_names_the_valid_ids_for_the_dead_letter():
    raw = _raw(action="cancel", value="1", event_id="")
    rejection = validate_correction_record(raw, tenants=TENANTS)
    assert rejection.reason is R.INVALID_FIELD  # the payload rule runs only on otherwise valid fields
    assert (rejection.correction_id, rejection.tenant_id, rejection.event_id) == ("c-1", "acme-ai", None)
    letter = correction_dead_letter_for(
        raw, rejection, source_topic="usage-corrections", partition=2, offset=9, received_at=T0
    )
    assert CorrectionDeadLetter.model_validate_json(letter.model_dump_json()) == letter
    assert letter.raw == raw.decode() and letter.correction_id == "c-1" and letter.event_id is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["correction_id", "tenant_id", "event_id", "action", "value", "dimensions", "sent_at", "note", "meter", "x"]
)
_values = st.one_of(_json, st.sampled_from(["cancel", "amend", "acme-ai", "1", "-0", "2026-11-24T09:00:00Z"]))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        _json.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(_keys, _values, max_size=9).map(lambda v: json.dumps(v).encode()),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_validation_never_raises_on_garbage(raw: bytes):
    result = validate_correction_record(raw, tenants=TENANTS)
    assert isinstance(result, UsageCorrection | CorrectionRejection)
    if isinstance(result, CorrectionRejection):
        letter = correction_dead_letter_for(
            raw, result, source_topic="usage-corrections", partition=0, offset=0, received_at=T0
        )
        assert letter.reason is result.reason


# ---- the ledger ------------------------------------------------------------------------------------------


def _ledger(**kwargs) -> CorrectionLedger:
    return CorrectionLedger(MEMBERS, MINUTE, **kwargs)


def test_cancel_removes_the_billed_contribution_and_a_second_cancel_is_already_cancelled():
    ledger = _ledger()
    ledger.observe_event(_event(model="a"), now_ms=1_000)
    applied = ledger.correct(_correction("cancel"), now_ms=2_000)
    assert isinstance(applied, AppliedCorrection) and applied.changed and applied.add is None
    removed = applied.remove
    assert removed.series == ("acme-ai", "cust", "tokens", (("model", "a"),))
    assert (removed.window_start, removed.window_end) == (T0.replace(second=0, microsecond=0),
                                                          T0.replace(second=0, microsecond=0) + MINUTE)
    assert removed.sample.value == Decimal(10)
    again = ledger.correct(_correction("cancel", correction_id="c-2"), now_ms=3_000)
    assert again.reason is R.ALREADY_CANCELLED
    amend = ledger.correct(_correction("amend", correction_id="c-3", value="1"), now_ms=3_000)
    assert amend.reason is R.ALREADY_CANCELLED


def test_amend_of_an_amended_event_applies_to_the_latest_version():
    ledger = _ledger()
    ledger.observe_event(_event(model="a"), now_ms=1_000)
    first = ledger.correct(_correction("amend", correction_id="c-1", value="7"), now_ms=2_000)
    second = ledger.correct(_correction("amend", correction_id="c-2", value="3"), now_ms=3_000)
    assert first.remove.sample.value == Decimal(10) and first.add.sample.value == Decimal(7)
    assert second.remove == first.add and second.add.sample.value == Decimal(3)
    assert ledger.events[("acme-ai", "e-1")].corrections_applied == 2


def test_amending_a_group_by_dimension_moves_the_contribution_to_another_series_same_window():
    ledger = _ledger()
    ledger.observe_event(_event(model="a", region="eu"), now_ms=1_000)
    applied = ledger.correct(_correction("amend", dimensions={"model": "b"}), now_ms=2_000)
    assert applied.remove.group == (("model", "a"),) and applied.add.group == (("model", "b"),)
    assert applied.add.window_start == applied.remove.window_start
    assert applied.add.sample.value == Decimal(10)  # the value is kept


def test_an_amend_that_changes_nothing_the_aggregation_reads_is_applied_without_delta():
    ledger = _ledger()
    ledger.observe_event(_event("requests", value=None, model="a"), now_ms=1_000)
    applied = ledger.correct(_correction("amend", value="5"), now_ms=2_000)  # count ignores values
    assert isinstance(applied, AppliedCorrection) and not applied.changed
    ledger.observe_event(_event("tokens", event_id="e-2", model="a", region="eu"), now_ms=1_000)
    same_group = ledger.correct(
        _correction("amend", correction_id="c-2", event_id="e-2", dimensions={"model": "a"}), now_ms=2_000
    )
    assert not same_group.changed  # region is no group-by dimension


def test_corrections_of_every_aggregation_are_billed_and_a_subset_rejects_the_others():
    """The job bills the corrections of all six aggregations; `correctable` narrower than that rejects the others
    (`aggregation_not_correctable`) rather than count them applied with the bill unchanged."""
    assert set(BILLED_CORRECTION_AGGREGATIONS) == set(ALL_AGGREGATIONS)
    ledger = _ledger()
    for meter in ("balance", "floor", "seats", "users"):
        ledger.observe_event(_event(meter, value="5", event_id=f"e-{meter}", user="u1"), now_ms=1_000)
        applied = ledger.correct(_correction(event_id=f"e-{meter}", correction_id=f"c-{meter}"), now_ms=2_000)
        assert isinstance(applied, AppliedCorrection) and applied.changed, meter
    narrow = _ledger(correctable=("sum", "count"))
    narrow.observe_event(_event("users", value=None, event_id="e-users", user="u1"), now_ms=1_000)
    rejected = narrow.correct(_correction(event_id="e-users", correction_id="c-users"), now_ms=2_000)
    assert rejected.reason is R.AGGREGATION_NOT_CORRECTABLE
    assert rejected.detail == ("event 'e-users' is usage of meter 'users' (unique_count): only corrections of sum "
                               "and count meters are billed")


def test_unique_count_contribution_is_the_counted_value_only():
    ledger = _ledger(correctable=ALL_AGGREGATIONS)
    ledger.observe_event(_event("users", value=None, user="u1", other="x"), now_ms=1_000)
    applied = ledger.correct(_correction("amend", dimensions={"user": "u2"}), now_ms=2_000)
    assert applied.remove.sample.dimensions == {"user": "u1"} and applied.add.sample.dimensions == {"user": "u2"}
    dropped = ledger.correct(_correction("amend", correction_id="c-2", dimensions={}), now_ms=2_000)
    assert dropped.add.sample.dimensions == {}


def test_unknown_event_dead_lettered_event_and_a_valid_copy_after_a_dead_letter():
    ledger = _ledger()
    assert ledger.correct(_correction(), now_ms=1_000).reason is R.UNKNOWN_EVENT
    ledger.observe_dead_letter("acme-ai", "e-1", DeadLetterReason.UNKNOWN_METER, now_ms=1_000)
    rejected = ledger.correct(_correction(correction_id="c-2"), now_ms=2_000)
    assert rejected.reason is R.EVENT_DEAD_LETTERED
    assert rejected.event_dead_letter_reason is DeadLetterReason.UNKNOWN_METER
    ledger.observe_event(_event(), now_ms=3_000)
    ledger.observe_dead_letter("acme-ai", "e-1", DeadLetterReason.TOO_OLD, now_ms=4_000)  # the valid copy wins
    assert isinstance(ledger.correct(_correction(correction_id="c-3"), now_ms=5_000), AppliedCorrection)


def test_horizon_is_processing_time_from_first_seen_with_flinks_ttl_rule():
    ledger = _ledger(horizon_ms=DAY_MS, dedup_ttl_ms=2 * DAY_MS)
    ledger.observe_event(_event(), now_ms=1_000)
    ledger.observe_event(_event(event_id="e-2"), now_ms=1_000)
    inside = ledger.correct(_correction(event_id="e-2", correction_id="c-0"), now_ms=1_000 + DAY_MS - 1)
    assert isinstance(inside, AppliedCorrection)
    assert ledger.correct(_correction(), now_ms=1_000 + DAY_MS).reason is R.OUTSIDE_HORIZON
    assert isinstance(ledger.events[("acme-ai", "e-1")], PastHorizon)
    late = ledger.correct(_correction(correction_id="c-2"), now_ms=1_000 + 2 * DAY_MS)
    assert late.reason is R.UNKNOWN_EVENT  # forgotten with the dedup memory


def test_dead_letter_marker_lives_for_the_correction_horizon():
    state = observe_dead_letter(None, DeadLetterReason.TOO_OLD, 0)
    assert isinstance(expire_entry(state, DAY_MS - 1, DAY_MS, 2 * DAY_MS), DeadLetteredEvent)
    assert expire_entry(state, DAY_MS, DAY_MS, 2 * DAY_MS) is None


def test_horizon_cannot_exceed_the_dedup_horizon():
    with pytest.raises(ValueError):
        _ledger(horizon_ms=2 * DAY_MS, dedup_ttl_ms=DAY_MS)
    with pytest.raises(ValueError):
        decide(None, _correction(), 0, meters=METERS, window_size=MINUTE, horizon_ms=0)


def test_idempotent_by_correction_id_same_and_conflicting_payload():
    ledger = _ledger()
    ledger.observe_event(_event(), now_ms=1_000)
    assert isinstance(ledger.correct(_correction("amend", value="3", note="a"), now_ms=2_000), AppliedCorrection)
    retry = ledger.correct(
        UsageCorrection.model_validate({**_correction("amend", value="3.00").model_dump(), "sent_at": T0}), 3_000
    )
    assert retry.reason is R.DUPLICATE_CORRECTION  # same effect: 3.00 == 3, sent_at and note do not count
    conflict = ledger.correct(_correction("amend", value="4"), now_ms=3_000)
    assert conflict.reason is R.CONFLICTING_CORRECTION
    assert ledger.events[("acme-ai", "e-1")].current.value == Decimal(3)


def test_a_rejected_correction_consumes_its_id():
    ledger = _ledger()
    assert ledger.correct(_correction(), now_ms=1_000).reason is R.UNKNOWN_EVENT
    ledger.observe_event(_event(), now_ms=2_000)
    assert ledger.correct(_correction(), now_ms=3_000).reason is R.DUPLICATE_CORRECTION
    assert isinstance(ledger.correct(_correction(correction_id="c-new"), now_ms=3_000), AppliedCorrection)


def test_meter_gone_from_the_catalog_is_unknown_meter_and_the_state_is_unchanged():
    state = observe_event(None, _event(), 0, METERS["tokens"])
    after, outcome = decide(state, _correction(), 1, meters={}, window_size=MINUTE)
    assert outcome.reason is R.UNKNOWN_METER and after == state


# ---- windows ---------------------------------------------------------------------------------------------

AGGREGATORS = [aggregator_for(kind) for kind in ("sum", "count", "max", "min", "last")] + [
    aggregator_for("unique_count", "user")
]
_samples = st.builds(
    lambda i, seconds, value, user: UsageSample(
        f"e{i}", T0 + timedelta(seconds=seconds), value, {} if user is None else {"user": user}
    ),
    st.integers(0, 30),
    st.integers(0, 59),
    st.none() | st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False),
    st.none() | st.sampled_from(["u1", "u2", "u3"]),
)


_values_or_none = st.none() | st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False,
                                          allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(AGGREGATORS),
    st.lists(_samples, min_size=1, max_size=12, unique_by=lambda sample: sample.event_id),  # ids are deduplicated
    st.data(),
)
def test_a_correction_recomputes_the_window_as_a_fold_from_scratch_and_its_reverse_restores_it(
    aggregator, samples, data
):
    """Cancel (add None) or amend (the same event, other value/dimensions) of any event of the window."""
    removed = data.draw(st.sampled_from(samples))
    added = data.draw(
        st.none()
        | st.builds(
            lambda value, user: replace(removed, value=value, dimensions={} if user is None else {"user": user}),
            _values_or_none,
            st.none() | st.sampled_from(["u1", "u2", "u4"]),
        )
    )
    contents = window_contents(aggregator, samples)
    assert window_payload(contents, aggregator) == run_window_rule(aggregator, samples)

    rest = list(samples)
    rest.remove(removed)
    corrected = apply_to_window(contents, aggregator, remove=removed, add=added)
    expected_samples = rest + ([added] if added is not None else [])
    assert window_payload(corrected, aggregator) == run_window_rule(aggregator, expected_samples)
    assert corrected.event_count == len(expected_samples)

    restored = apply_to_window(corrected, aggregator, remove=added, add=removed)
    assert restored == contents
    assert window_payload(restored, aggregator) == run_window_rule(aggregator, samples)


def test_removing_what_the_window_does_not_hold_is_an_error():
    aggregator = aggregator_for("max")
    contents = window_contents(aggregator, [UsageSample("e", T0, Decimal(1))])
    with pytest.raises(ValueError):
        apply_to_window(contents, aggregator, remove=UsageSample("x", T0, Decimal(2)))


@pytest.mark.parametrize("meter", sorted(METERS))
def test_ledger_delta_applied_to_the_window_equals_the_window_of_the_corrected_events(meter: str):
    """End to end on one window: three events, one cancelled, one amended; the recomputed aggregate is the
    aggregate of the events as corrected."""
    spec = METERS[meter]
    aggregator = aggregator_for(spec.aggregation, spec.unique_dimension)
    needs_value = spec.aggregation not in ("count", "unique_count")
    events = [
        _event(meter, value=str(v) if needs_value else None, event_id=f"e-{i}", user=f"u{i}")
        for i, v in enumerate((5, 9, 2))
    ]
    ledger = _ledger(correctable=ALL_AGGREGATIONS)
    for event in events:
        ledger.observe_event(event, now_ms=1)
    window_start = T0.replace(second=0, microsecond=0)
    samples = [c.sample for c in _contributions(events)]
    window = aggregate_window(aggregator, samples, tenant_id="acme-ai", customer_id="cust", meter=meter, group={},
                              window_start=window_start, window_end=window_start + MINUTE)
    contents = window_contents(aggregator, samples)
    cancel = ledger.correct(_correction("cancel", correction_id="c-1", event_id="e-1"), now_ms=2)
    contents, window = recompute_window(window, contents, aggregator, remove=cancel.remove.sample)
    amend = ledger.correct(
        _correction("amend", correction_id="c-2", event_id="e-0", value="20", dimensions={"user": "u9"}), now_ms=3
    )
    if amend.changed:
        contents, window = recompute_window(window, contents, aggregator, remove=amend.remove.sample,
                                            add=amend.add.sample)
    corrected = [
        _event(meter, value="20" if needs_value else None, event_id="e-0", user="u9"),
        events[2],
    ]
    expected = aggregate_window(aggregator, [c.sample for c in _contributions(corrected)],
                                tenant_id="acme-ai", customer_id="cust", meter=meter, group={},
                                window_start=window_start, window_end=window_start + MINUTE)
    assert window == expected


def _contributions(events: list[UsageEvent]) -> list[Contribution]:
    """What each event contributes when first seen (the window operator's samples, reduced as the ledger does)."""
    entries = [observe_event(None, event, 0, METERS[event.meter]) for event in events]
    return [contribution(e, e.current, METERS[e.current.meter], MINUTE) for e in entries]
