from decimal import Decimal as D

import pytest

from udfs.catalog import PerUnitPrice
from udfs.pricing.per_unit import price

SPEC = PerUnitPrice(id="p", model="per_unit", unit_price=D("0.000003"))


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        (D("0"), D("0")),
        (D("1"), D("0.000003")),
        (D("1000000"), D("3.000000")),
        (D("0.5"), D("0.0000015")),
        (D("-2"), D("-0.000006")),  # linear: a negative correction mirrors a charge
        (D("1E+15"), D("3000000000")),
    ],
)
def test_per_unit_amounts(quantity, amount):
    priced = price(quantity, SPEC)
    assert priced.amount == amount
    assert [t.amount for t in priced.tiers] == [amount]
    assert priced.tiers[0].quantity == quantity
    assert priced.tiers[0].up_to is None


def test_per_unit_amount_is_exact_not_rounded():
    priced = price(D("7"), PerUnitPrice(id="p", model="per_unit", unit_price=D("0.0000001")))
    assert priced.amount == D("0.0000007")
