"""Where integration tests get their Kafka broker from, in a fixed order of preference.

1. `KAFKA_BOOTSTRAP_SERVERS`: a broker someone already runs.
2. A testcontainers `apache/kafka:4.3.1` container, when a Docker engine answers.
3. The local jar broker (KRaft on 127.0.0.1), started from the Maven cache.
With `CI=true` a broker that cannot be had is a test failure, never a silent skip.

`topic_config` reads what the broker says a topic's configuration is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from kafka.admin import ConfigResource, ConfigResourceType

from meterstream.kafka_local import free_port, start_broker, stop_broker
from meterstream.topics import admin_client

KAFKA_IMAGE = "apache/kafka:4.3.1"


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # any failure means: no usable engine here
        return False


@contextlib.contextmanager
def kafka_container() -> Iterator[str]:
    """Single-node KRaft container whose advertised address is the host port we pinned for it."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    host_port = free_port()
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, host_port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{host_port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_TRANSACTION_MAX_TIMEOUT_MS", str(2 * 60 * 60 * 1000))
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS", "2000")  # as the jar broker: retention tests wait for it
    )
    container.start()
    try:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{host_port}"
    finally:
        container.stop()


@contextlib.contextmanager
def kafka_broker() -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, where the broker came from)."""
    preset = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if preset:
        yield preset, "KAFKA_BOOTSTRAP_SERVERS"
        return
    if docker_engine_answers():
        with kafka_container() as bootstrap:
            yield bootstrap, f"testcontainers {KAFKA_IMAGE}"
        return
    info = start_broker()
    try:
        yield info.bootstrap_servers, "local jar broker"
    finally:
        stop_broker(info, remove_data=True)


def topic_config(bootstrap_servers: str, topic: str) -> dict[str, str]:
    """Every configuration value of a topic as the broker reports it (its own or the broker's default)."""
    admin = admin_client(bootstrap_servers)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    finally:
        admin.close()
    return {key: entry["value"] for key, entry in described["topic"][topic].items()}
