"""Output topics this project creates keep what is written to them, whatever timestamp the writer put on it:
time-based retention counts a record's age from its timestamp, so a record stamped with the event time of a replay
of old data would be deleted at the broker's next retention check after it was written."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from meterstream.topics import (
    OUTPUT_TOPIC_CONFIG,
    broker_configs,
    create_topics,
    delete_topics,
    new_consumer,
    new_producer,
    read_committed_records,
    topic_partitions,
)
from tests.kafka_fixtures import topic_config

pytestmark = pytest.mark.integration

LOG_APPEND_TIME = 1  # kafka-python's ConsumerRecord.timestamp_type
WEEK_MS = 7 * 24 * 3600 * 1000


def beginning_offset(bootstrap: str, topic: str) -> int:
    consumer = new_consumer(bootstrap, enable_auto_commit=False)
    try:
        (partition,) = topic_partitions(consumer, topic)
        return consumer.beginning_offsets([partition])[partition]
    finally:
        consumer.close()


def test_a_record_stamped_40_days_ago_survives_retention_on_an_output_topic(kafka_bootstrap):
    """The same record, stamped 40 days ago, into an output topic as the project creates it and into a topic with
    the broker's defaults, both with a week's retention: once the broker's retention check has deleted it from the
    second, it is still in the first."""
    suffix = f"{time.time_ns():x}"
    output, control = f"retention-output-{suffix}", f"retention-control-{suffix}"
    week = {"retention.ms": str(WEEK_MS)}
    create_topics(kafka_bootstrap, [output, control], partitions=1,
                  configs={output: {**OUTPUT_TOPIC_CONFIG, **week}, control: week})
    try:
        assert topic_config(kafka_bootstrap, output)["message.timestamp.type"] == "LogAppendTime"
        assert topic_config(kafka_bootstrap, control)["message.timestamp.type"] == "CreateTime"
        stamped = int((datetime.now(UTC) - timedelta(days=40)).timestamp() * 1000)
        producer = new_producer(kafka_bootstrap, acks="all")
        try:
            written_ms = int(time.time() * 1000)
            for topic in (output, control):
                producer.send(topic, value=b'{"line_item_id": "replayed"}', timestamp_ms=stamped)
            producer.flush()
        finally:
            producer.close()

        interval_ms = int(next(iter(broker_configs(kafka_bootstrap, ["log.retention.check.interval.ms"]).values()))[
            "log.retention.check.interval.ms"])
        # Wait for the broker's retention check (not a timing assertion: the deadline only bounds a broken broker).
        deadline = time.monotonic() + 3 * interval_ms / 1000 + 60
        while beginning_offset(kafka_bootstrap, control) == 0:
            assert time.monotonic() < deadline, f"no retention check deleted the control record ({interval_ms=})"
            time.sleep(0.5)

        assert beginning_offset(kafka_bootstrap, output) == 0
        (kept,) = read_committed_records(kafka_bootstrap, output)
        assert kept.value == b'{"line_item_id": "replayed"}'
        assert kept.timestamp_type == LOG_APPEND_TIME and kept.timestamp >= written_ms
    finally:
        delete_topics(kafka_bootstrap, [output, control])
