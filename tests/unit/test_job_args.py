"""Operator mistakes stop a run at start, clearly (issue 15, item 6): unknown flags and bad values (exit 2 with the
usage line) on every entry point that takes the billing job's flags, a catalog error naming its file, missing topics
named all at once. No JVM and no broker here: the broker side is in tests/integration/test_start_checks.py."""

from __future__ import annotations

import pytest

from jobs import billing, passthrough
from meterstream import cli
from meterstream import topics as topic_admin

GOOD = ["--bootstrap", "127.0.0.1:9092"]


def exit_code(excinfo) -> int | str:
    return excinfo.value.code


@pytest.mark.parametrize("extra", [["--bonded"], ["--no-such-flag", "x"], ["stray"], ["--credit"]])
def test_unknown_billing_flags_are_an_error_with_the_usage_line(capsys, extra):
    with pytest.raises(SystemExit) as caught:
        billing.parse_args([*GOOD, *extra])
    assert exit_code(caught) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    assert f"unrecognized arguments: {' '.join(extra)}" in err


def test_the_job_flags_parse_as_before():
    args = billing.parse_args([*GOOD, "--bounded", "--credits", "--window-seconds", "3600", "--parallelism", "1",
                               "--topic-line-items", "lines", "--flink-conf", "a=b"])
    assert (args.bounded, args.credits, args.window_seconds, args.parallelism) == (True, True, 3600, 1)
    assert args.topic_line_items == "lines" and args.flink_conf == ["a=b"] and args.create_topics is False
    assert billing.parse_args([*GOOD, "--create-topics"]).create_topics is True


@pytest.mark.parametrize("value", ["7", "0", "100.5", "172800", "1h"])
def test_unsupported_window_sizes_stop_at_start_naming_flag_and_value(capsys, value):
    with pytest.raises(SystemExit) as caught:
        billing.parse_args([*GOOD, "--window-seconds", value])
    assert exit_code(caught) == 2
    err = capsys.readouterr().err
    assert "argument --window-seconds" in err and value in err.splitlines()[-1]


@pytest.mark.parametrize("value", ["60", "60.0", "100", "300", "3600", "86400"])
def test_supported_window_sizes_reach_the_settings(tmp_path, value):
    args = billing.parse_args([*GOOD, "--window-seconds", value])
    assert billing.settings_from_args(args).window_size_ms == int(float(value)) * 1000


def test_the_settings_refuse_an_unsupported_window_size_from_code_too():
    with pytest.raises(ValueError, match="does not divide a day"):
        billing.BillingSettings(catalog_yaml="", window_size_ms=7_000)


def test_meterstream_billing_rejects_unknown_flags(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["billing", *GOOD, "--bonded"])
    assert exit_code(caught) == 2
    assert "unrecognized arguments: --bonded" in capsys.readouterr().err


def test_passthrough_rejects_unknown_flags(capsys):
    with pytest.raises(SystemExit) as caught:
        passthrough.main([*GOOD, "--input", "a", "--output", "b", "--bonded"])
    assert exit_code(caught) == 2
    assert "unrecognized arguments: --bonded" in capsys.readouterr().err


@pytest.fixture
def submissions(monkeypatch):
    """`meterstream submit` without a cluster: records what would have been submitted."""
    from meterstream import cluster

    calls = []
    monkeypatch.setattr(cluster, "jobmanager_address", lambda given: "127.0.0.1:8081")
    monkeypatch.setattr(cluster, "submit",
                        lambda jobmanager, job_args, **kw: calls.append(job_args) or ("0" * 32, ["flink"], ""))
    return calls


@pytest.mark.parametrize("extra", [["--bonded"], ["--no-such-flag", "x"], ["--window-seconds", "7"]])
def test_meterstream_submit_checks_the_job_arguments_before_submitting(capsys, submissions, extra):
    with pytest.raises(SystemExit) as caught:
        cli.main(["submit", "--parallelism", "2", "--", *GOOD, *extra])
    assert exit_code(caught) == 2
    assert "usage: " in capsys.readouterr().err
    assert submissions == [], "nothing reached the cluster"


