"""`meterstream.topics.read_committed` on a real broker: a snapshot up to each partition's last stable offset.

The checks after a job (accounting, credits identities, the demo's summary) rely on it returning exactly the
committed records, at once, even while another producer holds a transaction open on the same topic.
"""

from __future__ import annotations

import uuid

import pytest

from meterstream.topics import new_producer, produce, read_committed

pytestmark = pytest.mark.integration


def test_reads_committed_records_and_stops_at_an_open_transaction(kafka_bootstrap, kafka_topic):
    topic = kafka_topic("read-committed", partitions=2)
    produce(kafka_bootstrap, topic, [b"plain-0", b"plain-1"])
    producer = new_producer(kafka_bootstrap, transactional_id=f"{topic}-tx")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(3):
            producer.send(topic, f"committed-{i}".encode(), partition=i % 2)
        producer.commit_transaction()
        producer.begin_transaction()
        for i in range(2):
            producer.send(topic, f"aborted-{i}".encode(), partition=i % 2)
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(topic, b"open", partition=0)
        producer.flush()  # in the log, its transaction undecided

        # Stops at the open transaction (the last stable offset): reading towards the log's end instead would
        # never get there, and raise TimeoutError after the stall timeout.
        values = read_committed(kafka_bootstrap, topic, stall_timeout_ms=10_000)

        assert sorted(values) == [b"committed-0", b"committed-1", b"committed-2", b"plain-0", b"plain-1"]
        producer.commit_transaction()
    finally:
        producer.close()
    assert b"open" in read_committed(kafka_bootstrap, topic)


def test_a_missing_topic_is_an_error(kafka_bootstrap):
    with pytest.raises(ValueError, match="does not exist"):
        read_committed(kafka_bootstrap, f"no-such-topic-{uuid.uuid4().hex[:10]}")
