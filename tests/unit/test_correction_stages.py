"""The Python stages of the corrections input (`jobs/corrections.py`) called directly, without Flink: what each
emits for a record, and that a correction id's state is kept for the horizon and then cleared by its timer."""

from __future__ import annotations

import json

from jobs.corrections import (
    COUNTS,
    DEAD_LETTERS,
    CorrectionIdFunction,
    CorrectionValidator,
    ReceivedCorrection,
    correction_id_key,
    to_ledger_row,
)
from schemas.correction_dead_letter import CorrectionDeadLetter
from tests.job.test_billing_job import CATALOG_PATH
from tests.job.test_corrections_job import correction

HORIZON_MS = 1_000


class FakeState:
    def __init__(self):
        self.stored = None

    def value(self):
        return self.stored

    def update(self, value):
        self.stored = value

    def clear(self):
        self.stored = None


class FakeTimers:
    def __init__(self, now_ms: int):
        self.now_ms = now_ms
        self.registered: list[int] = []

    def current_processing_time(self) -> int:
        return self.now_ms

    def register_processing_time_timer(self, timestamp: int) -> None:
        self.registered.append(timestamp)


class FakeContext:
    def __init__(self, now_ms: int):
        self.timers = FakeTimers(now_ms)

    def timer_service(self) -> FakeTimers:
        return self.timers


class RawRow:
    def __init__(self, payload, offset=0):
        self.payload, self.src_topic, self.src_partition, self.src_offset = payload, "usage-corrections", 1, offset


def validated(raw: bytes) -> ReceivedCorrection:
    validator = CorrectionValidator(CATALOG_PATH.read_text())
    validator.open(None)
    (out,) = list(validator.process_element(RawRow(raw), None))
    key, received = out
    assert isinstance(received, ReceivedCorrection)
    assert key == correction_id_key(received), "it comes out keyed, as key_by would key it"
    return received


def test_the_validator_passes_a_valid_correction_on_and_dead_letters_a_rejected_one():
    received = validated(correction("c1", "e1", "cancel"))
    assert (received.correction.correction_id, received.src_partition) == ("c1", 1)
    assert correction_id_key(received) == "acme-ai\x1fc1"
    validator = CorrectionValidator(CATALOG_PATH.read_text())
    validator.open(None)
    (letter, count) = list(validator.process_element(RawRow(correction("c2", "e1", "cancel", tenant="x"), 7), None))
    assert letter[0] is DEAD_LETTERS and count[0] is COUNTS
    dead = CorrectionDeadLetter.model_validate(json.loads(letter[1]))
    assert (dead.reason.value, dead.tenant_id, dead.source_offset) == ("unknown_tenant", "x", 7)
    assert (count[1].outcome, count[1].detail, count[1].records) == ("correction_rejected", "unknown_tenant", 1)


def test_an_id_is_remembered_for_the_horizon_then_its_timer_clears_it():
    stage = CorrectionIdFunction(HORIZON_MS)
    stage.state = FakeState()
    first = validated(correction("c1", "e1", "cancel"))
    ctx = FakeContext(now_ms=5_000)
    outputs = list(stage.process_element(first, ctx))
    assert outputs == [to_ledger_row(first)], "a first copy goes on to the ledger as its row; the ledger counts it"
    assert (outputs[0].correction_id, outputs[0].action, outputs[0].src_partition) == ("c1", "cancel", 1)
    assert ctx.timers.registered == [5_000 + HORIZON_MS]
    assert stage.state.value().first_seen_ms == 5_000 and len(stage.state.value().fingerprint) == 64

    retry = list(stage.process_element(validated(correction("c1", "e1", "cancel")), FakeContext(5_999)))
    assert [tag for tag, _ in retry] == [DEAD_LETTERS, COUNTS]
    assert retry[1][1].detail == "duplicate_correction"
    other = list(stage.process_element(validated(correction("c1", "e2", "cancel")), FakeContext(5_999)))
    assert other[1][1].detail == "conflicting_correction"

    assert list(stage.on_timer(5_000 + HORIZON_MS, None)) == []
    assert stage.state.value() is None, "after the horizon the id's state is gone"
    again = list(stage.process_element(validated(correction("c1", "e2", "cancel")), FakeContext(6_000)))
    assert len(again) == 1 and again[0].event_id == "e2", "after the horizon a first copy again"


def test_a_stale_timer_keeps_a_newer_first_copy():
    stage = CorrectionIdFunction(HORIZON_MS)
    stage.state = FakeState()
    list(stage.process_element(validated(correction("c1", "e1", "cancel")), FakeContext(5_000)))
    # the id expired by the spec's rule and came back before the first timer ran
    list(stage.process_element(validated(correction("c1", "e1", "cancel")), FakeContext(6_000)))
    assert stage.state.value().first_seen_ms == 6_000
    list(stage.on_timer(6_000, None))
    assert stage.state.value().first_seen_ms == 6_000
    list(stage.on_timer(7_000, None))
    assert stage.state.value() is None
