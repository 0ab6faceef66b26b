"""The Kafka security settings: the properties file and the environment, strict validation, the mapping to
kafka-python and to the Java client, and the redaction of secrets in what we print."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterstream import kafka_security as ks

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
PASSWORD = "s3cr3t-Pa\"ss"


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, Path]:
    ca = tmp_path / "ca.pem"
    ca.write_text(CERT)
    keystore = tmp_path / "client.pem"
    keystore.write_text(CERT + KEY)
    return {"ca": ca, "keystore": keystore}


def scram_from_environment(pem: dict[str, Path]) -> ks.KafkaSecurity:
    return ks.load(environ={"METERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                            "METERSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                            "METERSTREAM_KAFKA_SASL_USERNAME": "billing",
                            "METERSTREAM_KAFKA_SASL_PASSWORD": PASSWORD,
                            "METERSTREAM_KAFKA_SSL_TRUSTSTORE_LOCATION": str(pem["ca"])})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return path


def test_nothing_given_is_plaintext_and_adds_nothing_to_any_client():
    settings = ks.load(environ={})
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.kafka_python_kwargs() == {}
    assert settings.java_properties() == {}
    assert settings.describe() == "PLAINTEXT"


def test_sasl_ssl_scram_from_a_properties_file_maps_to_both_clients(tmp_path, pem):
    path = write(tmp_path, f"""# a Java client properties file
