"""Kafka sources and sinks for the DataStream API, configured the one way billing output needs.

Sinks are exactly-once with a transactional-id prefix derived from the job name and sink name: it must stay the
same across restarts so that a restored job can abort or commit its own lingering transactions.
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


def string_source(bootstrap: str, topics: list[str], *, group_id: str, bounded: bool) -> KafkaSource:
    return _source_builder(bootstrap, topics, group_id=group_id, bounded=bounded).set_value_only_deserializer(
        SimpleStringSchema()).build()


def java_deserializer_source(bootstrap: str, topics: list[str], j_deserializer, *, group_id: str,
                             bounded: bool) -> KafkaSource:
    """A source whose records a Java `KafkaRecordDeserializationSchema` of ours turns into rows (the billing job's
    usage events); PyFlink's builder only takes its own schema wrappers, so the Java builder gets it directly."""
    builder = _source_builder(bootstrap, topics, group_id=group_id, bounded=bounded)
    builder._j_builder.setDeserializer(j_deserializer)
    return builder.build()


def _source_builder(bootstrap: str, topics: list[str], *, group_id: str, bounded: bool):
    """From the earliest offset (or the checkpointed ones), committed records only; bounded: up to the offsets at
    start."""
    builder = (
        KafkaSource.builder()
        .set_bootstrap_servers(bootstrap)
        .set_topics(*topics)
        .set_group_id(group_id)
        .set_starting_offsets(KafkaOffsetsInitializer.earliest())
        .set_property("isolation.level", "read_committed")
    )
    if bounded:
        builder = builder.set_bounded(KafkaOffsetsInitializer.latest())
    return builder


def exactly_once_string_sink(bootstrap: str, topic: str, *, transactional_id_prefix: str) -> KafkaSink:
    builder = (
        KafkaSink.builder()
        .set_bootstrap_servers(bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(topic)
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix(transactional_id_prefix)
        .set_property("transaction.timeout.ms", str(SINK_TRANSACTION_TIMEOUT_MS))
    )
    for key, value in SINK_PRODUCER_PROPERTIES.items():
        builder = builder.set_property(key, value)
    return builder.build()
