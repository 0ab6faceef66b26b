"""Shared fixtures for every tier. Heavy ones (broker, Flink) are created lazily, only when a test asks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping

import pytest

from meterstream.topics import create_topics, delete_topics

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    from tests.kafka_fixtures import kafka_broker

    try:
        manager = kafka_broker()
        bootstrap, origin = manager.__enter__()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no Kafka broker could be started: {exc}", pytrace=False)
        pytest.skip(f"no Kafka broker available here: {exc}")
    print(f"\nKafka for integration tests: {bootstrap} ({origin})")
    try:
        yield bootstrap
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: `kafka_topic("usage", partitions=2)` creates a uniquely named topic, deleted after the test.
    `config`: its topic configuration (e.g. `meterstream.topics.OUTPUT_TOPIC_CONFIG`); the broker's defaults
    otherwise (CreateTime: the sinks' own record timestamps are what a consumer sees)."""
    created: list[str] = []

    def make(prefix: str = "t", *, partitions: int = 1, config: Mapping[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        create_topics(kafka_bootstrap, [name], partitions=partitions, configs={name: config or {}})
        created.append(name)
        return name

    yield make
    if created:
        try:
            delete_topics(kafka_bootstrap, created)
        except Exception as exc:  # cleanup must not hide the test's own result
            print(f"topic cleanup failed: {exc}")


KAFKA_SECURITY_ENV_PREFIX = "METERSTREAM_KAFKA_"  # meterstream.kafka_security.ENV_PREFIX


@pytest.fixture(autouse=True)
def _kafka_security_environment_restored() -> Iterator[None]:
    """The Kafka security settings are process-wide (`METERSTREAM_KAFKA_*` variables, `use_properties_file`): each
    test gets back the environment it started with, also where a test set one directly or a monkeypatch undo
    restored one (a leaked SSL properties file turned every later test's PLAINTEXT clients into TLS ones)."""
    before = {k: v for k, v in os.environ.items() if k.upper().startswith(KAFKA_SECURITY_ENV_PREFIX)}
    yield
    for name in [k for k in os.environ if k.upper().startswith(KAFKA_SECURITY_ENV_PREFIX)]:
        if name not in before:
            del os.environ[name]
    os.environ.update(before)
