"""Tenant isolation of ingestion on a real broker (`--usage-topic-prefix`): the billing job reads one topic per
tenant through a topic pattern subscription, each record's tenant is its topic's, and a record naming another
tenant is dead-lettered `tenant_mismatch` and counted like every dead letter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from meterstream.chaos import kill_process_group
from meterstream.topics import create_topics, delete_topics, produce
from tests.integration.test_billing_kafka import CATALOG_PATH, make_topics, read_json, run_billing
from tests.integration.test_late_after_restore import wait_until
from tests.scripted_usage import REFERENCE_NOW
from udfs.accounting import Outcome
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.integration

# How often the unbounded run looks for new tenant topics (checked: with "0", no discovery, its test times out).
DISCOVERY_SECONDS = "2"


def usage_event(tenant: str, i: int, *, customer: str = "cust-1") -> bytes:
    at = REFERENCE_NOW - timedelta(hours=1) + timedelta(seconds=7 * i)
    return json.dumps({"event_id": f"{tenant}-{i}", "tenant_id": tenant, "customer_id": customer,
                       "meter": "requests", "timestamp": to_epoch_ms(at)}).encode()


@pytest.fixture
def tenant_prefix(kafka_bootstrap):
    """A prefix of this test's own (`t<hex>.usage.`) and the tenant topics made under it, deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}.usage."
    created: list[str] = []

    def make(tenant: str, partitions: int = 1) -> str:
        topic = prefix + tenant
        create_topics(kafka_bootstrap, [topic], partitions=partitions)
        created.append(topic)
        return topic

    yield prefix, make
    if created:
        delete_topics(kafka_bootstrap, created)


def test_two_tenant_topics_billed_and_a_foreign_record_dead_lettered(kafka_bootstrap, kafka_topic, tenant_prefix):
    prefix, tenant_topic = tenant_prefix
    acme, bolt = tenant_topic("acme-ai", partitions=2), tenant_topic("bolt-ml")
    topics = make_topics(kafka_topic, input_partitions=1)
    del topics["usage_events"]  # not read with tenant topics
    produce(kafka_bootstrap, acme, [usage_event("acme-ai", i, customer=f"cust-{i % 2}") for i in range(40)])
    # bolt-ml's producer writes one record claiming acme-ai's usage into its own topic (ACLs let it write only there)
    foreign = usage_event("acme-ai", 999)
    produce(kafka_bootstrap, bolt, [*(usage_event("bolt-ml", i) for i in range(25)), foreign])

    stdout = run_billing(kafka_bootstrap, topics, parallelism=2, extra=["--usage-topic-prefix", prefix])
    assert_tenants_billed(kafka_bootstrap, topics, stdout, prefix=prefix, billed={"acme-ai": 40, "bolt-ml": 25},
                          foreign=(bolt, foreign))


def assert_tenants_billed(bootstrap: str, topics: dict[str, str], stdout: str, *, prefix: str,
                          billed: dict[str, int], foreign: tuple[str, bytes]) -> None:
    """What a bounded run over the tenant topics of `billed` (tenant -> its own records) must have done when one
    record of the other tenant's, `foreign` (topic, value), sits in a tenant's topic: every topic counted in the
    input, each tenant billed its own records, the foreign one dead-lettered `tenant_mismatch` naming both tenants
    and counted, the identity holding."""
    foreign_topic, foreign_value = foreign
    assert f"tenant topics {prefix}<tenant>: {len(billed)} now" in stdout, stdout
    received = sum(billed.values()) + 1
    assert re.search(rf"records in the input \(offsets\) +{received}\n", stdout), stdout  # every topic counted
    assert "HOLDS" in stdout, stdout

    lines = [li for li in read_json(bootstrap, topics["line_items"]) if li["kind"] == "usage"]
    events = Counter()
    for li in lines:
        events[li["tenant_id"]] += li["event_count"]
    assert events == billed, events  # every topic billed, the foreign record not

    dead = read_json(bootstrap, topics["dead_letters"])
    assert [(d["reason"], d["source_topic"], d["raw"]) for d in dead] == [
        ("tenant_mismatch", foreign_topic, foreign_value.decode())]
    for tenant in (json.loads(foreign_value)["tenant_id"], foreign_topic.removeprefix(prefix)):
        assert f"'{tenant}'" in dead[0]["detail"], dead[0]["detail"]

    counts = {}
    for record in read_json(bootstrap, topics["accounting"]):
        key = (record["outcome"], record["detail"])
        counts[key] = max(counts.get(key, 0), record["records"])
    assert counts[(Outcome.DEAD_LETTERED, "tenant_mismatch")] == 1, counts
    assert sum(n for (outcome, _), n in counts.items() if outcome == Outcome.DEAD_LETTERED) == 1, counts


