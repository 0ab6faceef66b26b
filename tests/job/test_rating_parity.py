"""The Java `BILLING_LINE_ITEM_JAVA` (`io.meterstream.rating.RateLineItem`) writes the same line item as the Python
`udfs.window_rows.line_item_from_period_row` for every row, byte for byte (one Flink job).

Python is the reference, called with the same twelve arguments the job's SQL passes and the `emitted_at` given to
Java. Rows cover every tenant, meter (not
unique_count: those stay in Python) and price entry of `catalogs/example-genai.yaml`, plus a test tenant with a
`min` meter, precision 3 and a DST gap at midnight; first windows (no `before`) and later ones; quantities at,
just below and just above every tier `up_to` and package multiple; zero, negative and 20-integer-digit
quantities; decreasing period quantities (min/last going down, volume tiers); groups and ids with non-ASCII,
quotes, control characters and `,=|%`; window starts at period starts and across DST changes.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from meterstream.jars import engine_jar
from udfs import grouping
from udfs.catalog import GraduatedPrice, PackagePrice, VolumePrice, parse_catalog
from udfs.java_catalog import java_catalog_json
from udfs.periods import billing_period
from udfs.window_rows import last_key
from udfs.windows import from_epoch_ms, to_epoch_ms

pytestmark = pytest.mark.job

ROOT = Path(__file__).resolve().parents[2]
CATALOG_PATH = ROOT / "catalogs" / "example-genai.yaml"
# The example catalog has no `min` meter, no midnight DST gap and no odd precision: a test tenant adds them.
EXTRA_TENANT = """
  zeta-test:
    currency: GBP
    amount_precision: 3
    billing_period: {interval: monthly, anchor_day: 4, time_zone: America/Sao_Paulo}
    meters:
      low_water: {aggregation: min, group_by: [region]}
      balance: {aggregation: last}
      calls: {aggregation: count}
    prices:
      low_water:
        - id: zeta-low-eu
          match: {region: eu}
          model: volume
          tiers:
            - {up_to: 10.5, unit_price: 1.005, flat_fee: 0.0005}
            - {up_to: 100, unit_price: 0.995, flat_fee: 2}
            - {up_to: null, unit_price: 0.5}
        - id: zeta-low-default
          model: graduated
          tiers:
            - {up_to: 0.001, unit_price: 123.456}
            - {up_to: null, unit_price: 0.0000001, flat_fee: 0.3335}
      balance:
        - id: zeta-balance
          model: package
          package_size: 2.5
          package_price: 0.125
      calls:
        - id: zeta-calls
          model: per_unit
          unit_price: 0.0005
"""
CATALOG_YAML = CATALOG_PATH.read_text(encoding="utf-8").rstrip("\n") + "\n" + EXTRA_TENANT
CATALOG = parse_catalog(CATALOG_YAML)
CATALOG_JSON = java_catalog_json(CATALOG)
EMITTED_MS = 1795509095123
SCALE = Decimal("1e-18")
TINY = Decimal("0.000000000000000001")
LARGE = Decimal("12345678901234567890.123456789012345678")  # 20 integer digits, DECIMAL(38, 18)'s limit
WINDOW_SIZES = (60_000, 3_600_000)
COLUMNS = (
    "idx", "tenant_id", "customer_id", "meter", "group_json", "aggregation", "window_start_ms", "event_count",
    "quantity", "last_key", "period_quantity_before", "period_quantity", "last_key_before", "window_size_ms",
)
TRICKY = ["é", 'a"b', "x,y=z|w%25", "back\\slash", "ctl\x00\x1f\x7f", "\u2028", "😀\ue000", "日本語", " sp ace~._-"]
CUSTOMERS = ["cust-42", "cüst/ö|,=%", 'c"q', "c😀"]
DST_INSTANTS = {  # UTC instants of DST changes in each tenant's zone (Tokyo has none: plain period edges)
    "America/New_York": ["2026-03-08T07:00:00", "2026-11-01T06:00:00", "2025-03-09T07:00:00"],
    "Europe/Berlin": ["2026-03-29T01:00:00", "2026-10-25T01:00:00", "2025-10-26T01:00:00"],
    "Asia/Tokyo": ["2026-01-01T00:00:00"],
    # 2018-11-04 00:00 did not exist in Sao Paulo: the period of anchor day 4 starts at 01:00 local.
    "America/Sao_Paulo": ["2018-11-04T03:00:00", "2019-02-17T02:00:00"],
}


def q(value: Decimal | int | str) -> Decimal:
    """A DECIMAL(38, 18) value as PyFlink hands it to a Python UDF."""
    with localcontext(Context(prec=60)):
        return Decimal(value).quantize(SCALE)


def _window_starts(tenant_id: str) -> list[int]:
    """Window starts (ms) at and around period boundaries and DST changes in the tenant's zone."""
    schedule = CATALOG.tenant(tenant_id).billing_period
    starts: set[int] = set()
    for text in DST_INSTANTS[schedule.time_zone]:
        instant = to_epoch_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))
        starts.update(instant + d * 3_600_000 for d in (-2, -1, 0, 1))
    year = 2018 if tenant_id == "zeta-test" else 2026
    for month in range(1, 13):
        start, end = billing_period(datetime(year, month, 20, tzinfo=UTC), schedule.anchor_day, schedule.zone)
        for edge in (start, end):
            ms = to_epoch_ms(edge)
            starts.update(ms + d * 3_600_000 for d in (-1, 0))
    return sorted(s - s % 60_000 for s in starts)


