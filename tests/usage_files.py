"""File stand-in for the `usage-events` topic in job tests: `file_parsed_usage`, a `jobs.billing.ParsedUsage` made
from a file of raw records instead of Kafka (test support: production never reads usage from a file, so the job
modules do not carry it). It adds no parsing of its own: each line goes through the engine's
`io.meterstream.validation.UsageFileLines`, which builds its row with the Kafka deserializer's `UsageRows`, and event
time and watermarks come from `jobs.billing.usage_watermarks`, so a job test parses and judges lateness as production
does (`tests/job/test_billing_job.py` checks the wiring; JUnit `UsageFileLinesTest` the rows)."""

from __future__ import annotations

from pyflink.datastream import StreamExecutionEnvironment

from jobs.billing import BillingSettings, ParsedUsage, internal_type_info, usage_row_type, usage_watermarks
from jobs.java_interop import BOXED_LONG, LONG, STRING, TYPE_INFORMATION, java_static

# The Java map from a line of a file to a row of `usage_parsed` (in the engine jar, beside the Kafka deserializer whose
# `UsageRows` it shares).
USAGE_FILE_LINES_CLASS = "io.meterstream.validation.UsageFileLines"
# The test-only top-level field of a usage record that stands in for a Kafka record timestamp in a file
# (`io.meterstream.validation.UsageFileLines.INGESTED_FIELD`).
INGESTED_FIELD = "_ingested_ms"


def file_parsed_usage(env: StreamExecutionEnvironment, settings: BillingSettings, *, path: str,
                      topic: str = "usage-events", monitor_interval_ms: int | None = None) -> ParsedUsage:
    """The job tests' stand-in for `jobs.billing.kafka_parsed_usage`: one raw usage record per line of the file
    `path` (or, with `monitor_interval_ms`, of every file that appears in the directory `path`: a test feeds it in
    stages), parsed into the same rows by the Kafka deserializer's code (`io.meterstream.validation.UsageFileLines`,
    sharing `UsageRows`), then event time and watermarks from the same strategy (`jobs.billing.usage_watermarks`).

    Lines are read as ISO-8859-1 text, one char per byte, so every record reaches the parser as the bytes in the
    file (invalid UTF-8 included); Flink's line format ends a line at `\\n`, `\\r\\n` or a lone `\\r`. A file has no
    offsets or record timestamps: every record is partition 0, offset 0 of `topic` (the job tests identify records
    by content), and its ingestion time (`src_timestamp`) is its top-level field `_ingested_ms` where a test sets
    one, else NULL: then no customer is ever idle and nothing caps the clock. The file is read, parsed and given
    watermarks at parallelism 1 (one partition's stream); the job's operators after it run at the job's.
    """
    from pyflink.common import Duration
    from pyflink.common.watermark_strategy import WatermarkStrategy
    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat

    builder = FileSource.for_record_stream_format(StreamFormat.text_line_format("ISO-8859-1"), path)
    if monitor_interval_ms is not None:
        builder = builder.monitor_continuously(Duration.of_millis(monitor_interval_ms))
    # One reader, like one partition: at parallelism 2 a second reader would have no split and hold the watermark
    # back until Flink declared it idle, so which records are late would depend on how fast that happened.
    lines = env.from_source(builder.build(), WatermarkStrategy.no_watermarks(), "usage-file").set_parallelism(1)
    row_type = usage_row_type()
    parse = java_static(
        USAGE_FILE_LINES_CLASS, "create", (STRING, settings.java_catalog_json),
        (BOXED_LONG, settings.reference_now_ms), (LONG, settings.max_age_ms), (LONG, settings.max_future_ms),
        (STRING, topic), (TYPE_INFORMATION, internal_type_info(row_type)))
    parsed = lines._j_data_stream.map(parse).setParallelism(1).name("parse-usage-lines")
    with_watermarks = parsed.assignTimestampsAndWatermarks(usage_watermarks(settings, row_type)).setParallelism(1)
    return ParsedUsage(with_watermarks.name("usage-watermarks"), row_type)
