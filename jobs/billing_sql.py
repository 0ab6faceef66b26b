"""The billing job's SQL: the accounting counts; and, for job tests, a file source parsed by
PARSE_USAGE_EVENT (production reads Kafka with a DataStream source that parses as it reads, `jobs.billing.
kafka_parsed_usage`, into the same columns as `usage_parsed`).

Per-event work runs in Flink's Java operators (measured: Python per event is 20-300x slower): SQL and Java UDFs,
and two keyed Java DataStream operators (`engine/`, wired in `jobs.billing`). Nothing billing-specific is decided
here or there that is not also decided, identically, by the pure Python in `udfs/` (parity tests and the job tests'
independent expected computation hold them together).

Data flow:
  usage_raw          (job tests) file source table: payload BYTES + coordinates (no record timestamp)
  usage_parsed       (job tests) PARSE_USAGE_EVENT(payload) flattened: reason IS NULL = valid; event time and
                     watermarks come after it, from the Kafka source's Java strategy (jobs.billing.usage_watermarks)
  -- then, outside SQL, the keyed Java operator UsageRouting (jobs.billing.route_usage) dedups on
  -- (tenant_id, event_id): dead-lettered records come back as the table `usage_dead_letters`; first-seen ones go on
  -- to the keyed Java operator WindowRating (jobs.billing.rate_windows: windows, lateness per series, period to
  -- date, line items), whose fired unique_count windows (`usage_unique_windows`, to a keyed Python accumulator)
  -- and late records (`usage_late`) come back as tables; both operators' outcome counts as
  -- `usage_accounting_deltas`:
  usage_accounting   running counts per outcome (and dead-letter reason), for the accounting identity

Values that cross into Python travel as strings (decimals, timestamps in the UTC session zone): PyFlink's
DataStream bridge has no DECIMAL(38, 18) type, and strings keep every digit.
"""

from __future__ import annotations

from dataclasses import dataclass

PARSE_FUNCTION = "PARSE_USAGE_EVENT"
PARSE_FUNCTION_CLASS = "io.meterstream.validation.ParseUsageEvent"
METER_KEY_CLASS = "io.meterstream.rating.MeterKey"
# Windows + period to date + rating (io.meterstream.rating.RateLineItem; reference:
# udfs.window_rows.line_item_from_period_row).
WINDOW_RATING_CLASS = "io.meterstream.rating.WindowRating"


def sql_string(value: str) -> str:
    """A SQL string literal; single quotes doubled (the only escape Flink SQL string literals have)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class ParseSettings:
    catalog_json: str
    max_age_ms: int
    max_future_ms: int
    reference_now_ms: int | None = None  # None: processing time, per record

    def call(self, payload_column: str = "payload") -> str:
        now = "CAST(NULL AS BIGINT)" if self.reference_now_ms is None else f"CAST({self.reference_now_ms} AS BIGINT)"
        return (
            f"{PARSE_FUNCTION}({payload_column}, {sql_string(self.catalog_json)}, {now}, "
            f"CAST({self.max_age_ms} AS BIGINT), CAST({self.max_future_ms} AS BIGINT))"
        )


INGESTED_FIELD = "_ingested_ms"


def file_source_ddl(table: str, *, path: str, topic: str, monitor_interval: str | None = None) -> str:
    """A stand-in for the Kafka topic in job tests: one record per line, all in partition 0. Bounded, unless
    `monitor_interval` is given: then `path` is a directory watched for new files (a test feeds it in stages).

    The file connector has no offsets; `src_offset` is left 0 (the job tests identify records by content). It has
    no record timestamps either: `src_timestamp` (ingestion time, for the watermarks: `jobs.billing.usage_watermarks`,
    applied after the parse as on the Kafka source; no SQL WATERMARK) is the record's top-level field
    `_ingested_ms` where a test sets one (the parser ignores unknown fields), else NULL: then no customer is ever
    idle and nothing caps the clock.
    """
    ingested = f"TRY_CAST(JSON_VALUE(CAST(`payload` AS STRING), '$.{INGESTED_FIELD}') AS BIGINT)"
    coordinates = (
        f"`src_topic` AS {sql_string(topic)},\n  `src_partition` AS 0,\n  `src_offset` AS CAST(0 AS BIGINT),\n"
        f"  `src_timestamp` AS {ingested}"
    )
    return f"""CREATE TEMPORARY TABLE `{table}` (
  `payload` BYTES,
  {coordinates}
) WITH (
  {with_options(file_options(path, monitor_interval))}
)"""


def with_options(options: dict[str, str]) -> str:
    """The body of a DDL's WITH clause, one quoted option per line."""
    return ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())


def file_options(path: str, monitor_interval: str | None) -> dict[str, str]:
    options = {"connector": "filesystem", "path": path, "format": "raw"}
    if monitor_interval is not None:
        options["source.monitor-interval"] = monitor_interval
    return options


PARSED_VIEW = "usage_parsed"
# The Java operators' side outputs, each registered as a table: dead-lettered records (routing), fired unique_count
# windows and late records (window operator), the outcome counts (both). The routing operator's main output (every
# first-seen valid record) goes on as a DataStream to the window operator, whose main output is the line items.
DEAD_LETTERS_TABLE = "usage_dead_letters"
UNIQUE_WINDOWS_TABLE = "usage_unique_windows"
LATE_TABLE = "usage_late"
ACCOUNTING_DELTAS_TABLE = "usage_accounting_deltas"
USAGE_ROUTING_CLASS = "io.meterstream.routing.UsageRouting"
USAGE_DEDUP_KEY_CLASS = "io.meterstream.routing.UsageDedupKey"
WINDOWED_USAGE_CLASS = "io.meterstream.routing.WindowedUsage"
# The production source (jobs.billing.kafka_parsed_usage): Kafka records parsed into usage_parsed's columns.
USAGE_DESERIALIZER_CLASS = "io.meterstream.validation.UsageEventDeserializer"
USAGE_WATERMARKS_CLASS = "io.meterstream.watermarks.UsageEventWatermarks"


def parsed_view(source_table: str, parse: ParseSettings) -> str:
    """`usage_parsed`: every record, valid or not, parsed once. Dedup and routing happen after it, in keyed Java
    operators (`io.meterstream.routing.UsageRouting`, then `io.meterstream.rating.WindowRating`, which decides
    lateness per series; wired by `jobs.billing.route_usage` and `rate_windows`) that give each record exactly one
    outcome: dead_lettered | duplicate_same_payload | duplicate_conflicting_payload | late | windowed."""
    return f"""CREATE TEMPORARY VIEW {PARSED_VIEW} AS
SELECT payload, src_topic, src_partition, src_offset, src_timestamp,
       p.reason, p.detail, p.event_id, p.tenant_id, p.customer_id, p.meter, p.event_time_ms, p.`value`,
       p.aggregation, p.group_json, p.unique_token, p.fingerprint, p.event_key_hi, p.event_key_lo
FROM (SELECT *, {parse.call()} AS p FROM `{source_table}`)"""


def output_views() -> list[str]:
    """Views over the Java operators' side outputs that SQL serves: the running outcome counts. Every meter is
    windowed in the keyed Java operator `WindowRating` (`jobs.billing.rate_windows`), which rates all but unique_count
    meters itself; a unique_count period needs the set of distinct values of the whole period: its fired windows
    (`usage_unique_windows`) go to the keyed Python accumulator."""
    return [
        f"""CREATE TEMPORARY VIEW usage_accounting AS
SELECT outcome, detail, SUM(records) AS records FROM {ACCOUNTING_DELTAS_TABLE} GROUP BY outcome, detail""",
    ]
