"""The README's tenant ACLs ("Tenant topics") on a broker that enforces them.

A jar broker whose only client listener is SASL_SSL (SCRAM-SHA-512) and whose KRaft authorizer refuses what no ACL
allows (`SaslSslListener(super_users=...)`), with four users: an admin (the only super user), the billing job
`meterstream-billing` and the producers of two tenants. The ACLs are the `$ACLS ...` commands of the README's bash
block themselves, run with Kafka's own ACL tool (`AclCommand`, what `kafka-acls.sh` runs) as the admin: README and
test cannot drift apart. Then each tenant's producer writes its own topic and is refused on the other's, and the
bounded billing job, as `meterstream-billing` with nothing but those ACLs and with `--credits --corrections` (the
README's lines for them included), bills both tenants, dead-letters the record a tenant wrote into its own topic
naming the other, draws the credit granted, applies the corrections and writes a record to every output topic.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from kafka.errors import TopicAuthorizationFailedError

from jobs.billing import Topics, check_kafka, topics_used
from meterstream import kafka_security
from meterstream.kafka_local import run_tool, stop_broker
from meterstream.topics import (
    JOB_OUTPUT_TOPICS,
    create_topics,
    job_topic_configs,
    missing_topics,
    new_admin,
    new_producer,
    produce,
    unauthorized_topics,
)
from schemas.credits import CreditDrawdown, CreditGrantRecord
from schemas.invoice_line_item import InvoiceLineItem
from tests.integration.test_billing_kafka import billing_command, read_json
from tests.integration.test_sasl_ssl_kafka import (
    assert_no_secret,
    properties,
    start_sasl_ssl_broker,
    without_kafka_settings,
)
from tests.integration.test_tenant_topics_kafka import assert_tenants_billed, usage_event
from tests.job.test_credits_job import GRANTS, grant
from udfs.credits import ledger_identity

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
ACL_TOOL = "org.apache.kafka.tools.AclCommand"
# What the README's commands name: its prefix and tenant, the job's principal (the default --job-name too) and the
# job's default topics, which its ACLs list: the outputs (with --credits and --corrections) and the inputs of
# --credits and --corrections.
PREFIX = "usage-events."
JOB = "meterstream-billing"
TENANTS = {"acme-ai": "acme-ai-producer", "bolt-ml": "bolt-ml-producer"}  # tenant -> its producer's principal
OUTPUTS = {"dead_letters": "usage-dead-letters", "late_events": "usage-late-events",
           "line_items": "invoice-line-items", "accounting": "billing-accounting", "invoices": "invoices",
           "credit_drawdowns": "credit-drawdowns", "billing_alerts": "billing-alerts",
           "credit_grant_dead_letters": "credit-grant-dead-letters",
           "correction_dead_letters": "usage-correction-dead-letters"}
INPUTS = {"credit_grants": "credit-grants", "spend_caps": "spend-caps", "usage_corrections": "usage-corrections"}
ADMIN = "kafka-admin"
SENT_AT = "2026-11-01T04:29:00Z"  # the corrections' (REFERENCE_NOW is 04:30, the usage 03:30 to 03:35)
HIDDEN = "other-team-events"  # a topic no ACL of the README names


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


def test_readme_acls_name_every_topic_of_a_run_with_credits_and_corrections():
    """Without a broker: the README's commands for the job's principal allow Write on exactly the topics the job
    writes and Read on every other topic a run with --credits --corrections and tenant topics uses, under the names
    this test gives them, which are the job's defaults."""
    assert {field: getattr(Topics(), field) for field in JOB_OUTPUT_TOPICS} == OUTPUTS
    used = topics_used(Topics(), credits=True, corrections=True, tenant_topics=True)
    assert sorted(used) == sorted([*OUTPUTS.values(), *INPUTS.values()]), used
    allowed = topic_operations(readme_acl_commands()[1], f"User:{JOB}")
    assert {topic for topic, operations in allowed.items() if "Write" in operations} == set(OUTPUTS.values())
    # read back by a --bounded run: the accounting table, the credits identities
    read_back = {OUTPUTS["accounting"], OUTPUTS["line_items"], OUTPUTS["credit_drawdowns"]}
    assert {topic for topic, operations in allowed.items() if "Read" in operations} == {*INPUTS.values(), *read_back}