def test_meterstream_submit_submits_valid_job_arguments(submissions):
    assert cli.main(["submit", "--", *GOOD, "--credits"]) == 0
    assert submissions == [[*GOOD, "--credits"]]


def test_catalog_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad-catalog.yaml"
    bad.write_text("version: 1\ntenants:\n  acme: {currency: usd}\n")
    for path in (bad, tmp_path / "missing.yaml"):
        with pytest.raises(SystemExit) as caught:
            billing.settings_from_args(billing.parse_args([*GOOD, "--catalog", str(path)]))
        message = str(exit_code(caught))
        assert f"invalid price catalog {path}:" in message
        assert "<catalog>" not in message


def test_a_run_uses_its_outputs_and_with_credits_the_credit_topics():
    topics = billing.Topics(usage_events="u", line_items="l")
    plain = billing.topics_used(topics, credits=False)
    assert plain == ["u", "usage-dead-letters", "usage-late-events", "l", "billing-accounting", "invoices"]
    assert billing.topics_used(topics, credits=True) == [
        *plain, "credit-grants", "spend-caps", "credit-drawdowns", "billing-alerts", "credit-grant-dead-letters"]
    assert billing.topics_used(topics, credits=False, corrections=True) == [
        *plain, "usage-corrections", "usage-correction-dead-letters"]


def test_corrections_are_off_by_default_and_their_horizon_is_at_most_the_dedup_horizon():
    args = billing.parse_args(GOOD)
    assert (args.corrections, args.correction_horizon_hours) == (False, 24)
    assert billing.settings_from_args(args).correction_horizon_ms == 24 * 3600 * 1000
    args = billing.parse_args([*GOOD, "--corrections", "--correction-horizon-hours", "48",
                               "--topic-usage-corrections", "c", "--topic-correction-dead-letters", "cd"])
    assert (args.corrections, args.topic_usage_corrections, args.topic_correction_dead_letters) == (True, "c", "cd")
    assert billing.settings_from_args(args).correction_horizon_ms == 48 * 3600 * 1000
    for hours in ("0", str(35 * 24 + 1)):
        with pytest.raises(SystemExit) as caught:
            billing.settings_from_args(billing.parse_args([*GOOD, "--correction-horizon-hours", hours]))
        assert "--correction-horizon-hours" in str(exit_code(caught))
    assert billing.settings_from_args(billing.parse_args(
        [*GOOD, "--dedup-ttl-days", "2", "--correction-horizon-hours", "48"])).correction_horizon_ms == 48 * 3600_000
    with pytest.raises(ValueError, match="correction horizon"):
        billing.BillingSettings(catalog_yaml="", dedup_ttl_days=1, correction_horizon_ms=2 * 24 * 3600_000)


def test_missing_topics_are_named_all_at_once_or_created_on_request(monkeypatch):
    created = []
    monkeypatch.setattr(topic_admin, "missing_topics", lambda bootstrap, names, timeout_s: ["b", "d"])
    monkeypatch.setattr(topic_admin, "unauthorized_topics", lambda bootstrap, names, timeout_s: [])
    monkeypatch.setattr(topic_admin, "create_topics", lambda bootstrap, names, partitions, configs:
                        created.append((list(names), partitions, configs)))
    with pytest.raises(SystemExit) as caught:
        billing.check_kafka("host:1", ["a", "b", "c", "d"], create=False, partitions=2, outputs=frozenset({"c", "d"}))
    message = str(exit_code(caught))
    assert "missing Kafka topics at host:1: b, d." in message and "--create-topics" in message
    assert "`meterstream topics --bootstrap host:1 b --output d`" in message  # outputs: LogAppendTime
    assert created == []
    assert billing.check_kafka("host:1", ["a", "b", "c", "d"], create=True, partitions=3,
                               outputs=frozenset({"c", "d"})) == ["b", "d"]
    assert created == [(["b", "d"], 3, {"d": topic_admin.OUTPUT_TOPIC_CONFIG})]


