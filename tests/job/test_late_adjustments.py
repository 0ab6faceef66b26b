"""Late usage on a MiniCluster: every aggregation's late adjustments (and the late events that change nothing), one
line per window and watermark for a burst, late usage of the previous billing period and a tier crossed by it,
against the expected computation and by hand, at parallelism 1 and 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.billing_expectations import expected_outputs
from tests.invoice_checks import assert_invoices_exact
from tests.job.test_billing_job import CATALOG_PATH, assert_line_items_equal, final_accounting, run_job
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS
from udfs.catalog import load_catalog
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

OCTOBER = datetime(2026, 10, 1, 4, tzinfo=UTC)  # acme-ai bills from midnight New York: October's period
NOVEMBER = datetime(2026, 11, 1, 4, tzinfo=UTC)
W0 = datetime(2026, 11, 1, 3, 55, tzinfo=UTC)  # a window in October's period
W1 = datetime(2026, 11, 1, 4, 5, tzinfo=UTC)  # a window in November's


def usage(event_id: str, meter: str, at: datetime, value: str | None = None, **dimensions: str) -> bytes:
    record = {"event_id": event_id, "tenant_id": "acme-ai", "customer_id": "late-1", "meter": meter,
              "timestamp": to_epoch_ms(at), "dimensions": dimensions}
    if value is not None:
        record["value"] = value
    return json.dumps(record).encode()


def s(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


RECORDS = [
    # on time: one window in October's period, one in November's
    usage("t0", "input_tokens", W0 + s(10), "1000", model="nova-large"),
    usage("s0", "seats", W0 + s(10), "3"),
    usage("g0", "storage_gb", W0 + s(20), "10"),
    usage("u0", "active_users", W0 + s(10), user_id="u1"),
    usage("r0", "requests", W0 + s(10)),
    usage("t1", "input_tokens", W1 + s(10), "500", model="nova-large"),
    usage("s1", "seats", W1 + s(10), "4"),
    usage("g1", "storage_gb", W1 + s(30), "20"),
    usage("u1", "active_users", W1 + s(10), user_id="u2"),
    usage("r1", "requests", W1 + s(10)),
    usage("tick-1", "requests", W1 + s(120)),  # the customer's clock moves on: both windows fire
    # late, all after the same watermark
    usage("late-t1a", "input_tokens", W1 + s(40), "250", model="nova-large"),
    usage("late-t1b", "input_tokens", W1 + s(50), "250", model="nova-large"),  # same window: same line
    usage("late-s1", "seats", W1 + s(25), "7"),  # raises November's max past the first tier
    usage("late-g1", "storage_gb", W1 + s(5), "5"),  # before the window's last: changes nothing
    usage("late-u1", "active_users", W1 + s(40), user_id="u2"),  # already counted: changes nothing
    usage("late-r1", "requests", W1 + s(30)),
    usage("late-t0", "input_tokens", W0 + s(30), "100", model="nova-large"),  # October's period
    usage("tick-2", "requests", W1 + s(180)),
    # late, after the next watermark
    usage("late-s1-low", "seats", W1 + s(20), "2"),  # below the max: changes nothing
    usage("late-g1-last", "storage_gb", W1 + s(50), "30"),  # the latest of the period now
    usage("late-u3", "active_users", W1 + s(45), user_id="u3"),  # new in November
    usage("late-u0", "active_users", W0 + s(40), user_id="u1"),  # already counted in October
    usage("late-s0", "seats", W0 + s(50), "9"),  # October's max, past the first tier
]
LATE = {json.loads(r)["event_id"] for r in RECORDS if json.loads(r)["event_id"].startswith("late-")}


@pytest.mark.parametrize("parallelism", [1, 2])
def test_late_usage_is_billed_as_adjustments_by_each_aggregations_rule(tmp_path, parallelism):
    catalog = load_catalog(CATALOG_PATH)
    expected = expected_outputs(RECORDS, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS,
                                out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
    assert expected.counts["billed_late"] == len(LATE)
    out = run_job(tmp_path, RECORDS, parallelism)

    assert final_accounting(out["accounting"]) == {"windowed": len(RECORDS) - len(LATE), "billed_late": len(LATE)}
    assert {e["event_id"] for e in out["late_events"]} == LATE, "every late event is in the audit trail"
    assert_line_items_equal(out["line_items"], expected.lines)
    # The input ends before October closes (04:00 + 1 h grace): both invoices are open previews, exact.
    invoices = assert_invoices_exact(out["invoices"], out["line_items"])
    assert sorted((i.period_start, i.status) for i in invoices.values()) == [(OCTOBER, "open"), (NOVEMBER, "open")]

    # By hand: which late events made which adjustment, and which made none.
    adjustments = {(li["meter"], li["period_start"], li["event_count"], li["quantity"], li["period_quantity_to_date"])
                   for li in out["line_items"] if li["kind"] == "late_adjustment"}
    october, november = (p.isoformat(timespec="milliseconds").replace("+00:00", "Z") for p in (OCTOBER, NOVEMBER))
    assert adjustments == {
        ("input_tokens", november, 2, "500", "1000"),  # the burst: one line for both
        ("input_tokens", october, 1, "100", "1100"),
        ("seats", november, 1, "7", "7"),
        ("seats", october, 1, "9", "9"),
        ("storage_gb", november, 1, "30", "30"),
        ("active_users", november, 1, "1", "2"),  # u2 and u3 (u1 is October's)
        ("requests", november, 1, "1", "2"),  # r1 and late-r1: tick-1's window fires after the adjustment
    }
    by_id = {li["line_item_id"]: li for li in out["line_items"]}
    for line in out["line_items"]:
        if line["kind"] == "late_adjustment":
            usage_line = by_id[line["adjusts_line_item_id"]]
            assert (usage_line["kind"], usage_line["window_start"]) == ("usage", line["window_start"])
    # The seats adjustment of October crossed the flat-fee tier: 9 seats cost 49 + 4 x 20 in all.
    seats_october = [li for li in out["line_items"] if li["meter"] == "seats" and li["period_start"] == october]
    assert sum(Decimal(li["amount"]) for li in seats_october) == Decimal(49 + 4 * 20)
    assert any(t["tier_index"] == 1 for li in seats_october if li["kind"] == "late_adjustment" for t in li["tiers"])


@pytest.mark.parametrize("parallelism", [1, 2])
def test_usage_of_a_closed_period_is_billed_on_the_next_open_invoice(tmp_path, parallelism):
    """With a grace of 2 minutes, October's period closes when the clock reaches 04:02 on November 1st: its late
    usage after that (and a series first seen after that with October usage) becomes prior-period adjustments,
    rated against October's own total and put on November's invoice."""
    from udfs.catalog import parse_catalog
    from udfs.invoices import invoice_id

    catalog_yaml = CATALOG_PATH.read_text().replace(
        "billing_period: {interval: monthly, anchor_day: 1, time_zone: America/New_York}",
        "billing_period: {interval: monthly, anchor_day: 1, time_zone: America/New_York, grace: PT2M}", 1)
    assert "grace: PT2M" in catalog_yaml
    records = [*RECORDS, usage("new-o0", "output_tokens", W0 + s(30), "100", model="nova-large")]
    expected = expected_outputs(records, parse_catalog(catalog_yaml), now=REFERENCE_NOW, window_ms=WINDOW_MS,
                                out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
    out = run_job(tmp_path, records, parallelism, catalog_yaml)
    assert_line_items_equal(out["line_items"], expected.lines)

    october, november = (p.isoformat(timespec="milliseconds").replace("+00:00", "Z") for p in (OCTOBER, NOVEMBER))
    november_invoice = invoice_id("acme-ai", "late-1", NOVEMBER, "USD")
    prior = {(li["meter"], li["event_count"], li["quantity"], li["period_quantity_to_date"])
             for li in out["line_items"] if li["kind"] == "prior_period_adjustment"}
    assert prior == {
        ("input_tokens", 1, "100", "1100"),  # late-t0, on top of October's 1000
        ("seats", 1, "9", "9"),  # late-s0: October's max, its tiers
        ("output_tokens", 1, "100", "100"),  # a new series' first window, of a closed period
    }
    for line in out["line_items"]:
        if line["kind"] == "prior_period_adjustment":
            assert (line["period_start"], line["invoice_id"]) == (october, november_invoice)
        else:
            assert line["invoice_id"] == invoice_id("acme-ai", "late-1", datetime.fromisoformat(
                line["period_start"].replace("Z", "+00:00")), "USD")
    assert {li["kind"] for li in out["line_items"] if li["period_start"] == november} == {"usage", "late_adjustment"}

    # October closed at 04:02 (after the DST-free end of its New York month, at 04:00 UTC): its invoice is final and
    # holds October's usage decided before the close; what came after is on November's (open at the end).
    invoices = assert_invoices_exact(out["invoices"], out["line_items"])
    by_period = {i.period_start: i for i in invoices.values()}
    assert (by_period[OCTOBER].status, by_period[NOVEMBER].status) == ("final", "open")
    assert by_period[OCTOBER].closes_at == OCTOBER.replace(month=11) + timedelta(minutes=2)
    assert by_period[OCTOBER].prior_period_adjustment_total == 0
    prior_total = sum(Decimal(li["amount"]) for li in out["line_items"] if li["kind"] == "prior_period_adjustment")
    assert prior_total > 0 and by_period[NOVEMBER].prior_period_adjustment_total == prior_total
    october_usage = sum(Decimal(li["amount"]) for li in out["line_items"]
                        if li["period_start"] == october and li["kind"] != "prior_period_adjustment")
    assert by_period[OCTOBER].total == october_usage


@pytest.mark.parametrize("parallelism", [1, 2])
def test_a_period_closes_at_its_end_plus_grace_after_the_dst_change(tmp_path, parallelism):
    """New York falls back at 06:00 UTC on November 1st, 2026. With a grace of 2 h 30 min, October's period (ending
    at midnight EDT, 04:00 UTC) closes at 06:30 UTC, 01:30 EST (the second 01:30 of that night): October usage that
    comes late before then is a late adjustment on October's invoice, after then a prior-period adjustment on
    November's; each invoice sums exactly its lines."""
    from udfs.catalog import parse_catalog

    catalog_yaml = CATALOG_PATH.read_text().replace(
        "billing_period: {interval: monthly, anchor_day: 1, time_zone: America/New_York}",
        "billing_period: {interval: monthly, anchor_day: 1, time_zone: America/New_York, grace: PT2H30M}", 1)
    closes = NOVEMBER + timedelta(hours=2, minutes=30)
    records = [
        *RECORDS[:11],  # on time in October's and November's periods; tick-1 fires both windows
        usage("late-before", "input_tokens", W0 + s(40), "100000", model="nova-large"),
        usage("tick-dst", "requests", closes - s(60)),  # 06:29 UTC: the clock stops just short of the close
        usage("late-just-before", "input_tokens", W0 + s(45), "200000", model="nova-large"),
        usage("tick-closed", "requests", closes + s(60)),  # 06:31 UTC: October has closed
        usage("late-after", "input_tokens", W0 + s(50), "400000", model="nova-large"),
        usage("late-november", "input_tokens", W1 + s(40), "50", model="nova-large"),
        usage("tick-end", "requests", closes + s(180)),
    ]
    expected = expected_outputs(records, parse_catalog(catalog_yaml), now=closes + timedelta(minutes=4),
                                window_ms=WINDOW_MS, out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
    out = run_job(tmp_path, records, parallelism, catalog_yaml, reference_now=closes + timedelta(minutes=4))
    assert_line_items_equal(out["line_items"], expected.lines)

    october = OCTOBER.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    kinds = {(li["kind"], li["quantity"]) for li in out["line_items"]
             if li["meter"] == "input_tokens" and li["period_start"] == october}
    assert kinds == {("usage", "1000"), ("late_adjustment", "100000"), ("late_adjustment", "200000"),
                     ("prior_period_adjustment", "400000")}
    invoices = assert_invoices_exact(out["invoices"], out["line_items"])
    by_period = {i.period_start: i for i in invoices.values()}
    assert (by_period[OCTOBER].status, by_period[OCTOBER].closes_at) == ("final", closes)
    assert by_period[NOVEMBER].status == "open"
    assert by_period[NOVEMBER].prior_period_adjustment_total > 0
    assert by_period[OCTOBER].late_adjustment_total > 0
