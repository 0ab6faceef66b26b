"""Per-unit price: quantity x unit_price.

Linear, so a negative quantity (a correction that a `sum` can produce) yields a negative amount: the honest
mirror image, and the only model where a negative quantity has an obvious meaning.
"""

from __future__ import annotations

from decimal import Decimal

from udfs.catalog import PerUnitPrice
from udfs.money import exact
from udfs.pricing.priced import ZERO, Priced, TierCharge


def price(quantity: Decimal, spec: PerUnitPrice) -> Priced:
    amount = exact(lambda: quantity * spec.unit_price)
    tier = TierCharge(0, ZERO, None, quantity, spec.unit_price, ZERO, amount)
    return Priced(amount, (tier,))