def _boundaries(entry: Any) -> list[Decimal]:
    """Quantities exactly at, just below and just above every tier up_to / package multiple."""
    points: list[Decimal] = []
    if isinstance(entry, GraduatedPrice | VolumePrice):
        points = [tier.up_to for tier in entry.tiers if tier.up_to is not None]
    elif isinstance(entry, PackagePrice):
        points = [entry.package_size * k for k in (1, 2, 3)]
    out: list[Decimal] = []
    for point in points:
        out += [point, point - TINY, point + TINY, point - 1, point + 1]
    return out


def _groups(meter_group_by: tuple[str, ...], entry: Any) -> list[dict[str, str]]:
    if not meter_group_by:
        return [{}]
    if entry.match:
        return [dict(entry.match)]
    # The catch-all: no dimension, and values no specific entry matches (the tricky texts).
    dim = meter_group_by[0]
    return [{}, *({dim: text} for text in TRICKY)]


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cycle = itertools.count()
    for tenant_id, tenant in CATALOG.tenants.items():
        starts = _window_starts(tenant_id)
        for meter_name, meter in tenant.meters.items():
            if meter.aggregation == "unique_count":
                continue
            integral = meter.aggregation == "count"
            for entry in tenant.prices[meter_name]:
                afters = [Decimal(0), Decimal(1), Decimal(7), LARGE, *_boundaries(entry)]
                if meter.aggregation in ("sum", "min", "last"):
                    afters += [Decimal("-3.5"), -LARGE, Decimal("0.000000000000000001")]
                if not integral:
                    afters += [Decimal("0.005"), Decimal("0.015"), Decimal("1234.5678")]
                afters = [a for a in afters if not integral or a == a.to_integral_value()]
                for group in _groups(meter.group_by, entry):
                    for after in afters:
                        # before: first window, equal, smaller, larger (a min/last going down)
                        befores: list[Decimal | None] = [None, after, after - 1]
                        if meter.aggregation in ("min", "last", "sum"):
                            befores += [after + 1, after + Decimal("12.34")]
                        for before in befores:
                            n = next(cycle)
                            rows.append(_row(
                                tenant_id, meter_name, meter.aggregation, group, before, after,
                                customer_id=CUSTOMERS[n % len(CUSTOMERS)],
                                window_start_ms=starts[n % len(starts)],
                                window_size_ms=WINDOW_SIZES[n % 2],
                                n=n,
                            ))
    return [dict(r, idx=i) for i, r in enumerate(rows)]


def _row(tenant_id: str, meter: str, aggregation: str, group: dict[str, str], before: Decimal | None,
         after: Decimal, *, customer_id: str, window_start_ms: int, window_size_ms: int, n: int) -> dict[str, Any]:
    window = after - before if before is not None else after
    if aggregation in ("max", "min"):
        window = after if n % 3 else after + 1  # the window's own extreme; the period one may differ
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "meter": meter,
        "group_json": grouping.group_json(grouping.group_of(group, tuple(group))),
        "aggregation": aggregation,
        "window_start_ms": window_start_ms,
        "event_count": n % 50 if aggregation != "count" else max(int(window), 0),
        "quantity": q(window) if aggregation in ("sum", "max", "min", "count") else None,
        "last_key": None,
        "period_quantity_before": q(before) if before is not None else None,
        "period_quantity": q(after),
        "last_key_before": None,
        "window_size_ms": window_size_ms,
    }
    if aggregation == "count":
        row["quantity"] = None
    if aggregation == "last":
        ts = window_start_ms + 1234
        # The value text as SQL renders DECIMAL(38, 18), and now and then in other spellings Decimal() reads.
        after_text = [str(q(after)), str(after), f"{after:E}"][n % 3]
        row["last_key"] = last_key(ts, f"evt-{n}", after_text)
        row["last_key_before"] = last_key(ts - 60_000, f"evt-{n - 1}", q(before)) if before is not None else None
        row["period_quantity_before"] = None  # the job's SQL does not fill these for last meters
        row["period_quantity"] = None
    return row


