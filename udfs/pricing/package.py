"""Package price: every started package of `package_size` units costs `package_price` (partial rounds up).

Quantities <= 0 buy no package and cost nothing: there is no such thing as a negative started package.
"""

from __future__ import annotations

from decimal import Decimal

from udfs.catalog import PackagePrice
from udfs.money import exact
from udfs.pricing.priced import ZERO, Priced, TierCharge


def packages_needed(quantity: Decimal, package_size: Decimal) -> Decimal:
    """Whole packages covering `quantity`, by exact integer division (no inexact quotient can round a
    full package up or down)."""
    if quantity <= 0:
        return ZERO
    whole, remainder = exact(lambda: divmod(quantity, package_size))
    return whole + 1 if remainder else whole


def price(quantity: Decimal, spec: PackagePrice) -> Priced:
    amount = exact(lambda: packages_needed(quantity, spec.package_size) * spec.package_price)
    tier = TierCharge(0, ZERO, None, quantity, spec.package_price, ZERO, amount)
    return Priced(amount, (tier,))
