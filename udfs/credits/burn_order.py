"""Which grant pays first, and which grants may pay for a line item at all.

Burn order (deterministic, total): lowest `priority` number first; then the earliest `expires_at` (a grant
that never expires goes last, so credit that would be lost is used first); then the earliest `effective_at`;
then `grant_id` (plain string order) so two grants never tie.

Eligibility: a grant pays for a line item only when the item's whole window lies inside the grant's usable
range, `effective_at <= window_start` and `window_end <= end` (end = the earlier of `expires_at` and a void's
`voided_at`; none = open), when the meter is in `applies_to` (absent = every meter), and when the currencies
are equal. A window straddling the expiry is not paid by that grant at all: a window's usage has no finer time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class GrantBalance:
    """A grant held in a customer's state. `amount` is what was granted, `balance` what is left."""

    grant_id: str
    currency: str
    amount: Decimal
    balance: Decimal
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    applies_to: frozenset[str] | None
    category: str
    voided_at: datetime | None = None

    @property
    def end(self) -> datetime | None:
        """Exclusive end of the usable range: the earlier of expiry and void; None = open-ended."""
        ends = [t for t in (self.expires_at, self.voided_at) if t is not None]
        return min(ends) if ends else None

    @property
    def ends_by_void(self) -> bool:
        return self.voided_at is not None and (self.expires_at is None or self.voided_at <= self.expires_at)

    @property
    def usable(self) -> bool:
        """False when a void took effect before the grant ever started: it can never pay anything."""
        end = self.end
        return end is None or end > self.effective_at


def burn_key(grant: GrantBalance) -> tuple:
    never_expires = grant.expires_at is None
    return (grant.priority, never_expires, grant.expires_at or grant.effective_at, grant.effective_at, grant.grant_id)


def burn_order(grants: Iterable[GrantBalance]) -> tuple[GrantBalance, ...]:
    return tuple(sorted(grants, key=burn_key))


def covers(grant: GrantBalance, *, meter: str, window_start: datetime, window_end: datetime, currency: str) -> bool:
    """May `grant` pay for usage of `meter` in [window_start, window_end)? (Ignores the balance.)"""
    if grant.currency != currency or not grant.usable:
        return False
    if grant.applies_to is not None and meter not in grant.applies_to:
        return False
    if window_start < grant.effective_at:
        return False
    end = grant.end
    return end is None or window_end <= end
