"""Dispatch a catalog price entry to its price model's module."""

from __future__ import annotations

from decimal import Decimal

from udfs.catalog import GraduatedPrice, PackagePrice, PerUnitPrice, PriceEntry, VolumePrice
from udfs.pricing import graduated, package, per_unit, volume
from udfs.pricing.priced import Priced


def price(quantity: Decimal, spec: PriceEntry) -> Priced:
    match spec:
        case PerUnitPrice():
            return per_unit.price(quantity, spec)
        case PackagePrice():
            return package.price(quantity, spec)
        case GraduatedPrice():
            return graduated.price(quantity, spec)
        case VolumePrice():
            return volume.price(quantity, spec)
    raise TypeError(f"unknown price model {type(spec).__name__}")
