"""`io.meterstream.rating.RateLineItem.compact`, called directly in the JVM (py4j): the window rating operator
compacts each window's quantity before pricing, so it must keep the value exactly, for every scale and sign."""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

import pytest

pytestmark = pytest.mark.job


@pytest.fixture
def jvm(udf_jvm):
    return udf_jvm


def _compact(jvm, text: str, scale: int) -> tuple[Decimal, int]:
    """py4j carries BigDecimal as Decimal both ways, exponent (scale) included."""
    with localcontext() as context:
        context.prec = 80
        value = Decimal(text).quantize(Decimal(1).scaleb(-scale))
    assert -value.as_tuple().exponent == scale
    compacted = jvm.io.meterstream.rating.RateLineItem.compact(value)
    return compacted, -compacted.as_tuple().exponent


@pytest.mark.parametrize(
    ("text", "scale", "expected_scale"),
    [
        ("0", 18, 0),
        ("1500", 18, 0),
        ("-1500", 18, 0),
        ("12.5", 18, 1),
        ("-0.000000000000000001", 18, 18),
        ("99999999999999999999.999999999999999999", 18, 18),
        ("123456789012345678901234567890.5", 25, 1),
        ("7", 0, 0),
        ("1.10", 2, 1),
        ("3.0000000000000000000000000000000000001", 37, 37),
        ("2.00000000000000000000000000000000000000", 38, 0),
    ],
)
def test_compact_keeps_the_value_and_drops_trailing_zeros(jvm, text, scale, expected_scale):
    value, compact_scale = _compact(jvm, text, scale)
    assert value == Decimal(text)
    assert compact_scale == expected_scale


def test_compact_random_decimals(jvm):
    rng = random.Random(11)
    for _ in range(300):
        digits = rng.randint(1, 38)
        scale = rng.randint(0, min(digits, 18))
        unscaled = rng.randint(-(10**digits - 1), 10**digits - 1) * 10 ** rng.randint(0, 3)
        text = str(Decimal(unscaled).scaleb(-scale))
        value, compact_scale = _compact(jvm, text, 18)
        assert value == Decimal(text)
        assert compact_scale == max(0, -Decimal(text).normalize().as_tuple().exponent) or value == 0
