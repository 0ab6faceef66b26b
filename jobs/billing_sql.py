"""The billing job's SQL: parse + validate (Java UDF), dedup, late routing, windows, period-to-date and rating.

Every per-event step runs in Flink's Java operators (measured: Python per event is 20-300x slower). The SQL is
generated here from the job's settings and the catalog; nothing billing-specific is decided in SQL that is not
also decided, identically, by the pure Python in `udfs/` (parity tests hold the two together).

Views, in data-flow order:
  usage_raw          source table: payload BYTES + Kafka coordinates + `rt` (event time of valid records) + watermark
  usage_parsed       PARSE_USAGE_EVENT(payload) flattened: reason IS NULL = valid
  -- then, outside SQL, the keyed Java operator UsageRouting (jobs.billing.route_usage) dedups on
  -- (tenant_id, event_id) and gives each record its outcome: dead_lettered | duplicate_same_payload |
  -- duplicate_conflicting_payload | late | windowed, registered back as the table `usage_routed`; then:
  usage_windows      tumbling window aggregates of the windowed records
  usage_window_periods + the billing period's start (Java UDF); then, outside SQL, the keyed Java operator
                     PeriodToDateRating (jobs.billing.rate_windows): period to date and the line item JSON
                     (unique_count meters: usage_unique_windows, to a keyed Python accumulator)
  usage_accounting   running counts per outcome (and dead-letter reason), for the accounting identity

Values that cross into Python travel as strings (decimals, timestamps in the UTC session zone): PyFlink's
DataStream bridge has no DECIMAL(38, 18) type, and strings keep every digit.
"""

from __future__ import annotations

from dataclasses import dataclass

PARSE_FUNCTION = "PARSE_USAGE_EVENT"
PARSE_FUNCTION_CLASS = "io.meterstream.udf.ParseUsageEvent"
PERIOD_FUNCTION = "BILLING_PERIOD_START"
PERIOD_FUNCTION_CLASS = "io.meterstream.udf.BillingPeriodStart"
WINDOW_PERIODS_VIEW = "usage_window_periods"
PERIOD_KEY_CLASS = "io.meterstream.rating.PeriodKey"
# Period to date + rating (io.meterstream.udf.RateLineItem; reference: udfs.window_rows.line_item_from_period_row).
PERIOD_RATING_CLASS = "io.meterstream.rating.PeriodToDateRating"


def interval_literal(ms: int) -> str:
    """Flink SQL has no MILLISECOND interval unit: a fractional SECOND interval carries milliseconds."""
    return f"INTERVAL '{ms / 1000:.3f}' SECOND"


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


def event_time_column(parse: ParseSettings) -> str:
    """`rt`: the event time of a valid record; 1970 for a rejected one, so that it never moves the watermark."""
    call = parse.call()
    return (
        f"TO_TIMESTAMP_LTZ(CASE WHEN ({call}).reason IS NULL THEN ({call}).event_time_ms ELSE 0 END, 3)"
    )


def kafka_source_ddl(
    table: str,
    *,
    topic: str,
    bootstrap: str,
    group_id: str,
    bounded: bool,
    parse: ParseSettings,
    out_of_orderness_ms: int,
    watermark_on_every_event: bool = False,
) -> str:
    options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap,
        "properties.group.id": group_id,
        "properties.isolation.level": "read_committed",
        "scan.startup.mode": "earliest-offset",
        "format": "raw",
        "raw.charset": "UTF-8",
    }
    if bounded:
        options["scan.bounded.mode"] = "latest-offset"
    return _source_ddl(
        table,
        physical="`payload` BYTES",
        coordinates=(
            "`src_topic` STRING METADATA FROM 'topic' VIRTUAL,\n"
            "  `src_partition` INT METADATA FROM 'partition' VIRTUAL,\n"
            "  `src_offset` BIGINT METADATA FROM 'offset' VIRTUAL"
        ),
        options=options,
        parse=parse,
        out_of_orderness_ms=out_of_orderness_ms,
        watermark_on_every_event=watermark_on_every_event,
    )