def _expected(rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> dict[int, str]:
    from udfs.catalog import parse_catalog
    from udfs.window_rows import line_item_from_period_row

    catalog = parse_catalog(CATALOG_YAML)
    out: dict[int, str] = {}
    for row in rows:
        line = line_item_from_period_row(
            catalog, *(row[c] for c in COLUMNS[1:13]),
            window_size=timedelta(milliseconds=row["window_size_ms"]), emitted_at=from_epoch_ms(EMITTED_MS),
        )
        out[row["idx"]] = line.model_dump_json()
    return out


def _run_java(rows: list[dict[str, Any]]) -> dict[int, str]:
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("pipeline.jars", engine_jar().as_uri())
    config.set("parallelism.default", "2")
    t_env.create_java_temporary_system_function("BILLING_LINE_ITEM_JAVA", "io.meterstream.rating.RateLineItem")
    dec = DataTypes.DECIMAL(38, 18)
    types = {
        "idx": DataTypes.BIGINT(), "window_start_ms": DataTypes.BIGINT(), "event_count": DataTypes.BIGINT(),
        "window_size_ms": DataTypes.BIGINT(), "quantity": dec, "period_quantity_before": dec,
        "period_quantity": dec,
    }
    schema = DataTypes.ROW([DataTypes.FIELD(c, types.get(c, DataTypes.STRING())) for c in COLUMNS])
    source = t_env.from_elements([tuple(row[c] for c in COLUMNS) for row in rows], schema)
    t_env.create_temporary_view("windows", source)
    catalog = CATALOG_JSON.replace("'", "''")
    table = t_env.sql_query(
        "SELECT idx, BILLING_LINE_ITEM_JAVA(tenant_id, customer_id, meter, group_json, aggregation, "
        "window_start_ms, event_count, quantity, last_key, period_quantity_before, period_quantity, "
        f"last_key_before, '{catalog}', window_size_ms, CAST({EMITTED_MS} AS BIGINT)) FROM windows"
    )
    out: dict[int, str] = {}
    with table.execute().collect() as results:
        for result in results:
            out[result[0]] = result[1]
    return out


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return _rows()


@pytest.fixture(scope="module")
def java(rows) -> dict[int, str]:
    return _run_java(rows)


def _without_emitted_at(text: str) -> dict[str, Any]:
    obj = json.loads(text)
    obj.pop("emitted_at")
    return obj


def test_java_line_items_equal_python_byte_for_byte(rows, java, monkeypatch):
    expected = _expected(rows, monkeypatch)
    assert len(java) == len(rows)
    wire = '"emitted_at":"' + datetime(2026, 11, 24, 8, 31, 35, 123000, tzinfo=UTC).isoformat(
        timespec="milliseconds")[:-6] + 'Z"'
    assert from_epoch_ms(EMITTED_MS) == datetime(2026, 11, 24, 8, 31, 35, 123000, tzinfo=UTC)
    parsed = [(i, e, java[i]) for i, e in expected.items() if _without_emitted_at(e) != _without_emitted_at(java[i])]
    shown = "\n".join(f"{rows[i]}\n  python: {e}\n  java:   {a}" for i, e, a in parsed[:5])
    assert not parsed, f"{len(parsed)} of {len(rows)} line items differ as JSON:\n{shown}"
    # Both sides got the same emitted_at, so the texts must be identical; the replace() is what a caller
    # with a wall-clock emitted_at would compare.
    raw = [(i, e, java[i]) for i, e in expected.items()
           if e.replace(wire, '"emitted_at":""') != java[i].replace(wire, '"emitted_at":""')]
    shown = "\n".join(f"  python: {e}\n  java:   {a}" for i, e, a in raw[:5])
    assert not raw, f"{len(raw)} of {len(rows)} line items differ in bytes:\n{shown}"
    assert all(wire in e for e in expected.values())


def test_the_rows_cover_the_catalog_and_the_edges(rows, java):
    items = [json.loads(java[row["idx"]]) for row in rows]
    refs = {item["price_ref"] for item in items}
    every = {
        entry.id
        for tenant in CATALOG.tenants.values()
        for name, entries in tenant.prices.items()
        if tenant.meters[name].aggregation != "unique_count"
        for entry in entries
    }
    assert refs == every
    assert len(rows) > 2000
    assert any(Decimal(item["amount"]) < 0 for item in items)
    assert any(item["tiers"] == [] for item in items)
    assert any(len(item["tiers"]) >= 2 for item in items)
    assert any(Decimal(item["rounding_adjustment"]) != 0 for item in items)
    assert any(any(ord(c) > 127 for c in "".join(item["group"].values())) for item in items)
    assert {row["aggregation"] for row in rows} == {"sum", "count", "max", "min", "last"}
    # DST: some window of every zone's tenant has a period whose UTC length is not a whole number of days.
    for tenant_id in ("acme-ai", "bolt-ml", "zeta-test"):
        assert any(
            (datetime.fromisoformat(i["period_end"]) - datetime.fromisoformat(i["period_start"])) % timedelta(days=1)
            for i in items if i["tenant_id"] == tenant_id
        )
