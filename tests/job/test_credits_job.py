"""Prepaid credits in the billing job on a MiniCluster: scripted usage and grants, identities on the outputs."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.billing import BillingSettings, build_pipeline, invoices_of, table_environment
from jobs.credits import build_credits
from jobs.runtime import stream_environment
from schemas.credits import CreditDrawdown, CreditGrantRecord
from schemas.invoice_line_item import InvoiceLineItem
from tests.credit_files import file_credit_input_ddl
from tests.invoice_checks import assert_invoices_exact
from tests.job_outputs import collect_outputs
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from tests.usage_files import file_parsed_usage
from udfs.credits import DRAWN_KINDS, ledger_identity
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"


def grant(grant_id, tenant, customer, amount, currency, **extra) -> dict:
    return {"type": "grant", "grant_id": grant_id, "tenant_id": tenant, "customer_id": customer, "amount": amount,
            "currency": currency, "priority": extra.pop("priority", 50),
            "effective_at": extra.pop("effective_at", "2026-10-01T00:00:00.000Z"),
            "expires_at": extra.pop("expires_at", None), "applies_to": extra.pop("applies_to", None),
            "category": extra.pop("category", "paid")}


GRANTS = [
    grant("g-acme-0", "acme-ai", "cust-0", "50", "USD"),
    grant("g-acme-1-promo", "acme-ai", "cust-1", "1000", "USD", priority=10, category="promotional",
          expires_at="2026-11-01T04:05:00.000Z", applies_to=["storage_gb"]),
    grant("g-acme-1-tokens", "acme-ai", "cust-1", "100", "USD", applies_to=["input_tokens"]),
    grant("g-bolt-0", "bolt-ml", "cust-0", "20", "EUR"),
    {"type": "void", "grant_id": "g-bolt-0", "tenant_id": "bolt-ml", "customer_id": "cust-0",
     "voided_at": "2026-11-01T04:10:00.000Z"},
    grant("g-cirrus-2", "cirrus-gpu", "cust-2", "100000", "JPY"),
    grant("g-bad", "acme-ai", "cust-3", "-5", "USD"),  # rejected: amount must be > 0
]


def gated(gate: Path):
    """A SQL function that passes a grant payload on only once `gate` exists: it holds the grant source back for
    as long as the test wants (at most 3 minutes), so the line items reach the ledger first."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    gate_path = str(gate)

    def after_gate(payload):
        import os
        import time

        deadline = time.monotonic() + 180
        while not os.path.exists(gate_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        return payload

    return udf(after_gate, result_type=DataTypes.BYTES())


def run_job(tmp_path: Path, parallelism: int, *, grants_after_line_items: int | None = None) -> dict[str, list[dict]]:
    """Run the billing job with credits on the scripted usage and GRANTS, as a replay (bounded grant inputs).

    `grants_after_line_items=N`: the grant source is held back until the test has collected N line items (all
    of them, in practice): the usage-first interleaving that a grants-first replay must not differ from.
    `collected["drawdowns_before_grants"]` then counts the drawdowns seen before the grants were let through."""
    usage, grants, caps = tmp_path / "usage.jsonl", tmp_path / "grants.jsonl", tmp_path / "caps.jsonl"
    usage.write_bytes(b"\n".join(scripted_usage()) + b"\n")
    grants.write_text("\n".join(json.dumps(g) for g in GRANTS) + "\n")
    caps.write_text("")
    settings = BillingSettings(
        catalog_yaml=CATALOG_PATH.read_text(), window_size_ms=WINDOW_MS, out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        reference_now_ms=to_epoch_ms(REFERENCE_NOW), watermark_on_every_event=True,
    )
    env = stream_environment(parallelism=parallelism)
    t_env = table_environment(env, settings)
    source = file_parsed_usage(env, settings, path=str(usage))
    outputs = build_pipeline(env, t_env, settings, source)
    gate = tmp_path / "grants-may-pass"
    if grants_after_line_items is None:
        grants_ddl = file_credit_input_ddl("credit_grants_raw", path=str(grants), topic="credit-grants")
    else:
        t_env.execute_sql(file_credit_input_ddl("credit_grants_file", path=str(grants), topic="credit-grants"))
        t_env.create_temporary_function("after_gate", gated(gate))
        grants_ddl = ("CREATE TEMPORARY VIEW credit_grants_raw AS SELECT after_gate(payload) AS payload, src_topic, "
                      "src_partition, src_offset, kafka_ts FROM credit_grants_file")
    credits = build_credits(
        t_env, settings.catalog_yaml, [outputs.line_items, outputs.unique_count_line_items],
        grants_ddl=grants_ddl,
        spend_caps_ddl=file_credit_input_ddl("spend_caps_raw", path=str(caps), topic="spend-caps"),
        replay=True,
    )
    streams = {
        "line_items": outputs.line_items, "unique_count_line_items": outputs.unique_count_line_items,
        "drawdowns": credits.drawdowns, "alerts": credits.alerts, "grant_dead_letters": credits.grant_dead_letters,
        "invoices": invoices_of(settings, outputs, credits.drawdowns),
    }

    def let_grants_through_after_the_line_items(collected: dict[str, list[dict]]) -> None:
        line_items = len(collected["line_items"]) + len(collected["unique_count_line_items"])
        if grants_after_line_items is not None and not gate.exists() and line_items >= grants_after_line_items:
            collected["drawdowns_before_grants"] = list(collected["drawdowns"])
            gate.touch()

    collected = collect_outputs(streams, let_grants_through_after_the_line_items)
    if grants_after_line_items is not None:
        assert gate.exists(), "the job ended before the test let the grants through"
    return collected


@pytest.mark.parametrize("parallelism", [1, 2])
def test_every_line_item_is_paid_or_uncovered_and_balances_add_up(tmp_path, parallelism):
    out = run_job(tmp_path, parallelism)
    lines = [InvoiceLineItem.model_validate(li) for li in out["line_items"]]
    drawdowns = [CreditDrawdown.model_validate(d) for d in out["drawdowns"]]
    grants = [CreditGrantRecord.model_validate(g).root for g in GRANTS[:-1]]

    assert {li.line_item_id for li in lines} == {d.line_item_id for d in drawdowns if d.kind == "usage"}
    assert len({d.drawdown_id for d in drawdowns}) == len(drawdowns), "deterministic, unique drawdown ids"
    assert [d["reason"] for d in out["grant_dead_letters"]] == ["invalid_amount"]
    # Each customer's invoice: its lines exactly, and the credit its lines drew (every drawdown counted once).
    invoices = assert_invoices_exact(out["invoices"], out["line_items"], out["drawdowns"])
    for invoice in invoices.values():
        own = {li.line_item_id for li in lines if li.invoice_id == invoice.invoice_id}
        drawn = sum((d.amount for d in drawdowns if d.line_item_id in own and d.kind in DRAWN_KINDS), Decimal(0))
        assert invoice.credits_applied == drawn, invoice.customer_id

    for key, check in ledger_identity(grants, drawdowns, lines).items():
        assert check.usage_identity_holds, key
        assert check.balance >= 0, key
    kinds = Counter(d.kind for d in drawdowns)
    assert kinds["usage"] >= len(lines)
    assert kinds["void"] == 1, "the voided grant's remaining balance is removed once"
    assert kinds["expiry"] == 1, "the promotional grant expires mid-run with balance left"
    drawn = {d.grant_id for d in drawdowns if d.kind in DRAWN_KINDS and d.amount > 0}
    assert {"g-acme-0", "g-cirrus-2"} <= drawn
    assert len({a["alert_id"] for a in out["alerts"]}) == len(out["alerts"])
    expired = [d for d in drawdowns if d.kind == "expiry"]
    assert expired[0].grant_id == "g-acme-1-promo" and expired[0].amount > 0


def without_emitted_at(records: list[dict]) -> list[tuple]:
    return sorted(tuple(sorted((k, json.dumps(v)) for k, v in r.items() if k != "emitted_at")) for r in records)


@pytest.fixture(scope="module")
def grants_first(tmp_path_factory) -> dict[str, list[dict]]:
    return run_job(tmp_path_factory.mktemp("grants-first"), 1)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_a_replay_applies_every_grant_before_the_usage_it_covers_whatever_arrives_first(
    tmp_path, parallelism, grants_first
):
    """Issue 15.1: the grants reach the ledger only after every line item has; the replay's drawdowns (usage,
    expiry, void, uncovered), balances and alerts are still exactly those of the grants-first run."""
    usage_first = run_job(tmp_path, parallelism, grants_after_line_items=len(grants_first["line_items"]))
    assert usage_first["drawdowns_before_grants"] == [], "no line item may be applied before the grants are in"
    assert len(usage_first["line_items"]) == len(grants_first["line_items"])
    assert without_emitted_at(usage_first["drawdowns"]) == without_emitted_at(grants_first["drawdowns"])
    assert without_emitted_at(usage_first["alerts"]) == without_emitted_at(grants_first["alerts"])
    kinds = Counter(d["kind"] for d in usage_first["drawdowns"])
    assert kinds["adjustment"] == 0, "in a replay no grant event arrives late: nothing to correct"
    assert kinds["void"] == 1 and kinds["expiry"] == 1
    grants = [CreditGrantRecord.model_validate(g).root for g in GRANTS[:-1]]
    lines = [InvoiceLineItem.model_validate(li) for li in usage_first["line_items"]]
    drawdowns = [CreditDrawdown.model_validate(d) for d in usage_first["drawdowns"]]
    for key, check in ledger_identity(grants, drawdowns, lines).items():
        assert check.usage_identity_holds, key
        assert check.balance >= 0, key
