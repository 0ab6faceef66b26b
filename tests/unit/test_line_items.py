import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.invoice_line_item import InvoiceLineItem
from udfs.aggregations import LastObservation, WindowAggregate
from udfs.catalog import parse_catalog
from udfs.line_items import LINE_ITEM_NAMESPACE, StaleWindowError, accumulate_window, line_item_id, rate_window
from udfs.money import round_amount
from udfs.pricing.rate import price

HOUR = timedelta(hours=1)
EMITTED = datetime(2025, 6, 1, tzinfo=UTC)
# 2025-03-01 00:00 in New York; March's period is [03-01T05:00Z, 04-01T04:00Z).
MARCH = datetime(2025, 3, 1, 5, tzinfo=UTC)

PRICES = {
    "per_unit": {"model": "per_unit", "unit_price": "0.0035"},
    "package": {"model": "package", "package_size": "7", "package_price": "0.33"},
    "graduated": {
        "model": "graduated",
        "tiers": [
            {"up_to": "10", "unit_price": "0.125", "flat_fee": "1"},
            {"up_to": "100", "unit_price": "0.0999", "flat_fee": "0.5"},
            {"up_to": None, "unit_price": "0.01"},
        ],
    },
    "volume": {
        "model": "volume",
        "tiers": [
            {"up_to": "10", "unit_price": "0.125", "flat_fee": "1"},
            {"up_to": "100", "unit_price": "0.0999", "flat_fee": "0.5"},
            {"up_to": None, "unit_price": "0.01"},
        ],
    },
}
KINDS = ["sum", "count", "max", "min", "last", "unique_count"]


def tenant_catalog(kind="sum", model="per_unit", precision=2, entry=None):
    meter = {"aggregation": kind, "group_by": ["model"]}
    if kind == "unique_count":
        meter["unique_dimension"] = "user_id"
    spec = entry or {"id": f"m-{model}", **PRICES[model]}
    return parse_catalog(
        {
            "version": 1,
            "tenants": {
                "acme-ai": {
                    "currency": "USD",
                    "amount_precision": precision,
                    "billing_period": {"anchor_day": 1, "time_zone": "America/New_York"},
                    "meters": {"m": meter},
                    "prices": {"m": [spec]},
                }
            },
        }
    ).tenant("acme-ai")


def make_window(kind, start, value, *, customer="cust-1", users=(), event_count=1):
    payload = {}
    if kind in ("sum", "count", "max", "min"):
        payload["quantity"] = D(value)
    elif kind == "last":
        payload["last"] = LastObservation(D(value), start + timedelta(minutes=30), "evt")
    else:
        payload["distinct_values"] = frozenset(users)
    return WindowAggregate(
        "acme-ai", customer, "m", (("model", "nova"),), start, start + HOUR, event_count, **payload
    )


def run(windows, tenant):
    state, lines = None, []
    for w in windows:
        state, line = accumulate_window(state, w, tenant, emitted_at=EMITTED)
        lines.append(line)
    return state, lines


def assert_line_invariants(line):
    assert sum((t.amount for t in line.tiers), D(0)) + line.rounding_adjustment == line.amount


def test_single_window_line():
    tenant = tenant_catalog("sum", "graduated")
    state, line = accumulate_window(None, make_window("sum", MARCH, "12"), tenant, emitted_at=EMITTED)
    # 10 x 0.125 + 1 + 2 x 0.0999 + 0.5 = 2.9498 -> 2.95
    assert line.amount == line.period_amount_to_date == D("2.95")
    assert line.quantity == line.period_quantity_to_date == D("12")
    assert (line.period_start, line.period_end) == (MARCH, datetime(2025, 4, 1, 4, tzinfo=UTC))
    assert [(t.tier_index, t.quantity, t.amount) for t in line.tiers] == [
        (0, D(10), D("2.25")),
        (1, D(2), D("0.6998")),
    ]
    assert line.rounding_adjustment == D("0.0002")
    assert line.currency == "USD" and line.price_ref == "m-graduated" and line.group == {"model": "nova"}
    assert state.amount_to_date == D("2.95") and state.last_window_start == MARCH
    assert_line_invariants(line)


