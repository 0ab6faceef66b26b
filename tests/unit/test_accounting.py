"""The accounting identity (`udfs.accounting`) and the job's table of it (`jobs.billing.accounting_table`)."""

from __future__ import annotations

import pytest

from jobs.billing import accounting_table
from udfs.accounting import Accounting, CorrectionAccounting, CorrectionOutcome, Outcome

COUNTS = {("dead_lettered", "malformed_json"): 2, ("dead_lettered", "too_old"): 1,
          ("duplicate_same_payload", ""): 4, ("duplicate_conflicting_payload", ""): 1, ("windowed", ""): 10,
          ("billed_late", ""): 3}


def test_every_record_has_one_outcome_and_late_ones_count_as_billed():
    totals = Accounting.of(COUNTS, received=21)
    assert (totals.dead_lettered, totals.first_seen, totals.valid) == (3, 13, 18)
    assert totals.holds
    assert not Accounting.of(COUNTS, received=22).holds


def test_an_unknown_outcome_is_an_error_not_a_silent_zero():
    with pytest.raises(ValueError, match="late"):
        Accounting.of({**COUNTS, ("late", ""): 1}, received=22)


def test_the_table_names_each_outcome_and_says_whether_the_identity_holds():
    text, holds = accounting_table(COUNTS, 21)
    assert holds and text.endswith("HOLDS")
    assert "billed late (adjustments)" in text and "billed on time (windowed)" in text and "too_old" in text
    assert accounting_table(COUNTS, 20) == (text.replace("21", "20").replace("HOLDS", "BROKEN"), False)


def test_the_outcome_names_are_the_wire_names():
    assert [o.value for o in Outcome] == ["dead_lettered", "duplicate_same_payload", "duplicate_conflicting_payload",
                                          "windowed", "billed_late"]


CORRECTIONS = {("correction_applied", ""): 5, ("correction_rejected", "unknown_tenant"): 2,
               ("correction_rejected", "duplicate_correction"): 1, ("correction_rejected", "malformed_json"): 1}


def test_corrections_are_counted_apart_from_usage_records():
    counts = {**COUNTS, **CORRECTIONS}
    usage = Accounting.of(counts, received=21)
    assert usage.holds and usage == Accounting.of(COUNTS, received=21), "corrections are not usage records"
    corrections = CorrectionAccounting.of(counts)
    assert (corrections.applied, corrections.rejected, corrections.total) == (5, 4, 9)
    assert corrections.rejected_by_reason == {"duplicate_correction": 1, "malformed_json": 1, "unknown_tenant": 2}
    assert corrections.holds(9) and not corrections.holds(10)
    assert CorrectionAccounting.of(COUNTS).total == 0
    assert [o.value for o in CorrectionOutcome] == ["correction_applied", "correction_rejected"]


def test_the_table_checks_the_corrections_identity_when_the_run_read_corrections():
    counts = {**COUNTS, **CORRECTIONS}
    text, holds = accounting_table(counts, 21, corrections_received=9)
    assert holds and text.endswith("identity corrections = applied + rejected: HOLDS")
    assert "unknown_tenant" in text and "applied (billed)" in text
    assert accounting_table(counts, 21, corrections_received=10)[1] is False
    assert accounting_table(counts, 21)[0] == accounting_table(COUNTS, 21)[0], "no corrections: the usage table only"
