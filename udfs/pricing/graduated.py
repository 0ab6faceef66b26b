"""Graduated tiers: each unit is priced by the tier it falls in; each touched tier's flat fee is added once.

Boundaries: a tier holds quantities in (previous up_to, up_to], so a quantity equal to `up_to` is entirely in
that tier and the next tier (and its flat fee) is only touched by quantity strictly above it.
Quantity <= 0 touches no tier: nothing is charged, not even the first tier's flat fee (a customer who used
nothing in the period owes nothing for this meter).
"""

from __future__ import annotations

from decimal import Decimal

from udfs.catalog import GraduatedPrice
from udfs.money import exact
from udfs.pricing.priced import ZERO, Priced, TierCharge, tier_bounds


def quantity_in_tier(quantity: Decimal, lower: Decimal, up_to: Decimal | None) -> Decimal:
    if quantity <= lower:
        return ZERO
    return exact(lambda: (quantity if up_to is None else min(quantity, up_to)) - lower)


def price(quantity: Decimal, spec: GraduatedPrice) -> Priced:
    charges = []
    bounds = tier_bounds([tier.up_to for tier in spec.tiers])
    for index, (tier, (lower, up_to)) in enumerate(zip(spec.tiers, bounds, strict=True)):
        in_tier = quantity_in_tier(quantity, lower, up_to)
        fee = tier.flat_fee if in_tier > 0 else ZERO
        amount = exact(lambda in_tier=in_tier, tier=tier, fee=fee: in_tier * tier.unit_price + fee)
        charges.append(TierCharge(index, lower, up_to, in_tier, tier.unit_price, fee, amount))
    return Priced(exact(lambda: sum((c.amount for c in charges), ZERO)), tuple(charges))