def topic_operations(commands: list[list[str]], principal: str) -> dict[str, set[str]]:
    """The operations `commands` (`--add` arguments) allow `principal` per LITERAL topic."""
    allowed: dict[str, set[str]] = {}
    for args in commands:
        pairs = list(zip(args, args[1:], strict=False))
        if ("--allow-principal", principal) not in pairs or ("--resource-pattern-type", "prefixed") in pairs:
            continue
        operations = {value for flag, value in pairs if flag == "--operation"}
        for topic in (value for flag, value in pairs if flag == "--topic"):
            allowed.setdefault(topic, set()).update(operations)
    return allowed


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
    create_topics(bootstrap, [*INPUTS.values(), HIDDEN])

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

    # The inputs of --credits and --corrections (written by the admin: the README allows their producers nothing).
    as_user(ADMIN)  # the checks below read the outputs as the admin
    grants = [*GRANTS, grant("g-bolt-1", "bolt-ml", "cust-1", "1.00", "EUR")]  # bolt-ml's cust-1 exhausts it
    spend_caps = [{"tenant_id": "bolt-ml", "customer_id": "cust-1", "amount": "2", "currency": "EUR",
                   "effective_at": "2026-10-01T00:00:00.000Z"}]
    # a cancel of each tenant's usage, and one of the foreign record, which was dead-lettered: no event to correct
    corrections = [{"tenant_id": tenant, "event_id": event_id, "sent_at": SENT_AT, "correction_id": f"cx-{event_id}",
                    "action": "cancel"} for tenant, event_id in (("acme-ai", "acme-ai-0"), ("bolt-ml", "bolt-ml-3"),
                                                                 ("acme-ai", "acme-ai-999"))]
    for field, records in (("credit_grants", grants), ("spend_caps", spend_caps), ("usage_corrections", corrections)):
        produce(bootstrap, INPUTS[field], [json.dumps(record).encode() for record in records])

    # The job, as its own principal with nothing but the README's ACLs, reads both tenant topics over the prefix,
    # and with --credits --corrections their inputs too.
    run = subprocess.run(billing_command(bootstrap, {**OUTPUTS, **INPUTS}, parallelism=2,
                                         extra=["--kafka-properties", str(files[JOB]), "--usage-topic-prefix", PREFIX,
                                                "--credits", "--corrections"]),
                         capture_output=True, text=True, timeout=300, env=without_kafka_settings())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert f"Kafka security SASL_SSL, SCRAM-SHA-512 as '{JOB}'" in run.stdout, run.stdout
    assert re.search(rf"^{JOB}: run \S+ finished", run.stdout, re.MULTILINE), run.stdout  # the default --job-name
    assert_tenants_billed(bootstrap, OUTPUTS, run.stdout, prefix=PREFIX,
                          billed={"acme-ai": 40, "bolt-ml": 25},
                          foreign=(tenant_topics["bolt-ml"], foreign))
    assert_credits_and_corrections(bootstrap, run.stdout, own_records, grants, corrections)
    # Every output topic but the late events' (no record here is late) got records: each Write was used.
    assert [topic for topic in OUTPUTS.values() if not read_json(bootstrap, topic)] == [OUTPUTS["late_events"]]

    # The job's principal is no super user: it reads the tenant topics and its other inputs, it cannot write them.
    as_user(JOB)
    for topic in (tenant_topics["acme-ai"], INPUTS["credit_grants"], INPUTS["usage_corrections"]):
        assert_write_refused(bootstrap, topic)
    # A topic the ACLs hide from it looks missing; the start check names it as hidden, with the ACL it lacks, and
    # tells it from one that is missing (the prefixed ACL lets it describe a tenant topic that does not exist).
    assert missing_topics(bootstrap, [tenant_topics["acme-ai"], HIDDEN, f"{PREFIX}nobody"]) == [
        HIDDEN, f"{PREFIX}nobody"]
    assert unauthorized_topics(bootstrap, [HIDDEN, f"{PREFIX}nobody"]) == [HIDDEN]
    with pytest.raises(SystemExit, match=f"may not describe: {HIDDEN} \\(Read\\)\\. "):
        check_kafka(bootstrap, [tenant_topics["acme-ai"], HIDDEN], create=True, partitions=1)

    # None of the four users' secrets in what the job and the ACL tool printed, the broker's or Flink's logs.
    secret_values = sorted({secret for path in files.values()
                            for secret in kafka_security.load(path, environ={}).secrets()}, key=len, reverse=True)
    assert set(acl_broker["passwords"].values()) <= set(secret_values)
    printed = {"job stdout": run.stdout, "job stderr": run.stderr,
               **{f"{ACL_TOOL} {shlex.join(args)}": tool.stdout + tool.stderr
                  for args, tool in zip(commands, tool_runs, strict=True)}}
    assert_no_secret(secret_values, since=started, broker_log=Path(info.log_file), printed=printed)