def test_topics_the_acls_hide_are_named_with_the_acl_they_need_not_created(monkeypatch):
    """A topic the brokers' ACLs hide from the job's principal looks missing; it is named as hidden, with what the
    job does with it, and never created (`--create-topics` or not)."""
    asked = []

    def unauthorized(bootstrap, names, timeout_s):
        asked.append(list(names))
        return ["b", "d"]

    monkeypatch.setattr(topic_admin, "missing_topics", lambda bootstrap, names, timeout_s: ["b", "c", "d"])
    monkeypatch.setattr(topic_admin, "unauthorized_topics", unauthorized)
    monkeypatch.setattr(topic_admin, "create_topics", lambda *args, **kwargs: pytest.fail("created"))
    for create in (False, True):
        with pytest.raises(SystemExit) as caught:
            billing.check_kafka("host:1", ["a", "b", "c", "d"], create=create, partitions=2,
                                outputs=frozenset({"c", "d"}))
        message = str(exit_code(caught))
        assert message.startswith("Kafka topics at host:1 that the job's principal may not describe: b (Read), "
                                  "d (Write). "), message
        assert "missing" not in message and "--create-topics" not in message
    assert asked == [["b", "c", "d"]] * 2  # only what looked missing


def test_a_read_back_the_acls_refuse_ends_a_bounded_run_naming_the_acl(monkeypatch, capsys):
    """The accounting topic, or with credits a topic of the credits identities, refused to the job's principal after
    the run: exit 1 naming the topic and the ACL, no traceback, nothing claimed to hold."""
    from kafka.errors import TopicAuthorizationFailedError

    def refused(topic):
        def read(*args, **kwargs):
            raise TopicAuthorizationFailedError({topic})
        return read

    settings = billing.BillingSettings(catalog_yaml="")
    checks = {"job_name": "j", "received": 0, "corrections_received": None}
    monkeypatch.setattr(billing, "read_accounting", refused("billing-accounting"))
    with pytest.raises(SystemExit) as caught:
        billing.bounded_end_checks("host:1", billing.Topics(), settings, credits=False, **checks)
    assert str(exit_code(caught)) == (
        f"j: run {settings.run_id} finished, but the job's principal may not read back billing-accounting for the "
        'checks of a --bounded run: add Read on them (README, "Tenant topics")')
    monkeypatch.setattr(billing, "read_accounting", lambda bootstrap, topic, run_id: {})
    monkeypatch.setattr(billing, "credit_identity_check", refused("credit-drawdowns"))
    with pytest.raises(SystemExit, match="may not read back credit-drawdowns for the checks"):
        billing.bounded_end_checks("host:1", billing.Topics(), settings, credits=True, **checks)
    out = capsys.readouterr().out
    assert "records in the input" in out and "credits:" not in out  # the accounting table printed, no credits line
    monkeypatch.setattr(billing, "credit_identity_check", lambda bootstrap, topics, settings: ("credits: HOLD", True))
    assert billing.bounded_end_checks("host:1", billing.Topics(), settings, credits=True, **checks) == 0


def test_an_unreachable_broker_is_named_with_the_flag(monkeypatch):
    def unreachable(bootstrap, names, timeout_s):
        raise topic_admin.BrokerUnreachable(f"no Kafka broker answers at {bootstrap}")

    monkeypatch.setattr(topic_admin, "missing_topics", unreachable)
    with pytest.raises(SystemExit) as caught:
        billing.check_kafka("nowhere.invalid:9092", ["a"], create=True, partitions=1)
    assert str(exit_code(caught)) == "--bootstrap nowhere.invalid:9092: no Kafka broker answers at nowhere.invalid:9092"
