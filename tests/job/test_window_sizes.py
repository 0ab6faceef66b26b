"""Window sizes other than a minute, end to end on a MiniCluster: 1 min, 5 min, 1 h and 1 day windows (issue 15,
item 4: windows of 100 s or more used to crash the job at start, `INTERVAL '100.000' SECOND` exceeding SECOND(2)).

One run per size, with credits: six windows of usage around acme-ai's billing-period boundary (2026-11-01 04:00 UTC,
local midnight in New York), so period-to-date quantities and amounts restart inside the run, also for the 1-day
windows, whose UTC-midnight-aligned window of 2026-11-01 starts before the boundary and so bills in October. Line
items (quantities, period to date, amounts, unique_count meters) are held to `tests.billing_expectations`, which
computes them with the pure Python spec in `udfs/` (validation, periods, price models, rounding); drawdowns to
arithmetic on those expected amounts: each customer's single grant covers every meter without expiry and every line
is non-negative, so the customer's drawn total is min(grant, billed total) and the rest is uncovered (a replay: the
grants apply before any line item, so nothing is paid by catch-up).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.billing import BillingSettings, build_pipeline, table_environment
from jobs.credits import build_credits
from jobs.runtime import stream_environment
from schemas.credits import CreditDrawdown, CreditGrantRecord
from schemas.invoice_line_item import InvoiceLineItem
from tests.billing_expectations import expected_outputs
from tests.credit_files import file_credit_input_ddl
from tests.job.test_billing_job import assert_line_items_equal
from tests.job_outputs import collect_outputs
from tests.usage_files import file_parsed_usage
from udfs.catalog import parse_catalog
from udfs.credits import ledger_identity
from udfs.periods import billing_period
from udfs.windows import from_epoch_ms, to_epoch_ms

pytestmark = pytest.mark.job

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"
TENANT = "acme-ai"
PERIOD_BOUNDARY = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # acme-ai: monthly from local midnight, America/New_York
OUT_OF_ORDERNESS_MS = 10_000
WINDOWS = 6
# customer -> its one grant (USD, every meter, no expiry); None: no grant.
GRANTS = {"c-big": Decimal("100000"), "c-small": Decimal("5"), "c-none": None}


def catalog_yaml() -> str:
    """The example catalog, but acme-ai's active users cost from the third one on (the example's first 100 are
    free, which would leave the unique_count meter's money at zero here)."""
    text = CATALOG_PATH.read_text()
    free_tier = "            - {up_to: 100, unit_price: 0}\n            - {up_to: null, unit_price: 0.10}"
    assert text.count(free_tier) >= 1
    paid_from_the_third = free_tier.replace("up_to: 100,", "up_to: 2,")
    return text.replace(free_tier, paid_from_the_third, 1)


def usage(window_seconds: int) -> tuple[list[bytes], datetime]:
    """Two events per window, meter and customer in six windows, the period boundary after the third; and the
    reference "now" (the end of the last window)."""
    size = timedelta(seconds=window_seconds)
    boundary_ms = to_epoch_ms(PERIOD_BOUNDARY)
    first = from_epoch_ms(boundary_ms - boundary_ms % (window_seconds * 1000)) - 3 * size
    records = []
    for w in range(WINDOWS):
        for half in (0, 1):
            at = first + w * size + size * (1 + 2 * half) / 4
            k = 2 * w + half
            stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for customer in GRANTS:
                def event(meter: str, value=None, dimensions=None, customer=customer, k=k, stamp=stamp) -> bytes:
                    record = {"event_id": f"{customer}-{meter}-{k}", "tenant_id": TENANT, "customer_id": customer,
                              "meter": meter, "timestamp": stamp}
                    if value is not None:
                        record["value"] = value
                    if dimensions:
                        record["dimensions"] = dimensions
                    return json.dumps(record).encode()

                records += [
                    event("gpu_seconds", f"{1000 + 7 * k}.5", {"gpu_type": "h100"}),
                    event("requests"),
                    event("active_users", dimensions={"user_id": f"u{k % 5}"}),
                    event("seats", str(3 + k % 4)),
                    event("input_tokens", str(400_000 + k), {"model": "nova-large"}),
                ]
                if GRANTS[customer] is None:  # `last` can go down (a negative line): only where no credit is drawn
                    records.append(event("storage_gb", f"{100 - 10 * (k % 3)}.25"))
    return records, first + WINDOWS * size


