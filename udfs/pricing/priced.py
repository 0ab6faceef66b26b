"""The result of rating a quantity: the exact (unrounded) amount and how each tier contributed to it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class TierCharge:
    """One tier's share of a price. Flat-rate models (per_unit, package) report a single open tier 0.

    `lower_bound` is exclusive and `up_to` inclusive: the tier holds quantities in (lower_bound, up_to].
    For `package`, `unit_price` is the price of one package and `quantity` is still in meter units.
    """

    tier_index: int
    lower_bound: Decimal
    up_to: Decimal | None
    quantity: Decimal
    unit_price: Decimal
    flat_fee: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Priced:
    """`amount` is exact and equals the sum of the tier amounts; rounding happens later, in udfs.money."""

    amount: Decimal
    tiers: tuple[TierCharge, ...]


def tier_bounds(up_tos: list[Decimal | None]) -> list[tuple[Decimal, Decimal | None]]:
    """(lower_bound, up_to) per tier; the first tier starts at 0 (exclusive)."""
    lowers = [ZERO, *up_tos[:-1]]
    pairs = zip(lowers, up_tos, strict=True)
    return [(lower if lower is not None else ZERO, up_to) for lower, up_to in pairs]
