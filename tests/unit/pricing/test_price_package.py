from decimal import Decimal as D

import pytest

from udfs.catalog import PackagePrice
from udfs.pricing.package import packages_needed, price

SPEC = PackagePrice(id="p", model="package", package_size=D("1000"), package_price=D("0.50"))


@pytest.mark.parametrize(
    ("quantity", "packages"),
    [
        (D("0"), 0),
        (D("-1"), 0),
        (D("1"), 1),
        (D("999"), 1),
        (D("1000"), 1),  # exactly full: no extra package
        (D("1000.0001"), 2),  # any part of a package is a package
        (D("1001"), 2),
        (D("2000"), 2),
        (D("2001"), 3),
    ],
)
def test_package_boundaries(quantity, packages):
    priced = price(quantity, SPEC)
    assert packages_needed(quantity, SPEC.package_size) == packages
    assert priced.amount == packages * D("0.50")
    assert priced.tiers[0].amount == priced.amount
    assert priced.tiers[0].unit_price == D("0.50")


@pytest.mark.parametrize(
    ("quantity", "packages"), [(D("5"), 2), (D("5.01"), 3), (D("2.5"), 1), (D("2.4"), 1)]
)
def test_fractional_package_size(quantity, packages):
    spec = PackagePrice(id="p", model="package", package_size=D("2.5"), package_price=D("3"))
    assert price(quantity, spec).amount == packages * D("3")
