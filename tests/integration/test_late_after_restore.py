"""A window that fired before a failure stays closed after the restore.

Flink does not checkpoint watermarks: a restored job starts without one. The billing job must still treat an event
whose window fired before the failure as late (the window's line item was already committed): billed as a late
adjustment of that window, with its own id, written to the `usage-late-events` audit trail, and never billed into a
second usage line item with the same id. Here the job is killed right after that line item was
committed; the late event is the first record the restored job reads.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from meterstream.chaos import (
    INPUT_TOPICS,
    OUTPUT_TOPICS,
    await_commits,
    job_command,
    kill_process_group,
    latest_checkpoint,
    retained_checkpoints_conf,
)
from meterstream.topics import create_topics, job_topic_configs, new_producer, read_committed

pytestmark = pytest.mark.integration

DAY = "2026-11-02T"
CUSTOMER = "c-restore"
FIRED_WINDOW_START = f"{DAY}10:00:00.000Z"


def usage(event_id: str, at: str, tokens: int) -> bytes:
    return json.dumps({"event_id": event_id, "tenant_id": "acme-ai", "customer_id": CUSTOMER,
                       "meter": "requests", "timestamp": f"{DAY}{at}Z", "value": str(tokens)}).encode()


def produce(bootstrap: str, topic: str, records: list[bytes]) -> None:
    producer = new_producer(bootstrap, acks="all")
    try:
        for record in records:
            producer.send(topic, record)
        producer.flush()
    finally:
        producer.close()


def committed(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(v) for v in read_committed(bootstrap, topic)]


def wait_until(condition, proc: subprocess.Popen, log: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the job ended ({proc.returncode}): {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out: {log.read_text()[-3000:]}"
        time.sleep(1)


def test_an_event_for_a_window_fired_before_the_failure_is_routed_late(kafka_bootstrap, tmp_path):
    run_id = f"late-restore-{uuid.uuid4().hex[:8]}"
    topics = {name: f"{run_id}-{name.replace('_', '-')}" for name in (*INPUT_TOPICS, *OUTPUT_TOPICS)}
    create_topics(kafka_bootstrap, topics.values(), partitions=1, configs=job_topic_configs(topics))
    checkpoints = tmp_path / "checkpoints"
    command = job_command(kafka_bootstrap, topics, job_name=run_id, run_id=run_id,
                          reference_time=f"{DAY}10:30:00+00:00", parallelism=1, checkpoint_interval_ms=1_000,
                          flink_conf={}, bounded=False)

    def start(attempt: int, restore: Path | None) -> tuple[subprocess.Popen, Path]:
        conf = retained_checkpoints_conf(checkpoints)
        if restore is not None:
            conf["execution.state-recovery.path"] = restore.as_uri()
        args = [*command]
        for key, value in conf.items():
            args += ["--flink-conf", f"{key}={value}"]
        log = tmp_path / f"attempt-{attempt}.log"
        with open(log, "wb") as out:
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True), log

    def line_items() -> list[dict]:
        return [r for r in committed(kafka_bootstrap, topics["line_items"]) if r["customer_id"] == CUSTOMER]

    # Before the failure: the 10:00 window (one request) fires once the 10:03 request moves the watermark past it.
    produce(kafka_bootstrap, topics["usage_events"],
            [usage("r-1", "10:00:30.000", 1), usage("r-2", "10:03:00.000", 1)])
    proc, log = start(1, restore=None)
    try:
        wait_until(lambda: any(r["window_start"] == FIRED_WINDOW_START for r in line_items()), proc, log)
        restore_point = latest_checkpoint(checkpoints)  # committed output: its checkpoint has completed
        assert restore_point is not None
    finally:
        kill_process_group(proc)

    # After the restore: first a request for the fired window, then one that moves the watermark far ahead.
    produce(kafka_bootstrap, topics["usage_events"],
            [usage("r-late", "10:00:45.000", 1), usage("r-3", "10:09:00.000", 1)])
    proc, log = start(2, restore=restore_point)  # the checkpoint that committed it
    try:
        wait_until(lambda: any(r["window_start"] == f"{DAY}10:03:00.000Z" for r in line_items()), proc, log)
        # The late-events sink commits on its own: the line item's commit does not imply it.
        assert await_commits(checkpoints, proc), log.read_text()[-3000:]
    finally:
        kill_process_group(proc)

    items = line_items()
    ids = [r["line_item_id"] for r in items]
    assert len(ids) == len(set(ids)), f"a line item was emitted twice: {items}"
    fired = [r for r in items if r["window_start"] == FIRED_WINDOW_START]
    assert sorted((r["kind"], r["event_count"]) for r in fired) == [("late_adjustment", 1), ("usage", 1)], fired
    usage_line, adjustment = (next(r for r in fired if r["kind"] == kind) for kind in ("usage", "late_adjustment"))
    assert adjustment["adjusts_line_item_id"] == usage_line["line_item_id"]
    late = committed(kafka_bootstrap, topics["late_events"])
    assert [r["event_id"] for r in late] == ["r-late"], late
    assert late[0]["watermark"] >= f"{DAY}10:02:50.000Z"
