"""Job tier: real Flink (embedded MiniCluster) on bounded inputs, no Kafka."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.job


@pytest.fixture(scope="session", autouse=True)
def local_jvm():
    """The JVM starts once, before any test, the way the jobs start it locally (`jobs.runtime.start_local_jvm`):
    whichever test started it would fix its environment for the session, and a JVM started without the
    embedded-Python environment cannot run the jobs' Python operators (`No module named 'pemja'`). Seen when
    `test_rating_parity.py`, whose `TableEnvironment.create` starts the JVM, ran first."""
    from jobs.runtime import start_local_jvm

    start_local_jvm()


@pytest.fixture
def udf_jvm():
    """The py4j view of the JVM with our engine jar on its context class loader, for tests that call our Java classes
    directly. Per test: the context class loader belongs to the gateway thread that served the call, and py4j may
    serve a later test from another thread (CI saw `Could not found the Java class` after the job tests); adding
    the jar again is a no-op where it is already there."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from meterstream.jars import engine_jar

    gateway = get_gateway()
    add_jars_to_context_class_loader([engine_jar().as_uri()])
    return gateway.jvm
