"""The demo's cancel and amend (`meterstream.demo.demo_corrections`): valid corrections of two on-time events of
different input_tokens series, which the spec's ledger applies with a change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from meterstream.demo import demo_corrections, demo_workload
from meterstream.paths import project_home
from meterstream.workload import RecordKind
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from udfs.catalog import load_catalog
from udfs.corrections import AppliedCorrection, CorrectionLedger

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_one_cancel_and_one_amend_of_on_time_events_of_two_series_each_change_the_bill():
    workload = demo_workload(events=2_000, seed=42, customers_per_tenant=20, now=NOW)
    corrections = [UsageCorrection.model_validate(c) for c in demo_corrections(workload, now=NOW)]
    assert [c.action for c in corrections] == ["cancel", "amend"]

    on_time = {}
    for index, record in enumerate(workload.records):
        if workload.kind(index) == RecordKind.ON_TIME:
            event = UsageEvent.model_validate_json(record)
            on_time[(event.tenant_id, event.event_id)] = event
    targets = [on_time[(c.tenant_id, c.event_id)] for c in corrections]
    assert len({(e.tenant_id, e.customer_id, e.dimensions["model"]) for e in targets}) == 2, "two series"
    assert corrections[1].value == targets[1].value * 3

    catalog = load_catalog(project_home() / "catalogs" / "example-genai.yaml")
    ledger = CorrectionLedger({t: tenant.meters for t, tenant in catalog.tenants.items()}, timedelta(minutes=1))
    for event in targets:
        ledger.observe_event(event, now_ms=0)
    for correction in corrections:
        outcome = ledger.correct(correction, now_ms=1)
        assert isinstance(outcome, AppliedCorrection) and outcome.changed, outcome
    assert all(e.meter == "input_tokens" and e.value != Decimal(0) for e in targets)
