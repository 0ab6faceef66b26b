"""`meterstream demo`: everything end to end on the embedded default, printing what happened."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

from meterstream import kafka_local
from meterstream.topics import create_topics, produce, read_committed


def _sample_records(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    tenants = ["acme-ai", "bolt-ml", "cirrus-gpu"]
    return [
        json.dumps({
            "event_id": f"evt-{i}",
            "tenant_id": rng.choice(tenants),
            "customer_id": f"cust-{rng.randrange(100)}",
            "meter": "input_tokens",
            "timestamp": 1_764_000_000_000 + i,
            "value": str(rng.randrange(1, 5000)),
        }).encode()
        for i in range(count)
    ]


def run_demo(*, events: int, parallelism: int, keep_broker: bool) -> int:
    started = time.monotonic()
    info, started_now = kafka_local.up()
    print(f"[demo] Kafka at {info.bootstrap_servers} ({'started' if started_now else 'already running'})")
    try:
        suffix = str(int(time.time()))
        source, sink = f"demo-in-{suffix}", f"demo-out-{suffix}"
        create_topics(info.bootstrap_servers, [source, sink], partitions=2)
        produced = produce(info.bootstrap_servers, source, _sample_records(events))
        print(f"[demo] produced {produced} records to {source}")
        run = subprocess.run(
            [sys.executable, "-m", "jobs.passthrough", "--bootstrap", info.bootstrap_servers, "--input", source,
             "--output", sink, "--bounded", "--parallelism", str(parallelism)],
        )
        if run.returncode != 0:
            print("[demo] the job failed", file=sys.stderr)
            return run.returncode
        received = read_committed(info.bootstrap_servers, sink, idle_timeout_ms=5_000)
        print(f"[demo] {sink} holds {len(received)} committed records (read_committed); input had {produced}")
        print(f"[demo] done in {time.monotonic() - started:.1f} s")
        return 0 if len(received) == produced else 1
    finally:
        if not keep_broker and started_now:
            kafka_local.down()
            print("[demo] Kafka stopped")
