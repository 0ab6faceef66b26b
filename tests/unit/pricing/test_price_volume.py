from decimal import Decimal as D

import pytest

from udfs.catalog import Tier, VolumePrice
from udfs.pricing.volume import price, selected_tier

SPEC = VolumePrice(
    id="v",
    model="volume",
    tiers=[
        Tier(up_to=D("100"), unit_price=D("1"), flat_fee=D("10")),
        Tier(up_to=D("1000"), unit_price=D("0.5"), flat_fee=D("5")),
        Tier(up_to=None, unit_price=D("0.1")),
    ],
)


@pytest.mark.parametrize(
    ("quantity", "tier", "amount"),
    [
        (D("0"), None, D("0")),  # nothing used: no flat fee
        (D("-1"), None, D("0")),
        (D("1"), 0, D("11")),
        (D("99.99"), 0, D("109.99")),
        (D("100"), 0, D("110")),  # up_to inclusive: still tier 0
        (D("100.001"), 1, D("55.0005")),  # all units drop to tier 1: cheaper than at 100
        (D("101"), 1, D("55.5")),
        (D("1000"), 1, D("505")),
        (D("1000.5"), 2, D("100.05")),
        (D("1001"), 2, D("100.1")),
        (D("100000"), 2, D("10000")),
    ],
)
def test_volume_boundaries(quantity, tier, amount):
    priced = price(quantity, SPEC)
    assert selected_tier(quantity, SPEC) == tier
    assert priced.amount == amount
    billed = [t.tier_index for t in priced.tiers if t.quantity]
    assert billed == ([] if tier is None else [tier])
    assert sum(t.amount for t in priced.tiers) == amount


def test_volume_selected_tier_carries_all_units_and_its_fee():
    tiers = price(D("500"), SPEC).tiers
    assert (tiers[1].quantity, tiers[1].flat_fee, tiers[1].amount) == (D("500"), D("5"), D("255"))
    assert tiers[0].amount == tiers[2].amount == D("0")


def test_volume_can_decrease_across_a_boundary():
    assert price(D("100.001"), SPEC).amount < price(D("100"), SPEC).amount
