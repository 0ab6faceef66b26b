"""Topic administration through kafka-python's admin client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError


def admin_client(bootstrap_servers: str, *, timeout: float = 30.0) -> KafkaAdminClient:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="meterstream-admin")
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def create_topics(bootstrap_servers: str, names: Iterable[str], *, partitions: int = 1) -> None:
    """Create topics that do not exist yet (idempotent)."""
    admin = admin_client(bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1) for name in names if name not in existing]
        if wanted:
            # Another client may have created one meanwhile: the outcome we want either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


def delete_topics(bootstrap_servers: str, names: Iterable[str]) -> None:
    admin = admin_client(bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


def produce(bootstrap_servers: str, topic: str, values: Iterable[bytes], *, keys: Iterable[bytes] | None = None) -> int:
    """Send values (optionally keyed) and wait until the broker acknowledged all; returns the count."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=20, batch_size=256 * 1024, acks="all")
    count = 0
    try:
        key_iter = iter(keys) if keys is not None else None
        for value in values:
            producer.send(topic, value=value, key=next(key_iter) if key_iter is not None else None)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def read_committed(bootstrap_servers: str, topic: str, *, idle_timeout_ms: int = 10_000) -> list[bytes]:
    """Every committed record of a topic, as a downstream billing consumer sees it (`read_committed`).

    Reads from the beginning until no record arrives for `idle_timeout_ms`.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
        consumer_timeout_ms=idle_timeout_ms,
    )
    try:
        return [message.value for message in consumer]
    finally:
        consumer.close()


def topic_record_count(bootstrap_servers: str, topic: str) -> int:
    """Records currently in a topic (end offset - beginning offset, summed over partitions).

    Exact for topics written without transactions (transaction markers take offsets too): the count a bounded
    replay of the topic must account for.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist")
        begin, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        consumer.close()
