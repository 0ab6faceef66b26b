"""Prepaid credits: grants, real-time drawdown of invoice line items, and balance / spend cap alerts.

The pure core of the credits feature (no Flink here). The job keys line items, grant events and spend caps
by (tenant, customer), feeds them into these functions and saves the returned state:

    state, drawdowns, alerts = apply_line_item(state, item, policy, emitted_at=now)
    state, drawdowns, alerts = apply_grant_event(state, grant_or_void, policy, emitted_at=now)
    state, drawdowns, alerts = apply_spend_cap(state, cap, policy, emitted_at=now)
    state, drawdowns, alerts = on_time(state, timer_instant, policy, emitted_at=now)
    wake_at = next_timer(state)       # None: no timer needed

Modules: `burn_order` (which grant pays first, eligibility), `event_order` (line items held until the ledger's
clock reaches them, applied in time order with its deadlines), `ledger` (state and the apply functions, the
accounting identity), `alerts` (threshold rules), `policy` (the catalog's `credits:` block), `validation`
(raw `credit-grants` / `spend-caps` records to models or reason codes).
"""

from udfs.credits.alerts import ALERT_NAMESPACE, alert_id
from udfs.credits.burn_order import GrantBalance, burn_key, burn_order, covers
from udfs.credits.ledger import (
    DRAWDOWN_NAMESPACE,
    DRAWN_KINDS,
    CustomerCredits,
    IdentityCheck,
    PeriodBook,
    SpendCapOverride,
    UncoveredUsage,
    VoidTombstone,
    apply_grant_event,
    apply_line_item,
    apply_spend_cap,
    drawdown_id,
    ledger_identity,
    next_timer,
    on_time,
)
from udfs.credits.policy import DEFAULT_POLICY, CreditPolicy, CreditPolicyError, credit_policy_for
from udfs.credits.validation import (
    GrantRejection,
    dead_letter_for_grant,
    validate_grant_record,
    validate_spend_cap_record,
)

__all__ = [
    "ALERT_NAMESPACE",
    "DEFAULT_POLICY",
    "DRAWDOWN_NAMESPACE",
    "DRAWN_KINDS",
    "CreditPolicy",
    "CreditPolicyError",
    "CustomerCredits",
    "GrantBalance",
    "GrantRejection",
    "IdentityCheck",
    "PeriodBook",
    "SpendCapOverride",
    "UncoveredUsage",
    "VoidTombstone",
    "alert_id",
    "apply_grant_event",
    "apply_line_item",
    "apply_spend_cap",
    "burn_key",
    "burn_order",
    "covers",
    "credit_policy_for",
    "dead_letter_for_grant",
    "drawdown_id",
    "ledger_identity",
    "next_timer",
    "on_time",
    "validate_grant_record",
    "validate_spend_cap_record",
]
