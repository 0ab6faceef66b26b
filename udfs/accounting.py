"""Where every usage record goes: the outcome names the job counts (on the `billing-accounting` topic) and the
accounting identity they must satisfy.

Every record read from the input has exactly one outcome:
received = dead-lettered + duplicates (same or conflicting payload) + billed on time (`windowed`) + billed late.
A late record (its series had already fired its window) is billed as a late adjustment (`udfs.line_items.
accumulate_late`); one that changes nothing (a max below the period's, a value already counted) is billed with no
line, and counted here all the same. The Java operators count with the generated twins of these names
(`io.meterstream.rules.Rules.OUTCOME_*`, written by `udfs.java_rules`).
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


@dataclass(frozen=True)
class Accounting:
    """Totals per outcome, from counts per (outcome, detail) (detail: the dead-letter reason, else "")."""

    received: int
    dead_lettered: int
    duplicate_same_payload: int
    duplicate_conflicting_payload: int
    windowed: int
    billed_late: int

    @classmethod
    def of(cls, counts: Mapping[tuple[str, str], int], received: int) -> Accounting:
        unknown = sorted({outcome for outcome, _ in counts} - set(Outcome))
        if unknown:
            raise ValueError(f"unknown accounting outcome(s) {unknown}; known: {[o.value for o in Outcome]}")
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
