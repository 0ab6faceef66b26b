"""The billing job's start-up checks against real addresses and a real broker (issue 15, item 6): a wrong
`--bootstrap` ends the run within seconds, naming the address, in bounded and unbounded mode; missing topics are
named all at once before any Flink work, or created with `--create-topics`.

Durations are measured and printed; the assertion is a generous bound (45 s) that only a retry loop inside the
Kafka clients (the old behaviour: 254 s unbounded) breaks, never a busy machine."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from meterstream.kafka_local import free_port
from meterstream.topics import delete_topics, missing_topics, produce
from tests.kafka_fixtures import topic_config

pytestmark = pytest.mark.integration

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"
BOUND_S = 45


def start_job(args: list[str], *, timeout_s: float) -> tuple[int, str, str, float]:
    """`python -m jobs.billing ARGS` in a session of its own (a MiniCluster JVM it might start goes with it when the
    test gives up); (exit code, stdout, stderr, seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jobs.billing", "--catalog", str(CATALOG_PATH), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout_s:.0f} s: {args}\n{out[-2000:]}\n{err[-2000:]}")
    return proc.returncode, out, err, time.monotonic() - started


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "unbounded"])
@pytest.mark.parametrize("address", ["nothing-listening", "unresolvable"])
def test_a_wrong_bootstrap_fails_fast_naming_the_address(address, bounded):
    bootstrap = f"127.0.0.1:{free_port()}" if address == "nothing-listening" else "no-such-broker.invalid:9092"
    args = ["--bootstrap", bootstrap, *(["--bounded"] if bounded else [])]
    code, out, err, seconds = start_job(args, timeout_s=120)
    print(f"--bootstrap {bootstrap} ({'bounded' if bounded else 'unbounded'}): exit {code} after {seconds:.1f} s")
    assert code != 0
    assert f"--bootstrap {bootstrap}: no Kafka broker answers at {bootstrap}" in err, err[-3000:]
    assert "Traceback" not in err
    assert seconds < BOUND_S


def test_missing_topics_are_named_at_once_then_created_on_request(kafka_bootstrap, kafka_topic):
    usage = kafka_topic("usage", partitions=1)
    existing = {"usage_events": usage, "dead_letters": kafka_topic("dead"), "line_items": kafka_topic("lines"),
                "accounting": kafka_topic("acct"), "credit_grants": kafka_topic("grants"),
                "invoices": kafka_topic("invoices")}
    suffix = uuid.uuid4().hex[:10]
    absent = {name: f"absent-{name.replace('_', '-')}-{suffix}" for name in
              ("late_events", "spend_caps", "credit_drawdowns", "billing_alerts", "credit_grant_dead_letters")}
    topics = {**existing, **absent}
    args = ["--bootstrap", kafka_bootstrap, "--bounded", "--credits", "--parallelism", "1",
            "--reference-time", "2026-11-01T04:30:00Z", "--checkpoint-interval-ms", "1000",
            *[arg for name, topic in topics.items() for arg in (f"--topic-{name.replace('_', '-')}", topic)]]
    try:
        # One valid event: the run that creates the topics must bill it (the topics it made are usable).
        produce(kafka_bootstrap, usage, [b'{"event_id": "e1", "tenant_id": "acme-ai", "customer_id": "c1", '
                                         b'"meter": "requests", "timestamp": "2026-11-01T04:00:00Z"}'])
        code, out, err, seconds = start_job(args, timeout_s=120)
        print(f"missing topics: exit {code} after {seconds:.1f} s")
        assert code == 1
        message = err.strip().splitlines()[-1]
        assert message.startswith(f"missing Kafka topics at {kafka_bootstrap}: {', '.join(absent.values())}.")
        assert not any(topic in message for topic in existing.values())
        assert "--create-topics" in message
        assert seconds < BOUND_S
        assert missing_topics(kafka_bootstrap, absent.values()) == list(absent.values()), "nothing was created"

        code, out, err, _ = start_job([*args, "--create-topics"], timeout_s=300)
        assert code == 0, out[-3000:] + err[-3000:]
        assert f"created topics {', '.join(absent.values())} (1 partitions each)" in out
        assert missing_topics(kafka_bootstrap, topics.values()) == []
        # The outputs it created stamp records at append (retention counts from the write); inputs keep the defaults.
        assert topic_config(kafka_bootstrap, absent["credit_drawdowns"])["message.timestamp.type"] == "LogAppendTime"
        assert topic_config(kafka_bootstrap, absent["spend_caps"])["message.timestamp.type"] == "CreateTime"
        assert re.search(r"billed on time \(windowed\) +1\n", out), out
    finally:
        delete_topics(kafka_bootstrap, absent.values())
