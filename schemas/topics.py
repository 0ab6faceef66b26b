"""Registry of the topics whose records this package defines: default topic name -> model and description.

The names are defaults; deployments may rename topics in configuration, but the record contract travels with
the model, not the name. `python -m schemas.generate` writes one JSON Schema per entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from schemas.correction_dead_letter import CorrectionDeadLetter
from schemas.credits import BillingAlert, CreditDrawdown, CreditGrantDeadLetter, CreditGrantRecord, SpendCap
from schemas.dead_letter import DeadLetter
from schemas.invoice import Invoice
from schemas.invoice_line_item import InvoiceLineItem
from schemas.late_event import LateUsageEvent
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent

USAGE_EVENTS = "usage-events"
USAGE_DEAD_LETTERS = "usage-dead-letters"
USAGE_LATE_EVENTS = "usage-late-events"
INVOICE_LINE_ITEMS = "invoice-line-items"
CREDIT_GRANTS = "credit-grants"
CREDIT_GRANT_DEAD_LETTERS = "credit-grant-dead-letters"
SPEND_CAPS = "spend-caps"
CREDIT_DRAWDOWNS = "credit-drawdowns"
BILLING_ALERTS = "billing-alerts"
USAGE_CORRECTIONS = "usage-corrections"
USAGE_CORRECTION_DEAD_LETTERS = "usage-correction-dead-letters"
INVOICES = "invoices"

# Tenant topics (the billing job's `--usage-topic-prefix`): the usage of tenant T on topic `<prefix>T`. An example
# whose reason depends on the topic it was read from names that topic here (example file name -> source topic); the
# others were read from the shared `usage-events` topic (no tenant check).
EXAMPLE_TENANT_TOPIC_PREFIX = "usage-events."
EXAMPLE_SOURCE_TOPICS = {"tenant_mismatch.json": "usage-events.globex"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[BaseModel]
    direction: Literal["input", "output"]
    description: str


TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(
            USAGE_EVENTS,
            UsageEvent,
            "input",
            "Raw usage events from tenants' producers, one JSON object per record. Invalid records go to "
            f"{USAGE_DEAD_LETTERS}; unknown top-level fields are ignored.",
        ),
        TopicSpec(
            USAGE_DEAD_LETTERS,
            DeadLetter,
            "output",
            "Usage records that failed validation, as received, with a stable reason code and where they came from.",
        ),
        TopicSpec(
            USAGE_LATE_EVENTS,
            LateUsageEvent,
            "output",
            "Valid usage events that arrived after their series had fired their window: the audit trail of late "
            "usage, which is billed as late adjustment line items.",
        ),
        TopicSpec(
            INVOICE_LINE_ITEMS,
            InvoiceLineItem,
            "output",
            "One priced tumbling window of one (tenant, customer, meter, group), or a late adjustment of one; upsert "
            "by line_item_id.",
        ),
        TopicSpec(
            CREDIT_GRANTS,
            CreditGrantRecord,
            "input",
            "Prepaid credit grants and voids of grants per (tenant, customer), told apart by `type`; idempotent by "
            f"grant_id. Invalid records go to {CREDIT_GRANT_DEAD_LETTERS}; unknown fields are rejected.",
        ),
        TopicSpec(
            CREDIT_GRANT_DEAD_LETTERS,
            CreditGrantDeadLetter,
            "output",
            "credit-grants records that failed validation, as received, with a stable grant reason code.",
        ),
        TopicSpec(
            SPEND_CAPS,
            SpendCap,
            "input",
            "Per-customer spend cap per billing period; overrides the tenant's catalog default from effective_at.",
        ),
        TopicSpec(
            CREDIT_DRAWDOWNS,
            CreditDrawdown,
            "output",
            "Every movement of prepaid credit: one record per (line item, grant) touched, catch-up, expiry and "
            "void records; idempotent by drawdown_id.",
        ),
        TopicSpec(
            BILLING_ALERTS,
            BillingAlert,
            "output",
            "Low balance, exhausted balance, recovered balance and spend cap alerts per customer; idempotent by "
            "alert_id.",
        ),
        TopicSpec(
            USAGE_CORRECTIONS,
            UsageCorrection,
            "input",
            "Cancels and amends of earlier usage events by (tenant_id, event_id), idempotent by correction_id; an "
            "amend replaces value and/or dimensions, never customer, meter or timestamp. Rejected records go to "
            f"{USAGE_CORRECTION_DEAD_LETTERS}; unknown fields are rejected.",
        ),
        TopicSpec(
            USAGE_CORRECTION_DEAD_LETTERS,
            CorrectionDeadLetter,
            "output",
            f"{USAGE_CORRECTIONS} records that were not applied, as received, with a stable correction reason code "
            "and the ids they named.",
        ),
        TopicSpec(
            INVOICES,
            Invoice,
            "output",
            "One invoice per (tenant, customer, billing period, currency) with line items, written when the period "
            "closes (event time past period end + grace); sums equal its line items exactly; upsert by invoice_id.",
        ),
    )
}

MODEL_BY_TOPIC: dict[str, type[BaseModel]] = {name: spec.model for name, spec in TOPICS.items()}
