"""The billing job and our Kafka clients over SASL_SSL (SCRAM-SHA-512) on a real local KRaft broker.

The broker is the jar broker with a SASL_SSL listener (`meterstream.kafka_local.SaslSslListener`): certificates made
by openssl for this test (PEM), the SCRAM user created by the broker's own storage tool. The job reads its
credentials from `--kafka-properties FILE`; nothing secret is on a command line, and none of the secrets appears in
what the run printed or logged.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterstream import kafka_security
from meterstream.kafka_local import BrokerInfo, SaslSslListener, start_broker, stop_broker
from meterstream.topics import (
    BrokerRefused,
    create_topics,
    job_topic_configs,
    missing_topics,
    produce,
    topic_record_count,
)
from tests.conftest import IN_CI
from tests.integration.test_billing_kafka import CATALOG_PATH, billing_command, read_json
from tests.job.test_credits_job import GRANTS
from tests.scripted_usage import scripted_usage
from tests.tls_certs import Certificates, make_certificates

pytestmark = pytest.mark.integration

USER = "meterstream-billing"


def _flink_log_dir() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent / "log"


def properties(folder: Path, name: str, *, certs: Certificates, password: str, client_certificate: bool = True,
               user: str = USER, jaas: bool = False) -> Path:
    """A client properties file (chmod 600) for `user`. `jaas`: the credentials as a `sasl.jaas.config` line, which
    Kafka's own tools (`--command-config`) read as well as ours, instead of our `sasl.username`/`sasl.password`."""
    module = kafka_security.LOGIN_MODULES["SCRAM-SHA-512"]
    credentials = [f'sasl.jaas.config={module} required username="{user}" password="{password}";'] if jaas else [
        f"sasl.username={user}", f"sasl.password={password}"]
    path = folder / f"{name}.properties"
    path.write_text("\n".join([
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-512",
        *credentials,
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs.ca}",
        *(["ssl.keystore.type=PEM", f"ssl.keystore.location={certs.client_keystore}"] if client_certificate else []),
    ]) + "\n")
    path.chmod(0o600)
    return path


def start_sasl_ssl_broker(folder: Path, *, scram_users: tuple[tuple[str, str], ...], mutual_tls: bool = False,
                          super_users: tuple[str, ...] = ()) -> tuple[BrokerInfo, Certificates]:
    """Certificates made for it (in `folder`/certs) and a jar broker whose only client listener is SASL_SSL
    (`SaslSslListener`: these SCRAM users; `mutual_tls`: client certificates required; `super_users`: ACLs
    enforced). No broker: the test fails under CI=true, as every broker fixture, else it is skipped."""
    try:
        certs = make_certificates(folder / "certs")
        info = start_broker(folder / "broker", sasl_ssl=SaslSslListener(
            keystore=str(certs.server_keystore), scram_users=scram_users,
            client_truststore=str(certs.ca) if mutual_tls else None, super_users=super_users))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no SASL_SSL Kafka broker could be started: {exc}", pytrace=False)
        pytest.skip(f"no SASL_SSL Kafka broker here: {exc}")
    return info, certs


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A broker whose only client listener is SASL_SSL with client certificates required (mutual TLS and SCRAM),
    its user's password and the properties files."""
    folder = tmp_path_factory.mktemp("sasl-ssl")
    password = secrets.token_urlsafe(18)
    info, certs = start_sasl_ssl_broker(folder, scram_users=((USER, password),), mutual_tls=True)
    try:
        yield {
            "bootstrap": info.bootstrap_servers, "password": password, "broker_log": Path(info.log_file),
            "folder": folder,
            "good": properties(folder, "client", certs=certs, password=password),
            "wrong": properties(folder, "wrong", certs=certs, password=password[::-1] + "x"),
            "no_certificate": properties(folder, "no-certificate", certs=certs, password=password,
                                         client_certificate=False),
        }
    finally:
        stop_broker(info, remove_data=True)


