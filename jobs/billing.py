"""The billing job: raw usage events -> validated, deduplicated, windowed, rated invoice line items -> invoices.

Kafka in, Kafka out (exactly-once). Per-event and per-window work runs in Java inside Flink: a Kafka source that
parses as it reads (`io.meterstream.validation.UsageEventDeserializer`), the keyed operators
`io.meterstream.routing.UsageRouting` (dedup, lateness, outcome counts) and `io.meterstream.rating.WindowRating`
(windows, period to date, rating). Flink SQL (`jobs/billing_sql.py`) windows the unique_count meters and sums the
outcome counts. The Python stages in `jobs/billing_functions.py` see only unique_count windows, rejects, late
events and accounting updates; `--credits` adds the credits stage (`jobs/credits.py`), `--corrections` the
`usage-corrections` input (`jobs/corrections.py`: validation and correction-id idempotency in Python, the correction
ledger in `UsageRouting`; dead letters, counts; applied corrections change the bill in `WindowRating`, and those
of unique_count meters in the Python accumulator, which then retains its fired windows' contents). The
keyed Java operator `io.meterstream.invoices.InvoiceFolding` (`jobs/invoices.py`) folds the line items (and
drawdowns) into invoices, written to `invoices` when a billing period closes.

    python -m jobs.billing --bootstrap 127.0.0.1:9092 --catalog catalogs/example-genai.yaml --bounded
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

from pyflink.common import Types
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from jobs import uids
from jobs.billing_functions import (
    AccountingFunction,
    DeadLetterFormatter,
    LateEventFormatter,
    PeriodToDateFunction,
    window_key,
)
from jobs.billing_sql import (
    ACCOUNTING_DELTAS_TABLE,
    DEAD_LETTERS_TABLE,
    LATE_TABLE,
    METER_KEY_CLASS,
    UNIQUE_WINDOWS_TABLE,
    USAGE_DEDUP_KEY_CLASS,
    USAGE_DESERIALIZER_CLASS,
    USAGE_ROUTING_CLASS,
    USAGE_WATERMARKS_CLASS,
    WINDOW_RATING_CLASS,
    WINDOWED_USAGE_CLASS,
    output_views,
)
from jobs.java_interop import (
    BOOLEAN,
    BOXED_LONG,
    LONG,
    OUTPUT_TAG,
    ROW_TYPE,
    STRING,
    TYPE_INFORMATION,
    java_new,
    java_static,
    java_static_field,
)
from jobs.kafka_io import SinkSettingsError, check_sink_settings, exactly_once_string_sink, java_deserializer_source
from jobs.runtime import JobFailed, execute, main_args, stream_environment, submitted_by_flink_client
from meterstream.kafka_security import add_properties_argument, use_or_exit
from udfs.accounting import Accounting, CorrectionAccounting, Outcome
from udfs.catalog import Catalog, CatalogError, load_catalog, parse_catalog
from udfs.corrections import DEFAULT_CORRECTION_HORIZON, check_horizon, retained_for_ms
from udfs.java_catalog import java_catalog_json
from udfs.validation import invalid_tenant_topics, tenant_topic_pattern, tenant_topics
from udfs.windows import check_window_size_ms, to_epoch_ms, window_seconds

JOB_NAME = "meterstream-billing"
# How often an unbounded run with --usage-topic-prefix looks for new tenant topics (the Kafka connector's partition
# discovery; its own default is 5 minutes): a tenant's first records wait at most this long.
DEFAULT_TOPIC_DISCOVERY_MS = 60_000
MS_PER_DAY = 24 * 3600 * 1000
# The corrections source's format and the counts' retyping map (engine/, io.meterstream.corrections).
RAW_CORRECTION_DESERIALIZER_CLASS = "io.meterstream.corrections.RawCorrectionDeserializer"
CORRECTION_COUNTS_CLASS = "io.meterstream.corrections.CorrectionCounts"
CORRECTION_KEY_CLASS = "io.meterstream.routing.CorrectionKey"


@dataclass(frozen=True)
class Topics:
    usage_events: str = "usage-events"
    dead_letters: str = "usage-dead-letters"
    late_events: str = "usage-late-events"
    line_items: str = "invoice-line-items"
    accounting: str = "billing-accounting"
    invoices: str = "invoices"
    credit_grants: str = "credit-grants"
    spend_caps: str = "spend-caps"
    credit_drawdowns: str = "credit-drawdowns"
    billing_alerts: str = "billing-alerts"
    credit_grant_dead_letters: str = "credit-grant-dead-letters"
    usage_corrections: str = "usage-corrections"
    correction_dead_letters: str = "usage-correction-dead-letters"

    def outputs(self) -> list[str]:
        """The names of the topics the job writes (`meterstream.topics.JOB_OUTPUT_TOPICS`)."""
        from meterstream.topics import JOB_OUTPUT_TOPICS

        return [getattr(self, name) for name in JOB_OUTPUT_TOPICS]


# The fields of Topics that only a run with --credits reads or writes.
CREDIT_TOPICS = frozenset({"credit_grants", "spend_caps", "credit_drawdowns", "billing_alerts",
                           "credit_grant_dead_letters"})
# The fields of Topics that only a run with --corrections reads or writes.
CORRECTION_TOPICS = frozenset({"usage_corrections", "correction_dead_letters"})


@dataclass(frozen=True)
class BillingSettings:
    catalog_yaml: str
    window_size_ms: int = 60_000
    out_of_orderness_ms: int = 10_000
    idle_timeout_ms: int = 5_000
    dedup_ttl_days: int = 35
    max_age_ms: int = 35 * 24 * 3600 * 1000
    max_future_ms: int = 5 * 60 * 1000
    reference_now_ms: int | None = None
    watermark_on_every_event: bool = False
    # Processing time after an event was first seen within which it may be corrected (udfs.corrections).
    correction_horizon_ms: int = DEFAULT_CORRECTION_HORIZON // timedelta(milliseconds=1)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        check_window_size_ms(self.window_size_ms)  # the rule is udfs.windows.window_seconds
        check_horizon(self.correction_horizon_ms, self.dedup_ttl_days * MS_PER_DAY)  # at most the dedup horizon

    @cached_property
    def catalog(self) -> Catalog:
        """The catalog, parsed from `catalog_yaml` once per settings object (the fields are frozen, so the parse
        cannot go stale)."""
        return parse_catalog(self.catalog_yaml)

    @cached_property
    def java_catalog_json(self) -> str:
        """The catalog as the Java code reads it (`udfs.java_catalog`), one text for every Java object of the job:
        the usage parser and the rating share its parse (`io.meterstream.catalog.JavaCatalog`, once per JVM)."""
        return java_catalog_json(self.catalog)

    def period_state_ttl_days(self) -> int:
        """How long a series' state is kept after its last write (processing time): longer than the oldest event
        validation accepts plus a billing period (<= 31 days) and the future allowance, so a record that comes after
        its window fired can never find its series forgotten while that series' period could still be billed (it
        would start the period from nothing)."""
        max_age_days = -(-self.max_age_ms // MS_PER_DAY)
        return max_age_days + 32


@dataclass
class BillingOutputs:
    """The job's output streams, each of JSON strings in its topic's contract: four topics, the two streams of
    line items (Java-rated, unique_count) each with its own sink into `invoice-line-items`, and with corrections
    their dead letters (else None)."""

    line_items: DataStream
    unique_count_line_items: DataStream
    dead_letters: DataStream
    late_events: DataStream
    accounting: DataStream
    correction_dead_letters: DataStream | None = None



def table_environment(env: StreamExecutionEnvironment, settings: BillingSettings) -> StreamTableEnvironment:
    t_env = StreamTableEnvironment.create(env)
    config = t_env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("table.exec.state.ttl", f"{settings.dedup_ttl_days} d")
    config.set("table.exec.source.idle-timeout", f"{settings.idle_timeout_ms} ms")
    # SQL operators get uids from their plan node ids (stable while the SQL is), not from graph hashes.
    config.set("table.exec.uid.generation", "ALWAYS")
    # Aggregates in one phase: a window here holds a handful of events per key, so a local pre-aggregation saves
    # little and costs much (measured: serialising its accumulator rows was the costliest step of the routing task);
    # the accounting aggregation sees a few count rows per checkpoint.
    config.set("table.optimizer.agg-phase-strategy", "ONE_PHASE")
    # With --watermark-on-every-event the usage watermarks are emitted after each record (`usage_watermarks`); the
    # periodic timer stays on: it is also what declares an idle source split (or a subtask without any) idle, and
    # without it a subtask that has no partition held every window back for good.
    return t_env


@dataclass(frozen=True)
class ParsedUsage:
    """The one input type of `build_pipeline`: the parsed usage records, a Java DataStream of Flink's internal rows
    with the columns of `usage_parsed` (`row_type`, `io.meterstream.validation.UsageEventDeserializer.rowType()`:
    the raw record, its coordinates and ingestion time, then the parse columns), event time as each record's
    timestamp and watermarks from `usage_watermarks`. Production reads Kafka (`kafka_parsed_usage`), the job tests a
    file (`tests.usage_files.file_parsed_usage`, test support, not wired here); both build their rows with the same
    Java code (`io.meterstream.validation.UsageRows`) and take event time and watermarks from `usage_watermarks`."""

    stream: object
    row_type: object


def usage_row_type():
    """The Java RowType of the parsed usage records (both sources')."""
    return java_static(USAGE_DESERIALIZER_CLASS, "rowType")


def internal_type_info(row_type):
    """The Java TypeInformation of Flink's internal rows of `row_type` (what both usage sources produce)."""
    from pyflink.java_gateway import get_gateway

    return get_gateway().jvm.org.apache.flink.table.runtime.typeutils.InternalTypeInfo.of(row_type)


def usage_watermarks(settings: BillingSettings, row_type):
    """The usage records' event time and watermarks (`io.meterstream.watermarks.UsageEventWatermarks`), per Kafka
    partition: per (tenant, customer) the highest event time, the watermark the lowest of the customers active
    within the idle timeout (ingestion time: the record timestamp), capped at the highest ingestion time, minus the
    out-of-orderness bound; a partition without records for the idle timeout (processing time) is idle."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    return java_new(
        USAGE_WATERMARKS_CLASS, (ROW_TYPE, row_type), (LONG, settings.out_of_orderness_ms),
        (BOOLEAN, settings.watermark_on_every_event), (LONG, settings.idle_timeout_ms),
    ).withIdleness(jvm.java.time.Duration.ofMillis(settings.idle_timeout_ms))


def kafka_parsed_usage(env: StreamExecutionEnvironment, settings: BillingSettings, *, bootstrap: str, topic: str,
                       group_id: str, bounded: bool, tenant_topic_prefix: str | None = None,
                       topic_discovery_ms: int = DEFAULT_TOPIC_DISCOVERY_MS) -> ParsedUsage:
    """The parsed usage records straight from Kafka: a DataStream source whose Java deserializer
    (`io.meterstream.validation.UsageEventDeserializer`) parses with the parser of PARSE_USAGE_EVENT, into the
    columns of `usage_parsed` (the record timestamp, ingestion time, as `src_timestamp`; event time becomes each
    record's timestamp); watermarks per partition (`usage_watermarks`). Why not the SQL source: see the
    deserializer's class comment (a tenth of the CPU).

    With `tenant_topic_prefix` (`--usage-topic-prefix`) the source reads every tenant topic `<prefix><tenant>`
    instead of `topic` (a topic pattern subscription; new tenant topics are found every `topic_discovery_ms` when
    unbounded), and the deserializer dead-letters a record whose tenant_id is not its topic's tenant
    (`tenant_mismatch`, `udfs.validation`)."""
    row_type = usage_row_type()
    deserializer = java_new(
        USAGE_DESERIALIZER_CLASS, (STRING, settings.java_catalog_json), (BOXED_LONG, settings.reference_now_ms),
        (LONG, settings.max_age_ms), (LONG, settings.max_future_ms), (TYPE_INFORMATION, internal_type_info(row_type)),
        (STRING, tenant_topic_prefix))
    if tenant_topic_prefix is None:
        source = java_deserializer_source(bootstrap, [topic], deserializer, group_id=group_id, bounded=bounded)
    else:
        source = java_deserializer_source(bootstrap, [], deserializer, group_id=group_id, bounded=bounded,
                                          topic_pattern=tenant_topic_pattern(tenant_topic_prefix),
                                          discovery_interval_ms=topic_discovery_ms)
    stream = (
        env._j_stream_execution_environment.fromSource(
            source.get_java_function(), usage_watermarks(settings, row_type), "usage-events")
        .uid(uids.BILLING_USAGE_SOURCE)
    )
    return ParsedUsage(stream, row_type)


def kafka_raw_corrections(env: StreamExecutionEnvironment, *, bootstrap: str, topic: str, group_id: str,
                          bounded: bool) -> DataStream:
    """The raw `usage-corrections` records with their coordinates (`io.meterstream.corrections.
    RawCorrectionDeserializer`, the rows of `jobs.corrections.RAW_CORRECTION_TYPE`). No watermarks: corrections are
    decided in processing time (on arrival), and their counts join the accounting union, which reads none."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    source = java_deserializer_source(bootstrap, [topic], java_new(RAW_CORRECTION_DESERIALIZER_CLASS),
                                      group_id=group_id, bounded=bounded)
    j_stream = env._j_stream_execution_environment.fromSource(
        source.get_java_function(), jvm.org.apache.flink.api.common.eventtime.WatermarkStrategy.noWatermarks(),
        "usage-corrections").uid(uids.BILLING_CORRECTION_SOURCE)
    return DataStream(j_stream)


@dataclass(frozen=True)
class RoutedUsage:
    """What the routing operator hands on: its main output (Java DataStream of `WindowedUsage`), its outcome counts
    (Java DataStream of ACCOUNTING_TYPE rows) and the type of late rows (for the window operator's late output)."""

    windowed: object
    accounting: object
    late_row_type: object
    correction_rejects: object = None  # with corrections: the ledger's rejections (Java DataStream of Rows)


def _external_tag(name: str, rows):
    """A side output of external rows (String, not StringData): Python reads the tables made of these directly."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    to_data_type = jvm.org.apache.flink.table.types.utils.TypeConversions.fromLogicalToDataType
    return jvm.org.apache.flink.util.OutputTag(
        name, jvm.org.apache.flink.table.runtime.typeutils.ExternalTypeInfo.of(to_data_type(rows)))


def route_usage(t_env: StreamTableEnvironment, settings: BillingSettings, parsed_usage: ParsedUsage,
                corrections=None, *, replay: bool = False) -> RoutedUsage:
    """Dedup and route the parsed usage records in the keyed Java operator `UsageRouting`. Its main output, every
    first-seen valid record (`io.meterstream.routing.WindowedUsage`, with its series key; event time as timestamps),
    goes to `rate_windows`, which decides lateness; registers its dead letters as the table `usage_dead_letters`.

    Why a DataStream operator and not SQL: the dedup + classification as SQL (an OVER aggregate, a Calc, a Row round
    trip) was most of the job's CPU (JFR); this is one keyed operator on Flink's internal rows, remembering each event
    id as one slot of a per-bucket hash table. It keeps the watermark it has forwarded in operator state (SQL's
    CURRENT_WATERMARK restarts from nothing after a restore; see the operator's class comment).

    With `corrections` (a Java DataStream of `jobs.corrections.LEDGER_ROW_TYPE` rows: accepted corrections), the
    operator gets them as its second input, keyed by the bucket of their (tenant_id, event_id)
    (`io.meterstream.routing.CorrectionKey`), and keeps the correction ledger beside the dedup memory. With `replay`
    (a bounded run, which reads the two topics at once) it holds the corrections in keyed state until the usage input
    has ended, then decides them: each finds the events it names, whichever topic was read faster. A streaming run
    decides each on arrival (one that comes before its event is `unknown_event`).
    """
    parsed, parsed_type = parsed_usage.stream, parsed_usage.row_type

    def row_type(method: str):
        return java_static(USAGE_ROUTING_CLASS, method, (ROW_TYPE, parsed_type))

    dead_lettered = _external_tag("dead-lettered", row_type("deadLetterType"))
    accounting = _external_tag("accounting", java_static_field(USAGE_ROUTING_CLASS, "ACCOUNTING_TYPE"))
    key = java_new(USAGE_DEDUP_KEY_CLASS, (ROW_TYPE, parsed_type))
    windowed_type = java_static_field(WINDOWED_USAGE_CLASS, "TYPE")
    correction_rejects = None
    if corrections is None:
        routing = java_new(
            USAGE_ROUTING_CLASS, (ROW_TYPE, parsed_type), (LONG, settings.window_size_ms),
            (LONG, settings.dedup_ttl_days * MS_PER_DAY), (OUTPUT_TAG, dead_lettered), (OUTPUT_TAG, accounting))
        j_routed = parsed.keyBy(key, key.getProducedType()).transform("route-usage-events", windowed_type, routing)
    else:
        rejects_tag = java_static(USAGE_ROUTING_CLASS, "correctionRejectTag")
        routing = java_new(
            USAGE_ROUTING_CLASS, (ROW_TYPE, parsed_type), (LONG, settings.window_size_ms),
            (LONG, settings.dedup_ttl_days * MS_PER_DAY), (OUTPUT_TAG, dead_lettered), (OUTPUT_TAG, accounting),
            (STRING, settings.java_catalog_json), (LONG, settings.correction_horizon_ms), (OUTPUT_TAG, rejects_tag),
            (BOOLEAN, replay))
        correction_key = java_new(CORRECTION_KEY_CLASS)
        j_routed = (
            parsed.connect(corrections).keyBy(key, correction_key, key.getProducedType())
            .transform("route-usage-events", windowed_type, routing)
        )
        correction_rejects = j_routed.getSideOutput(rejects_tag)
    j_routed = j_routed.uid(uids.BILLING_USAGE_ROUTING)  # the same state, with or without corrections
    j_tenv = t_env._j_tenv
    j_tenv.createTemporaryView(DEAD_LETTERS_TABLE, j_tenv.fromDataStream(j_routed.getSideOutput(dead_lettered)))
    return RoutedUsage(j_routed, j_routed.getSideOutput(accounting), row_type("lateType"), correction_rejects)


def rate_windows(t_env: StreamTableEnvironment, routed: RoutedUsage, settings: BillingSettings,
                 more_counts=()) -> DataStream:
    """The line items of every meter but unique_count ones: the routing operator's records through the keyed Java
    operator `WindowRating` (tumbling windows, lateness per series, period to date, rating; see its class comment
    for why not SQL). Registers its side outputs as tables: `usage_unique_windows` (fired unique_count windows, for
    the Python accumulator), `usage_late` and, with the routing operator's counts (and `more_counts`, Java streams of
    ACCOUNTING_TYPE rows: the corrections'), `usage_accounting_deltas`."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    unique_windows = _external_tag("unique-count-windows",
                                   java_static_field(WINDOW_RATING_CLASS, "UNIQUE_COUNT_WINDOW_TYPE"))
    late = _external_tag("late", routed.late_row_type)
    accounting = _external_tag("accounting", java_static_field(USAGE_ROUTING_CLASS, "ACCOUNTING_TYPE"))
    rating = java_new(
        WINDOW_RATING_CLASS, (STRING, settings.java_catalog_json), (LONG, settings.window_size_ms),
        (LONG, settings.period_state_ttl_days() * MS_PER_DAY), (LONG, settings.max_age_ms),
        (OUTPUT_TAG, unique_windows), (OUTPUT_TAG, late), (OUTPUT_TAG, accounting),
        (BOOLEAN, routed.correction_rejects is not None),  # with corrections: max/min/last windows keep contents
        (LONG, retained_for_ms(settings.correction_horizon_ms)))
    key = java_new(METER_KEY_CLASS)
    string_type = jvm.org.apache.flink.api.common.typeinfo.Types.STRING
    j_rated = (
        routed.windowed.keyBy(key, key.getProducedType())
        .transform("window-and-rate", string_type, rating)
        .uid(uids.BILLING_WINDOW_RATING)
    )
    j_tenv = t_env._j_tenv
    # The fired unique_count windows carry the stream's watermarks on to the Python accumulator, whose line items
    # clock the credits ledger: a table made of a DataStream passes them on only when its schema says so.
    Schema = jvm.org.apache.flink.table.api.Schema
    with_watermarks = (
        Schema.newBuilder()
        .columnByMetadata(WINDOW_ROWTIME, "TIMESTAMP_LTZ(3)", "rowtime", False)
        .watermark(WINDOW_ROWTIME, "SOURCE_WATERMARK()")
        .build()
    )
    j_tenv.createTemporaryView(UNIQUE_WINDOWS_TABLE,
                               j_tenv.fromDataStream(j_rated.getSideOutput(unique_windows), with_watermarks))
    for table, stream in (
        (LATE_TABLE, j_rated.getSideOutput(late)),
        (ACCOUNTING_DELTAS_TABLE,
         routed.accounting.union(java_stream_array(j_rated.getSideOutput(accounting), *more_counts))),
    ):
        j_tenv.createTemporaryView(table, j_tenv.fromDataStream(stream))
    return DataStream(j_rated)


def java_stream_array(*streams):
    """A Java DataStream[] (the varargs of `DataStream.union`)."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    array = gateway.new_array(gateway.jvm.org.apache.flink.streaming.api.datastream.DataStream, len(streams))
    for i, stream in enumerate(streams):
        array[i] = stream
    return array


WINDOW_ROWTIME = "fired_rt"  # the rowtime column of `usage_unique_windows` (the fired window's timer time)


def correction_counts(counts: DataStream):
    """The corrections' (outcome, detail, records) rows as a Java stream of the operators' accounting rows
    (`io.meterstream.corrections.CorrectionCounts`), for the union behind `usage_accounting_deltas`."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    to_data_type = jvm.org.apache.flink.table.types.utils.TypeConversions.fromLogicalToDataType
    accounting_type = jvm.org.apache.flink.table.runtime.typeutils.ExternalTypeInfo.of(
        to_data_type(java_static_field(USAGE_ROUTING_CLASS, "ACCOUNTING_TYPE")))
    retype = java_new(CORRECTION_COUNTS_CLASS, (TYPE_INFORMATION, accounting_type))
    return counts._j_data_stream.map(retype).name("correction-counts").uid(uids.BILLING_CORRECTION_COUNTS)


def build_pipeline(
    env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, settings: BillingSettings, source: ParsedUsage,
    corrections: DataStream | None = None, *, replay: bool = False,
) -> BillingOutputs:
    """Wire the job on its parsed usage records, whichever source made them: `kafka_parsed_usage` (production) or
    `tests.usage_files.file_parsed_usage` (job tests); and, when given, on the raw `usage-corrections` records
    (`jobs.corrections.RAW_CORRECTION_TYPE` rows: `kafka_raw_corrections`, or a test's collection). `replay`: the
    usage input is bounded (`--bounded`), and the corrections wait until it has ended (`route_usage`)."""
    if not isinstance(source, ParsedUsage):
        raise TypeError(f"build_pipeline takes ParsedUsage (kafka_parsed_usage, a test file's), not "
                        f"{type(source).__name__}")
    correction_outputs = correction_dead_letters = None
    if corrections is not None:
        from jobs.corrections import build_corrections

        correction_outputs = build_corrections(corrections, settings.catalog_yaml,
                                               horizon_ms=settings.correction_horizon_ms)
    routed = route_usage(t_env, settings, source,
                         None if correction_outputs is None else correction_outputs.accepted._j_data_stream,
                         replay=replay)
    if correction_outputs is not None:
        from jobs.corrections import LedgerRejectFormatter

        ledger_rejects = (
            DataStream(routed.correction_rejects)
            .map(LedgerRejectFormatter(), output_type=Types.STRING())
            .name("format-correction-ledger-rejects")
            .uid(uids.BILLING_CORRECTION_LEDGER_REJECTS)
        )
        correction_dead_letters = correction_outputs.dead_letters.union(ledger_rejects)
    more_counts = () if correction_outputs is None else (correction_counts(correction_outputs.counts),)
    line_items = rate_windows(t_env, routed, settings, more_counts)
    for view in output_views():
        t_env.execute_sql(view)

    # One DataStream per output, each from its own output of the routing operator (a split inside Python would
    # cost one Python call per row and output).
    def stream_of(view: str) -> DataStream:
        return t_env.to_data_stream(t_env.from_path(view))

    unique_count_line_items = (
        stream_of(UNIQUE_WINDOWS_TABLE)
        .key_by(window_key, key_type=Types.STRING())
        .process(
            PeriodToDateFunction(settings.catalog_yaml, state_ttl_days=settings.period_state_ttl_days(),
                                 max_age_ms=settings.max_age_ms, retain_contents=corrections is not None,
                                 retain_ms=retained_for_ms(settings.correction_horizon_ms)),
            output_type=Types.STRING(),
        )
        .name("rate-unique-count-period-to-date")
        .uid(uids.BILLING_PERIOD_TO_DATE)
    )
    # Two streams of line items (Java's and the unique_count accumulator's): each gets its own exactly-once sink into
    # the same topic.
    dead_letters = (
        stream_of(DEAD_LETTERS_TABLE)
        .map(DeadLetterFormatter(), output_type=Types.STRING())
        .name("format-dead-letters")
        .uid(uids.BILLING_DEAD_LETTER_FORMAT)
    )
    late_events = (
        stream_of(LATE_TABLE)
        .map(LateEventFormatter(settings.window_size_ms), output_type=Types.STRING())
        .name("format-late-events")
        .uid(uids.BILLING_LATE_FORMAT)
    )
    accounting_changes = t_env.to_changelog_stream(t_env.from_path("usage_accounting"))
    accounting = (
        accounting_changes
        .flat_map(AccountingFunction(settings.run_id), output_type=Types.STRING())
        .name("accounting")
        .uid(uids.BILLING_ACCOUNTING)
    )
    return BillingOutputs(line_items, unique_count_line_items, dead_letters, late_events, accounting,
                          correction_dead_letters)


# output stream -> (topic field of Topics, sink uid)
SINKS = {
    "line_items": ("line_items", uids.BILLING_SINK_LINE_ITEMS),
    "unique_count_line_items": ("line_items", uids.BILLING_SINK_UNIQUE_COUNT_LINE_ITEMS),
    "dead_letters": ("dead_letters", uids.BILLING_SINK_DEAD_LETTERS),
    "late_events": ("late_events", uids.BILLING_SINK_LATE),
    "accounting": ("accounting", uids.BILLING_SINK_ACCOUNTING),
    "correction_dead_letters": ("correction_dead_letters", uids.BILLING_SINK_CORRECTION_DEAD_LETTERS),
}
# Outputs whose records all name a customer: keyed by it (`exactly_once_string_sink`), so each customer's records
# are read in the order they were written: line items, drawdowns, alerts, invoices.
KEYED_BY_CUSTOMER = frozenset({"line_items", "unique_count_line_items", "credit_drawdowns", "billing_alerts",
                               "invoices"})


def attach_kafka_sinks(outputs: BillingOutputs, topics: Topics, bootstrap: str, job_name: str) -> None:
    for name, (topic_field, sink_uid) in SINKS.items():
        if getattr(outputs, name) is None:
            continue  # an optional stage that is off (corrections)
        topic = getattr(topics, topic_field)
        sink = exactly_once_string_sink(bootstrap, topic, transactional_id_prefix=f"{job_name}-{name}",
                                        keyed_by_customer=name in KEYED_BY_CUSTOMER)
        getattr(outputs, name).sink_to(sink).name(f"kafka-{name}").uid(sink_uid)


def attach_credits(
    t_env: StreamTableEnvironment, settings: BillingSettings, outputs: BillingOutputs, topics: Topics, *,
    bootstrap: str, job_name: str, bounded: bool,
) -> DataStream:
    """Wire the credits stage and its sinks; returns the drawdowns (the invoice stage counts them)."""
    from jobs.credits import build_credits, credit_input_ddl

    def ddl(table: str, topic: str) -> str:
        return credit_input_ddl(table, topic=topic, bootstrap=bootstrap, group_id=job_name, bounded=bounded)

    credit_outputs = build_credits(
        t_env, settings.catalog_yaml, [outputs.line_items, outputs.unique_count_line_items],
        grants_ddl=ddl("credit_grants_raw", topics.credit_grants),
        spend_caps_ddl=ddl("spend_caps_raw", topics.spend_caps),
        replay=bounded,
    )
    for stream, topic, sink_uid, name in (
        (credit_outputs.drawdowns, topics.credit_drawdowns, uids.CREDITS_SINK_DRAWDOWNS, "credit_drawdowns"),
        (credit_outputs.alerts, topics.billing_alerts, uids.CREDITS_SINK_ALERTS, "billing_alerts"),
        (credit_outputs.grant_dead_letters, topics.credit_grant_dead_letters, uids.CREDITS_SINK_GRANT_DEAD_LETTERS,
         "credit_grant_dead_letters"),
    ):
        sink = exactly_once_string_sink(bootstrap, topic, transactional_id_prefix=f"{job_name}-{name}",
                                        keyed_by_customer=name in KEYED_BY_CUSTOMER)
        stream.sink_to(sink).name(f"kafka-{name}").uid(sink_uid)
    return credit_outputs.drawdowns


def invoices_of(settings: BillingSettings, outputs: BillingOutputs, drawdowns: DataStream | None) -> DataStream:
    """The invoice stage on the job's line items (and the credits stage's drawdowns, when it runs)."""
    from jobs.invoices import build_invoices

    return build_invoices(settings.java_catalog_json, [outputs.line_items, outputs.unique_count_line_items],
                          drawdowns=drawdowns, state_ttl_ms=settings.period_state_ttl_days() * MS_PER_DAY)


def build_job(
    *,
    bootstrap: str,
    topics: Topics,
    settings: BillingSettings,
    bounded: bool,
    parallelism: int,
    job_name: str = JOB_NAME,
    checkpoint_interval_ms: int = 5_000,
    credits: bool = False,
    corrections: bool = False,
    flink_conf: dict[str, str] | None = None,
    usage_topic_prefix: str | None = None,
    topic_discovery_ms: int = DEFAULT_TOPIC_DISCOVERY_MS,
) -> StreamExecutionEnvironment:
    """The whole job graph, wired and not executed (`run` executes it; `jobs.operator_uids` reads its uids).
    `usage_topic_prefix`: read the tenant topics `<prefix><tenant>` instead of `topics.usage_events`."""
    env = stream_environment(
        parallelism=parallelism, checkpoint_interval_ms=checkpoint_interval_ms, extra_config=flink_conf
    )
    t_env = table_environment(env, settings)
    source = kafka_parsed_usage(
        env, settings, bootstrap=bootstrap, topic=topics.usage_events, group_id=job_name, bounded=bounded,
        tenant_topic_prefix=usage_topic_prefix, topic_discovery_ms=topic_discovery_ms)
    raw_corrections = None
    if corrections:
        raw_corrections = kafka_raw_corrections(env, bootstrap=bootstrap, topic=topics.usage_corrections,
                                                group_id=job_name, bounded=bounded)
    outputs = build_pipeline(env, t_env, settings, source, raw_corrections, replay=bounded)
    attach_kafka_sinks(outputs, topics, bootstrap, job_name)
    drawdowns = None
    if credits:
        drawdowns = attach_credits(t_env, settings, outputs, topics, bootstrap=bootstrap, job_name=job_name,
                                   bounded=bounded)
    sink = exactly_once_string_sink(bootstrap, topics.invoices, transactional_id_prefix=f"{job_name}-invoices",
                                    keyed_by_customer="invoices" in KEYED_BY_CUSTOMER)
    invoices_of(settings, outputs, drawdowns).sink_to(sink).name("kafka-invoices").uid(uids.BILLING_SINK_INVOICES)
    return env


def run(*, job_name: str = JOB_NAME, **job) -> float:
    """Build the job (arguments of `build_job`) and execute it; returns the seconds `execute` took. A failed job
    raises `jobs.runtime.JobFailed` once its root cause is printed on stdout."""
    env = build_job(job_name=job_name, **job)
    started = time.monotonic()
    execute(env, job_name)
    return time.monotonic() - started


def read_accounting(bootstrap: str, topic: str, run_id: str) -> dict[tuple[str, str], int]:
    """The final count per (outcome, detail) this run committed to the accounting topic.

    Counts only grow within a run, so the final one is the largest: updates of one outcome may sit in different
    partitions, where "the last one read" means nothing.
    """
    from meterstream.topics import read_committed

    counts: dict[tuple[str, str], int] = {}
    for value in read_committed(bootstrap, topic):
        record = json.loads(value)
        if record["run_id"] == run_id:
            key = (record["outcome"], record["detail"])
            counts[key] = max(counts.get(key, 0), record["records"])
    return counts


def accounting_table(counts: dict[tuple[str, str], int], received: int,
                     corrections_received: int | None = None) -> tuple[str, bool]:
    """Render the accounting identity; returns (text, holds).

    `received` is counted independently of the job (the input topic's offsets at start), so the identity checks
    that every record that entered came out with exactly one outcome. With `corrections_received` (the corrections
    topic's offsets, for a run with --corrections) the corrections' identity is rendered and checked too.
    """
    totals = Accounting.of(counts, received)
    holds = totals.holds
    lines = [
        f"{'records in the input (offsets)':34s} {received:>12,}",
        f"{'  dead-lettered':34s} {totals.dead_lettered:>12,}",
        *[f"{'    ' + detail:34s} {n:>12,}" for (o, detail), n in sorted(counts.items()) if o == Outcome.DEAD_LETTERED],
        f"{'  valid':34s} {totals.valid:>12,}",
        f"{'    duplicates (same payload)':34s} {totals.duplicate_same_payload:>12,}",
        f"{'    duplicates (conflicting)':34s} {totals.duplicate_conflicting_payload:>12,}",
        f"{'    first seen':34s} {totals.first_seen:>12,}",
        f"{'      billed on time (windowed)':34s} {totals.windowed:>12,}",
        f"{'      billed late (adjustments)':34s} {totals.billed_late:>12,}",
        f"identity received = dead-lettered + duplicates + billed on time + billed late: "
        f"{'HOLDS' if holds else 'BROKEN'}",
    ]
    if corrections_received is not None:
        corrections = CorrectionAccounting.of(counts)
        corrections_hold = corrections.holds(corrections_received)
        holds = holds and corrections_hold
        lines += [
            f"{'corrections in the input (offsets)':34s} {corrections_received:>12,}",
            f"{'  applied (billed)':34s} {corrections.applied:>12,}",
            f"{'  rejected':34s} {corrections.rejected:>12,}",
            *[f"{'    ' + reason:34s} {n:>12,}" for reason, n in corrections.rejected_by_reason.items()],
            f"identity corrections = applied + rejected: {'HOLDS' if corrections_hold else 'BROKEN'}",
        ]
    return "\n".join(lines), holds


def _window_seconds(text: str) -> int:
    try:
        return window_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _topic_prefix(text: str) -> str:
    try:
        tenant_topic_pattern(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # flags spelled out: `--credit` is not `--credits`
    parser.add_argument("--bootstrap", required=True)
    add_properties_argument(parser)
    parser.add_argument("--catalog", default="catalogs/example-genai.yaml")
    parser.add_argument("--bounded", action="store_true", help="process what the input held at start, then stop")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--window-seconds", type=_window_seconds, default=60,
                        help="tumbling window size: whole seconds from 1 to 86400 that divide a day (default 60)")
    parser.add_argument("--out-of-orderness-seconds", type=float, default=10,
                        help="the watermark is the partition's clock minus this")
    parser.add_argument("--idle-timeout-seconds", type=float, default=5,
                        help="a customer silent this long in ingestion time (Kafka record timestamps) stops holding "
                             "its partition's clock; a partition without records this long (processing time) is idle")
    parser.add_argument("--dedup-ttl-days", type=int, default=35)
    parser.add_argument("--max-age-days", type=float, default=35)
    parser.add_argument("--max-future-minutes", type=float, default=5)
    parser.add_argument("--reference-time", help="RFC 3339 instant used as 'now' for age checks (replays, tests)")
    parser.add_argument("--credits", action="store_true",
                        help="also run prepaid credits: read credit-grants and spend-caps, write drawdowns and alerts")
    parser.add_argument("--corrections", action="store_true",
                        help="also read usage-corrections: validate, dedup by correction id, decide each against the "
                             "correction ledger, dead-letter and count them (applied corrections change no bill yet)")
    parser.add_argument("--correction-horizon-hours", type=float, default=24,
                        help="processing time after an event was first seen within which it may be corrected "
                             "(at most --dedup-ttl-days)")
    parser.add_argument("--watermark-on-every-event", action="store_true",
                        help="emit a watermark after every record (replays and tests: with one input partition, "
                             "lateness then depends on the topic's contents alone)")
    parser.add_argument("--usage-topic-prefix", type=_topic_prefix, default=None, metavar="PREFIX",
                        help="tenant isolation: read usage from one topic per tenant, every topic PREFIX<tenant> "
                             "(e.g. usage-events.: usage-events.acme-ai is tenant acme-ai's), instead of "
                             "--topic-usage-events; a record whose tenant_id is not its topic's tenant is "
                             "dead-lettered tenant_mismatch (Kafka ACLs then decide who may bill whom)")
    parser.add_argument("--usage-topic-discovery-seconds", type=float, default=DEFAULT_TOPIC_DISCOVERY_MS / 1000,
                        help="with --usage-topic-prefix, unbounded: how often to look for new tenant topics "
                             f"(default {DEFAULT_TOPIC_DISCOVERY_MS // 1000})")
    parser.add_argument("--checkpoint-interval-ms", type=int, default=5_000)
    parser.add_argument("--flink-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink configuration option for this run (repeatable), e.g. "
                             "execution.state-recovery.path=file:///.../chk-7 to restore from a checkpoint")
    parser.add_argument("--create-topics", action="store_true",
                        help="create the run's missing input and output topics (as many partitions as "
                             "--parallelism) instead of refusing to start")
    parser.add_argument("--job-name", default=JOB_NAME)
    parser.add_argument("--run-id", default=None)
    for name, default in vars(Topics()).items():
        parser.add_argument(f"--topic-{name.replace('_', '-')}", dest=f"topic_{name}", default=default)
    return parser.parse_args(main_args(argv))


def flink_conf_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--flink-conf expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    return options


def settings_from_args(args: argparse.Namespace) -> BillingSettings:
    """The run's settings; the catalog is read and validated here, and a bad one stops the run with a message that
    names the file (SystemExit)."""
    try:
        load_catalog(args.catalog)
    except CatalogError as exc:
        raise SystemExit(str(exc)) from None
    try:
        check_horizon(int(args.correction_horizon_hours * 3600 * 1000), args.dedup_ttl_days * MS_PER_DAY)
    except ValueError as exc:
        raise SystemExit(f"--correction-horizon-hours {args.correction_horizon_hours}: {exc}") from None
    reference = None
    if args.reference_time:
        reference = to_epoch_ms(datetime.fromisoformat(args.reference_time.replace("Z", "+00:00")))
    extra = {"run_id": args.run_id} if args.run_id else {}
    return BillingSettings(
        catalog_yaml=Path(args.catalog).read_text(encoding="utf-8"),
        window_size_ms=args.window_seconds * 1000,
        out_of_orderness_ms=int(args.out_of_orderness_seconds * 1000),
        idle_timeout_ms=int(args.idle_timeout_seconds * 1000),
        dedup_ttl_days=args.dedup_ttl_days,
        max_age_ms=int(args.max_age_days * 24 * 3600 * 1000),
        max_future_ms=int(args.max_future_minutes * 60 * 1000),
        reference_now_ms=reference,
        watermark_on_every_event=args.watermark_on_every_event,
        correction_horizon_ms=int(args.correction_horizon_hours * 3600 * 1000),
        **extra,
    )


# How long the start-up check waits for a broker (kafka-python's bootstrap, then one metadata request bounded the
# same): a wrong --bootstrap ends the run within ~2x this plus the interpreter's start, instead of the Kafka clients'
# minutes of retries inside Flink ("Timed out waiting for a node assignment", not naming the address).
BROKER_CHECK_TIMEOUT_S = 12.0


def topics_used(topics: Topics, *, credits: bool, corrections: bool = False, tenant_topics: bool = False) -> list[str]:
    """Every topic a run reads or writes: usage and the outputs; with credits also the credit inputs and outputs,
    with corrections the corrections topic and its dead letters; with tenant topics (`--usage-topic-prefix`) not the
    shared usage topic (the tenant topics are `check_tenant_topics`')."""
    return [name for field, name in vars(topics).items()
            if (credits or field not in CREDIT_TOPICS) and (corrections or field not in CORRECTION_TOPICS)
            and not (tenant_topics and field == "usage_events")]


def check_tenant_topics(bootstrap: str, prefix: str, other_topics: list[str]) -> list[str]:
    """Before any Flink work, with `--usage-topic-prefix`: the tenant topics there are now (sorted), or the run stops
    (SystemExit) naming the operator's mistake: no topic matches (a misspelt prefix would bill nothing); a matching
    topic whose tenant part is no valid tenant id (its every record would be `tenant_mismatch`: fail fast rather than
    dead-letter a tenant's whole usage); another topic of the run matches (the job would read its own output)."""
    from meterstream.topics import BrokerUnreachable, topic_names

    try:
        existing = topic_names(bootstrap, timeout_s=BROKER_CHECK_TIMEOUT_S)
    except BrokerUnreachable as exc:
        raise SystemExit(f"--bootstrap {bootstrap}: {exc}") from None
    own = tenant_topics(other_topics, prefix)
    if own:
        raise SystemExit(f"--usage-topic-prefix {prefix}: the run's own topics {', '.join(own)} match it; choose a "
                         "prefix that only tenant topics have")
    found = tenant_topics(sorted(existing - set(other_topics)), prefix)
    if not found:
        raise SystemExit(f"--usage-topic-prefix {prefix}: no topic {prefix}<tenant> at {bootstrap}; create one per "
                         f"tenant (`meterstream topics --bootstrap {bootstrap} {prefix}TENANT ...`)")
    bad = invalid_tenant_topics(found, prefix)
    if bad:
        raise SystemExit(f"--usage-topic-prefix {prefix}: topics whose name after the prefix is no tenant id (1-128 "
                         f"characters): {', '.join(bad)}; rename or delete them")
    return found


def check_kafka(bootstrap: str, names: list[str], *, create: bool, partitions: int,
                outputs: frozenset[str] = frozenset()) -> list[str]:
    """Before any Flink work: a broker must answer at `bootstrap` and every topic in `names` must exist, or the run
    stops (SystemExit) with a message naming the address, or all the missing topics at once. With `create`, the
    missing topics are created instead (`partitions` each; those in `outputs`, the topics the job writes, with
    `meterstream.topics.OUTPUT_TOPIC_CONFIG`); returns those. A topic the brokers' ACLs hide from the job's
    principal (no Describe, Read or Write on it) looks missing: such topics stop the run named as what they are, not
    as topics to create (created or not, the job could not use them)."""
    from meterstream.topics import (
        BrokerUnreachable,
        create_topics,
        missing_topics,
        output_topic_configs,
        unauthorized_topics,
    )

    try:
        missing = missing_topics(bootstrap, names, timeout_s=BROKER_CHECK_TIMEOUT_S)
        hidden = unauthorized_topics(bootstrap, missing, timeout_s=BROKER_CHECK_TIMEOUT_S) if missing else []
    except BrokerUnreachable as exc:
        raise SystemExit(f"--bootstrap {bootstrap}: {exc}") from None
    if hidden:
        needs = [f"{name} ({'Write' if name in outputs else 'Read'})" for name in hidden]
        raise SystemExit(
            f"Kafka topics at {bootstrap} that the job's principal may not describe: {', '.join(needs)}. The "
            "brokers' ACLs allow it no Describe, Read or Write on them, and hide whether they exist: add the ACLs "
            "in parentheses (README, \"Tenant topics\"), or pass the right --topic-* names.")
    missing_outputs = [name for name in missing if name in outputs]
    if missing and not create:
        command = " ".join([f"meterstream topics --bootstrap {bootstrap}",
                            *(name for name in missing if name not in outputs),
                            *(["--output", *missing_outputs] if missing_outputs else [])])
        raise SystemExit(
            f"missing Kafka topics at {bootstrap}: {', '.join(missing)}. Create them (`{command}`), pass the right "
            f"--topic-* names, or run with --create-topics.")
    if missing:
        create_topics(bootstrap, missing, partitions=partitions, configs=output_topic_configs(missing_outputs))
    return missing


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before any client: the Kafka security settings of every client of this run (and of the Flink sources and
    # sinks), validated; a mistake ends the run naming it.
    security = use_or_exit(args.kafka_properties, what=args.job_name)
    if security.security_protocol != "PLAINTEXT":
        print(f"{args.job_name}: Kafka security {security.describe()}")
    settings = settings_from_args(args)  # validates the catalog before anything starts
    topics = Topics(**{name: getattr(args, f"topic_{name}") for name in vars(Topics())})
    used = topics_used(topics, credits=args.credits, corrections=args.corrections,
                       tenant_topics=args.usage_topic_prefix is not None)
    created = check_kafka(args.bootstrap, used, create=args.create_topics, partitions=args.parallelism,
                          outputs=frozenset(topics.outputs()))
    if created:
        print(f"{args.job_name}: created topics {', '.join(created)} ({args.parallelism} partitions each)")
    usage_topics = [topics.usage_events]
    if args.usage_topic_prefix is not None:
        usage_topics = check_tenant_topics(args.bootstrap, args.usage_topic_prefix, used)
        print(f"{args.job_name}: tenant topics {args.usage_topic_prefix}<tenant>: {len(usage_topics)} now "
              f"({', '.join(usage_topics[:5])}{', ...' if len(usage_topics) > 5 else ''})")
    try:
        check_sink_settings(args.bootstrap, checkpoint_interval_ms=args.checkpoint_interval_ms)
    except SinkSettingsError as exc:
        raise SystemExit(f"{args.job_name}: cannot start: {exc}") from None
    received = corrections_received = None
    if args.bounded:
        from meterstream.topics import topic_record_count

        # With tenant topics: those that match now, which the bounded source reads (it discovers them once, at start).
        received = sum(topic_record_count(args.bootstrap, topic) for topic in usage_topics)
        corrections_received = (topic_record_count(args.bootstrap, topics.usage_corrections)
                                if args.corrections else None)
    try:
        seconds = run(
            bootstrap=args.bootstrap,
            topics=topics,
            settings=settings,
            bounded=args.bounded,
            parallelism=args.parallelism,
            job_name=args.job_name,
            checkpoint_interval_ms=args.checkpoint_interval_ms,
            credits=args.credits,
            corrections=args.corrections,
            flink_conf=flink_conf_options(args.flink_conf),
            usage_topic_prefix=args.usage_topic_prefix,
            topic_discovery_ms=int(args.usage_topic_discovery_seconds * 1000),
        )
    except JobFailed:
        return 1  # the root cause is on stdout already
    if submitted_by_flink_client():
        # `flink run --detached` returns once the job is submitted: there is no end to report or check here.
        print(f"{args.job_name}: run {settings.run_id} submitted")
        return 0
    print(f"{args.job_name}: run {settings.run_id} finished in {seconds:.1f} s")
    if args.bounded:
        return bounded_end_checks(args.bootstrap, topics, settings, job_name=args.job_name, credits=args.credits,
                                  received=received, corrections_received=corrections_received)
    return 0


def bounded_end_checks(bootstrap: str, topics: Topics, settings: BillingSettings, *, job_name: str, credits: bool,
                       received: int, corrections_received: int | None) -> int:
    """After a --bounded run: the accounting table (and with credits the credits identities), printed, read back
    from the topics the run wrote; the exit code: 0 when they hold, 2 when not. A topic the brokers' ACLs do not let
    the job's principal read ends it (SystemExit, exit 1) naming the ACL it lacks: the run itself is done and
    committed, only its checks could not be made."""
    from kafka.errors import TopicAuthorizationFailedError

    try:
        counts = read_accounting(bootstrap, topics.accounting, settings.run_id)
        table, holds = accounting_table(counts, received, corrections_received)
        print(table)
        if credits:
            credit_table, credit_holds = credit_identity_check(bootstrap, topics, settings)
            print(credit_table)
            holds = holds and credit_holds
    except TopicAuthorizationFailedError as exc:
        refused = exc.args[0] if exc.args and isinstance(exc.args[0], (set, frozenset, list)) else {str(exc)}
        raise SystemExit(
            f"{job_name}: run {settings.run_id} finished, but the job's principal may not read back "
            f"{', '.join(sorted(refused))} for the checks of a --bounded run: add Read on them (README, \"Tenant "
            "topics\")") from None
    return 0 if holds else 2


def credit_identity_check(bootstrap: str, topics: Topics, settings: BillingSettings) -> tuple[str, bool]:
    """After a bounded run with credits: the credits identities per (tenant, customer, currency), from the topics.

    grants - drawn - expired - voided = balance (never negative), and line item amounts = drawn + uncovered. Only
    customers holding credits have grants; the second identity is checked for every customer with line items.
    """
    from meterstream.topics import read_committed
    from schemas.credits import CreditDrawdown, CreditGrant
    from schemas.invoice_line_item import InvoiceLineItem
    from udfs.credits import ledger_identity, validate_grant_record

    tenants = settings.catalog.tenants
    grants = [g for g in (validate_grant_record(raw, tenants=tenants)
                          for raw in read_committed(bootstrap, topics.credit_grants)) if isinstance(g, CreditGrant)]
    drawdowns = [CreditDrawdown.model_validate_json(v) for v in read_committed(bootstrap, topics.credit_drawdowns)]
    lines = [InvoiceLineItem.model_validate_json(v) for v in read_committed(bootstrap, topics.line_items)]
    checks = ledger_identity(grants, drawdowns, lines)
    broken = [key for key, c in checks.items() if not c.usage_identity_holds or c.balance < 0]
    with_credit = [key for key, c in checks.items() if c.granted]
    text = (
        f"credits: {len(drawdowns):,} drawdown records for {len(lines):,} line items; {len(with_credit)} customers "
        f"hold credit; identities (grants - drawn - expired - voided = balance >= 0, line items = drawn + "
        f"uncovered) over {len(checks):,} customer/currency pairs: "
        + ("HOLD" if not broken else f"BROKEN for {broken[:5]}")
    )
    return text, not broken


if __name__ == "__main__":
    raise SystemExit(main())