def test_lines_telescope_to_rounded_period_total():
    tenant = tenant_catalog("sum", "per_unit")  # 0.0035 per unit: every line needs rounding
    windows = [make_window("sum", MARCH + i * HOUR, "1") for i in range(7)]
    state, lines = run(windows, tenant)
    assert [line.amount for line in lines] == [
        D("0.00"),
        D("0.01"),
        D("0.00"),
        D("0.00"),
        D("0.01"),
        D("0.00"),
        D("0.00"),
    ]
    assert sum(line.amount for line in lines) == state.amount_to_date == round_amount(D("0.0245"), 2)


def test_new_period_starts_from_zero():
    tenant = tenant_catalog("sum", "graduated")
    feb = make_window("sum", MARCH - HOUR, "50")  # 2025-03-01T04:00Z is still February in New York
    mar = make_window("sum", MARCH, "5")
    state, (feb_line, mar_line) = run([feb, mar], tenant)
    assert feb_line.period_start == datetime(2025, 2, 1, 5, tzinfo=UTC)
    assert mar_line.period_start == MARCH
    assert mar_line.period_quantity_to_date == D("5")
    assert mar_line.amount == mar_line.period_amount_to_date == D("1.63")  # 5 x 0.125 + 1 flat fee (rounded)
    assert state.period_quantity == D("5") and state.period_start == MARCH


def test_volume_boundary_gives_negative_line():
    tenant = tenant_catalog("sum", "volume")
    _, lines = run([make_window("sum", MARCH, "10"), make_window("sum", MARCH + HOUR, "1")], tenant)
    assert lines[0].amount == D("2.25")  # 10 x 0.125 + 1
    assert lines[1].amount == D("-0.65")  # 11 x 0.0999 + 0.5 = 1.5989 -> 1.60; 1.60 - 2.25
    assert lines[1].period_amount_to_date == D("1.60")
    moved = {t.tier_index: (t.quantity, t.amount) for t in lines[1].tiers}
    assert moved == {0: (D(-10), D("-2.25")), 1: (D(11), D("1.5989"))}
    assert_line_invariants(lines[1])


@pytest.mark.parametrize(("kind", "values"), [("last", ["40", "12"]), ("min", ["40", "12"])])
def test_non_monotonic_meters_give_negative_lines(kind, values):
    tenant = tenant_catalog(kind, "per_unit")
    _, lines = run([make_window(kind, MARCH + i * HOUR, v) for i, v in enumerate(values)], tenant)
    assert lines[1].amount == D("-0.10")  # 40 x 0.0035 = 0.14 -> 12 x 0.0035 = 0.042 -> 0.04
    assert lines[1].period_amount_to_date == D("0.04")


def test_unique_count_counts_the_union():
    tenant = tenant_catalog("unique_count", "per_unit", precision=4)
    windows = [
        make_window("unique_count", MARCH, None, users={"u1", "u2"}),
        make_window("unique_count", MARCH + HOUR, None, users={"u2", "u3"}),
    ]
    _, lines = run(windows, tenant)
    assert [line.quantity for line in lines] == [D(2), D(2)]
    assert [line.period_quantity_to_date for line in lines] == [D(2), D(3)]
    assert [line.amount for line in lines] == [D("0.0070"), D("0.0035")]


def test_stale_windows_raise_and_leave_state_alone():
    tenant = tenant_catalog("sum", "per_unit")
    state, _ = run([make_window("sum", MARCH, "1"), make_window("sum", MARCH + HOUR, "1")], tenant)
    snapshot = state
    for stale in (
        make_window("sum", MARCH - HOUR, "100"),  # previous period
        make_window("sum", MARCH, "100"),  # already applied
        make_window("sum", MARCH + HOUR, "100"),
    ):  # duplicate of the last
        with pytest.raises(StaleWindowError):
            accumulate_window(state, stale, tenant, emitted_at=EMITTED)
    assert state == snapshot and state.period_quantity == D(2)
    state, line = accumulate_window(
        state, make_window("sum", MARCH + 2 * HOUR, "1"), tenant, emitted_at=EMITTED
    )
    assert line.period_quantity_to_date == D(3)


