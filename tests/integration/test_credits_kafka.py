"""Credits end to end on a real broker: usage + grants in, drawdowns and alerts out (read_committed), with the
accounting identities of the credits issue checked on the output topics."""

from __future__ import annotations

import json

import pytest

from meterstream.topics import produce
from schemas.credits import CreditDrawdown, CreditGrantRecord
from schemas.invoice_line_item import InvoiceLineItem
from tests.integration.test_billing_kafka import make_topics, read_json, run_billing
from tests.job.test_credits_job import GRANTS
from tests.scripted_usage import scripted_usage
from udfs.credits import ledger_identity

pytestmark = pytest.mark.integration


def test_drawdowns_account_for_every_line_item_and_grant(kafka_bootstrap, kafka_topic):
    topics = make_topics(kafka_topic, input_partitions=2)
    topics.update(
        credit_grants=kafka_topic("grants", partitions=1),
        spend_caps=kafka_topic("caps", partitions=1),
        credit_drawdowns=kafka_topic("drawdowns", partitions=2),
        billing_alerts=kafka_topic("alerts", partitions=1),
        credit_grant_dead_letters=kafka_topic("grant-dead", partitions=1),
    )
    records = scripted_usage(seed=9, events=2000)
    produce(kafka_bootstrap, topics["usage_events"], records, keys=[str(i % 5).encode() for i in range(len(records))])
    produce(kafka_bootstrap, topics["credit_grants"], [json.dumps(g).encode() for g in GRANTS])
    stdout = run_billing(kafka_bootstrap, topics, parallelism=2, extra=["--credits"])
    assert "customer/currency pairs: HOLD" in stdout, stdout[-2000:]

    lines = [InvoiceLineItem.model_validate(li) for li in read_json(kafka_bootstrap, topics["line_items"])]
    drawdowns = [CreditDrawdown.model_validate(d) for d in read_json(kafka_bootstrap, topics["credit_drawdowns"])]
    alerts = read_json(kafka_bootstrap, topics["billing_alerts"])
    rejected = read_json(kafka_bootstrap, topics["credit_grant_dead_letters"])
    grants = [CreditGrantRecord.model_validate(g).root for g in GRANTS[:-1]]

    assert len({d.drawdown_id for d in drawdowns}) == len(drawdowns), "each drawdown exactly once"
    assert len({a["alert_id"] for a in alerts}) == len(alerts), "each alert exactly once"
    assert {li.line_item_id for li in lines} == {d.line_item_id for d in drawdowns if d.kind == "usage"}
    assert [r["reason"] for r in rejected] == ["invalid_amount"]
    checks = ledger_identity(grants, drawdowns, lines)
    assert checks
    for key, check in checks.items():
        # sum(line item amounts) = sum(drawn) + sum(uncovered)
        assert check.usage_identity_holds, key
        # sum(grants) - drawn - expired - voided = balance, never below zero
        assert check.balance >= 0, key
