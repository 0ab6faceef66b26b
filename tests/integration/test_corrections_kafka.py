"""The `usage-corrections` input on a real broker (`--corrections`): raw records through the Kafka source's
`RawCorrectionDeserializer`, validated and deduplicated by the spec, decided by the ledger in the routing operator,
rejects on the correction dead-letter topic (read_committed) with the coordinates they were read at, and the
corrections' identity in the job's own check. Usage and corrections are read at once, and the run is bounded (a
replay): the routing operator holds the corrections until the usage input has ended, so every outcome is the spec's
over the usage first, exactly, whichever topic the sources read faster."""

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
    assert Counter(letter.reason.value for letter in letters) == rejected, "the spec's outcomes, usage first"
    assert len(corrections) - len(letters) == applied
    by_raw = {raw: raw for raw in corrections}
    for letter in letters:
        assert letter.source_topic == topics["usage_corrections"] and letter.source_partition in (0, 1)
        if letter.raw_encoding == "utf-8":
            assert letter.raw.encode() in by_raw, "the dead letter carries the record as it was read"