def assert_credits_and_corrections(bootstrap: str, stdout: str, own_records: dict[str, list[bytes]],
                                   grants: list[dict], corrections: list[dict]) -> None:
    """What --credits and --corrections must have done in that run: the two cancels of billed usage applied, the one
    of the dead-lettered foreign record rejected (dead letter and count), each customer's invoice the quantity of its
    events less the cancelled ones; every line item (usage and correction) drew on its customer's grants, which the
    credits identities account for: acme-ai's cust-0 paid from its 50 USD grant, bolt-ml's cust-1 exhausted its
    1.00 EUR, the rest uncovered, and alerted (low, exhausted, its 2 EUR spend cap reached); the invalid grant
    dead-lettered."""
    assert re.search(r"corrections in the input \(offsets\) +3\n +applied \(billed\) +2\n +rejected +1\n"
                     r" +event_dead_lettered +1\n", stdout), stdout
    assert "identity corrections = applied + rejected: HOLDS" in stdout, stdout
    assert "customer/currency pairs: HOLD" in stdout, stdout

    letters = read_json(bootstrap, OUTPUTS["correction_dead_letters"])
    assert [(letter["reason"], letter["correction_id"]) for letter in letters] == [
        ("event_dead_lettered", "cx-acme-ai-999")]
    cancelled = {(c["tenant_id"], c["event_id"]) for c in corrections} - {("acme-ai", "acme-ai-999")}
    expected_quantities = Counter()
    for tenant, records in own_records.items():
        for event in map(json.loads, records):  # not the foreign record (another tenant's id): dead-lettered
            if event["tenant_id"] == tenant and (tenant, event["event_id"]) not in cancelled:
                expected_quantities[(tenant, event["customer_id"])] += 1
    quantities = Counter()
    for invoice in read_json(bootstrap, OUTPUTS["invoices"]):
        for subtotal in invoice["subtotals"]:
            quantities[(invoice["tenant_id"], invoice["customer_id"])] += int(subtotal["quantity"])
    assert quantities == expected_quantities, quantities

    lines = [InvoiceLineItem.model_validate(li) for li in read_json(bootstrap, OUTPUTS["line_items"])]
    corrected = [(li.tenant_id, li.customer_id) for li in lines if li.kind == "correction"]
    assert sorted(corrected) == [("acme-ai", "cust-0"), ("bolt-ml", "cust-1")], corrected
    drawdowns = [CreditDrawdown.model_validate(d) for d in read_json(bootstrap, OUTPUTS["credit_drawdowns"])]
    assert len({d.drawdown_id for d in drawdowns}) == len(drawdowns), "each drawdown exactly once"
    assert {li.line_item_id for li in lines} == {d.line_item_id for d in drawdowns if d.kind == "usage"}
    valid_grants = [CreditGrantRecord.model_validate(g).root for g in grants if g["grant_id"] != "g-bad"]
    checks = ledger_identity(valid_grants, drawdowns, lines)
    assert checks and all(c.usage_identity_holds and c.balance >= 0 for c in checks.values()), checks

    def billed(tenant: str, customer: str) -> Decimal:
        return sum((li.amount for li in lines if (li.tenant_id, li.customer_id) == (tenant, customer)), Decimal(0))

    drawn = Counter()
    for d in drawdowns:
        drawn[d.grant_id] += d.amount
    assert billed("acme-ai", "cust-0") > 0 and billed("bolt-ml", "cust-1") > Decimal("1.00")
    assert {grant_id: amount for grant_id, amount in drawn.items() if amount} == {
        "g-acme-0": billed("acme-ai", "cust-0"), "g-bolt-1": Decimal("1.00")}, drawn

    alerts = [(a["tenant_id"], a["customer_id"], a["type"]) for a in read_json(bootstrap, OUTPUTS["billing_alerts"])]
    assert sorted(alerts) == [("bolt-ml", "cust-1", kind)
                              for kind in ("balance_exhausted", "balance_low", "spend_cap_reached")], alerts
    rejected = read_json(bootstrap, OUTPUTS["credit_grant_dead_letters"])
    assert [(r["reason"], json.loads(r["raw"])["grant_id"]) for r in rejected] == [("invalid_amount", "g-bad")]


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
