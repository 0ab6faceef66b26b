"""Settings the exactly-once Kafka sinks cannot work under, the output topics' configuration, and how a failed job's
root cause is found (no JVM, no broker)."""

from __future__ import annotations

import pytest

from jobs.billing import Topics
from jobs.kafka_io import SINK_TRANSACTION_TIMEOUT_MS, sink_setting_problems
from jobs.runtime import FailureHistory, exception_chain
from meterstream.topics import (
    JOB_INPUT_TOPICS,
    JOB_OUTPUT_TOPICS,
    OUTPUT_TOPIC_CONFIG,
    job_topic_configs,
    output_topic_configs,
)


def test_settings_a_default_broker_accepts_have_no_problem():
    assert sink_setting_problems(checkpoint_interval_ms=5_000,
                                 broker_transaction_max_timeout_ms={1: 15 * 60 * 1000, 2: None}) == []


@pytest.mark.parametrize("interval", [SINK_TRANSACTION_TIMEOUT_MS, SINK_TRANSACTION_TIMEOUT_MS + 1])
def test_a_checkpoint_interval_not_below_the_transaction_timeout_is_named(interval):
    (problem,) = sink_setting_problems(checkpoint_interval_ms=interval, broker_transaction_max_timeout_ms={})
    assert f"--checkpoint-interval-ms {interval}" in problem and "transaction.timeout.ms" in problem


def test_a_broker_whose_transaction_maximum_is_below_the_sinks_timeout_is_named():
    problems = sink_setting_problems(
        checkpoint_interval_ms=5_000,
        broker_transaction_max_timeout_ms={1: SINK_TRANSACTION_TIMEOUT_MS, 2: SINK_TRANSACTION_TIMEOUT_MS - 1})
    assert len(problems) == 1
    assert "broker 2" in problems[0] and f"transaction.max.timeout.ms={SINK_TRANSACTION_TIMEOUT_MS - 1}" in problems[0]


def test_every_topic_of_the_job_is_an_input_or_an_output():
    assert set(JOB_INPUT_TOPICS).isdisjoint(JOB_OUTPUT_TOPICS)
    assert set(vars(Topics())) == {*JOB_INPUT_TOPICS, *JOB_OUTPUT_TOPICS}
    topics = Topics(line_items="my-lines", usage_events="my-usage")
    assert "my-lines" in topics.outputs() and "my-usage" not in topics.outputs()
    assert len(topics.outputs()) == len(JOB_OUTPUT_TOPICS)


def test_output_topics_get_log_append_time_and_inputs_the_brokers_defaults():
    assert OUTPUT_TOPIC_CONFIG == {"message.timestamp.type": "LogAppendTime"}
    topics = {"usage_events": "in", "line_items": "lines", "credit_drawdowns": "draws", "credit_grants": "grants"}
    assert job_topic_configs(topics) == {"lines": OUTPUT_TOPIC_CONFIG, "draws": OUTPUT_TOPIC_CONFIG}
    assert output_topic_configs(["a"]) == {"a": OUTPUT_TOPIC_CONFIG}


def test_the_chain_of_a_python_exception_ends_at_its_root_cause():
    try:
        try:
            raise KeyError("tenant")
        except KeyError as inner:
            raise RuntimeError("job failed") from inner
    except RuntimeError as outer:
        chain = exception_chain(outer)
    assert chain == ["RuntimeError: job failed", "KeyError: 'tenant'"]


def test_the_chain_of_a_converted_java_exception_is_read_from_its_trace():
    class JavaException(Exception):  # the shape of pyflink.util.exceptions.JavaException
        stack_trace = ("org.apache.flink.runtime.client.JobExecutionException: Job execution failed.\n"
                       "\tat org.apache.flink.runtime.jobmaster.JobResult.toJobExecutionResult(JobResult.java:144)\n"
                       "Caused by: org.apache.flink.runtime.JobException: Recovery is suppressed\n"
                       "\t... 3 more\n"
                       "Caused by: java.io.IOException: disk full\n")

    assert exception_chain(JavaException()) == [
        "org.apache.flink.runtime.client.JobExecutionException: Job execution failed.",
        "org.apache.flink.runtime.JobException: Recovery is suppressed",
        "java.io.IOException: disk full",
    ]


def test_the_failure_reported_is_the_oldest_in_the_exception_history():
    """Flink lists the newest failure first; a later poll may see only part of what an earlier one did."""
    def entry(timestamp: int, root: str) -> dict:
        return {"exceptionName": "java.io.IOException", "timestamp": timestamp,
                "stacktrace": f"java.io.IOException: sink failed\n\tat a.b(C.java:1)\nCaused by: {root}\n\t... 9 more"}

    history = FailureHistory(None)
    assert history.first_failure() is None
    history.record([entry(300, "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: none"),
                    entry(200, "org.apache.kafka.common.InvalidRecordException: Timestamp out of range")])
    history.record([entry(400, "java.lang.IllegalStateException: later")])
    assert history.first_failure() == ["java.io.IOException: sink failed",
                                       "org.apache.kafka.common.InvalidRecordException: Timestamp out of range"]
