"""Kafka sources and sinks for the DataStream API, configured the one way billing output needs.

Sinks are exactly-once with a transactional-id prefix derived from the job name and sink name: it must stay the
same across restarts so that a restored job can abort or commit its own lingering transactions. Their records carry
the time they were written (the producer's wall clock), never event time: see `exactly_once_string_sink`.

Every source and sink gets the process's Kafka security settings as Java client properties
(`meterstream.kafka_security.active().flink_properties()`: empty for PLAINTEXT), the same settings the kafka-python
clients of the start-up checks use; the job's `--kafka-properties FILE` sets them.
"""

from __future__ import annotations

from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)

from jobs.java_interop import BOOLEAN, java_new
from meterstream.kafka_security import active as kafka_security

# Below the broker's transaction.max.timeout.ms, above the longest checkpoint plus recovery we expect.
SINK_TRANSACTION_TIMEOUT_MS = 15 * 60 * 1000
# How the sinks batch and compress. The billing job's output is about 60 % of its input in bytes (a 640-byte line
# item per window and series: 0.75M line items, 490 MB, for the 5M-event benchmark), and uncompressed 16 KiB
# batches made the producers and the broker (on the same 2 cores) spend ~10 CPU-s per 5M events on it. lz4 batches
# of up to 256 KiB: JSON compresses several-fold for little CPU, and any Kafka client reads lz4 (kafka-python with
# the `lz4` package, a dependency here). linger.ms adds at most 20 ms to output that waits for the next
# checkpoint's commit (seconds) anyway.
SINK_PRODUCER_PROPERTIES = {
    "compression.type": "lz4",
    "batch.size": str(256 * 1024),
    "linger.ms": "20",
}


class SinkSettingsError(ValueError):
    """Settings under which the exactly-once sinks cannot work; the message names them."""


def sink_setting_problems(*, checkpoint_interval_ms: int,
                          broker_transaction_max_timeout_ms: dict[int, int | None]) -> list[str]:
    """What in these settings keeps the exactly-once sinks from working (empty: nothing).

    A sink's transaction stays open from its first record after a checkpoint until the next checkpoint commits it:
    the checkpoint interval must stay below the transaction timeout, or the broker aborts every transaction before
    its commit and the job fails on restart after restart. A broker refuses a producer whose transaction timeout
    exceeds its `transaction.max.timeout.ms` (15 min by default) as soon as the sink starts.
    """
    problems = []
    if checkpoint_interval_ms >= SINK_TRANSACTION_TIMEOUT_MS:
        problems.append(
            f"--checkpoint-interval-ms {checkpoint_interval_ms} is not below the Kafka sinks' transaction.timeout.ms "
            f"({SINK_TRANSACTION_TIMEOUT_MS} ms): the broker would abort each transaction before its checkpoint "
            "commits it")
    for broker_id, maximum in sorted(broker_transaction_max_timeout_ms.items()):
        if maximum is not None and maximum < SINK_TRANSACTION_TIMEOUT_MS:
            problems.append(
                f"broker {broker_id} has transaction.max.timeout.ms={maximum}, below the Kafka sinks' "
                f"transaction.timeout.ms ({SINK_TRANSACTION_TIMEOUT_MS} ms): it would refuse their transactions; "
                f"raise it to at least {SINK_TRANSACTION_TIMEOUT_MS}")
    return problems


def check_sink_settings(bootstrap: str, *, checkpoint_interval_ms: int) -> None:
    """Before the job starts: the brokers' configuration (admin client) against the sinks' settings; raises
    `SinkSettingsError` naming every setting that cannot work."""
    from kafka.errors import KafkaError

    from meterstream.topics import broker_configs

    try:
        # Within the 30 s an operator waits for a wrong --bootstrap to be named.
        configs = broker_configs(bootstrap, ["transaction.max.timeout.ms"], timeout=15)
    except (KafkaError, ConnectionError) as exc:  # ConnectionError: topics.BrokerUnreachable
        raise SinkSettingsError(f"cannot read the broker configuration at --bootstrap {bootstrap}: {exc!r}") from exc
    maxima = {broker_id: None if values["transaction.max.timeout.ms"] is None
              else int(values["transaction.max.timeout.ms"]) for broker_id, values in configs.items()}
    problems = sink_setting_problems(checkpoint_interval_ms=checkpoint_interval_ms,
                                     broker_transaction_max_timeout_ms=maxima)
    if problems:
        raise SinkSettingsError("; ".join(problems))


