"""The billing job's SQL: the accounting counts over the Java operators' outcome counts, and the file options the
tests' credit inputs use. The usage records come parsed from the Java sources (`jobs.billing.kafka_parsed_usage`,
or in job tests `tests.usage_files.file_parsed_usage`), never through SQL.

Per-event work runs in Flink's Java operators (measured: Python per event is 20-300x slower): SQL and Java UDFs,
and two keyed Java DataStream operators (`engine/`, wired in `jobs.billing`). Nothing billing-specific is decided
here or there that is not also decided, identically, by the pure Python in `udfs/` (parity tests and the job tests'
independent expected computation hold them together).

Data flow:
  -- the parsed usage records (jobs.billing.ParsedUsage: the columns of `usage_parsed`, reason IS NULL = valid;
  -- event time and watermarks from jobs.billing.usage_watermarks) go, outside SQL, to the keyed Java operator
  -- UsageRouting (jobs.billing.route_usage), which dedups on (tenant_id, event_id): dead-lettered records come
  -- back as the table `usage_dead_letters`; first-seen ones go on to the keyed Java operator WindowRating
  -- (jobs.billing.rate_windows: windows, lateness per series, period to date, line items), whose fired
  -- unique_count windows (`usage_unique_windows`, to a keyed Python accumulator) and late records (`usage_late`)
  -- come back as tables; both operators' outcome counts as `usage_accounting_deltas`:
  usage_accounting   running counts per outcome (and dead-letter reason), for the accounting identity

Values that cross into Python travel as strings (decimals, timestamps in the UTC session zone): PyFlink's
DataStream bridge has no DECIMAL(38, 18) type, and strings keep every digit.
"""

from __future__ import annotations

METER_KEY_CLASS = "io.meterstream.rating.MeterKey"
# Windows + period to date + rating (io.meterstream.rating.RateLineItem; reference:
# udfs.window_rows.line_item_from_period_row).
WINDOW_RATING_CLASS = "io.meterstream.rating.WindowRating"


def sql_string(value: str) -> str:
    """A SQL string literal; single quotes doubled (the only escape Flink SQL string literals have)."""
    return "'" + value.replace("'", "''") + "'"


def with_options(options: dict[str, str]) -> str:
    """The body of a DDL's WITH clause, one quoted option per line."""
    return ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())


def file_options(path: str, monitor_interval: str | None) -> dict[str, str]:
    options = {"connector": "filesystem", "path": path, "format": "raw"}
    if monitor_interval is not None:
        options["source.monitor-interval"] = monitor_interval
    return options


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
# The usage source (jobs.billing.kafka_parsed_usage): raw records parsed into usage_parsed's columns (the job tests'
# file source, tests.usage_files, parses with the same Java code).
USAGE_DESERIALIZER_CLASS = "io.meterstream.validation.UsageEventDeserializer"
USAGE_WATERMARKS_CLASS = "io.meterstream.watermarks.UsageEventWatermarks"


def output_views() -> list[str]:
    """Views over the Java operators' side outputs that SQL serves: the running outcome counts. Every meter is
    windowed in the keyed Java operator `WindowRating` (`jobs.billing.rate_windows`), which rates all but unique_count
    meters itself; a unique_count period needs the set of distinct values of the whole period: its fired windows
    (`usage_unique_windows`) go to the keyed Python accumulator."""
    return [
        f"""CREATE TEMPORARY VIEW usage_accounting AS
SELECT outcome, detail, SUM(records) AS records FROM {ACCOUNTING_DELTAS_TABLE} GROUP BY outcome, detail""",
    ]
