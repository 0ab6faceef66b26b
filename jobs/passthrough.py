"""The smallest real job: Kafka topic -> trivial transform -> Kafka topic, exactly-once.

It proves the toolchain (connector jar, Python in the MiniCluster, transactional sink) before billing is built on
it. The transform removes surrounding whitespace from each record: the payload itself must arrive intact.

    python -m jobs.passthrough --bootstrap 127.0.0.1:9092 --input in --output out --bounded
"""

from __future__ import annotations

import argparse
import time

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import DataStream, StreamExecutionEnvironment

from jobs import uids
from jobs.kafka_io import SinkSettingsError, check_sink_settings, exactly_once_string_sink, string_source
from jobs.runtime import DEFAULT_CHECKPOINT_INTERVAL_MS, JobFailed, execute, main_args, stream_environment
from meterstream.kafka_security import add_properties_argument, use_or_exit

JOB_NAME = "meterstream-passthrough"


def normalise_record(record: str) -> str:
    return record.strip()


def build_pipeline(records: DataStream) -> DataStream:
    """The transform alone, so a test can feed a bounded collection and collect the result."""
    return records.map(normalise_record, output_type=Types.STRING()).name("normalise").uid(uids.PASSTHROUGH_TRANSFORM)


def wire_kafka(env: StreamExecutionEnvironment, source, sink) -> None:
    records = env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka-input").uid(uids.PASSTHROUGH_SOURCE)
    build_pipeline(records).sink_to(sink).name("kafka-output").uid(uids.PASSTHROUGH_SINK)


def run(bootstrap: str, input_topic: str, output_topic: str, *, bounded: bool, parallelism: int = 1) -> float:
    """Run to completion (bounded) or forever; returns the wall time in seconds. A failed job raises
    `jobs.runtime.JobFailed` once its root cause is printed on stdout."""
    env = stream_environment(parallelism=parallelism)
    source = string_source(bootstrap, [input_topic], group_id=JOB_NAME, bounded=bounded)
    sink = exactly_once_string_sink(bootstrap, output_topic, transactional_id_prefix=f"{JOB_NAME}-{output_topic}")
    wire_kafka(env, source, sink)
    started = time.monotonic()
    execute(env, JOB_NAME)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # flags spelled out: no prefix stands for a flag
    parser.add_argument("--bootstrap", required=True)
    add_properties_argument(parser)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--bounded", action="store_true", help="stop at the offsets that were latest at start")
    parser.add_argument("--parallelism", type=int, default=1)
    args = parser.parse_args(main_args(argv))
    use_or_exit(args.kafka_properties, what=JOB_NAME)
    try:
        check_sink_settings(args.bootstrap, checkpoint_interval_ms=DEFAULT_CHECKPOINT_INTERVAL_MS)
    except SinkSettingsError as exc:
        raise SystemExit(f"{JOB_NAME}: cannot start: {exc}") from None
    try:
        seconds = run(args.bootstrap, args.input, args.output, bounded=args.bounded, parallelism=args.parallelism)
    except JobFailed:
        return 1  # the root cause is on stdout already
    print(f"{JOB_NAME}: finished in {seconds:.1f} s ({args.input} -> {args.output})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
