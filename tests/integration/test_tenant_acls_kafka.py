"""The README's tenant ACLs ("Tenant topics") on a broker that enforces them.

A jar broker whose only client listener is SASL_SSL (SCRAM-SHA-512) and whose KRaft authorizer refuses what no ACL
allows (`SaslSslListener(super_users=...)`), with four users: an admin (the only super user), the billing job
`meterstream-billing` and the producers of two tenants. The ACLs are the `$ACLS ...` commands of the README's bash
block themselves, run with Kafka's own ACL tool (`AclCommand`, what `kafka-acls.sh` runs) as the admin: README and
test cannot drift apart. Then each tenant's producer writes its own topic and is refused on the other's, and the
bounded billing job, as `meterstream-billing` with nothing but those ACLs, bills both tenants and dead-letters the
record a tenant wrote into its own topic naming the other.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kafka.errors import TopicAuthorizationFailedError

from meterstream import kafka_security
from meterstream.kafka_local import run_tool, stop_broker
from meterstream.topics import create_topics, job_topic_configs, new_admin, new_producer, produce
from tests.integration.test_billing_kafka import billing_command
from tests.integration.test_sasl_ssl_kafka import (
    assert_no_secret,
    properties,
    start_sasl_ssl_broker,
    without_kafka_settings,
)
from tests.integration.test_tenant_topics_kafka import assert_tenants_billed, usage_event

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
ACL_TOOL = "org.apache.kafka.tools.AclCommand"
# What the README's commands name: its prefix and tenant, the job's principal (the default --job-name too) and the
# job's default output topics, which its ACLs list.
PREFIX = "usage-events."
JOB = "meterstream-billing"
TENANTS = {"acme-ai": "acme-ai-producer", "bolt-ml": "bolt-ml-producer"}  # tenant -> its producer's principal
OUTPUTS = {"dead_letters": "usage-dead-letters", "late_events": "usage-late-events",
           "line_items": "invoice-line-items", "accounting": "billing-accounting", "invoices": "invoices"}
ADMIN = "kafka-admin"


def readme_acl_commands(readme: Path = README) -> tuple[list[str], list[list[str]]]:
    """The README's ACL block: (the words of its `ACLS=...` tool, the arguments of each `$ACLS` command)."""
    text = readme.read_text()
    after = text[text.index("The isolation is the brokers' ACLs"):]
    block = after[after.index("```bash\n") + len("```bash\n"):]
    block = block[:block.index("```")].replace("\\\n", " ")
    tool = next(line for line in block.splitlines() if line.startswith("ACLS="))
    commands = [shlex.split(line.removeprefix("$ACLS")) for line in block.splitlines() if line.startswith("$ACLS ")]
    return shlex.split(tool.removeprefix("ACLS=").strip('"')), commands


