"""The billing job on a MiniCluster with bounded file input, against the independent expected computation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.billing import BillingSettings, build_pipeline, invoices_of, table_environment
from jobs.runtime import stream_environment
from tests.billing_expectations import expected_outputs
from tests.invoice_checks import assert_invoices_exact
from tests.job_outputs import collect_outputs
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from tests.usage_files import file_parsed_usage
from udfs.catalog import load_catalog, parse_catalog
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"


def run_job(
    tmp_path: Path, records: list[bytes], parallelism: int, catalog_yaml: str | None = None, *,
    reference_now: datetime = REFERENCE_NOW,
) -> dict[str, list[dict]]:
    source_file = tmp_path / "usage.jsonl"
    source_file.write_bytes(b"\n".join(records) + b"\n")
    settings = BillingSettings(
        catalog_yaml=catalog_yaml or CATALOG_PATH.read_text(),
        window_size_ms=WINDOW_MS,
        out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        reference_now_ms=to_epoch_ms(reference_now),
        watermark_on_every_event=True,
    )
    env = stream_environment(parallelism=parallelism)
    t_env = table_environment(env, settings)
    source = file_parsed_usage(env, settings, path=str(source_file))
    outputs = build_pipeline(env, t_env, settings, source)
    return collect_outputs({**vars(outputs), "invoices": invoices_of(settings, outputs, None)})


def final_accounting(records: list[dict]) -> dict[str, int]:
    last: dict[tuple[str, str], int] = {}
    for record in records:
        last[(record["outcome"], record["detail"])] = record["records"]
    totals: dict[str, int] = {}
    for (outcome, _), count in last.items():
        totals[outcome] = totals.get(outcome, 0) + count
    return totals


@pytest.mark.parametrize("parallelism", [1, 2])
def test_outputs_equal_the_expected_computation(tmp_path, parallelism):
    records = scripted_usage()
    catalog = load_catalog(CATALOG_PATH)
    expected = expected_outputs(
        records, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS, out_of_orderness_ms=OUT_OF_ORDERNESS_MS
    )
    out = run_job(tmp_path, records, parallelism)

    accounting = final_accounting(out["accounting"])
    assert sum(accounting.values()) == len(records), "every record has exactly one outcome"
    assert accounting == {k: v for k, v in expected.counts.items() if k != "received"}
    assert len(out["dead_letters"]) == expected.counts["dead_lettered"]
    reasons: dict[str, int] = {}
    for letter in out["dead_letters"]:
        reasons[letter["reason"]] = reasons.get(letter["reason"], 0) + 1
    assert reasons == dict(expected.dead_letter_reasons)
    assert {(e["tenant_id"], e["event_id"]) for e in out["late_events"]} == expected.late_event_ids

    assert_line_items_equal(out["line_items"], expected.lines)
    assert_invoices_exact(out["invoices"], out["line_items"])


def assert_line_items_equal(line_items: list[dict], expected_lines) -> None:
    """The job's line items are exactly the expected ones, by id (a usage line per series and window, a late
    adjustment per series, window and watermark its late events came after)."""
    got = {li["line_item_id"]: li for li in line_items}
    assert len(got) == len(line_items), "line item ids are unique"
    assert sorted(got) == sorted(line.line_item_id for line in expected_lines)
    for line in expected_lines:
        item = got[line.line_item_id]
        key = (line.kind, line.tenant_id, line.customer_id, line.meter, line.group, line.window_start)
        assert (item["kind"], item["invoice_id"]) == (line.kind, line.invoice_id), key
        assert (item["tenant_id"], item["customer_id"], item["meter"], item["group"]) == key[1:5], key
        assert item["window_start"] == line.window_start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert Decimal(item["quantity"]) == line.quantity, key
        assert Decimal(item["period_quantity_to_date"]) == line.period_quantity_to_date, key
        assert Decimal(item["amount"]) == line.amount, key
        assert Decimal(item["period_amount_to_date"]) == line.period_amount_to_date, key
        assert item["event_count"] == line.event_count, key


def test_min_meters_equal_the_expected_computation(tmp_path):
    """`min`, which the example catalog has no meter of: its window and period rules (the window operator's) against
    the expected computation, with every `seats` meter turned into a `min` meter."""
    catalog_yaml = CATALOG_PATH.read_text().replace("seats: {aggregation: max}", "seats: {aggregation: min}")
    assert "seats: {aggregation: max}" not in catalog_yaml
    records = scripted_usage()
    expected = expected_outputs(
        records, parse_catalog(catalog_yaml), now=REFERENCE_NOW, window_ms=WINDOW_MS,
        out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
    )
    assert any(line.meter == "seats" for line in expected.lines)
    out = run_job(tmp_path, records, 2, catalog_yaml)
    assert_line_items_equal(out["line_items"], expected.lines)


def test_the_file_source_parses_with_the_kafka_sources_code(tmp_path):
    """Production reads Kafka (`jobs.billing.kafka_parsed_usage`), job tests a file (`tests.usage_files`): both
    hand `build_pipeline` a `ParsedUsage` of the Kafka deserializer's row type, and the file's parse step is the Java
    map that builds its rows with the deserializer's code (`UsageFileLines`; JUnit `UsageFileLinesTest` compares the
    two row for row), followed by the production watermark strategy (`jobs.billing.usage_watermarks`)."""
    from jobs.billing import ParsedUsage, usage_row_type
    from jobs.java_interop import java_static_field
    from tests.usage_files import INGESTED_FIELD, USAGE_FILE_LINES_CLASS

    settings = BillingSettings(catalog_yaml=CATALOG_PATH.read_text())
    env = stream_environment(parallelism=1)
    parsed = file_parsed_usage(env, settings, path=str(tmp_path))
    assert isinstance(parsed, ParsedUsage)
    assert parsed.row_type.equals(usage_row_type())
    assert parsed.stream.getType().toLogicalType().equals(usage_row_type())
    watermarks = parsed.stream.getTransformation()
    assert watermarks.getName() == "usage-watermarks"
    (parse,) = list(watermarks.getInputs())
    assert parse.getName() == "parse-usage-lines"
    assert parse.getOperatorFactory().getOperator().getUserFunction().getClass().getName() == USAGE_FILE_LINES_CLASS
    assert java_static_field(USAGE_FILE_LINES_CLASS, "INGESTED_FIELD") == INGESTED_FIELD