def test_state_of_another_key_is_refused():
    tenant = tenant_catalog("sum", "per_unit")
    state, _ = run([make_window("sum", MARCH, "1")], tenant)
    with pytest.raises(ValueError, match="state of"):
        accumulate_window(
            state, make_window("sum", MARCH + HOUR, "1", customer="other"), tenant, emitted_at=EMITTED
        )


def test_price_change_mid_period_rerates_the_period():
    old = tenant_catalog("sum", entry={"id": "v1", "model": "per_unit", "unit_price": "0.10"})
    new = tenant_catalog("sum", entry={"id": "v2", "model": "per_unit", "unit_price": "0.20"})
    state, first = accumulate_window(None, make_window("sum", MARCH, "10"), old, emitted_at=EMITTED)
    state, second = accumulate_window(state, make_window("sum", MARCH + HOUR, "10"), new, emitted_at=EMITTED)
    assert (first.amount, second.amount, second.period_amount_to_date) == (D("1.00"), D("3.00"), D("4.00"))
    assert second.price_ref == "v2"
    assert_line_invariants(second)


def test_line_item_id_is_deterministic():
    start = datetime(2025, 3, 1, 5, tzinfo=UTC)
    a = line_item_id("acme-ai", "cust-1", "input_tokens", {"model": "nova", "region": "eu"}, start)
    b = line_item_id("acme-ai", "cust-1", "input_tokens", (("region", "eu"), ("model", "nova")), start)
    recipe = "v1|acme-ai|cust-1|input_tokens|model=nova,region=eu|2025-03-01T05:00:00.000Z"
    assert a == b == str(uuid.uuid5(LINE_ITEM_NAMESPACE, recipe))
    assert a == "6a6d188c-52b5-5609-a206-90312dc0d2de"  # pinned: changing the recipe changes every id
    assert a != line_item_id(
        "acme-ai", "cust-1", "input_tokens", {"model": "nova", "region": "eu"}, start + HOUR
    )
    assert a != line_item_id("acme-ai", "cust-2", "input_tokens", {"model": "nova", "region": "eu"}, start)
    # separators inside values cannot forge another key
    assert line_item_id("t", "c", "m", {"a": "1,b=2"}, start) != line_item_id(
        "t", "c", "m", {"a": "1", "b": "2"}, start
    )
    assert line_item_id("t|c", "x", "m", {}, start) != line_item_id("t", "c|x", "m", {}, start)


def test_line_item_wire_format():
    tenant = tenant_catalog("sum", "graduated")
    _, line = accumulate_window(None, make_window("sum", MARCH, "12"), tenant, emitted_at=EMITTED)
    wire = json.loads(line.model_dump_json())
    assert wire["amount"] == "2.95" and wire["quantity"] == "12" and wire["rounding_adjustment"] == "0.0002"
    assert wire["window_start"] == "2025-03-01T05:00:00.000Z"
    assert wire["tiers"][1]["up_to"] == "100" and wire["tiers"][1]["unit_price"] == "0.0999"
    assert InvoiceLineItem.model_validate_json(line.model_dump_json()) == line
    assert line.line_item_id == line_item_id("acme-ai", "cust-1", "m", {"model": "nova"}, MARCH)


def test_line_item_schema_rejects_floats_and_naive_datetimes():
    tenant = tenant_catalog("sum", "per_unit")
    _, line = accumulate_window(None, make_window("sum", MARCH, "1"), tenant, emitted_at=EMITTED)
    data = line.model_dump()
    with pytest.raises(ValueError):
        InvoiceLineItem.model_validate({**data, "amount": 0.1})
    with pytest.raises(ValueError):
        InvoiceLineItem.model_validate({**data, "emitted_at": datetime(2025, 1, 1)})  # noqa: DTZ001


# --- property: for every aggregation and price model, lines of a period sum to the rounded period total ---

