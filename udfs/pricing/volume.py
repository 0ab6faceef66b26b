"""Volume tiers: all units are priced at the tier the total falls in, plus that tier's flat fee.

Boundaries: the total selects the first tier with quantity <= up_to (inclusive), so a total equal to a tier's
`up_to` is billed entirely at that tier. Crossing a boundary can lower the total (cheaper unit price for all
units): that is the model, and line items carry the resulting negative amount.
Quantity <= 0 selects no tier and charges nothing (no flat fee).
"""

from __future__ import annotations

from decimal import Decimal

from udfs.catalog import VolumePrice
from udfs.money import exact
from udfs.pricing.priced import ZERO, Priced, TierCharge, tier_bounds


def selected_tier(quantity: Decimal, spec: VolumePrice) -> int | None:
    if quantity <= 0:
        return None
    for index, tier in enumerate(spec.tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return index
    raise AssertionError("the catalog guarantees an open-ended last tier")


def price(quantity: Decimal, spec: VolumePrice) -> Priced:
    chosen = selected_tier(quantity, spec)
    charges = []
    bounds = tier_bounds([tier.up_to for tier in spec.tiers])
    for index, (tier, (lower, up_to)) in enumerate(zip(spec.tiers, bounds, strict=True)):
        if index == chosen:
            amount = exact(lambda tier=tier: quantity * tier.unit_price + tier.flat_fee)
            charges.append(TierCharge(index, lower, up_to, quantity, tier.unit_price, tier.flat_fee, amount))
        else:
            charges.append(TierCharge(index, lower, up_to, ZERO, tier.unit_price, ZERO, ZERO))
    total = charges[chosen].amount if chosen is not None else ZERO
    return Priced(total, tuple(charges))