def test_readme_acl_block_is_what_this_test_reads():
    """The parsing itself: the tool line and the first command (a tenant producer's), as this test substitutes."""
    tool, commands = readme_acl_commands()
    assert tool == ["kafka-acls.sh", "--bootstrap-server", "broker:9093", "--command-config", "admin.properties"]
    assert commands[0][:3] == ["--add", "--allow-principal", "User:acme-ai-producer"], commands[0]
    assert f"{PREFIX}acme-ai" in commands[0]
    assert all(command[0] == "--add" for command in commands) and len(commands) >= 5, commands


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The broker with ACLs enforced, a properties file per user (the admin's in `sasl.jaas.config` form, which the
    ACL tool reads as well as ours), the passwords."""
    folder = tmp_path_factory.mktemp("tenant-acls")
    passwords = {user: secrets.token_urlsafe(18) for user in (ADMIN, JOB, *TENANTS.values())}
    info, certs = start_sasl_ssl_broker(folder, scram_users=tuple(passwords.items()), super_users=(f"User:{ADMIN}",))
    try:
        files = {user: properties(folder, user, certs=certs, password=password, user=user, client_certificate=False,
                                  jaas=user == ADMIN) for user, password in passwords.items()}
        yield {"info": info, "bootstrap": info.bootstrap_servers, "files": files, "passwords": passwords}
    finally:
        stop_broker(info, remove_data=True)


def test_the_readme_acls_isolate_tenants_and_suffice_for_the_billing_job(acl_broker, monkeypatch):
    info, bootstrap, files = acl_broker["info"], acl_broker["bootstrap"], acl_broker["files"]
    started = time.time()

    def as_user(user: str) -> None:  # this process's clients (topics, producers, readers) authenticate as `user`
        monkeypatch.setenv(kafka_security.PROPERTIES_ENV, str(files[user]))

    as_user(ADMIN)
    tenant_topics = {tenant: PREFIX + tenant for tenant in TENANTS}
    create_topics(bootstrap, tenant_topics.values())
    create_topics(bootstrap, OUTPUTS.values(), partitions=2, configs=job_topic_configs(OUTPUTS))

    # The README's commands, with its tool replaced by the ACL tool of the broker's jars and this broker's address;
    # a second tenant is "the first command with its principal" (and its topic), as the README says.
    _, commands = readme_acl_commands()
    tenant_command = shlex.join(commands[0])
    commands = [*(shlex.split(tenant_command.replace("acme-ai", tenant)) for tenant in TENANTS if tenant != "acme-ai"),
                *commands]
    connection = ["--bootstrap-server", bootstrap, "--command-config", str(files[ADMIN])]
    with ThreadPoolExecutor(max_workers=2) as pool:  # each is a JVM's start: two at a time on two cores
        tool_runs = list(pool.map(lambda args: run_tool(info, ACL_TOOL, [*connection, *args]), commands))
    for args, run in zip(commands, tool_runs, strict=True):
        assert run.returncode == 0, f"{shlex.join(args)}:\n{run.stdout[-2000:]}{run.stderr[-3000:]}"
    wait_until_acls_are_served(bootstrap, commands)

    # Each tenant's producer writes its own topic, and is refused on the other's at once (not after a timeout).
    foreign = usage_event("acme-ai", 999)  # bolt-ml's producer claims acme-ai's usage, in its own topic
    own_records = {"acme-ai": [usage_event("acme-ai", i, customer=f"cust-{i % 2}") for i in range(40)],
                   "bolt-ml": [*(usage_event("bolt-ml", i) for i in range(25)), foreign]}
    for tenant, producer_principal in TENANTS.items():
        as_user(producer_principal)
        produce(bootstrap, tenant_topics[tenant], own_records[tenant])
        assert_write_refused(bootstrap, next(topic for name, topic in tenant_topics.items() if name != tenant))

    # The job, as its own principal with nothing but the README's ACLs, reads both tenant topics over the prefix.
    as_user(ADMIN)  # the checks below read the outputs as the admin
    run = subprocess.run(billing_command(bootstrap, OUTPUTS, parallelism=2,
                                         extra=["--kafka-properties", str(files[JOB]), "--usage-topic-prefix", PREFIX]),
                         capture_output=True, text=True, timeout=300, env=without_kafka_settings())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert f"Kafka security SASL_SSL, SCRAM-SHA-512 as '{JOB}'" in run.stdout, run.stdout
    assert re.search(rf"^{JOB}: run \S+ finished", run.stdout, re.MULTILINE), run.stdout  # the default --job-name
    assert_tenants_billed(bootstrap, OUTPUTS, run.stdout, prefix=PREFIX,
                          billed={"acme-ai": 40, "bolt-ml": 25},
                          foreign=(tenant_topics["bolt-ml"], foreign))

    # The job's principal is no super user: it reads the tenant topics, it cannot write one.
    as_user(JOB)
    assert_write_refused(bootstrap, tenant_topics["acme-ai"])

    # None of the four users' secrets in what the job and the ACL tool printed, the broker's or Flink's logs.
    secret_values = sorted({secret for path in files.values()
                            for secret in kafka_security.load(path, environ={}).secrets()}, key=len, reverse=True)
    assert set(acl_broker["passwords"].values()) <= set(secret_values)
    printed = {"job stdout": run.stdout, "job stderr": run.stderr,
               **{f"{ACL_TOOL} {shlex.join(args)}": tool.stdout + tool.stderr
                  for args, tool in zip(commands, tool_runs, strict=True)}}
    assert_no_secret(secret_values, since=started, broker_log=Path(info.log_file), printed=printed)


def wait_until_acls_are_served(bootstrap: str, commands: list[list[str]], *, timeout_s: float = 30.0) -> None:
    """Until the broker's DescribeAcls answer holds an ACL of every principal `commands` (the ACL tool's `--add`
    lines) allow: the tool returns once the controller committed them, the broker's authorizer applies them from
    the metadata log a moment later."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePatternFilter
    from kafka.admin import ResourceType as Resource

    principals = {args[i + 1] for args in commands for i, word in enumerate(args) if word == "--allow-principal"}
    admin = new_admin(bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [principal for principal in sorted(principals) if not admin.describe_acls(ACLFilter(
                principal=principal, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(Resource.ANY, None, ACLResourcePatternType.ANY)))[0]]
            if not missing:
                return
            assert time.monotonic() < deadline, f"no ACL of {missing} served {timeout_s:g} s after they were added"
            time.sleep(0.2)
    finally:
        admin.close()


def assert_write_refused(bootstrap: str, topic: str) -> None:
    """A producer of this process's principal is refused on `topic` at once (an answer, not a timeout)."""
    producer = new_producer(bootstrap, max_block_ms=20_000)
    try:
        refused_at = time.monotonic()
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, usage_event("acme-ai", 1)).get(timeout=20)
        assert time.monotonic() - refused_at < 10, "an ACL refusal is an answer, not a timeout"
    finally:
        producer.close(timeout=5)
