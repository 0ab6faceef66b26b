"""The billing job on a MiniCluster with bounded file input, against the independent expected computation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from jobs.billing import SOURCE_TABLE, BillingSettings, build_pipeline, table_environment
from jobs.billing_sql import file_source_ddl
from jobs.runtime import stream_environment
from tests.billing_expectations import expected_outputs
from tests.job_outputs import collect_outputs
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from udfs.catalog import load_catalog, parse_catalog
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"


def run_job(
    tmp_path: Path, records: list[bytes], parallelism: int, catalog_yaml: str | None = None
) -> dict[str, list[dict]]:
    source_file = tmp_path / "usage.jsonl"
    source_file.write_bytes(b"\n".join(records) + b"\n")
    settings = BillingSettings(
        catalog_yaml=catalog_yaml or CATALOG_PATH.read_text(),
        window_size_ms=WINDOW_MS,
        out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        reference_now_ms=to_epoch_ms(REFERENCE_NOW),
        watermark_on_every_event=True,
    )
    env = stream_environment(parallelism=parallelism)
    t_env = table_environment(env, settings)
    ddl = file_source_ddl(SOURCE_TABLE, path=str(source_file), topic="usage-events")
    outputs = build_pipeline(env, t_env, settings, ddl)
    return collect_outputs(vars(outputs))


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


def assert_line_items_equal(line_items: list[dict], expected_lines) -> None:
    got = {
        (li["tenant_id"], li["customer_id"], li["meter"], tuple(sorted(li["group"].items())), li["window_start"]): li
        for li in line_items
    }
    assert len(got) == len(line_items), "one line item per key and window"
    assert len(got) == len(expected_lines)
    for line in expected_lines:
        key = (line.tenant_id, line.customer_id, line.meter, tuple(sorted(line.group.items())),
               line.window_start.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        item = got[key]
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


def test_the_kafka_source_rows_have_the_columns_of_the_sql_path(tmp_path):
    """Production parses in the Kafka source's deserializer (`UsageEventDeserializer`), job tests through the SQL
    view `usage_parsed` on a file: the routing operator and the watermark strategy must see the same columns, types
    and order from both."""
    from pyflink.util.java_utils import load_java_class

    from jobs.billing import sql_parsed_usage
    from jobs.billing_sql import USAGE_DESERIALIZER_CLASS

    settings = BillingSettings(catalog_yaml=CATALOG_PATH.read_text())
    env = stream_environment(parallelism=1)
    t_env = table_environment(env, settings)
    ddl = file_source_ddl(SOURCE_TABLE, path=str(tmp_path), topic="usage-events")
    _, sql_type = sql_parsed_usage(t_env, settings, ddl)
    kafka_type = load_java_class(USAGE_DESERIALIZER_CLASS).getMethod("rowType", None).invoke(None, None)

    def columns(row_type, skip=()):
        return [(field.getName(), field.getType().copy(True).asSerializableString())
                for field in row_type.getFields() if field.getName() not in skip]

    sql_columns = columns(sql_type)
    kafka_columns = columns(kafka_type)
    assert [name for name, _ in sql_columns] == [name for name, _ in kafka_columns]
    for (name, sql), (_, kafka) in zip(sql_columns, kafka_columns, strict=True):
        if name == "src_topic":  # a literal CHAR(n) in the file stand-in, the record's topic STRING from Kafka
            continue
        assert sql == kafka, name
