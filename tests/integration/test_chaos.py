"""Exactly-once through failures, on a real broker: the billing job (with credits and corrections) killed with SIGKILL
at random points (during start-up, during restore, after a checkpoint) and restarted from its latest retained
checkpoint, and the broker killed (a 30 s outage while a producer keeps writing) and restarted under a running job;
the committed outputs must equal a run without failures and what the workload was made to be, corrections included
(`meterstream.chaos`)."""

from __future__ import annotations

import os
import random

import pytest

from meterstream import kafka_local
from meterstream.chaos import CATALOG, ChaosSpec, run_trial
from meterstream.paths import project_home, var_dir
from udfs.catalog import load_catalog

pytestmark = pytest.mark.integration


def _seed() -> int:
    """Random kill points on every run; the seed is printed so that a failure can be replayed."""
    seed = int(os.environ.get("METERSTREAM_CHAOS_SEED", random.randrange(1_000_000)))
    print(f"chaos seed {seed} (replay: METERSTREAM_CHAOS_SEED={seed})")
    return seed


def _corrections_applied(report, *, every_aggregation: bool = False) -> None:
    """Corrections were applied (the checks compared them with the baseline and the spec); with
    `every_aggregation`, of meters of every aggregation the catalog has."""
    assert report.corrections_applied > 0, report.summary()
    if every_aggregation:
        catalog = load_catalog(project_home() / CATALOG)
        kinds = {meter.aggregation for tenant in catalog.tenants.values() for meter in tenant.meters.values()}
        assert report.corrected_aggregations == kinds, report.summary()


def test_sigkill_at_start_up_restore_and_four_random_points_loses_and_doubles_nothing(kafka_bootstrap):
    report = run_trial(kafka_bootstrap, ChaosSpec(kills=4, startup_kills=1, restore_kills=1, events=30_000,
                                                  seed=_seed()))
    print(report.summary())
    assert report.ok, report.summary()
    assert (report.kills, report.startup_kills, report.restore_kills) == (4, 1, 1)
    assert report.recovery_seconds
    _corrections_applied(report, every_aggregation=True)


def test_broker_killed_for_thirty_seconds_while_producing_and_restarted_under_a_running_job(tmp_path):
    """Its own broker: SIGKILL, 30 s down while the producer keeps writing usage events, back on the same ports and
    data; then a clean restart."""
    broker = kafka_local.start_broker(var_dir() / f"kafka-chaos-test-{os.getpid()}")
    try:
        report = run_trial(broker.bootstrap_servers,
                           ChaosSpec(kills=0, broker_restarts=1, outages=1, outage_seconds=30, events=20_000,
                                     seed=_seed()), broker=broker)
        print(report.summary())
        assert report.ok, report.summary()
        assert report.broker_restarts == 1
        assert len(report.outages) == 1 and report.outages[0] >= 30
        _corrections_applied(report)
    finally:
        kafka_local.stop_broker(broker, remove_data=True)


def test_taskmanager_killed_twice_on_the_standalone_cluster(flink_cluster, kafka_bootstrap):
    """RocksDB state, the cluster's own restart strategy: a new TaskManager takes over from the latest checkpoint."""
    report = run_trial(kafka_bootstrap, ChaosSpec(kills=2, events=20_000, seed=_seed()), cluster=flink_cluster)
    print(report.summary())
    assert report.ok, report.summary()
    assert report.kills == 2
    _corrections_applied(report)
