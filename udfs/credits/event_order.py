"""Line items and the ledger's own deadlines (expiries, voids, retention) applied in event-time order.

Why: line items reach the ledger from several channels (parallel subtasks, the Java-rated and the unique_count
paths), each ahead of its own watermark. Applied on arrival, a line item of 10:04 could be drawn from a grant
voided at 10:03 whose deadline had not fired yet, because the ledger's watermark (the minimum over its channels)
was still held back by another channel. So a line item waits here until the ledger's clock reaches the instant
its window fired (`due_at`: window end - 1 ms, when Flink fires a window), and everything due is then applied in
time order: a deadline strictly before a line item's due instant first, the line item otherwise. The result no
longer depends on which channel delivered first. (The ledger itself is a function of event time too, see
`ledger.py`: this module is what keeps its out-of-order recomputations rare in the job.)

    pending = hold(pending, item)
    state, pending, drawdowns, alerts = release(state, pending, until, policy, emitted_at=now)
    wake_at = wake(state, pending)      # the one timer the adapter keeps

At the end of a bounded input (`end_of_input`) every held line item is applied, with the deadlines before each,
and no deadline after the last of them: the end of a replay is not time passing (a replay must not expire
grants whose expiry lies beyond its data).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.credits import BillingAlert, CreditDrawdown
from schemas.invoice_line_item import InvoiceLineItem
from udfs.credits.ledger import CustomerCredits, apply_line_item, line_order, next_timer, on_time
from udfs.credits.policy import CreditPolicy

Pending = tuple[InvoiceLineItem, ...]
Released = tuple["CustomerCredits | None", Pending, list[CreditDrawdown], list[BillingAlert]]


def due_at(item: InvoiceLineItem) -> datetime:
    """The instant its window fired: the watermark reached window end - 1 ms."""
    return item.window_end - timedelta(milliseconds=1)


def _order(item: InvoiceLineItem) -> tuple:
    return line_order(due_at(item), item.decided_after, item.line_item_id)


def hold(pending: Pending, item: InvoiceLineItem) -> Pending:
    """`pending` plus `item`, in `line_order` (due instant, decision, id); a line item held already is not held
    twice."""
    if any(held.line_item_id == item.line_item_id for held in pending):
        return pending
    return tuple(sorted((*pending, item), key=_order))


def release(
    state: CustomerCredits | None,
    pending: Pending,
    until: datetime,
    policy: CreditPolicy,
    *,
    emitted_at: datetime,
    end_of_input: bool = False,
) -> Released:
    """Apply, in event-time order, the held line items due at or before `until` and the deadlines up to `until`
    (with `end_of_input`: every held line item and only the deadlines before the last of them)."""
    drawdowns: list[CreditDrawdown] = []
    alerts: list[BillingAlert] = []

    def take(result) -> CustomerCredits | None:
        new_state, new_drawdowns, new_alerts = result
        drawdowns.extend(new_drawdowns)
        alerts.extend(new_alerts)
        return new_state

    while pending and (end_of_input or due_at(pending[0]) <= until):
        # apply_line_item applies the deadlines strictly before the line's due instant first
        state = take(apply_line_item(state, pending[0], policy, emitted_at=emitted_at))
        pending = pending[1:]
    deadline = next_timer(state)
    if not end_of_input and deadline is not None and deadline <= until:
        state = take(on_time(state, until, policy, emitted_at=emitted_at))
    return state, pending, drawdowns, alerts


def wake(state: CustomerCredits | None, pending: Pending) -> datetime | None:
    """The earliest instant `release` has work: the ledger's next deadline or the first held line item's due."""
    instants = [at for at in (next_timer(state), due_at(pending[0]) if pending else None) if at is not None]
    return min(instants, default=None)
