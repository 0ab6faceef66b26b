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


def topic_partitions(consumer, topic: str) -> list:
    """The topic's partitions, in order; `ValueError` when the topic does not exist."""
    from kafka import TopicPartition

    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        raise ValueError(f"topic {topic!r} does not exist")
    return partitions


def read_committed(bootstrap_servers: str, topic: str, *, stall_timeout_ms: int = 30_000) -> list[bytes]:
    """Every record of a topic committed when the call starts, as a downstream billing consumer sees it
    (`read_committed`).

    Reads each partition from its beginning up to its last stable offset at the start: the snapshot a check after a
    finished job wants, without waiting out an idle timeout at the end. Raises `TimeoutError` when no partition
    advances for `stall_timeout_ms` (a broker that stopped answering).
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        partitions = topic_partitions(consumer, topic)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # Under read_committed the end offset is the last stable offset: past every decided transaction.
        end = consumer.end_offsets(partitions)
        values: list[bytes] = []
        last_progress = time.monotonic()
        while behind := [tp for tp in partitions if consumer.position(tp) < end[tp]]:
            batches = consumer.poll(timeout_ms=500, max_records=100_000)
            if any(batches.values()):
                last_progress = time.monotonic()
            for records in batches.values():
                values.extend(record.value for record in records)
            if time.monotonic() - last_progress > stall_timeout_ms / 1000:
                raise TimeoutError(f"reading {topic!r}: no progress for {stall_timeout_ms} ms on {behind}")
        return values
    finally:
        consumer.close()


def topic_record_count(bootstrap_servers: str, topic: str) -> int:
    """Records currently in a topic (end offset - beginning offset, summed over partitions).

    Exact for topics written without transactions (transaction markers take offsets too): the count a bounded
    replay of the topic must account for.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = topic_partitions(consumer, topic)
        begin, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        consumer.close()


class BrokerUnreachable(ConnectionError):
    """No Kafka broker answered at a bootstrap address in the time allowed (nothing listening, a name that does not
    resolve, a firewall)."""


def missing_topics(bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 15.0) -> list[str]:
    """The `names` that are not topics of the cluster at `bootstrap_servers`, in order, each once.

    A start-up check: raises `BrokerUnreachable`, naming the address, when no broker answers within about
    `timeout_s` (kafka-python's bootstrap timeout, then one metadata request bounded the same way), instead of the
    clients' minutes of retries.
    """
    timeout_ms = max(1, int(timeout_s * 1000))
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="meterstream-check",
                                 bootstrap_timeout_ms=timeout_ms, request_timeout_ms=timeout_ms)
    except (KafkaError, OSError, ValueError) as exc:
        raise BrokerUnreachable(
            f"no Kafka broker answers at {bootstrap_servers} within {timeout_s:g} s ({exc})") from None
    try:
        existing = set(admin.list_topics())
    except KafkaError as exc:
        raise BrokerUnreachable(f"the Kafka broker at {bootstrap_servers} did not list its topics: {exc}") from None
    finally:
        admin.close()
    return [name for name in dict.fromkeys(names) if name not in existing]
