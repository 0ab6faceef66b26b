"""Alert rules: pure decisions on (flags fired so far, balances after an event) -> (new flags, crossings).

Rules (per customer and currency):
- `balance_low`, one per threshold: the thresholds are the policy's absolute amounts plus its percents of the
  customer's granted live credit (sum of the original amounts of the grants held). A threshold is crossed when
  an event that lowered the balance (a drawdown, expiry, void or correction) leaves it at or below the
  threshold while the customer holds (or just held) credit. It fires once, then stays quiet until a
  `balance_recovered` for the same threshold: the balance went back strictly above it (a new grant, credit
  returned by a negative line item). A percent threshold moves with new grants; the alert says both the
  percent and the amount it stood for.
- `balance_exhausted`: a line item left usage uncovered while the balance is 0 and the customer holds grants.
  Re-armed by a `balance_recovered` with threshold 0 once the balance is above 0 again.
- `spend_cap_reached`: the period's spend (the sum of its line item amounts) reached the cap (catalog
  default or the customer's override); at most once per billing period, `action: block`.
- Never alerts for a customer that never had credit: a customer on plain invoicing has balance 0 all the time.

Ids are uuid5 over `v1|tenant|customer|type|currency|threshold key|cause`, `cause` naming the input that caused
the crossing (`line:<id>`, `grant:<id>`, `void:<id>`, `expiry:<id>`, `period:<start>`), so a replay yields the
same id and a second crossing of one threshold (after a recovery) gets a new one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from schemas.credits import AlertType, BillingAlert
from udfs.credits.policy import CreditPolicy
from udfs.money import exact, to_wire

# Fixed forever: uuid5(NAMESPACE_URL, "urn:meterstream:billing-alert"). Changing it changes every id.
ALERT_NAMESPACE = uuid.UUID("001aee0c-b131-5653-a703-e09bcaaae8d7")
ALERT_ID_VERSION = "v1"
EXHAUSTED_KEY = "exhausted"
SPEND_CAP_KEY = "cap"
ZERO = Decimal(0)
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Crossing:
    type: AlertType
    key: str
    threshold: Decimal
    threshold_percent: Decimal | None
    value: Decimal


@dataclass(frozen=True)
class Threshold:
    key: str
    amount: Decimal
    percent: Decimal | None


def thresholds(policy: CreditPolicy, total_granted: Decimal) -> tuple[Threshold, ...]:
    """The low-balance thresholds as amounts, highest first (the order they are crossed when spending)."""
    result = [Threshold(f"abs:{to_wire(t)}", t, None) for t in policy.low_balance_thresholds]
    result += [
        Threshold(f"pct:{to_wire(p)}", exact(lambda p=p: total_granted * p / _HUNDRED), p)
        for p in policy.low_balance_percent
    ]
    return tuple(sorted(result, key=lambda t: (-t.amount, t.key)))


def _flag(currency: str, key: str) -> str:
    return f"{currency}|{key}"


def balance_crossings(
    fired: frozenset[str],
    *,
    policy: CreditPolicy,
    currency: str,
    balance: Decimal,
    total_granted: Decimal,
    lowered: bool,
    uncovered_usage: bool,
    has_credit: bool,
) -> tuple[frozenset[str], list[Crossing]]:
    """Balance alerts after one event. `lowered`: the event took credit away (draw, expiry, void, correction);
    `uncovered_usage`: a line item of the event left usage uncovered; `has_credit`: the customer held grants of
    `currency` before or after the event."""
    flags = set(fired)
    crossings: list[Crossing] = []
    for threshold in thresholds(policy, total_granted):
        flag = _flag(currency, threshold.key)
        if flag in flags and balance > threshold.amount:
            flags.discard(flag)
            crossings.append(Crossing("balance_recovered", threshold.key, threshold.amount, threshold.percent, balance))
        elif flag not in flags and lowered and has_credit and balance <= threshold.amount:
            flags.add(flag)
            crossings.append(Crossing("balance_low", threshold.key, threshold.amount, threshold.percent, balance))
    flag = _flag(currency, EXHAUSTED_KEY)
    if flag in flags and balance > ZERO:
        flags.discard(flag)
        crossings.append(Crossing("balance_recovered", EXHAUSTED_KEY, ZERO, None, balance))
    elif flag not in flags and uncovered_usage and has_credit and balance <= ZERO:
        flags.add(flag)
        crossings.append(Crossing("balance_exhausted", EXHAUSTED_KEY, ZERO, None, balance))
    return frozenset(flags), crossings


def spend_cap_crossing(spend: Decimal, cap: Decimal | None) -> Crossing | None:
    if cap is None or spend < cap:
        return None
    return Crossing("spend_cap_reached", SPEND_CAP_KEY, cap, None, spend)


def alert_id(tenant_id: str, customer_id: str, alert_type: str, currency: str, key: str, cause: str) -> str:
    parts = (ALERT_ID_VERSION, tenant_id, customer_id, alert_type, currency, key, cause)
    return str(uuid.uuid5(ALERT_NAMESPACE, "|".join(quote(part, safe="") for part in parts)))


def build_alert(
    crossing: Crossing,
    *,
    tenant_id: str,
    customer_id: str,
    currency: str,
    period_start: datetime | None,
    cause: str,
    event_time: datetime,
    emitted_at: datetime,
) -> BillingAlert:
    return BillingAlert(
        alert_id=alert_id(tenant_id, customer_id, crossing.type, currency, crossing.key, cause),
        tenant_id=tenant_id,
        customer_id=customer_id,
        type=crossing.type,
        threshold=crossing.threshold,
        threshold_percent=crossing.threshold_percent,
        value=crossing.value,
        currency=currency,
        period_start=period_start,
        action="block" if crossing.type == "spend_cap_reached" else None,
        event_time=event_time,
        emitted_at=emitted_at,
    )
