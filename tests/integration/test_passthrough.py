"""The first real job end to end: 10,000 JSON records through Kafka -> PyFlink (MiniCluster) -> Kafka."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meterstream.topics import produce, read_committed

pytestmark = pytest.mark.integration

RECORDS = 10_000


@pytest.mark.parametrize("parallelism", [1, 2])
def test_every_record_arrives_once_and_intact(kafka_bootstrap, kafka_topic, parallelism):
    source, sink = kafka_topic("passthrough-in", partitions=2), kafka_topic("passthrough-out", partitions=2)
    sent = [
        json.dumps({"seq": i, "payload": "ü-" * (i % 7), "tenant": f"t{i % 3}"}).encode() for i in range(RECORDS)
    ]
    produce(kafka_bootstrap, source, sent)

    run = subprocess.run(
        [sys.executable, "-m", "jobs.passthrough", "--bootstrap", kafka_bootstrap, "--input", source,
         "--output", sink, "--bounded", "--parallelism", str(parallelism)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]

    received = [json.loads(value) for value in read_committed(kafka_bootstrap, sink)]
    assert len(received) == RECORDS, "every record exactly once"
    by_seq = {record["seq"]: record for record in received}
    assert by_seq == {json.loads(value)["seq"]: json.loads(value) for value in sent}, "records intact"