def file_source_ddl(
    table: str, *, path: str, topic: str, parse: ParseSettings, out_of_orderness_ms: int,
    watermark_on_every_event: bool = False, monitor_interval: str | None = None,
) -> str:
    """A stand-in for the Kafka topic in job tests: one record per line, all in partition 0. Bounded, unless
    `monitor_interval` is given: then `path` is a directory watched for new files (a test feeds it in stages).

    The file connector has no offsets; `src_offset` is left 0 (the job tests identify records by content).
    """
    return _source_ddl(
        table,
        physical="`payload` BYTES",
        coordinates=(
            f"`src_topic` AS {sql_string(topic)},\n  `src_partition` AS 0,\n  `src_offset` AS CAST(0 AS BIGINT)"
        ),
        options=file_options(path, monitor_interval),
        parse=parse,
        out_of_orderness_ms=out_of_orderness_ms,
        watermark_on_every_event=watermark_on_every_event,
    )


def with_options(options: dict[str, str]) -> str:
    """The body of a DDL's WITH clause, one quoted option per line."""
    return ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())


def file_options(path: str, monitor_interval: str | None) -> dict[str, str]:
    options = {"connector": "filesystem", "path": path, "format": "raw"}
    if monitor_interval is not None:
        options["source.monitor-interval"] = monitor_interval
    return options


def _source_ddl(
    table: str, *, physical: str, coordinates: str, options: dict[str, str], parse: ParseSettings,
    out_of_orderness_ms: int, watermark_on_every_event: bool,
) -> str:
    if watermark_on_every_event:
        # Deterministic lateness for tests and replays: a watermark after every record instead of every 200 ms.
        options = {**options, "scan.watermark.emit.strategy": "on-event"}
    options_sql = with_options(options)
    return f"""CREATE TEMPORARY TABLE `{table}` (
  {physical},
  {coordinates},
  `rt` AS {event_time_column(parse)},
  WATERMARK FOR `rt` AS `rt` - {interval_literal(out_of_orderness_ms)}
) WITH (
  {options_sql}
)"""


PARSED_VIEW = "usage_parsed"
ROUTED_TABLE = "usage_routed"
# Across the routing operator `rt` travels as each record's timestamp and comes back as the rowtime column
# ROUTED_ROWTIME of `usage_routed`.
ROUTED_ROWTIME = "routed_rt"
USAGE_ROUTING_CLASS = "io.meterstream.routing.UsageRouting"
USAGE_DEDUP_KEY_CLASS = "io.meterstream.routing.UsageDedupKey"


def parsed_view(source_table: str, parse: ParseSettings) -> str:
    """`usage_parsed`: every record, valid or not, parsed once. Dedup and routing happen after it, in one keyed Java
    operator (`io.meterstream.routing.UsageRouting`, wired by `jobs.billing.route_usage`) that gives each record
    exactly one outcome: dead_lettered | duplicate_same_payload | duplicate_conflicting_payload | late | windowed."""
    return f"""CREATE TEMPORARY VIEW {PARSED_VIEW} AS
SELECT payload, src_topic, src_partition, src_offset, rt,
       p.reason, p.detail, p.event_id, p.tenant_id, p.customer_id, p.meter, p.event_time_ms, p.`value`,
       p.aggregation, p.group_json, p.unique_token, p.fingerprint
FROM (SELECT *, {parse.call()} AS p FROM `{source_table}`)"""


def tenant_case(catalog_values: dict[str, str], default: str) -> str:
    """`CASE tenant_id WHEN ... END` over per-tenant SQL literals (the catalog decides, SQL only looks up)."""
    whens = " ".join(f"WHEN {sql_string(tenant)} THEN {value}" for tenant, value in sorted(catalog_values.items()))
    return f"CASE tenant_id {whens} ELSE {default} END"