def run_job(tmp_path: Path, window_seconds: int, records: list[bytes], now: datetime) -> dict[str, list[dict]]:
    usage_file, grants_file, caps_file = tmp_path / "usage.jsonl", tmp_path / "grants.jsonl", tmp_path / "caps.jsonl"
    usage_file.write_bytes(b"\n".join(records) + b"\n")
    grants_file.write_text("".join(json.dumps(g) + "\n" for g in grant_records()))
    caps_file.write_text("")
    settings = BillingSettings(
        catalog_yaml=catalog_yaml(), window_size_ms=window_seconds * 1000, out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        reference_now_ms=to_epoch_ms(now), watermark_on_every_event=True,
    )
    env = stream_environment(parallelism=2)
    t_env = table_environment(env, settings)
    source = file_parsed_usage(env, settings, path=str(usage_file))
    outputs = build_pipeline(env, t_env, settings, source)
    credits = build_credits(
        t_env, settings.catalog_yaml, [outputs.line_items, outputs.unique_count_line_items],
        grants_ddl=file_credit_input_ddl("credit_grants_raw", path=str(grants_file), topic="credit-grants"),
        spend_caps_ddl=file_credit_input_ddl("spend_caps_raw", path=str(caps_file), topic="spend-caps"),
        replay=True,
    )
    streams = {"line_items": outputs.line_items, "unique_count_line_items": outputs.unique_count_line_items,
               "late_events": outputs.late_events, "dead_letters": outputs.dead_letters,
               "drawdowns": credits.drawdowns}
    return collect_outputs(streams)


def grant_records() -> list[dict]:
    return [{"type": "grant", "grant_id": f"g-{customer}", "tenant_id": TENANT, "customer_id": customer,
             "amount": str(amount), "currency": "USD", "priority": 50, "effective_at": "2026-10-01T00:00:00.000Z",
             "expires_at": None, "applies_to": None, "category": "paid"}
            for customer, amount in GRANTS.items() if amount is not None]


@pytest.mark.parametrize("window_seconds", [60, 300, 3600, 86400], ids=["1min", "5min", "1h", "1day"])
def test_window_size_end_to_end(tmp_path, window_seconds):
    records, now = usage(window_seconds)
    catalog = parse_catalog(catalog_yaml())
    expected = expected_outputs(records, catalog, now=now, window_ms=window_seconds * 1000,
                                out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
    assert expected.counts["windowed"] == len(records), "the input is all on time and valid"
    tenant = catalog.tenant(TENANT)
    periods = {billing_period(line.window_start, tenant.billing_period.anchor_day, tenant.billing_period.time_zone)
               for line in expected.lines}
    assert len(periods) == 2, "the run crosses a billing-period boundary"
    assert {line.meter for line in expected.lines if line.amount > 0} >= {
        "gpu_seconds", "requests", "active_users", "seats", "input_tokens"}, "every meter bills money"

    out = run_job(tmp_path, window_seconds, records, now)

    assert out["dead_letters"] == [] and out["late_events"] == []
    assert_line_items_equal(out["line_items"], expected.lines)
    lines = [InvoiceLineItem.model_validate(li) for li in out["line_items"]]
    for line in lines:
        assert line.window_end - line.window_start == timedelta(seconds=window_seconds)
        assert to_epoch_ms(line.window_start) % (window_seconds * 1000) == 0, "windows are aligned to the epoch"
        assert line.period_start <= line.window_start < line.period_end
    assert len({line.window_start for line in lines}) == WINDOWS

    drawdowns = [CreditDrawdown.model_validate(d) for d in out["drawdowns"]]
    assert {d.line_item_id for d in drawdowns if d.kind == "usage"} == {line.line_item_id for line in lines}
    assert {d.kind for d in drawdowns} == {"usage"}, "a replay applies its grants first: no catch-up, no expiry"
    assert len({d.drawdown_id for d in drawdowns}) == len(drawdowns)
    grants = [CreditGrantRecord.model_validate(g).root for g in grant_records()]
    checks = ledger_identity(grants, drawdowns, lines)
    for customer, grant in GRANTS.items():
        billed = sum((line.amount for line in expected.lines if line.customer_id == customer), Decimal(0))
        mine = [d for d in drawdowns if d.customer_id == customer and d.kind in ("usage", "catch_up")]
        drawn = sum((d.amount for d in mine if d.grant_id is not None), Decimal(0))
        uncovered = sum((d.uncovered_amount for d in mine), Decimal(0))
        expected_drawn = Decimal(0) if grant is None else min(grant, billed)
        assert (drawn, uncovered) == (expected_drawn, billed - expected_drawn), customer
        check = checks[(TENANT, customer, "USD")]
        assert check.usage_identity_holds, customer
        assert check.balance == (grant or Decimal(0)) - expected_drawn, customer
    assert GRANTS["c-small"] < sum((line.amount for line in expected.lines if line.customer_id == "c-small"),
                                   Decimal(0)), "the small grant runs out"
