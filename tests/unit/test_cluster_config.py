"""The generated cluster configuration and the `flink run` line, without starting anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from meterstream import cluster


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_effective_config_fills_in_ports_dirs_and_python(tmp_path: Path):
    info = cluster.ClusterInfo(rest_port=18081, rpc_port=16123, metrics_port=19249, home=str(tmp_path))
    conf = _flat(cluster.effective_config(info))
    assert conf["rest.port"] == 18081 and conf["jobmanager.rpc.port"] == 16123
    assert conf["metrics.reporter.prom.port"] == 19249
    assert conf["execution.checkpointing.dir"] == (tmp_path / "checkpoints").as_uri()
    assert conf["execution.checkpointing.savepoint-dir"] == (tmp_path / "savepoints").as_uri()
    assert conf["python.executable"] == conf["python.client.executable"] == sys.executable
    # What the cluster owns, as the issue asks: loopback only, RocksDB, retained checkpoints, thread mode.
    assert {conf[k] for k in ("jobmanager.rpc.address", "rest.address", "rest.bind-address", "taskmanager.host",
                              "jobmanager.bind-host", "taskmanager.bind-host")} == {"127.0.0.1"}
    assert conf["state.backend.type"] == "rocksdb" and conf["execution.checkpointing.incremental"] is True
    assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert conf["python.execution-mode"] == "thread"
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in conf["env.java.opts.all"]
    assert conf["env.java.opts.taskmanager"] == "-XX:+UseTransparentHugePages"  # as the local runs' JVM


def test_written_conf_is_nested_yaml_with_the_wheels_log_config(tmp_path: Path):
    info = cluster.ClusterInfo(rest_port=1, rpc_port=2, metrics_port=3, home=str(tmp_path))
    conf_dir = cluster.write_conf(info)
    tree = yaml.safe_load((conf_dir / "config.yaml").read_text())
    assert tree["rest"]["port"] == 1
    assert (conf_dir / "log4j.properties").is_file()


def test_flink_run_line_ships_the_job_packages():
    cmd = cluster.submit_command("127.0.0.1:8081", ["--bootstrap", "b:9092"], parallelism=2)
    assert cmd[1:6] == ["run", "--detached", "-m", "127.0.0.1:8081", "--parallelism"]
    shipped = cmd[cmd.index("--pyFiles") + 1].split(",")
    assert [Path(p).name for p in shipped] == list(cluster.JOB_PACKAGES)
    assert cmd[cmd.index("--python") + 1].endswith("jobs/billing.py")
    assert cmd[-2:] == ["--bootstrap", "b:9092"]


def test_flink_run_line_restores_from_a_savepoint_before_the_job_script():
    cmd = cluster.submit_command("127.0.0.1:8081", ["--bootstrap", "b:9092"], parallelism=1,
                                 from_savepoint="file:/tmp/savepoint-abc")
    restore = cmd.index("--fromSavepoint")
    assert cmd[restore + 1] == "file:/tmp/savepoint-abc"
    assert restore < cmd.index("--python"), "a client option: after the script it would reach the job instead"


def test_each_taskmanager_gets_its_own_metrics_port_and_an_old_record_means_one(tmp_path):
    info = cluster.ClusterInfo(rest_port=1, rpc_port=2, metrics_port=19249, home=str(tmp_path), taskmanagers=3)
    assert info.taskmanager_metrics_ports() == [19250, 19251, 19252]
    assert info.taskmanager_metrics_url.endswith(":19250/metrics")  # the first one's
    old = {"rest_port": 1, "rpc_port": 2, "metrics_port": 19249, "home": str(tmp_path)}  # before --taskmanagers
    (tmp_path / "cluster.json").write_text(json.dumps(old))
    assert cluster.recorded_cluster(tmp_path).taskmanagers == 1


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_cluster_up_wants_at_least_one_taskmanager(value, capsys):
    from meterstream.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["cluster", "up", "--taskmanagers", value])
    assert exit_info.value.code == 2
    assert "--taskmanagers" in capsys.readouterr().err


def test_up_refuses_zero_taskmanagers_before_starting_anything(tmp_path):
    with pytest.raises(cluster.ClusterError, match="at least one TaskManager"):
        cluster.up(home=tmp_path / "cluster", taskmanagers=0)
    assert not (tmp_path / "cluster").exists()