def output_views(
    *, window_size_ms: int, anchor_days: dict[str, int], time_zones: dict[str, str]
) -> list[str]:
    """Views from the routed table `usage_routed` to the outputs (each becomes one DataStream).

    Per fired window everything runs in Flink's Java operators: the billing period (a Java UDF, here), then the
    period to date and the rating in the keyed operator `PeriodToDateRating` (`jobs.billing.rate_windows`; the line
    item JSON is byte-identical to the Python reference). unique_count meters need the set of distinct values of a
    period: their windows go to the keyed Python accumulator (`usage_unique_windows`).
    """
    last_key = (
        "CASE WHEN aggregation = 'last' THEN LPAD(CAST(event_time_ms AS STRING), 15, '0') || event_id || CHR(0) "
        "|| CAST(`value` AS STRING) END"
    )
    anchor = tenant_case({t: str(d) for t, d in anchor_days.items()}, "CAST(NULL AS INT)")
    zone = tenant_case({t: sql_string(z) for t, z in time_zones.items()}, "CAST(NULL AS STRING)")
    return [
        f"""CREATE TEMPORARY VIEW usage_on_time AS
SELECT tenant_id, customer_id, meter, group_json, aggregation, {ROUTED_ROWTIME}, `value`, unique_token,
       event_time_ms - MOD(event_time_ms, {window_size_ms}) AS window_start_ms, {last_key} AS last_key
FROM usage_routed WHERE outcome = 'windowed'""",
        # `aggregation` is a group key, so each window needs one of the value aggregates; FILTER keeps the others
        # from running per record (DECIMAL(38, 18) arithmetic is BigDecimal arithmetic).
        f"""CREATE TEMPORARY VIEW usage_windows AS
SELECT tenant_id, customer_id, meter, group_json, aggregation, window_start, window_end, window_time,
       MIN(window_start_ms) AS window_start_ms,
       COUNT(*) AS event_count,
       CASE aggregation
         WHEN 'sum' THEN SUM(`value`) FILTER (WHERE aggregation = 'sum')
         WHEN 'max' THEN MAX(`value`) FILTER (WHERE aggregation = 'max')
         WHEN 'min' THEN MIN(`value`) FILTER (WHERE aggregation = 'min')
         WHEN 'count' THEN CAST(COUNT(*) AS DECIMAL(38, 18))
         ELSE CAST(NULL AS DECIMAL(38, 18)) END AS quantity,
       MAX(last_key) FILTER (WHERE aggregation = 'last') AS last_key,
       LISTAGG(DISTINCT unique_token, ',') FILTER (WHERE aggregation = 'unique_count') AS unique_tokens
FROM TABLE(TUMBLE(TABLE usage_on_time, DESCRIPTOR({ROUTED_ROWTIME}), {interval_literal(window_size_ms)}))
GROUP BY tenant_id, customer_id, meter, group_json, aggregation, window_start, window_end, window_time""",
        """CREATE TEMPORARY VIEW usage_unique_windows AS
SELECT tenant_id, customer_id, meter, group_json, aggregation,
       CAST(window_start AS STRING) AS window_start, CAST(window_end AS STRING) AS window_end,
       event_count, CAST(quantity AS STRING) AS quantity, last_key, unique_tokens
FROM usage_windows WHERE aggregation = 'unique_count'""",
        f"""CREATE TEMPORARY VIEW {WINDOW_PERIODS_VIEW} AS
SELECT tenant_id, customer_id, meter, group_json, aggregation, window_time, window_start_ms, event_count, quantity,
       last_key, {PERIOD_FUNCTION}(window_start_ms, {anchor}, {zone}) AS period_start_ms
FROM usage_windows WHERE aggregation <> 'unique_count'""",
        """CREATE TEMPORARY VIEW usage_dead_letters AS
SELECT payload, reason, detail, src_topic, src_partition, src_offset FROM usage_routed
WHERE outcome = 'dead_lettered'""",
        """CREATE TEMPORARY VIEW usage_late AS
SELECT payload, src_partition, src_offset, window_end_ms, watermark_at_routing_ms FROM usage_routed
WHERE outcome = 'late'""",
        """CREATE TEMPORARY VIEW usage_accounting AS
SELECT outcome, COALESCE(reason, '') AS detail, COUNT(*) AS records FROM usage_routed GROUP BY outcome, reason""",
    ]
