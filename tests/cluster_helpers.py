"""Helpers for the tests that drive the standalone Flink cluster (`meterstream.cluster`)."""

from __future__ import annotations

import time

from meterstream.cluster import ClusterError, job_state


def wait_job_state(jobmanager: str, job_id: str, states: set[str], *, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        state = job_state(jobmanager, job_id)
        if state in states:
            return state
        time.sleep(0.5)
    raise ClusterError(f"job {job_id} is {state}, not {sorted(states)}, after {timeout_s:.0f} s")
