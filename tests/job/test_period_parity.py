"""BILLING_PERIOD_START (Java, the period rule `WindowRating` rates with) against udfs.periods.billing_period."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from meterstream.jars import engine_jar
from udfs.periods import billing_period
from udfs.windows import from_epoch_ms, to_epoch_ms

pytestmark = pytest.mark.job

ZONES = [
    "UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Kathmandu", "Australia/Lord_Howe",
    "America/Sao_Paulo", "America/Havana", "Pacific/Apia", "America/St_Johns",
]
ANCHORS = [1, 15, 28, 29, 30, 31]


def _cases() -> list[tuple[int, int, str]]:
    rng = random.Random(5)
    start, span = datetime(2015, 1, 1, tzinfo=UTC), timedelta(days=365 * 12)
    cases = []
    for _ in range(3000):
        instant = start + timedelta(seconds=rng.randrange(int(span.total_seconds())))
        cases.append((to_epoch_ms(instant), rng.choice(ANCHORS), rng.choice(ZONES)))
    # Instants right at and around period starts, where off-by-one and DST mistakes show.
    for zone in ZONES:
        for anchor in ANCHORS:
            for year, month in ((2018, 11), (2019, 2), (2020, 2), (2024, 3), (2024, 11)):
                begin, _ = billing_period(datetime(year, month, 20, tzinfo=UTC), anchor, zone)
                for delta_ms in (-1, 0, 1, 3_600_000):
                    cases.append((to_epoch_ms(begin) + delta_ms, anchor, zone))
    return cases


def test_java_period_start_equals_python():
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

    cases = _cases()
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("pipeline.jars", engine_jar().as_uri())
    t_env.create_java_temporary_system_function("BILLING_PERIOD_START", "io.meterstream.periods.BillingPeriodStart")
    source = t_env.from_elements(
        [(i, ms, anchor, zone) for i, (ms, anchor, zone) in enumerate(cases)],
        DataTypes.ROW([
            DataTypes.FIELD("idx", DataTypes.BIGINT()), DataTypes.FIELD("ms", DataTypes.BIGINT()),
            DataTypes.FIELD("anchor", DataTypes.INT()), DataTypes.FIELD("zone", DataTypes.STRING()),
        ]),
    )
    t_env.create_temporary_view("cases", source)
    table = t_env.sql_query("SELECT idx, BILLING_PERIOD_START(ms, anchor, zone) FROM cases")
    with table.execute().collect() as rows:
        java = {row[0]: row[1] for row in rows}
    mismatches = []
    for i, (ms, anchor, zone) in enumerate(cases):
        expected = to_epoch_ms(billing_period(from_epoch_ms(ms), anchor, zone)[0])
        if java[i] != expected:
            mismatches.append((from_epoch_ms(ms).isoformat(), anchor, zone, java[i], expected))
    assert not mismatches, mismatches[:10]