def test_billing_with_credits_runs_bounded_over_sasl_ssl_and_prints_no_secret(secured_broker, monkeypatch, tmp_path):
    bootstrap, password = secured_broker["bootstrap"], secured_broker["password"]
    started = time.time()
    # This process's clients (topics, producer, readers) take the settings from the environment; the job below gets
    # the file by its flag only.
    monkeypatch.setenv(kafka_security.PROPERTIES_ENV, str(secured_broker["good"]))
    suffix = secrets.token_hex(4)
    topics = {field: f"sasl-{field.replace('_', '-')}-{suffix}" for field in (
        "usage_events", "dead_letters", "late_events", "line_items", "accounting", "invoices", "credit_grants",
        "spend_caps", "credit_drawdowns", "billing_alerts", "credit_grant_dead_letters")}
    create_topics(bootstrap, topics.values(), partitions=2, configs=job_topic_configs(topics))
    records = scripted_usage(seed=19, events=600)
    produce(bootstrap, topics["usage_events"], records, keys=[str(i % 5).encode() for i in range(len(records))])
    produce(bootstrap, topics["credit_grants"], [json.dumps(g).encode() for g in GRANTS])

    args = billing_command(bootstrap, topics, parallelism=2,
                           extra=["--kafka-properties", str(secured_broker["good"]), "--credits"])
    run = subprocess.run(args, capture_output=True, text=True, timeout=600, env=without_kafka_settings())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert "Kafka security SASL_SSL, SCRAM-SHA-512 as 'meterstream-billing', mutual TLS" in run.stdout
    assert "identity" in run.stdout and "HOLDS" in run.stdout, run.stdout[-3000:]
    assert "customer/currency pairs: HOLD" in run.stdout, run.stdout[-2000:]

    lines = read_json(bootstrap, topics["line_items"])
    drawdowns = read_json(bootstrap, topics["credit_drawdowns"])
    assert lines and drawdowns
    assert len({li["line_item_id"] for li in lines}) == len(lines), "exactly once over SASL_SSL"
    assert read_json(bootstrap, topics["invoices"])

    # What the run printed and what it and the broker logged: none of the secrets (the password, the JAAS line the
    # Java clients got) is there.
    secret_values = kafka_security.load(secured_broker["good"], environ={}).secrets()
    assert password in secret_values
    assert_no_secret(secret_values, since=started, broker_log=secured_broker["broker_log"],
                     printed={"stdout": run.stdout, "stderr": run.stderr})


def without_kafka_settings() -> dict[str, str]:
    """This process's environment without the `METERSTREAM_KAFKA_*` settings its own clients use: a job started
    with it gets its security from its `--kafka-properties` only."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(kafka_security.ENV_PREFIX)}


def assert_no_secret(secret_values: list[str], *, since: float, broker_log: Path, printed: dict[str, str]) -> None:
    """None of `secret_values` is in what was `printed` (name -> text), the broker's log, or a Flink log written
    since `since` (epoch seconds)."""
    logs = [broker_log, *(p for p in _flink_log_dir().glob("*") if p.is_file() and p.stat().st_mtime >= since)]
    texts = {**printed, **{str(p): p.read_text(errors="replace") for p in logs}}
    assert len(texts) >= len(printed) + 2, "the broker log and the Flink client log were read"
    for where, text in texts.items():
        for secret in secret_values:
            assert secret not in text, f"a secret appears in {where}"


def test_the_benchmarks_java_producer_writes_over_sasl_ssl(secured_broker, monkeypatch, tmp_path):
    """The benchmark's bulk Java producer gets the same security settings as every other client, in a file (chmod
    600, removed afterwards): nothing secret on its command line."""
    from tests.benchmark_script import billing_throughput

    bootstrap = secured_broker["bootstrap"]
    monkeypatch.setenv(kafka_security.PROPERTIES_ENV, str(secured_broker["good"]))
    topic = f"sasl-bench-{secrets.token_hex(4)}"
    create_topics(bootstrap, [topic], partitions=2)
    files = [tmp_path / f"p{i}.jsonl" for i in range(2)]
    for i, path in enumerate(files):
        path.write_text("".join(f'{{"n": {i * 1000 + n}}}\n' for n in range(250 + i)))
    billing_throughput().produce_java(bootstrap, topic, files, "lz4", tmp_path)
    assert topic_record_count(bootstrap, topic) == 501
    assert not (tmp_path / "producer-security.properties").exists()


def test_a_wrong_password_fails_fast_with_a_clear_message(secured_broker, monkeypatch):
    bootstrap = secured_broker["bootstrap"]
    monkeypatch.setenv(kafka_security.PROPERTIES_ENV, str(secured_broker["wrong"]))
    started = time.monotonic()
    with pytest.raises(BrokerRefused, match="refused our credentials") as caught:
        missing_topics(bootstrap, ["usage-events"], timeout_s=12)
    assert time.monotonic() - started < 6, "an authentication failure is not waited out like an absent broker"
    # The broker's answer names the failure, or (its answer lost as it closed the connection, see
    # `ClosedDuringAuthentication`) the closes are named.
    assert re.search("SaslAuthenticationFailedError|ClosedDuringAuthentication", str(caught.value))
    assert secured_broker["password"] not in str(caught.value)

    # The job: its start-up check names the failure and the run ends, no Flink work started.
    monkeypatch.delenv(kafka_security.PROPERTIES_ENV)
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "jobs.billing", "--bootstrap", bootstrap,
                          "--kafka-properties", str(secured_broker["wrong"]), "--catalog", str(CATALOG_PATH)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert time.monotonic() - started < 60
    assert f"--bootstrap {bootstrap}: the Kafka broker at {bootstrap} refused our credentials" in run.stderr
    assert secured_broker["password"] not in run.stdout + run.stderr


def test_a_client_without_its_certificate_is_refused(secured_broker, monkeypatch):
    """The listener requires client certificates: the right password alone does not get in."""
    monkeypatch.setenv(kafka_security.PROPERTIES_ENV, str(secured_broker["no_certificate"]))
    started = time.monotonic()
    with pytest.raises(BrokerRefused, match="the TLS handshake with .* failed"):
        missing_topics(secured_broker["bootstrap"], ["usage-events"], timeout_s=12)
    assert time.monotonic() - started < 6