def string_source(bootstrap: str, topics: list[str], *, group_id: str, bounded: bool) -> KafkaSource:
    return _source_builder(bootstrap, topics, group_id=group_id, bounded=bounded).set_value_only_deserializer(
        SimpleStringSchema()).build()


def java_deserializer_source(bootstrap: str, topics: list[str], j_deserializer, *, group_id: str,
                             bounded: bool, topic_pattern: str | None = None,
                             discovery_interval_ms: int | None = None) -> KafkaSource:
    """A source whose records a Java `KafkaRecordDeserializationSchema` of ours turns into rows (the billing job's
    usage events); PyFlink's builder only takes its own schema wrappers, so the Java builder gets it directly.

    `topic_pattern` (a Java regular expression; then `topics` must be empty): subscribe to every topic whose whole
    name matches it, the tenant topics of `--usage-topic-prefix`. Topics and partitions created later are picked up
    by the connector's partition discovery every `discovery_interval_ms` (unbounded only: a bounded source reads the
    topics that match when it starts, the connector turns discovery off)."""
    builder = _source_builder(bootstrap, topics, group_id=group_id, bounded=bounded, topic_pattern=topic_pattern)
    if discovery_interval_ms is not None and not bounded:
        builder = builder.set_property("partition.discovery.interval.ms", str(discovery_interval_ms))
    builder._j_builder.setDeserializer(j_deserializer)
    return builder.build()


def _source_builder(bootstrap: str, topics: list[str], *, group_id: str, bounded: bool,
                    topic_pattern: str | None = None):
    """From the earliest offset (or the checkpointed ones), committed records only; bounded: up to the offsets at
    start."""
    if (topic_pattern is None) == (not topics):
        raise ValueError("a Kafka source reads either topics or a topic pattern")
    builder = KafkaSource.builder().set_bootstrap_servers(bootstrap)
    builder = builder.set_topics(*topics) if topic_pattern is None else builder.set_topic_pattern(topic_pattern)
    builder = (
        builder
        .set_group_id(group_id)
        .set_starting_offsets(KafkaOffsetsInitializer.earliest())
        .set_property("isolation.level", "read_committed")
    )
    for key, value in kafka_security().flink_properties().items():
        builder = builder.set_property(key, value)
    if bounded:
        builder = builder.set_bounded(KafkaOffsetsInitializer.latest())
    return builder


# Wraps a record serializer so that records carry no element timestamp (the producer stamps them at send).
WRITE_TIME_SERIALIZER_CLASS = "io.meterstream.sink.WriteTimeSerializer"
RECORD_SERIALIZATION_SCHEMA_CLASS = "org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema"


def exactly_once_string_sink(bootstrap: str, topic: str, *, transactional_id_prefix: str,
                             keyed_by_customer: bool = False) -> KafkaSink:
    """An exactly-once sink of strings into `topic`, its records stamped with the wall clock at write time;
    `keyed_by_customer`: each record (JSON with `tenant_id` and `customer_id`) keyed by its customer, so that one
    customer's records share a partition and a consumer reads them in the order the job wrote them.

    Flink's record serializer stamps each Kafka record with the element's timestamp, which is event time for line
    items (their window's last millisecond) and the drawdowns and alerts they cause. Kafka refuses records stamped
    more than `message.timestamp.after.max.ms` (1 h by default) ahead of its clock, and time-based retention counts
    a record's age from its timestamp: a future event failed the sink, and a replay's output could be deleted as
    soon as it was written. `io.meterstream.sink.WriteTimeSerializer` (`engine/`) drops the timestamp, so the
    producer stamps each record when it sends it; the contract's event time stays in the payload.
    """
    record_serializer = (
        KafkaRecordSerializationSchema.builder()
        .set_topic(topic)
        .set_value_serialization_schema(SimpleStringSchema())
        .build()
    )
    builder = (
        KafkaSink.builder()
        .set_bootstrap_servers(bootstrap)
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix(transactional_id_prefix)
        .set_property("transaction.timeout.ms", str(SINK_TRANSACTION_TIMEOUT_MS))
    )
    # PyFlink's set_record_serializer only takes its own builder's schema; the Java builder takes the wrapper (a
    # class of our jar).
    wrapper = java_new(WRITE_TIME_SERIALIZER_CLASS,
                       (RECORD_SERIALIZATION_SCHEMA_CLASS, record_serializer._j_serialization_schema),
                       (BOOLEAN, keyed_by_customer))
    builder._j_builder.setRecordSerializer(wrapper)
    for key, value in {**SINK_PRODUCER_PROPERTIES, **kafka_security().flink_properties()}.items():
        builder = builder.set_property(key, value)
    return builder.build()