values = st.decimals(min_value=-5, max_value=300, places=3, allow_nan=False, allow_infinity=False)
users = st.frozensets(st.sampled_from([f"u{i}" for i in range(40)]), max_size=8)
window_steps = st.lists(
    st.tuples(st.integers(min_value=1, max_value=72), values, users), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    model=st.sampled_from(sorted(PRICES)),
    precision=st.sampled_from([0, 2, 3]),
    steps=window_steps,
)
def test_lines_sum_exactly_to_rounded_period_totals(kind, model, precision, steps):
    tenant = tenant_catalog(kind, model, precision)
    spec = tenant.prices["m"][0]
    start = MARCH - 24 * 12 * HOUR  # mid-February, so sequences cross into March and sometimes April
    windows, hours = [], 0
    for gap, value, user_set in steps:
        hours += gap * 4  # up to 12 days per step
        value = abs(value).to_integral_value() if kind == "count" else value
        windows.append(make_window(kind, start + hours * HOUR, str(value), users=user_set))
    state, lines = run(windows, tenant)

    by_period = {}
    for line in lines:
        assert_line_invariants(line)
        by_period.setdefault(line.period_start, []).append(line)
    for period_lines in by_period.values():
        final = period_lines[-1]
        assert sum(line.amount for line in period_lines) == final.period_amount_to_date
        expected = round_amount(price(final.period_quantity_to_date, spec).amount, precision)
        assert final.period_amount_to_date == expected
        assert final.period_quantity_to_date == expected_quantity(kind, period_lines, windows)
    assert state.amount_to_date == lines[-1].period_amount_to_date


def expected_quantity(kind, period_lines, windows):
    starts = {line.window_start for line in period_lines}
    mine = [w for w in windows if w.window_start in starts]
    if kind in ("sum", "count"):
        return sum(w.quantity for w in mine)
    if kind == "max":
        return max(w.quantity for w in mine)
    if kind == "min":
        return min(w.quantity for w in mine)
    if kind == "last":
        return mine[-1].last.value
    return D(len(frozenset().union(*(w.distinct_values for w in mine))))


def test_example_catalog_end_to_end_in_yen():
    from pathlib import Path

    from udfs.catalog import load_catalog

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml")
    tenant = catalog.tenant("cirrus-gpu")
    tokyo_march = datetime(2025, 2, 28, 15, tzinfo=UTC)  # 2025-03-01 00:00 in Tokyo
    windows = [
        WindowAggregate(
            "cirrus-gpu", "c", "gpu_seconds", (("gpu_type", "h100"),), start, start + HOUR, 3, quantity=D(q)
        )
        for start, q in ((tokyo_march, "30000"), (tokyo_march + HOUR, "6001"))
    ]
    state, lines = run(windows, tenant)
    # 30000 x 0.18 = 5400; then 6000 x 0.18 + 1 x 0.15 more: 36001 -> 6480.15 -> 6480 yen
    assert [line.amount for line in lines] == [D("5400"), D("1080")]
    assert lines[-1].period_start == tokyo_march and lines[-1].currency == "JPY"
    assert lines[-1].price_ref == "cirrus-gpu-h100"
    assert lines[-1].rounding_adjustment == D("-0.15")


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from([k for k in KINDS if k != "unique_count"]),
    model=st.sampled_from(sorted(PRICES)),
    precision=st.sampled_from([0, 2, 3]),
    steps=window_steps,
)
def test_stateless_rating_equals_the_accumulator(kind, model, precision, steps):
    """The job rates with `rate_window` from period quantities kept in SQL; it must bill exactly what
    `accumulate_window` bills with its own state (constant catalog)."""
    tenant = tenant_catalog(kind, model, precision)
    start = MARCH - 24 * 12 * HOUR
    windows, hours = [], 0
    for gap, value, _ in steps:
        hours += gap * 4
        value = abs(value).to_integral_value() if kind == "count" else value
        windows.append(make_window(kind, start + hours * HOUR, str(value)))
    _, lines = run(windows, tenant)
    before, period = None, None
    for window, line in zip(windows, lines, strict=True):
        if line.period_start != period:
            before, period = None, line.period_start
        stateless = rate_window(
            window, tenant, period_quantity_before=before,
            period_quantity_after=line.period_quantity_to_date, emitted_at=EMITTED,
        )
        assert stateless == line
        assert InvoiceLineItem.model_validate_json(stateless.model_dump_json()) == stateless
        before = line.period_quantity_to_date
