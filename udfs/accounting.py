"""Where every usage record goes: the outcome names the job counts (on the `billing-accounting` topic) and the
accounting identity they must satisfy.

Every record read from the input has exactly one outcome:
received = dead-lettered + duplicates (same or conflicting payload) + billed on time (`windowed`) + billed late.
A late record (its series had already fired its window) is billed as a late adjustment (`udfs.line_items.
accumulate_late`); one that changes nothing (a max below the period's, a value already counted) is billed with no
line, and counted here all the same. The Java operators count with the generated twins of these names
(`io.meterstream.rules.Rules.OUTCOME_*`, written by `udfs.java_rules`).

Corrections (`usage-corrections`, `udfs.corrections`) are counted beside usage records, on the same topic, with their
own outcomes (`CorrectionOutcome`) and their own identity: corrections received = applied + rejected, rejected
counted by reason (the detail: a `CorrectionRejectionReason`, as on `usage-correction-dead-letters`). `applied` is a
correction the ledger applied (`udfs.corrections.decide`, in the job `io.meterstream.corrections.CorrectionLedger`);
its contributions change the bill in the window operator (a correction line, or the open window; for unique_count
meters in the Python accumulator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE_SAME_PAYLOAD = "duplicate_same_payload"
    DUPLICATE_CONFLICTING_PAYLOAD = "duplicate_conflicting_payload"
    WINDOWED = "windowed"  # billed on time: into its window's usage line
    BILLED_LATE = "billed_late"  # billed as a late adjustment (or changed nothing)


class CorrectionOutcome(StrEnum):
    APPLIED = "correction_applied"  # applied by the ledger, and billed (every aggregation but unique_count)
    REJECTED = "correction_rejected"  # written to usage-correction-dead-letters; detail: the reason


@dataclass(frozen=True)
class CorrectionAccounting:
    """Corrections per outcome, from the same counts per (outcome, detail) (usage outcomes are ignored here)."""

    applied: int
    rejected_by_reason: Mapping[str, int]

    @classmethod
    def of(cls, counts: Mapping[tuple[str, str], int]) -> CorrectionAccounting:
        rejected: dict[str, int] = {}
        for (outcome, detail), n in counts.items():
            if outcome == CorrectionOutcome.REJECTED:
                rejected[detail] = rejected.get(detail, 0) + n
        applied = sum(n for (outcome, _), n in counts.items() if outcome == CorrectionOutcome.APPLIED)
        return cls(applied, dict(sorted(rejected.items())))

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def total(self) -> int:
        return self.applied + self.rejected

    def holds(self, received: int) -> bool:
        """corrections received = applied + rejected."""
        return received == self.total


@dataclass(frozen=True)
class Accounting:
    """Usage records per outcome, from counts per (outcome, detail) (detail: the dead-letter reason, else "");
    corrections' outcomes are counted by `CorrectionAccounting`."""

    received: int
    dead_lettered: int
    duplicate_same_payload: int
    duplicate_conflicting_payload: int
    windowed: int
    billed_late: int

    @classmethod
    def of(cls, counts: Mapping[tuple[str, str], int], received: int) -> Accounting:
        known = {*Outcome, *CorrectionOutcome}
        unknown = sorted({outcome for outcome, _ in counts} - known)
        if unknown:
            raise ValueError(f"unknown accounting outcome(s) {unknown}; known: {sorted(o.value for o in known)}")
        totals = {o: sum(n for (name, _), n in counts.items() if name == o) for o in Outcome}
        return cls(received, *(totals[o] for o in Outcome))

    @property
    def first_seen(self) -> int:
        return self.windowed + self.billed_late

    @property
    def valid(self) -> int:
        return self.duplicate_same_payload + self.duplicate_conflicting_payload + self.first_seen

    @property
    def holds(self) -> bool:
        """received = dead-lettered + duplicates + billed on time + billed late."""
        return self.received == self.dead_lettered + self.valid
