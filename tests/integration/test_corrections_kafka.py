"""The `usage-corrections` input on a real broker (`--corrections`): raw records through the Kafka source's
`RawCorrectionDeserializer`, validated and deduplicated by the spec, decided by the ledger in the routing operator,
rejects on the correction dead-letter topic (read_committed) with the coordinates they were read at, and the
corrections' identity in the job's own check. Usage and corrections are read at once here, so whether a correction
finds its event billed first depends on timing: the ledger's outcomes are checked as a whole (applied, or
`already_cancelled` / `unknown_event` / `aggregation_not_correctable` / `event_dead_lettered`), the Python stages'
reasons exactly (the job test pins the ledger's)."""

from __future__ import annotations

from collections import Counter

import pytest

from meterstream.topics import produce
from schemas.correction_dead_letter import CorrectionDeadLetter
from tests.integration.test_billing_kafka import make_topics, read_json, run_billing
from tests.job.test_corrections_job import CORRECTIONS, USAGE, spec_outcomes

pytestmark = pytest.mark.integration


def test_corrections_from_kafka_are_dead_lettered_and_counted(kafka_bootstrap, kafka_topic):
    topics = make_topics(kafka_topic, input_partitions=1)
    topics.update(usage_corrections=kafka_topic("corrections", partitions=2),
                  correction_dead_letters=kafka_topic("correction-dead", partitions=1))
    corrections = [raw for raw in CORRECTIONS if raw is not None]
    produce(kafka_bootstrap, topics["usage_events"], USAGE)
    produce(kafka_bootstrap, topics["usage_corrections"], corrections,
            keys=[str(i % 2).encode() for i in range(len(corrections))])
    stdout = run_billing(kafka_bootstrap, topics, parallelism=2, extra=["--corrections"])
    applied, rejected = spec_outcomes(corrections)
    assert "identity corrections = applied + rejected: HOLDS" in stdout, stdout[-3000:]

    letters = [CorrectionDeadLetter.model_validate(d)
               for d in read_json(kafka_bootstrap, topics["correction_dead_letters"])]
    got = Counter(letter.reason.value for letter in letters)
    ledger = ("already_cancelled", "unknown_event", "aggregation_not_correctable", "event_dead_lettered")
    assert {r: n for r, n in got.items() if r not in ledger} == {r: n for r, n in rejected.items() if r not in ledger}
    assert len(corrections) - sum(got.values()) + sum(got[r] for r in ledger) == applied + sum(
        rejected[r] for r in ledger), "what reached the ledger: applied or rejected there"
    by_raw = {raw: raw for raw in corrections}
    for letter in letters:
        assert letter.source_topic == topics["usage_corrections"] and letter.source_partition in (0, 1)
        if letter.raw_encoding == "utf-8":
            assert letter.raw.encode() in by_raw, "the dead letter carries the record as it was read"
