from decimal import Decimal as D

import pytest

from udfs.catalog import GraduatedPrice, Tier
from udfs.pricing.graduated import price

SPEC = GraduatedPrice(
    id="g",
    model="graduated",
    tiers=[
        Tier(up_to=D("100"), unit_price=D("1"), flat_fee=D("10")),
        Tier(up_to=D("1000"), unit_price=D("0.5"), flat_fee=D("5")),
        Tier(up_to=None, unit_price=D("0.1")),
    ],
)


@pytest.mark.parametrize(
    ("quantity", "amount", "per_tier_quantity"),
    [
        (D("0"), D("0"), ["0", "0", "0"]),  # nothing used: no flat fee either
        (D("-5"), D("0"), ["0", "0", "0"]),
        (D("0.001"), D("10.001"), ["0.001", "0", "0"]),
        (D("1"), D("11"), ["1", "0", "0"]),
        (D("99.5"), D("109.5"), ["99.5", "0", "0"]),
        (D("100"), D("110"), ["100", "0", "0"]),  # up_to is inclusive: tier 2 not touched, no fee
        (D("100.001"), D("115.0005"), ["100", "0.001", "0"]),
        (D("101"), D("115.5"), ["100", "1", "0"]),
        (D("999"), D("564.5"), ["100", "899", "0"]),
        (D("1000"), D("565"), ["100", "900", "0"]),
        (D("1000.5"), D("565.05"), ["100", "900", "0.5"]),
        (D("1001"), D("565.1"), ["100", "900", "1"]),
        (D("10000"), D("1465"), ["100", "900", "9000"]),
    ],
)
def test_graduated_boundaries(quantity, amount, per_tier_quantity):
    priced = price(quantity, SPEC)
    assert priced.amount == amount
    assert [t.quantity for t in priced.tiers] == [D(q) for q in per_tier_quantity]
    assert sum(t.amount for t in priced.tiers) == amount


def test_graduated_flat_fee_only_for_touched_tiers():
    fees = [t.flat_fee for t in price(D("101"), SPEC).tiers]
    assert fees == [D("10"), D("5"), D("0")]


def test_graduated_breakdown_bounds():
    tiers = price(D("5000"), SPEC).tiers
    assert [(t.tier_index, t.lower_bound, t.up_to) for t in tiers] == [
        (0, D("0"), D("100")),
        (1, D("100"), D("1000")),
        (2, D("1000"), None),
    ]


def test_graduated_single_open_tier():
    spec = GraduatedPrice(id="g", model="graduated", tiers=[Tier(unit_price=D("2"), flat_fee=D("1"))])
    assert price(D("3"), spec).amount == D("7")
    assert price(D("0"), spec).amount == D("0")


def test_graduated_is_monotonic_around_boundaries():
    quantities = [D(q) for q in ("99.999", "100", "100.001", "999.999", "1000", "1000.001")]
    amounts = [price(q, SPEC).amount for q in quantities]
    assert amounts == sorted(amounts)
