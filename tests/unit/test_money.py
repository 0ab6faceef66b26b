from decimal import Decimal as D
from decimal import getcontext, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.invoice_line_item import decimal_to_wire
from udfs.money import from_wire, round_amount, to_wire


@pytest.mark.parametrize(
    ("amount", "precision", "rounded"),
    [
        (D("0.125"), 2, D("0.13")),  # half up, not banker's (half-even would give 0.12)
        (D("0.135"), 2, D("0.14")),
        (D("0.124999"), 2, D("0.12")),
        (D("-0.125"), 2, D("-0.13")),  # symmetric: half away from zero
        (D("-0.001"), 2, D("0.00")),  # never "-0.00"
        (D("1234.5"), 0, D("1235")),
        (D("0.5"), 0, D("1")),
        (D("2.5"), 0, D("3")),
        (D("7"), 3, D("7.000")),
        (D("0"), 2, D("0.00")),
    ],
)
def test_round_amount_half_up(amount, precision, rounded):
    result = round_amount(amount, precision)
    assert result == rounded
    assert str(result) == str(rounded)


def test_round_amount_ignores_a_hostile_global_context():
    with localcontext() as ctx:
        ctx.prec = 3
        assert round_amount(D("123456.785"), 2) == D("123456.79")


def test_round_amount_leaves_global_context_alone():
    before = getcontext().copy()
    round_amount(D("1.005"), 2)
    assert getcontext().prec == before.prec and getcontext().rounding == before.rounding


def test_round_amount_rejects_bad_precision():
    with pytest.raises(ValueError):
        round_amount(D("1"), -1)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (D("0"), "0"),
        (D("-0.00"), "0"),
        (D("12.50"), "12.5"),
        (D("1E+3"), "1000"),
        (D("1.000E-7"), "0.0000001"),
        (D("-3.10"), "-3.1"),
        (D("100"), "100"),
        (D("0.000003"), "0.000003"),
    ],
)
def test_to_wire_is_canonical(value, wire):
    assert to_wire(value) == wire
    assert from_wire(wire) == value


@pytest.mark.parametrize("text", ["1e3", " 1", "1.", ".5", "NaN", "01", "1.50", "-0", "+1", "", "Infinity"])
def test_from_wire_rejects_non_canonical(text):
    with pytest.raises(ValueError):
        from_wire(text)


def test_to_wire_rejects_non_finite_and_floats():
    with pytest.raises(ValueError):
        to_wire(D("NaN"))
    with pytest.raises(TypeError):
        to_wire(0.1)  # type: ignore[arg-type]


decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=9)


@given(decimals)
def test_wire_round_trip_and_schema_agrees(value):
    assert from_wire(to_wire(value)) == value
    assert decimal_to_wire(value) == to_wire(value)


def test_exact_refuses_to_round_silently():
    from udfs.money import ExactnessError, exact

    assert exact(lambda: D("0.1") + D("0.2")) == D("0.3")
    with pytest.raises(ExactnessError):
        exact(lambda: D("1" * 40) + D("0." + "1" * 40))