security.protocol=SASL_SSL
sasl.mechanism = SCRAM-SHA-512
sasl.username: billing
sasl.password={PASSWORD}
ssl.truststore.type=PEM
ssl.truststore.location={pem['ca']}
""")
    settings = ks.load(path, environ={})
    assert settings.kafka_python_kwargs() == {
        "security_protocol": "SASL_SSL", "ssl_check_hostname": True, "ssl_cafile": str(pem["ca"].resolve()),
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "billing", "sasl_plain_password": PASSWORD,
    }
    java = settings.java_properties()
    assert java["security.protocol"] == "SASL_SSL"
    assert java["sasl.mechanism"] == "SCRAM-SHA-512"
    assert java["ssl.truststore.type"] == "PEM"
    assert java["ssl.truststore.location"] == str(pem["ca"].resolve())
    assert java["ssl.endpoint.identification.algorithm"] == "https"
    assert java["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                        'username="billing" password="s3cr3t-Pa\\"ss";')
    # The JAAS line we build parses back to the same credentials.
    assert ks.parse_jaas(java["sasl.jaas.config"])[1] == {"username": "billing", "password": PASSWORD}
    # Flink's sql-connector jar relocates the client: its login module carries the shaded package.
    flink = settings.flink_properties()
    assert flink["sasl.jaas.config"] == "org.apache.flink.kafka.shaded." + java["sasl.jaas.config"]
    assert {k: v for k, v in flink.items() if k != "sasl.jaas.config"} == {
        k: v for k, v in java.items() if k != "sasl.jaas.config"}
    assert flink["sasl.jaas.config"] in settings.secrets()


def test_plain_mechanism_with_a_jaas_line(tmp_path, pem):
    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="pw";'
    settings = ks.load(environ={"METERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                "METERSTREAM_KAFKA_SASL_MECHANISM": "plain",
                                "METERSTREAM_KAFKA_SASL_JAAS_CONFIG": jaas,
                                "METERSTREAM_KAFKA_SSL_TRUSTSTORE_LOCATION": str(pem["ca"])})
    assert settings.kafka_python_kwargs()["sasl_mechanism"] == "PLAIN"
    assert settings.kafka_python_kwargs()["sasl_plain_username"] == "alice"
    assert settings.kafka_python_kwargs()["sasl_plain_password"] == "pw"
    assert settings.java_properties()["sasl.jaas.config"] == jaas
    assert settings.flink_properties()["sasl.jaas.config"] == "org.apache.flink.kafka.shaded." + jaas


def test_mutual_tls(pem):
    settings = ks.load(environ={"METERSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
                                "METERSTREAM_KAFKA_SSL_TRUSTSTORE_LOCATION": str(pem["ca"]),
                                "METERSTREAM_KAFKA_SSL_KEYSTORE_LOCATION": str(pem["keystore"]),
                                "METERSTREAM_KAFKA_SSL_KEY_PASSWORD": "kp",
                                "METERSTREAM_KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": ""})
    keystore = str(pem["keystore"].resolve())
    assert settings.kafka_python_kwargs() == {
        "security_protocol": "SSL", "ssl_check_hostname": False, "ssl_cafile": str(pem["ca"].resolve()),
        "ssl_certfile": keystore, "ssl_keyfile": keystore, "ssl_password": "kp"}
    assert settings.java_properties() == {
        "security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "",
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(pem["ca"].resolve()),
        "ssl.keystore.type": "PEM", "ssl.keystore.location": keystore, "ssl.key.password": "kp"}
    assert settings.describe() == "SSL, mutual TLS"


def test_the_file_wins_over_the_environment(tmp_path):
    path = write(tmp_path, "security.protocol=PLAINTEXT\n")
    assert ks.load(path, environ={"METERSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"}).security_protocol == "PLAINTEXT"


def test_the_file_named_by_the_environment(tmp_path, pem):
    path = write(tmp_path, f"security.protocol=SSL\nssl.truststore.location={pem['ca']}\n")
    assert ks.load(environ={ks.PROPERTIES_ENV: str(path)}).security_protocol == "SSL"


@pytest.mark.parametrize(("text", "env", "message"), [
    ("security.protocl=SSL\n", {}, "unknown key(s) security.protocl"),
    ("security.protocol=SASL_SSLL\n", {}, "security.protocol 'SASL_SSLL' is not one of PLAINTEXT, SSL, SASL_SSL"),
    ("security.protocol=SASL_PLAINTEXT\n", {}, "unencrypted"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-51\nsasl.username=u\nsasl.password=p\n", {},
     "sasl.mechanism 'SCRAM-SHA-51' is not one of"),
    ("security.protocol=SASL_SSL\nsasl.username=u\nsasl.password=p\n", {}, "needs sasl.mechanism"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n", {},
     "needs sasl.username and sasl.password"),
    ("sasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\n", {}, "security.protocol is PLAINTEXT: use SASL_SSL"),
    ("security.protocol=SSL\nssl.truststore.location=/no/such/ca.pem\n", {},
     "ssl.truststore.location '/no/such/ca.pem': no such file"),
    ("security.protocol=SSL\nssl.truststore.type=JKS\n", {}, "only PEM is supported"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
     "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" "
     "password=\"p\";\n", {}, "needs org.apache.kafka.common.security.scram.ScramLoginModule"),
    ("", {"METERSTREAM_KAFKA_SECURITY_PROTOCL": "SSL"}, "unknown environment variable(s) "
                                                        "METERSTREAM_KAFKA_SECURITY_PROTOCL"),
])
def test_mistakes_fail_fast_naming_the_mistake(tmp_path, text, env, message):
    path = write(tmp_path, text)
    with pytest.raises(ks.KafkaSecurityError) as caught:
        ks.load(path, environ=env)
    assert message in str(caught.value)
    assert "p\n" not in str(caught.value)


def test_a_missing_properties_file_is_named():
    with pytest.raises(ks.KafkaSecurityError, match="Kafka properties file '/no/such.properties'"):
        ks.load("/no/such.properties", environ={})


def test_a_keystore_without_its_key_or_with_a_pkcs1_key(tmp_path):
    only_cert = tmp_path / "cert.pem"
    only_cert.write_text(CERT)
    pkcs1 = tmp_path / "pkcs1.pem"
    pkcs1.write_text(CERT + "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n")
    for path, message in ((only_cert, "no private key"), (pkcs1, "not PKCS#8")):
        with pytest.raises(ks.KafkaSecurityError, match=message):
            ks.load(environ={"METERSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
                             "METERSTREAM_KAFKA_SSL_KEYSTORE_LOCATION": str(path)})


def test_a_wrong_value_never_shows_a_secret(tmp_path):
    path = write(tmp_path, f"security.protocol=SASL_SSL\nsasl.mechanism=nope\nsasl.username=u\n"
                           f"sasl.password={PASSWORD}\n")
    with pytest.raises(ks.KafkaSecurityError) as caught:
        ks.load(path, environ={})
    assert PASSWORD not in str(caught.value)


def test_secrets_stay_out_of_repr_str_and_describe(tmp_path, pem):
    settings = scram_from_environment(pem)
    for text in (repr(settings), str(settings), settings.describe()):
        assert PASSWORD not in text
    assert PASSWORD in settings.secrets()


def test_active_follows_the_environment(monkeypatch, tmp_path, pem):
    monkeypatch.delenv(ks.PROPERTIES_ENV, raising=False)
    assert ks.client_kwargs() == {}
    path = write(tmp_path, f"security.protocol=SSL\nssl.truststore.location={pem['ca']}\n")
    ks.use_properties_file(path)
    assert ks.client_kwargs()["security_protocol"] == "SSL"
    monkeypatch.delenv(ks.PROPERTIES_ENV)
    assert ks.client_kwargs() == {}


def test_use_properties_file_changes_nothing_when_the_file_is_bad(monkeypatch, tmp_path):
    monkeypatch.delenv(ks.PROPERTIES_ENV, raising=False)
    with pytest.raises(ks.KafkaSecurityError):
        ks.use_properties_file(write(tmp_path, "security.protocol=TLS\n"))
    assert ks.PROPERTIES_ENV not in __import__("os").environ


@pytest.mark.parametrize(("name", "secret"), [
    ("s3.secret-key", True), ("s3.access-key", True), ("fs.azure.account.key.password", True),
    ("security.ssl.keystore-password", True), ("sasl.jaas.config", True), ("metrics.reporter.x.token", True),
    ("gcs.private-key", True), ("api-key", True), ("fs.azure.account.key.acct.blob.core.windows.net", True),
    ("metrics.reporter.otel.http-headers", True), ("x.basic-auth", True), ("gcp.service-key", True),
    ("key-by", False), ("state.backend.type", False), ("ssl.keystore.type", False), ("keyed.state.x", False),
    ("execution.state-recovery.path", False), ("pipeline.max-parallelism", False),
])
def test_which_option_names_are_credentials(name, secret):
    assert ks.is_secret_option(name) is secret


def test_redact_args_hides_credential_values_only():
    args = ["--bootstrap", "b:1", "--flink-conf", "s3.secret-key=X1", "--flink-conf=s3.access-key=X2",
            "-Dsecurity.ssl.keystore-password=X3", "--flink-conf", "state.backend.type=rocksdb", "--password", "X4",
            "--key-by", "tenant"]
    redacted = ks.redact_args(args)
    assert not {"X1", "X2", "X3", "X4"} & {part for word in redacted for part in word.split("=")}
    assert "state.backend.type=rocksdb" in redacted and "tenant" in redacted and "b:1" in redacted
    assert "s3.secret-key=<redacted>" in redacted


def test_redact_text_hides_the_args_secrets_the_settings_and_jaas_passwords(tmp_path, pem):
    settings = scram_from_environment(pem)
    output = (f"client config: s3.secret-key=X1, password {PASSWORD}, "
              'sasl.jaas.config=... required username="u" password="other";')
    redacted = ks.redact(output, args=["--flink-conf", "s3.secret-key=X1"], security=settings)
    assert "X1" not in redacted and PASSWORD not in redacted and "other" not in redacted
    assert 'username="u"' in redacted


@pytest.fixture
def submit_without_cluster(monkeypatch):
    """`meterstream submit` with the cluster and `flink run` replaced: what would have been submitted, and the
    `flink run` line as `cluster.submit` makes it."""
    from meterstream import cluster

    calls = []
    monkeypatch.setattr(cluster, "jobmanager_address", lambda given: "127.0.0.1:8081")

    def submit(jobmanager, job_args, **kw):
        calls.append(job_args)
        return "0" * 32, cluster.submit_command(jobmanager, job_args), ""

    monkeypatch.setattr(cluster, "submit", submit)
    for name in list(__import__("os").environ):
        if name.upper().startswith(ks.ENV_PREFIX):
            monkeypatch.delenv(name)
    return calls


def test_submit_prints_no_flink_conf_secret(capsys, submit_without_cluster):
    from meterstream import cli

    args = ["--bootstrap", "b:9092", "--flink-conf", "s3.secret-key=TOPSECRET1", "--flink-conf",
            "s3.access-key=TOPSECRET2", "--flink-conf", "state.backend.type=rocksdb"]
    assert cli.main(["submit", "--", *args]) == 0
    out, err = capsys.readouterr()
    assert "TOPSECRET" not in out + err
    assert "s3.secret-key=<redacted>" in out and "state.backend.type=rocksdb" in out
    assert "the Flink client log records the job's arguments" in err  # and says where to put them instead
    assert submit_without_cluster == [args], "the job still gets the real values"


def test_submit_refuses_kafka_secrets_in_the_environment(capsys, submit_without_cluster, monkeypatch):
    from meterstream import cli

    monkeypatch.setenv("METERSTREAM_KAFKA_SASL_PASSWORD", "TOPSECRET3")
    with pytest.raises(SystemExit) as caught:
        cli.main(["submit", "--", "--bootstrap", "b:9092"])
    assert "METERSTREAM_KAFKA_SASL_PASSWORD set: the Flink client logs its whole environment" in str(caught.value)
    assert "TOPSECRET3" not in str(caught.value)
    assert submit_without_cluster == []


def test_submit_passes_the_properties_file_by_absolute_path(submit_without_cluster, tmp_path, pem, monkeypatch):
    from meterstream import cli

    write(tmp_path, f"security.protocol=SSL\nssl.truststore.location={pem['ca']}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["submit", "--", "--bootstrap", "b:9092", "--kafka-properties", "client.properties"]) == 0
    assert submit_without_cluster == [["--bootstrap", "b:9092", "--kafka-properties",
                                       str(tmp_path.resolve() / "client.properties")]]


def test_a_failed_flink_run_shows_its_output_without_secrets(monkeypatch, tmp_path):
    import subprocess

    from meterstream import cluster

    monkeypatch.delenv(ks.PROPERTIES_ENV, raising=False)
    monkeypatch.setattr(cluster, "recorded_cluster", lambda home: cluster.ClusterInfo(
        rest_port=8081, rpc_port=6123, metrics_port=9249, home=str(tmp_path)))
    echoed = "Program Arguments: --flink-conf s3.secret-key=TOPSECRET4\nsasl.jaas.config=x password=\"TOPSECRET5\";"
    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: subprocess.CompletedProcess(a, 1, echoed, ""))
    with pytest.raises(cluster.ClusterError) as caught:
        cluster.submit("127.0.0.1:8081", ["--bootstrap", "b:9092", "--flink-conf", "s3.secret-key=TOPSECRET4"],
                       home=tmp_path)
    assert "TOPSECRET" not in str(caught.value)
    assert "flink run failed (1)" in str(caught.value)


def test_the_local_broker_with_a_sasl_ssl_listener_gives_clients_only_that_listener(tmp_path):
    from meterstream.kafka_local import SaslSslListener, server_properties

    listener = SaslSslListener(keystore="/certs/server.pem", scram_users=(("billing", "pw1"),))
    text = server_properties(tmp_path, 9093, 9094, sasl_ssl=listener, internal_port=9095)
    settings = dict(line.split("=", 1) for line in text.splitlines())
    assert settings["listeners"] == ("SASL_SSL://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9095,"
                                     "CONTROLLER://127.0.0.1:9094")
    assert settings["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert settings["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "pw1" not in text, "the credentials go to the storage tool, not into server.properties"
    assert listener.format_arguments() == ["--add-scram", "SCRAM-SHA-512=[name=billing,password=pw1]"]
    mutual = SaslSslListener(keystore="/certs/server.pem", scram_users=(), client_truststore="/certs/ca.pem")
    assert "listener.name.sasl_ssl.ssl.client.auth=required\n" in server_properties(
        tmp_path, 9093, 9094, sasl_ssl=mutual, internal_port=9095)
    plain = dict(line.split("=", 1) for line in server_properties(tmp_path, 9093, 9094).splitlines())
    assert plain["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert "authorizer.class.name" not in settings and "authorizer.class.name" not in plain
    # With super users: ACLs enforced, nothing allowed that no ACL allows, the internal listeners' principal super.
    acls = SaslSslListener(keystore="/certs/server.pem", scram_users=(("admin", "pw2"),), super_users=("User:admin",))
    enforced = dict(line.split("=", 1) for line in server_properties(
        tmp_path, 9093, 9094, sasl_ssl=acls, internal_port=9095).splitlines())
    assert enforced["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert enforced["allow.everyone.if.no.acl.found"] == "false"
    assert enforced["super.users"] == "User:admin;User:ANONYMOUS"
    assert enforced["auto.create.topics.enable"] == "false"


def test_refusals_are_read_from_what_kafka_python_logs_while_it_retries(monkeypatch):
    import logging

    from kafka.errors import KafkaConnectionError, KafkaTimeoutError, SaslAuthenticationFailedError

    from meterstream import topics

    watcher = topics._ConnectionFailures(sasl=False)
    log = logging.getLogger("kafka.net.manager")
    log.addHandler(watcher)
    tls = KafkaConnectionError("[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")
    sasl = SaslAuthenticationFailedError("invalid credentials with SASL mechanism SCRAM-SHA-512")
    try:
        log.warning("Bootstrap connection to %s failed: %s", "b-0", KafkaTimeoutError("slow"))
        assert watcher.refusals == []
        # The refusal is recorded from the connection's log line; the bootstrap loop's next warning ends the loop.
        log.error("Connection failed: %s", tls)
        log.error("Connection failed: %s", sasl)
        with pytest.raises(topics._Refused):
            log.warning("Bootstrap connection to %s failed: %s", "b-0", tls)
    finally:
        log.removeHandler(watcher)
    assert watcher.refusals == [tls, sasl]
    monkeypatch.delenv(ks.PROPERTIES_ENV, raising=False)
    assert topics.refusal_message("b:9093", tls).startswith("the TLS handshake with b:9093 failed")
    assert topics.refusal_message("b:9093", sasl).startswith("the Kafka broker at b:9093 refused our credentials")


@pytest.mark.parametrize("sasl", [True, False])
def test_a_sasl_broker_closing_the_connection_twice_in_a_row_is_a_refusal(sasl, monkeypatch):
    """Kafka's broker sends a failed SCRAM exchange's error only as it closes the connection, and over TLS that
    answer is lost at times: two closes in a row before any answer count as refused credentials, with SASL only (a
    PLAINTEXT or SSL broker closing connections is a broker going away, waited out)."""
    import logging

    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    from meterstream import topics

    closed = KafkaConnectionError("socket disconnected")
    watcher = topics._ConnectionFailures(sasl=sasl)
    log = logging.getLogger("kafka.net.manager")
    log.addHandler(watcher)
    try:
        log.warning("Bootstrap connection to %s failed: %s", "b-0", closed)
        log.warning("Bootstrap connection to %s failed: %s", "b-0", KafkaTimeoutError("slow"))
        log.warning("Bootstrap connection to %s failed: %s", "b-0", closed)
        assert watcher.refusals == [], "a timeout between two closes: not in a row"
        if sasl:
            with pytest.raises(topics._Refused):
                log.warning("Bootstrap connection to %s failed: %s", "b-0", closed)
        else:
            log.warning("Bootstrap connection to %s failed: %s", "b-0", closed)
    finally:
        log.removeHandler(watcher)
    assert [type(r) for r in watcher.refusals] == ([topics.ClosedDuringAuthentication] if sasl else [])
    if sasl:
        monkeypatch.delenv(ks.PROPERTIES_ENV, raising=False)
        assert topics.refusal_message("b:9093", watcher.refusals[0]).startswith(
            "the Kafka broker at b:9093 refused our credentials (ClosedDuringAuthentication: the broker closed the "
            "connection 2 times in a row while we authenticated)")
