"""`jobs.runtime.start_local_jvm`: the local JVM gets LOCAL_JVM_OPTIONS through JVM_ARGS for its launch only.

PyFlink's launcher is replaced by a recorder here: no JVM starts in this tier.
"""

from __future__ import annotations

import os

import pytest
from pyflink import java_gateway

from jobs import runtime


@pytest.fixture
def launches(monkeypatch):
    """The JVM_ARGS each launch would have seen; no gateway runs, none is left behind."""
    seen: list[str | None] = []

    def launch():
        seen.append(os.environ.get("JVM_ARGS"))
        java_gateway._gateway = object()
        return java_gateway._gateway

    monkeypatch.setattr(java_gateway, "_gateway", None)
    monkeypatch.setattr(java_gateway, "get_gateway", launch)
    monkeypatch.delenv("PYFLINK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(runtime, "expose_environment_to_embedded_python", lambda: None)
    return seen


def test_the_launch_gets_the_local_options_and_the_variable_goes_away_after(launches, monkeypatch):
    monkeypatch.delenv("JVM_ARGS", raising=False)
    runtime.start_local_jvm()
    assert launches == [" ".join(runtime.LOCAL_JVM_OPTIONS)]
    assert "JVM_ARGS" not in os.environ


def test_a_users_jvm_args_come_last_so_they_win_and_are_restored(launches, monkeypatch):
    monkeypatch.setenv("JVM_ARGS", "-XX:+UseG1GC -Xmx2g")
    runtime.start_local_jvm()
    assert launches == [" ".join([*runtime.LOCAL_JVM_OPTIONS, "-XX:+UseG1GC -Xmx2g"])]
    assert os.environ["JVM_ARGS"] == "-XX:+UseG1GC -Xmx2g"


def test_a_running_jvm_or_flink_run_is_left_alone(launches, monkeypatch):
    runtime.start_local_jvm()
    runtime.start_local_jvm()  # already running: no second launch
    assert len(launches) == 1
    monkeypatch.setattr(java_gateway, "_gateway", None)
    monkeypatch.setenv("PYFLINK_GATEWAY_PORT", "12345")  # under `flink run` the client's JVM is there already
    runtime.start_local_jvm()
    assert len(launches) == 1
