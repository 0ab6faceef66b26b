"""Fixtures of the integration tier that need more than a broker (the broker ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterstream import cluster
from meterstream.kafka_local import free_port
from meterstream.paths import jar_dir


@pytest.fixture
def flink_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[cluster.ClusterInfo]:
    """A standalone cluster of the test's own: own ports, own var dir (METERSTREAM_CACHE: checkpoints, savepoints,
    logs), jars shared with the checkout; shut down whatever happens, its log tail printed (shown on failure)."""
    yield from _own_cluster(tmp_path, monkeypatch, taskmanagers=1)


@pytest.fixture
def flink_cluster_two_taskmanagers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[cluster.ClusterInfo]:
    """As `flink_cluster`, with two TaskManagers (2 slots each): a job above parallelism 2 spans both."""
    yield from _own_cluster(tmp_path, monkeypatch, taskmanagers=2)


def _own_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
                 taskmanagers: int) -> Iterator[cluster.ClusterInfo]:
    jar_dir().mkdir(parents=True, exist_ok=True)  # resolved (or built) once in the real cache
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "jars").symlink_to(jar_dir().resolve())
    monkeypatch.setenv("METERSTREAM_CACHE", str(cache))
    home = cache / "var" / "cluster"
    try:
        for attempt in range(3):
            ports = [free_port() for _ in range(3)]
            metrics_port = next(p for p in (free_port() for _ in range(20))
                                if not {p, *range(p + 1, p + 1 + taskmanagers)} & set(ports))
            try:
                info, started = cluster.up(rest_port=ports[0], rpc_port=ports[1], metrics_port=metrics_port,
                                           home=home, taskmanagers=taskmanagers)
                break
            except cluster.ClusterError as exc:  # a port taken between the pick and the start: pick others
                if "are taken" not in str(exc) or attempt == 2:
                    raise
        assert started
        yield info
    finally:
        print(cluster.log_tail(home, lines=30))  # pytest shows it only when the test failed
        cluster.down(home=home)
        assert not any(cluster._alive(p) for pids in cluster._pids(home).values() for p in pids)