def test_operator_errors_of_the_prefix_stop_the_run(kafka_bootstrap, kafka_topic, tenant_prefix):
    """No tenant topic, a tenant topic whose name after the prefix is no tenant id, the job's own topics matching."""
    topics = make_topics(kafka_topic, input_partitions=1)
    del topics["usage_events"]
    flags = [arg for name, topic in topics.items() for arg in (f"--topic-{name.replace('_', '-')}", topic)]
    base = [sys.executable, "-m", "jobs.billing", "--bootstrap", kafka_bootstrap, "--catalog", str(CATALOG_PATH),
            "--bounded", *flags]
    nothing = f"t{uuid.uuid4().hex[:8]}.usage."
    run = subprocess.run([*base, "--usage-topic-prefix", nothing], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"--usage-topic-prefix {nothing}: no topic {nothing}<tenant>" in run.stderr, run.stderr
    prefix, tenant_topic = tenant_prefix
    tenant_topic("acme-ai")
    too_long = tenant_topic("x" * 129)  # Kafka takes it (249 characters), no tenant id is that long
    run = subprocess.run([*base, "--usage-topic-prefix", prefix], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"no tenant id (1-128 characters): {too_long};" in run.stderr, run.stderr
    own = topics["dead_letters"][:4]  # the job's own output topics start with it
    run = subprocess.run([*base, "--usage-topic-prefix", own], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"the run's own topics {topics['dead_letters']}" in run.stderr, run.stderr


def test_an_unbounded_run_reads_a_tenant_topic_created_after_its_start(kafka_bootstrap, kafka_topic, tenant_prefix,
                                                                       tmp_path):
    """Partition discovery (`--usage-topic-discovery-seconds`, 2 s here): a tenant topic made once the job reads is
    read too, and its foreign record dead-lettered (dead letters are committed at each checkpoint, whatever the
    watermarks)."""
    prefix, tenant_topic = tenant_prefix
    acme = tenant_topic("acme-ai")  # one tenant topic at start, or the job refuses to run
    first_foreign = usage_event("bolt-ml", 5)
    produce(kafka_bootstrap, acme, [usage_event("acme-ai", 1), first_foreign])
    topics = make_topics(kafka_topic, input_partitions=1)
    del topics["usage_events"]
    job_name = f"tenant-discovery-{uuid.uuid4().hex[:8]}"
    args = [sys.executable, "-m", "jobs.billing", "--bootstrap", kafka_bootstrap, "--catalog", str(CATALOG_PATH),
            "--parallelism", "1", "--reference-time", REFERENCE_NOW.isoformat(), "--checkpoint-interval-ms", "1000",
            "--job-name", job_name, "--usage-topic-prefix", prefix,
            "--usage-topic-discovery-seconds", DISCOVERY_SECONDS,
            *(arg for name, topic in topics.items() for arg in (f"--topic-{name.replace('_', '-')}", topic))]

    def dead_letters() -> list[tuple[str, str, str]]:
        return [(d["reason"], d["source_topic"], d["raw"]) for d in read_json(kafka_bootstrap, topics["dead_letters"])]

    log = tmp_path / "job.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The source reads: its topics at start are assigned and a checkpoint has committed their dead letter.
        wait_until(lambda: dead_letters(), proc, log, timeout_s=120)
        newco = tenant_topic("bolt-ml")  # only partition discovery can find it now
        foreign = usage_event("acme-ai", 7)
        produce(kafka_bootstrap, newco, [usage_event("bolt-ml", 1), foreign])
        wait_until(lambda: len(dead_letters()) == 2, proc, log, timeout_s=90)
    finally:
        kill_process_group(proc)
    assert sorted(dead_letters()) == sorted([("tenant_mismatch", acme, first_foreign.decode()),
                                             ("tenant_mismatch", newco, foreign.decode())])

