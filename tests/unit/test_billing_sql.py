"""The SQL text helpers of the billing job (no JVM: `jobs.billing_sql` only writes strings)."""

import pytest

from jobs.billing_sql import MAX_INTERVAL_MS, interval_literal


@pytest.mark.parametrize(("ms", "literal"), [
    (0, "INTERVAL '0 00:00:00.000' DAY TO SECOND(3)"),
    (10_000, "INTERVAL '0 00:00:10.000' DAY TO SECOND(3)"),
    (1_500, "INTERVAL '0 00:00:01.500' DAY TO SECOND(3)"),
    (100_000, "INTERVAL '0 00:01:40.000' DAY TO SECOND(3)"),  # was '100.000' SECOND: beyond SECOND(2)
    (3_600_000, "INTERVAL '0 01:00:00.000' DAY TO SECOND(3)"),
    (86_400_000, "INTERVAL '1 00:00:00.000' DAY TO SECOND(3)"),
    (MAX_INTERVAL_MS, "INTERVAL '99 23:59:59.999' DAY TO SECOND(3)"),
])
def test_interval_literal_carries_every_size_to_the_millisecond(ms, literal):
    assert interval_literal(ms) == literal


@pytest.mark.parametrize("ms", [-1, MAX_INTERVAL_MS + 1])
def test_interval_literal_refuses_what_day_to_second_cannot_hold(ms):
    with pytest.raises(ValueError):
        interval_literal(ms)
