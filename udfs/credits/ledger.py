"""The credit ledger of one (tenant, customer): snapshot in, snapshot out, Bytewax style.

    apply_line_item(state | None, item, policy, *, emitted_at)   -> (state | None, drawdowns, alerts)
    apply_grant_event(state | None, event, policy, *, emitted_at) -> (state | None, drawdowns, alerts)
    apply_spend_cap(state | None, cap, policy, *, emitted_at)     -> (state | None, drawdowns, alerts)
    on_time(state | None, now, policy, *, emitted_at)             -> (state | None, drawdowns, alerts)
    next_timer(state | None) -> datetime | None   # the earliest instant `on_time` has work to do

The input state is never modified (it is a frozen snapshot: tuples, frozensets, Decimals, aware datetimes;
safe to pickle into Flink state). `None` in means "nothing known"; `None` out means "clear the state".

Semantics (the burn order and eligibility are in `burn_order.py`, the alert rules in `alerts.py`):

- **Event time decides, not arrival** (issue 15.2): the money (what each grant pays of each line, what expires,
  what is voided, what stays uncovered, every balance) is the one of the customer's inputs taken in event-time
  order: grants, voids and spend caps known first (their effective, expiry and void instants decide what they
  cover), then the line items by window end (`line_order`: a window's usage line first, then its late adjustments
  and corrections in the order they were decided, `decided_after`), each after the deadlines (expiries, voids, ends
  of retention) strictly before its window end, then the deadlines up to the latest `on_time`. Applying a line item
  is the clock reaching its window end: it applies those deadlines first. Inputs that arrive in that order are
  applied as they come. One that does not (a grant effective, or a void voided, before the window end of a line
  already applied; a line older than one applied or than the clock) makes the ledger recompute its retained past
  from `History` and write the difference as corrections, `cause = "revision:<n>"`: per line and grant an
  `adjustment` record (amount may be negative; the line's change of uncovered amount on its last one), per grant an
  `expiry` / `void` record with the change of its settled amount. Reported records are never rewritten: the
  corrections add up to the event-time result. Every record of a recomputation (a new line's own records too)
  reports the balances once it is done, so the last record written for a customer reports its balance now (not the
  last in event time: records of later windows keep what they reported). A period that left retention is closed: it
  is folded into `History.base` and nothing corrects it any more. Alerts are signals at arrival (a correction may
  raise them with cause `revision:<n>`), not recomputed.
- **Usage** (line amount > 0): eligible grants pay in burn order, each at most its balance; what is left is
  `uncovered_amount` (to be invoiced). One `usage` record per grant drawn; the line's uncovered amount sits on
  its last record; a line no grant touched gets one record with `grant_id: null`, `amount: 0` (a zero line too).
  Event time of a line's records and alerts: its `window_end`.
- **Negative lines** return credit to the grants that the same (meter, period) drew from, most recently drawn
  first (within one line that is reverse burn order), never more than the net drawn from each; grants already
  expired or voided are skipped (their credit is gone). The rest lowers the uncovered amount: a negative
  `uncovered_amount` on the line's last record, and the retained uncovered entries of that (meter, period) are
  cut, newest first. Credit given back then pays retained uncovered usage the grant covers at once, oldest
  window first (`catch_up` records, `uncovered_amount = -amount`, `cause = "line:<negative line's id>"`): credit
  never sits idle beside usage it could pay.
- **Expiry** at `expires_at` (`on_time`): one `expiry` record with the balance left (none when it is 0), and
  the grant leaves the state.
- **Void**: a void ends the grant's usable range at `voided_at` (usage in windows ending by then may still
  draw); at `voided_at` one `void` record removes the balance left (always written, amount 0 when nothing was
  left). A void at or before `effective_at` settles at once. A void of an unknown grant is kept as a tombstone
  for `void_tombstone_retention` after `voided_at`: the grant, when it comes, arrives voided. The earliest void
  of a grant wins. A void that arrives after usage past its `voided_at` was paid by the grant corrects that
  usage (the credit was not the grant's to give).
- **Idempotency**: a repeated `grant_id` (held, finished less than `grant_id_retention` ago, or in the
  history) is a no-op, whatever its content (the first grant of an id wins), as is a void no earlier than one
  known. A line item already applied in its period (same `line_item_id`) is a no-op.
- **Bounded state / retention**: a period's bookkeeping (applied line ids, spend, per (meter, grant) net
  draws, uncovered entries, the applied lines in `History`) is kept until `period_end + period_grace`: lines and
  grants arriving later than that are treated as new (no correction of closed periods, no duplicate detection). A
  spent grant (balance 0) stays while a retained period drew from it (a negative line may return credit to
  it), and leaves at the latest at its expiry. Finished grant ids are remembered for `grant_id_retention`.
  Spend cap overrides are configuration and stay (the latest one in force and any later ones). When nothing is
  left the state is `None` (alert hysteresis flags go with it: a customer who comes back starts afresh).
- **Balances**: a customer's balance in a currency is the sum of the balances of all grants held in that
  currency, also those not yet effective; it never goes below 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from schemas.credits import BillingAlert, CreditDrawdown, CreditGrant, CreditVoid, DrawdownKind, SpendCap
from schemas.invoice_line_item import InvoiceLineItem
from schemas.wire import datetime_to_wire
from udfs.credits.alerts import Crossing, balance_crossings, build_alert, spend_cap_crossing
from udfs.credits.burn_order import GrantBalance, burn_key, burn_order, covers
from udfs.credits.policy import CreditPolicy
from udfs.money import money_context

# Fixed forever: uuid5(NAMESPACE_URL, "urn:meterstream:credit-drawdown"). Changing it changes every id.
DRAWDOWN_NAMESPACE = uuid.UUID("324d4652-0c92-538d-8842-827038362664")
DRAWDOWN_ID_VERSION = "v1"
ZERO = Decimal(0)
MILLISECOND = timedelta(milliseconds=1)
_BEFORE_ANY_DECISION = datetime.min.replace(tzinfo=UTC)

# The drawdown kinds whose `amount` is credit drawn from (or, negative, returned to) a grant for usage.
DRAWN_KINDS = frozenset({"usage", "catch_up", "adjustment"})


def line_order(due: datetime, decided_after: datetime | None, line_item_id: str) -> tuple:
    """A line item's place in event time: the instant its window fired; within it a window's usage line
    (`decided_after` None) before its adjustments, and those in the order they were decided (the watermark their
    events came after), so a negative correction follows the usage it corrects whatever the ids. The id only
    orders lines decided together."""
    return (due, decided_after or _BEFORE_ANY_DECISION, line_item_id)


Result = tuple["CustomerCredits | None", list[CreditDrawdown], list[BillingAlert]]
# (grant_id, amount drawn (< 0: returned), grant balance after, customer balance after), in the order drawn.
Touched = list[tuple[str, Decimal, Decimal, Decimal]]


@dataclass(frozen=True)
class UncoveredUsage:
    """Usage no grant could pay yet, kept so a grant arriving later can still pay it (catch-up)."""

    line_item_id: str
    meter: str
    currency: str
    window_start: datetime
    window_end: datetime
    period_start: datetime
    remaining: Decimal

    @property
    def order(self) -> tuple:
        return (self.window_start, self.window_end, self.line_item_id)


@dataclass(frozen=True)
class PeriodBook:
    """What the ledger remembers of one billing period (and currency) until `retain_until`."""

    period_start: datetime
    period_end: datetime
    currency: str
    retain_until: datetime
    spend: Decimal = ZERO
    cap_reached: bool = False
    applied: frozenset[str] = frozenset()
    # (meter, grant_id, net drawn), least recently drawn first; entries at 0 are dropped.
    draws: tuple[tuple[str, str, Decimal], ...] = ()

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.period_start, self.currency)


@dataclass(frozen=True)
class VoidTombstone:
    grant_id: str
    voided_at: datetime
    forget_at: datetime


@dataclass(frozen=True)
class SpendCapOverride:
    amount: Decimal
    currency: str
    effective_at: datetime


@dataclass(frozen=True)
class LoggedLine:
    """What the ledger keeps of an applied line item to apply it again when it recomputes the retained past."""

    line_item_id: str
    meter: str
    currency: str
    window_start: datetime
    window_end: datetime
    period_start: datetime
    period_end: datetime
    amount: Decimal
    decided_after: datetime | None = None  # an adjustment's: the watermark its events came after

    @classmethod
    def of(cls, item: InvoiceLineItem) -> LoggedLine:
        return cls(item.line_item_id, item.meter, item.currency, item.window_start, item.window_end,
                   item.period_start, item.period_end, item.amount, item.decided_after)

    @property
    def due(self) -> datetime:
        """The instant its window fired (window end - 1 ms): the line's place in event time."""
        return self.window_end - MILLISECOND

    @property
    def order(self) -> tuple:
        return line_order(self.due, self.decided_after, self.line_item_id)


@dataclass(frozen=True)
class History:
    """The retained past in event time, so that a grant event (or line) arriving out of event-time order can be
    applied as if it had arrived in order: `base` is the state before the first retained line, `grant_events` the
    grants and voids applied since (in arrival order), `lines` the line items applied since (in event-time order),
    `clock` the latest instant `on_time` was given, `revision` how many recomputations this customer had."""

    base: CustomerCredits | None = None
    grant_events: tuple[CreditGrant | CreditVoid, ...] = ()
    lines: tuple[LoggedLine, ...] = ()
    clock: datetime | None = None
    revision: int = 0


@dataclass(frozen=True)
class CustomerCredits:
    """Keyed state of one (tenant, customer). Every collection is in a canonical order, so equal histories
    give equal (==) states."""

    tenant_id: str
    customer_id: str
    grants: tuple[GrantBalance, ...] = ()  # burn order
    uncovered: tuple[UncoveredUsage, ...] = ()  # oldest window first
    periods: tuple[PeriodBook, ...] = ()  # by (period_start, currency)
    voids: tuple[VoidTombstone, ...] = ()  # by grant_id
    finished: tuple[tuple[str, datetime], ...] = ()  # (grant_id, forget_at) by grant_id
    spend_caps: tuple[SpendCapOverride, ...] = ()  # by effective_at
    alerts_fired: frozenset[str] = frozenset()
    history: History = field(default_factory=lambda: History())

    def balance(self, currency: str) -> Decimal:
        with money_context():
            return sum((g.balance for g in self.grants if g.currency == currency), ZERO)


def drawdown_id(
    tenant_id: str,
    customer_id: str,
    kind: str,
    line_item_id: str | None,
    grant_id: str | None,
    cause: str | None = None,
) -> str:
    """uuid5 over `v1|tenant|customer|kind|line_item_id|grant_id` (absent parts empty, parts percent-encoded), then
    `|cause` when there is one. Unique: a line item is applied once, a grant's arrival pays a line
    once, a negative line's returned credit pays a line once per grant, and a grant expires or is voided once."""
    parts = (DRAWDOWN_ID_VERSION, tenant_id, customer_id, kind, line_item_id or "", grant_id or "")
    if cause is not None:
        parts += (cause,)
    return str(uuid.uuid5(DRAWDOWN_NAMESPACE, "|".join(quote(part, safe="") for part in parts)))


# ---- the pure API -----------------------------------------------------------------------------------------
#
# Every call gives the state, records and balances that the customer's inputs give in event-time order: grants, voids
# and spend caps known before any line (their effective, expiry and void instants decide what they cover), then the
# line items in `line_order` (window end, decision, line_item_id) with the deadlines (expiries, voids, ends of
# retention) before each, then the deadlines up to the latest `on_time`. An input that arrives in that order is
# applied as it comes (the common case, and the only one in a replay). One that does not (a grant effective before, or
# a void voided before, a line item already applied; a line item older than one applied) makes the ledger recompute
# the retained past from `History.base` in event-time order and write the difference as corrections (`adjustment`
# records per line and grant, `expiry` / `void` records per grant, each with `cause = "revision:<n>"`): the money per
# grant, per line and per customer then no longer depends on the order of arrival.


def apply_line_item(
    state: CustomerCredits | None, item: InvoiceLineItem, policy: CreditPolicy, *, emitted_at: datetime
) -> Result:
    _require_aware(emitted_at)
    with money_context():
        if state is not None and _already_applied(state, item):
            return state, [], []
        line = LoggedLine.of(item)
        if state is None or _line_in_order(state.history, line):
            state, drawdowns, alerts = _advance_before(state, line.due, policy, emitted_at)
            state, more, more_alerts = _apply_line(state, item.tenant_id, item.customer_id, line, policy, emitted_at)
            state = _fold_retired(_logged(state, lines=(line,)), policy, emitted_at)
            return state, drawdowns + more, alerts + more_alerts
        history = state.history
        lines = tuple(sorted((*history.lines, line), key=lambda logged: logged.order))
        return _recompute(state, policy, emitted_at, grant_events=history.grant_events, lines=lines,
                          instant=line.window_end, new_line=line)


def apply_grant_event(
    state: CustomerCredits | None,
    event: CreditGrant | CreditVoid,
    policy: CreditPolicy,
    *,
    emitted_at: datetime,
) -> Result:
    _require_aware(emitted_at)
    with money_context():
        if state is not None and _repeats(state, event):
            return state, [], []
        if state is None or _grant_event_in_order(state.history, event):
            new_state, drawdowns, alerts = _apply_grant_event(state, event, policy, emitted_at)
            if new_state is state:  # a repeated grant or void: nothing changes
                return state, [], []
            new_state, more, more_alerts = _advance_to(new_state, _clock(state), policy, emitted_at)
            new_state = _fold_retired(_logged(new_state, grant_events=(event,)), policy, emitted_at)
            return new_state, drawdowns + more, alerts + more_alerts
        # Out of event-time order, even a void of a grant that has already expired counts: known in time, the grant
        # would have been voided instead.
        history = state.history
        instant = event.effective_at if isinstance(event, CreditGrant) else event.voided_at
        return _recompute(state, policy, emitted_at, grant_events=(*history.grant_events, event), lines=history.lines,
                          instant=instant)


def apply_spend_cap(
    state: CustomerCredits | None, cap: SpendCap, policy: CreditPolicy, *, emitted_at: datetime
) -> Result:
    _require_aware(emitted_at)
    with money_context():
        work = _Work.open(state, cap.tenant_id, cap.customer_id, policy, emitted_at)
        override = SpendCapOverride(cap.amount, cap.currency, cap.effective_at)
        if override in work.spend_caps:
            return state, [], []
        work.spend_caps = sorted(
            [o for o in work.spend_caps if (o.effective_at, o.currency) != (cap.effective_at, cap.currency)]
            + [override],
            key=lambda o: (o.effective_at, o.currency),
        )
        for key in sorted(work.periods):
            work.spend_cap_alert(work.periods[key], event_time=max(cap.effective_at, work.periods[key].period_start))
        return work.close()


def on_time(state: CustomerCredits | None, now: datetime, policy: CreditPolicy, *, emitted_at: datetime) -> Result:
    """Everything due at or before `now` (event time): expiries, voids, end of retention."""
    _require_aware(now)
    _require_aware(emitted_at)
    if state is None:
        return None, [], []
    with money_context():
        state, drawdowns, alerts = _on_time(state, now, policy, emitted_at)
        if state is None:
            return None, drawdowns, alerts
        clock = now if state.history.clock is None else max(state.history.clock, now)
        state = replace(state, history=replace(state.history, clock=clock))
        return _fold_retired(state, policy, emitted_at), drawdowns, alerts


def next_timer(state: CustomerCredits | None) -> datetime | None:
    """The earliest instant at which `on_time` would change something; the adapter keeps one timer on it."""
    if state is None:
        return None
    instants = [g.end for g in state.grants if g.end is not None]
    instants += [book.retain_until for book in state.periods]
    instants += [tomb.forget_at for tomb in state.voids]
    instants += [forget_at for _, forget_at in state.finished]
    return min(instants, default=None)


# ---- event-time order: in-order inputs, recomputation, folding -------------------------------------------------


def _already_applied(state: CustomerCredits, item: InvoiceLineItem) -> bool:
    return any(
        book.key == (item.period_start, item.currency) and item.line_item_id in book.applied for book in state.periods
    )


def _repeats(state: CustomerCredits, event: CreditGrant | CreditVoid) -> bool:
    """A grant id already known (the first grant of an id wins), or a void no earlier than one already known."""
    if isinstance(event, CreditGrant):
        return (
            any(g.grant_id == event.grant_id for g in state.grants)
            or any(grant_id == event.grant_id for grant_id, _ in state.finished)
            or any(isinstance(e, CreditGrant) and e.grant_id == event.grant_id for e in state.history.grant_events)
        )
    known = [e.voided_at for e in state.history.grant_events
             if isinstance(e, CreditVoid) and e.grant_id == event.grant_id]
    known += [t.voided_at for t in state.voids if t.grant_id == event.grant_id]
    known += [g.voided_at for g in state.grants if g.grant_id == event.grant_id and g.voided_at is not None]
    return any(at <= event.voided_at for at in known)


def _clock(state: CustomerCredits | None) -> datetime | None:
    return None if state is None else state.history.clock


def _line_in_order(history: History, line: LoggedLine) -> bool:
    """After every retained line and after the clock: applying it now is applying it in event-time order."""
    after_lines = not history.lines or line.order > history.lines[-1].order
    return after_lines and (history.clock is None or line.due > history.clock)


def _grant_event_in_order(history: History, event: CreditGrant | CreditVoid) -> bool:
    """No retained line could have been paid differently had the event been known before it: a grant effective,
    or a void voided, after every retained line's due instant."""
    instant = event.effective_at if isinstance(event, CreditGrant) else event.voided_at
    return not history.lines or instant > history.lines[-1].due


def _logged(state: CustomerCredits | None, *, grant_events=(), lines=()) -> CustomerCredits | None:
    if state is None:
        return None
    history = state.history
    return replace(state, history=replace(
        history, grant_events=history.grant_events + tuple(grant_events), lines=history.lines + tuple(lines)))


def _advance_before(state, instant: datetime, policy: CreditPolicy, emitted_at: datetime) -> Result:
    """Apply every deadline strictly before `instant`, one at a time, as the job's clock passes them."""
    drawdowns: list[CreditDrawdown] = []
    alerts: list[BillingAlert] = []
    while (deadline := next_timer(state)) is not None and deadline < instant:
        state, more, more_alerts = _on_time(state, deadline, policy, emitted_at)
        drawdowns += more
        alerts += more_alerts
        if (after := next_timer(state)) is not None and after <= deadline:
            raise RuntimeError(f"on_time left work due at {after} after running until {deadline}")
    return state, drawdowns, alerts


def _advance_to(state, clock: datetime | None, policy: CreditPolicy, emitted_at: datetime) -> Result:
    """Apply the deadlines at or before `clock` (the latest instant `on_time` was given), if any."""
    deadline = next_timer(state)
    if clock is None or deadline is None or deadline > clock:
        return state, [], []
    return _on_time(state, clock, policy, emitted_at)


def _replay(
    start: CustomerCredits, grant_events, lines, clock: datetime | None, policy: CreditPolicy, emitted_at: datetime
) -> tuple[CustomerCredits | None, list[CreditDrawdown]]:
    """`start` then the grant events, then the lines in event-time order with the deadlines before each, then the
    deadlines up to `clock`: the event-time order every call of the API stands for. Alerts are not replayed."""
    state: CustomerCredits | None = start
    drawdowns: list[CreditDrawdown] = []
    for event in grant_events:
        state, more, _ = _apply_grant_event(state, event, policy, emitted_at)
        drawdowns += more
    for line in lines:
        state, more, _ = _advance_before(state, line.due, policy, emitted_at)
        drawdowns += more
        state, more, _ = _apply_line(state, start.tenant_id, start.customer_id, line, policy, emitted_at)
        drawdowns += more
    state, more, _ = _advance_to(state, clock, policy, emitted_at)
    return state, drawdowns + more


def _replay_start(state: CustomerCredits) -> CustomerCredits:
    """The history's base with today's spend caps (configuration: the latest one in force counts, whenever it came)."""
    base = state.history.base or CustomerCredits(state.tenant_id, state.customer_id)
    return replace(base, spend_caps=state.spend_caps, alerts_fired=frozenset(), history=History())


def _recompute(state: CustomerCredits, policy: CreditPolicy, emitted_at: datetime, *, grant_events, lines,
               instant: datetime, new_line: LoggedLine | None = None) -> Result:
    """Recompute the retained past with an input that arrived out of event-time order, and write the difference.

    What was written before is what the history gave (every call keeps that true), so the corrections are the
    difference between the two replays. A new line item gets its own `usage` records, as in order. `instant`: the
    late input's (a grant's `effective_at`, a void's `voided_at`, a line's window end), the alerts' event time."""
    history = state.history
    start = _replay_start(state)
    _, before = _replay(start, history.grant_events, history.lines, history.clock, policy, emitted_at)
    after_state, after = _replay(start, grant_events, lines, history.clock, policy, emitted_at)
    revision = history.revision + 1
    work = _Work.open(after_state, state.tenant_id, state.customer_id, policy, emitted_at)
    work.flags = state.alerts_fired
    for key, book in work.periods.items():
        old = next((b for b in state.periods if b.key == key), None)
        work.periods[key] = replace(book, cap_reached=old is not None and old.cap_reached)
    if new_line is not None:  # its own records, as if in order; the rest of what it changes are corrections
        own = [d for d in after if d.line_item_id == new_line.line_item_id and d.kind == "usage"]
        work.drawdowns += [work.reported_now(d) for d in own]
        before = before + own
    work.corrections(before, after, lines, cause=f"revision:{revision}")
    for currency in sorted({d.currency for d in work.drawdowns} | {g.currency for g in work.grants.values()}):
        work.balance_alerts(
            currency,
            lowered=work.balance(currency) < state.balance(currency),
            uncovered_usage=any(d.uncovered_amount > 0 and d.currency == currency for d in work.drawdowns),
            had_credit=any(g.currency == currency for g in state.grants),
            cause=f"revision:{revision}",
            event_time=instant,
            period_start=None,
        )
    for key in sorted(work.periods):
        work.spend_cap_alert(work.periods[key], event_time=work.periods[key].period_start)
    work.history = History(history.base, tuple(grant_events), tuple(lines), history.clock, revision)
    state, drawdowns, alerts = work.close()
    return _fold_retired(state, policy, emitted_at), drawdowns, alerts


def _fold_retired(state: CustomerCredits | None, policy: CreditPolicy, emitted_at: datetime) -> CustomerCredits | None:
    """Lines of periods that left retention can no longer be paid differently (no correction reaches a closed
    period): fold them and every grant event so far into the history's base, and forget them."""
    if state is None:
        return None
    history = state.history
    kept_periods = {book.key for book in state.periods}
    retired = tuple(line for line in history.lines if (line.period_start, line.currency) not in kept_periods)
    if not retired:
        return state
    remaining = tuple(line for line in history.lines if (line.period_start, line.currency) in kept_periods)
    base, _ = _replay(_replay_start(state), history.grant_events, retired, None, policy, emitted_at)
    if remaining:
        base, _, _ = _advance_before(base, remaining[0].due, policy, emitted_at)
    if base is not None:
        base = replace(
            base,
            periods=tuple(book for book in base.periods if book.key in kept_periods),
            uncovered=tuple(u for u in base.uncovered if (u.period_start, u.currency) in kept_periods),
        )
    return replace(state, history=History(base, (), remaining, history.clock, history.revision))


# ---- one input, applied as it comes ------------------------------------------------------------------------


def _apply_line(state, tenant_id: str, customer_id: str, item: LoggedLine, policy: CreditPolicy,
                emitted_at: datetime) -> Result:
    work = _Work.open(state, tenant_id, customer_id, policy, emitted_at)
    book = work.book(item.period_start, item.period_end, item.currency)
    if item.line_item_id in book.applied:
        return state, [], []
    had_credit = work.has_grants(item.currency)
    if item.amount > 0:
        touched, uncovered = work.draw(item, book)
    elif item.amount < 0:
        touched, uncovered = work.give_back(item, book)
    else:
        touched, uncovered = [], ZERO
    book = work.periods[book.key]
    work.periods[book.key] = replace(
        book, spend=book.spend + item.amount, applied=book.applied | {item.line_item_id}
    )
    work.line_records(item, touched, uncovered)
    for grant_id in dict.fromkeys(grant_id for grant_id, amount, _, _ in touched if amount < 0):
        # Credit given back pays usage still uncovered at once: credit never sits idle beside usage it covers.
        work.catch_up(grant_id, event_time=item.window_end, cause=f"line:{item.line_item_id}")

    work.balance_alerts(
        item.currency,
        lowered=any(amount > 0 for _, amount, _, _ in touched),
        uncovered_usage=uncovered > 0,
        had_credit=had_credit,
        cause=f"line:{item.line_item_id}",
        event_time=item.window_end,
        period_start=item.period_start,
    )
    work.spend_cap_alert(work.periods[book.key], event_time=item.window_end)
    return work.close()


def _apply_grant_event(state, event: CreditGrant | CreditVoid, policy: CreditPolicy, emitted_at: datetime) -> Result:
    work = _Work.open(state, event.tenant_id, event.customer_id, policy, emitted_at)
    if isinstance(event, CreditGrant):
        if not work.add_grant(event):
            return state, [], []
    elif not work.void(event):
        return state, [], []
    return work.close()


def _on_time(state, now: datetime, policy: CreditPolicy, emitted_at: datetime) -> Result:
    if state is None:
        return None, [], []
    work = _Work.open(state, state.tenant_id, state.customer_id, policy, emitted_at)
    due = sorted(
        (g for g in work.grants.values() if g.end is not None and g.end <= now),
        key=lambda g: (g.end, burn_key(g)),
    )
    for grant in due:
        work.settle(grant)
    for key, book in sorted(work.periods.items()):
        if book.retain_until <= now:
            del work.periods[key]
            work.uncovered = [u for u in work.uncovered if (u.period_start, u.currency) != key]
    referenced = {grant_id for book in work.periods.values() for _, grant_id, _ in book.draws}
    for grant in list(work.grants.values()):
        if grant.balance <= 0 and grant.grant_id not in referenced:
            del work.grants[grant.grant_id]
            work.finish(grant.grant_id, now)
    work.voids = {k: v for k, v in work.voids.items() if v.forget_at > now}
    work.finished = {k: t for k, t in work.finished.items() if t > now}
    work.prune_spend_caps(now)
    return work.close()


# ---- the accounting identity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityCheck:
    granted: Decimal = ZERO
    drawn: Decimal = ZERO
    expired: Decimal = ZERO
    voided: Decimal = ZERO
    uncovered: Decimal = ZERO
    line_items: Decimal | None = None
    last_reported_balance: Decimal | None = None

    @property
    def balance(self) -> Decimal:
        """sum(grants) - sum(drawn) - sum(expired) - sum(voided)."""
        with money_context():
            return self.granted - self.drawn - self.expired - self.voided

    @property
    def usage_identity_holds(self) -> bool | None:
        """sum(line item amounts) == sum(drawn) + sum(uncovered); None when no line items were given."""
        if self.line_items is None:
            return None
        with money_context():
            return self.line_items == self.drawn + self.uncovered


def ledger_identity(
    grants: Iterable[CreditGrant | CreditVoid],
    drawdowns: Iterable[CreditDrawdown],
    line_items: Iterable[InvoiceLineItem] | None = None,
) -> dict[tuple[str, str, str], IdentityCheck]:
    """Totals per (tenant, customer, currency) from the topics' records. A grant counts once per grant_id
    (its first record, as the ledger does); voids are in the drawdowns. Compare `.balance` with the ledger's
    balance and check `.usage_identity_holds`."""
    totals: dict[tuple[str, str, str], dict[str, Decimal | None]] = {}

    def entry(key: tuple[str, str, str]) -> dict[str, Decimal | None]:
        return totals.setdefault(
            key, {"granted": ZERO, "drawn": ZERO, "expired": ZERO, "voided": ZERO, "uncovered": ZERO}
        )

    with money_context():
        seen: set[tuple[str, str, str]] = set()
        for grant in grants:
            if not isinstance(grant, CreditGrant) or (grant.tenant_id, grant.customer_id, grant.grant_id) in seen:
                continue
            seen.add((grant.tenant_id, grant.customer_id, grant.grant_id))
            e = entry((grant.tenant_id, grant.customer_id, grant.currency))
            e["granted"] += grant.amount
        for record in drawdowns:
            e = entry((record.tenant_id, record.customer_id, record.currency))
            column = "drawn" if record.kind in DRAWN_KINDS else {"expiry": "expired", "void": "voided"}[record.kind]
            e[column] += record.amount
            e["uncovered"] += record.uncovered_amount
            e["last_reported_balance"] = record.customer_balance_after
        if line_items is not None:
            for key in totals:
                totals[key]["line_items"] = ZERO
            for item in line_items:
                e = entry((item.tenant_id, item.customer_id, item.currency))
                e["line_items"] = (e.get("line_items") or ZERO) + item.amount
            for e in totals.values():
                e.setdefault("line_items", ZERO)
    return {key: IdentityCheck(**values) for key, values in sorted(totals.items())}


# ---- the working copy -------------------------------------------------------------------------------------


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")


@dataclass
class _Work:
    """A mutable copy of one snapshot for the duration of one call; `close()` freezes it again."""

    tenant_id: str
    customer_id: str
    policy: CreditPolicy
    emitted_at: datetime
    grants: dict[str, GrantBalance]
    uncovered: list[UncoveredUsage]
    periods: dict[tuple[datetime, str], PeriodBook]
    voids: dict[str, VoidTombstone]
    finished: dict[str, datetime]
    spend_caps: list[SpendCapOverride]
    flags: frozenset[str]
    history: History
    drawdowns: list[CreditDrawdown] = field(default_factory=list)
    alerts: list[BillingAlert] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        state: CustomerCredits | None,
        tenant_id: str,
        customer_id: str,
        policy: CreditPolicy,
        emitted_at: datetime,
    ) -> _Work:
        if state is None:
            state = CustomerCredits(tenant_id, customer_id)
        elif (state.tenant_id, state.customer_id) != (tenant_id, customer_id):
            raise ValueError(
                f"state of {(state.tenant_id, state.customer_id)} given a record of {(tenant_id, customer_id)}"
            )
        return cls(
            tenant_id=tenant_id,
            customer_id=customer_id,
            policy=policy,
            emitted_at=emitted_at,
            grants={g.grant_id: g for g in state.grants},
            uncovered=list(state.uncovered),
            periods={book.key: book for book in state.periods},
            voids={tomb.grant_id: tomb for tomb in state.voids},
            finished=dict(state.finished),
            spend_caps=list(state.spend_caps),
            flags=state.alerts_fired,
            history=state.history,
        )

    def close(self) -> Result:
        state = CustomerCredits(
            tenant_id=self.tenant_id,
            customer_id=self.customer_id,
            grants=burn_order(self.grants.values()),
            uncovered=tuple(sorted((u for u in self.uncovered if u.remaining > 0), key=lambda u: u.order)),
            periods=tuple(self.periods[key] for key in sorted(self.periods)),
            voids=tuple(self.voids[key] for key in sorted(self.voids)),
            finished=tuple(sorted(self.finished.items())),
            spend_caps=tuple(self.spend_caps),
            alerts_fired=self.flags,
            history=self.history,
        )
        empty = not (
            state.grants or state.uncovered or state.periods or state.voids or state.finished or state.spend_caps
        )
        return (None if empty else state), self.drawdowns, self.alerts

    # -- queries

    def balance(self, currency: str) -> Decimal:
        return sum((g.balance for g in self.grants.values() if g.currency == currency), ZERO)

    def granted(self, currency: str) -> Decimal:
        return sum((g.amount for g in self.grants.values() if g.currency == currency), ZERO)

    def has_grants(self, currency: str) -> bool:
        return any(g.currency == currency for g in self.grants.values())

    def book(self, period_start: datetime, period_end: datetime, currency: str) -> PeriodBook:
        key = (period_start, currency)
        if key not in self.periods:
            self.periods[key] = PeriodBook(
                period_start, period_end, currency, retain_until=period_end + self.policy.period_grace
            )
        return self.periods[key]

    def period_at(self, instant: datetime, currency: str) -> datetime | None:
        for book in self.periods.values():
            if book.currency == currency and book.period_start <= instant < book.period_end:
                return book.period_start
        return None

    def cap_for(self, book: PeriodBook) -> Decimal | None:
        in_force = [o for o in self.spend_caps if o.currency == book.currency and o.effective_at < book.period_end]
        return in_force[-1].amount if in_force else self.policy.spend_cap_default

    # -- grant balance moves

    def _set_balance(self, grant_id: str, balance: Decimal) -> None:
        self.grants[grant_id] = replace(self.grants[grant_id], balance=balance)

    def _note_draw(self, key: tuple[datetime, str], meter: str, grant_id: str, amount: Decimal) -> None:
        """Move (meter, grant) to the most-recent end of the period's draws with its net changed by `amount`."""
        book = self.periods[key]
        net = sum((n for m, g, n in book.draws if (m, g) == (meter, grant_id)), ZERO) + amount
        draws = tuple(d for d in book.draws if (d[0], d[1]) != (meter, grant_id))
        if net > 0:
            draws += ((meter, grant_id, net),)
        self.periods[key] = replace(book, draws=draws)

    def draw(self, item: InvoiceLineItem, book: PeriodBook) -> tuple[Touched, Decimal]:
        """Positive line: eligible grants pay in burn order. Returns (touched, uncovered)."""
        touched: Touched = []
        remaining = item.amount
        for grant in burn_order(self.grants.values()):
            if remaining <= 0:
                break
            if grant.balance <= 0 or not covers(
                grant,
                meter=item.meter,
                window_start=item.window_start,
                window_end=item.window_end,
                currency=item.currency,
            ):
                continue
            take = min(grant.balance, remaining)
            remaining -= take
            self._set_balance(grant.grant_id, grant.balance - take)
            self._note_draw(book.key, item.meter, grant.grant_id, take)
            touched.append((grant.grant_id, take, grant.balance - take, self.balance(item.currency)))
        if remaining > 0:
            self.uncovered.append(
                UncoveredUsage(
                    item.line_item_id,
                    item.meter,
                    item.currency,
                    item.window_start,
                    item.window_end,
                    item.period_start,
                    remaining,
                )
            )
        return touched, remaining

    def give_back(self, item: InvoiceLineItem, book: PeriodBook) -> tuple[Touched, Decimal]:
        """Negative line: credit back to the grants of this (meter, period), most recently drawn first."""
        touched: Touched = []
        to_return = -item.amount
        for meter, grant_id, net in reversed(book.draws):
            if to_return <= 0:
                break
            if meter != item.meter or grant_id not in self.grants:
                continue
            give = min(net, to_return)
            to_return -= give
            grant = self.grants[grant_id]
            self._set_balance(grant_id, grant.balance + give)
            self._note_draw(book.key, meter, grant_id, -give)
            touched.append((grant_id, -give, grant.balance + give, self.balance(item.currency)))
        left = to_return
        same = sorted(
            (
                u
                for u in self.uncovered
                if (u.meter, u.period_start, u.currency) == (item.meter, item.period_start, item.currency)
            ),
            key=lambda u: u.order,
            reverse=True,
        )
        for entry in same:
            if left <= 0:
                break
            cut = min(entry.remaining, left)
            left -= cut
            self.uncovered[self.uncovered.index(entry)] = replace(entry, remaining=entry.remaining - cut)
        return touched, -to_return

    def add_grant(self, event: CreditGrant) -> bool:
        if event.grant_id in self.grants or event.grant_id in self.finished:
            return False
        had_credit = self.has_grants(event.currency)
        tomb = self.voids.pop(event.grant_id, None)
        grant = GrantBalance(
            grant_id=event.grant_id,
            currency=event.currency,
            amount=event.amount,
            balance=event.amount,
            priority=event.priority,
            effective_at=event.effective_at,
            expires_at=event.expires_at,
            applies_to=None if event.applies_to is None else frozenset(event.applies_to),
            category=event.category,
            voided_at=None if tomb is None else tomb.voided_at,
        )
        self.grants[grant.grant_id] = grant
        if not grant.usable:
            self.settle(grant)
            return True
        # A grant applied here pays no line applied before it: one that would is out of event-time order, and the
        # ledger recomputes the retained past instead (`_recompute`).
        self.balance_alerts(
            grant.currency,
            lowered=False,
            uncovered_usage=False,
            had_credit=had_credit,
            cause=f"grant:{grant.grant_id}",
            event_time=grant.effective_at,
            period_start=self.period_at(grant.effective_at, grant.currency),
        )
        return True

    def catch_up(self, grant_id: str, *, event_time: datetime, cause: str) -> None:
        """Credit that came back to the grant pays retained uncovered usage it covers, oldest window first, while it
        has balance: one `catch_up` record per line (event time: the later of `event_time` and the line's window
        end)."""
        for entry in sorted(self.uncovered, key=lambda u: u.order):
            grant = self.grants[grant_id]
            if grant.balance <= 0:
                break
            if entry.remaining <= 0 or not covers(
                grant,
                meter=entry.meter,
                window_start=entry.window_start,
                window_end=entry.window_end,
                currency=entry.currency,
            ):
                continue
            take = min(grant.balance, entry.remaining)
            self._set_balance(grant_id, grant.balance - take)
            self.uncovered[self.uncovered.index(entry)] = replace(entry, remaining=entry.remaining - take)
            self._note_draw((entry.period_start, entry.currency), entry.meter, grant_id, take)
            self.record(
                "catch_up",
                line_item_id=entry.line_item_id,
                grant_id=grant_id,
                meter=entry.meter,
                period_start=entry.period_start,
                currency=entry.currency,
                amount=take,
                uncovered=-take,
                event_time=max(event_time, entry.window_end),
                cause=cause,
            )

    def corrections(self, written: list[CreditDrawdown], recomputed: list[CreditDrawdown], lines, *,
                    cause: str) -> None:
        """Write the difference between the records `recomputed` for the retained past and those `written` for
        it: per line, one `adjustment` record per grant whose drawn amount changed (the line's change of uncovered
        amount on the last of them); per grant, one `expiry` / `void` record for a changed settled amount."""

        def totals(records):
            drawn: dict[tuple[str, str], Decimal] = {}
            uncovered: dict[str, Decimal] = {}
            settled: dict[tuple[str, str], Decimal] = {}
            for d in records:
                if d.kind in ("expiry", "void"):
                    settled[(d.kind, d.grant_id)] = settled.get((d.kind, d.grant_id), ZERO) + d.amount
                    continue
                if d.grant_id is not None:
                    drawn[(d.line_item_id, d.grant_id)] = drawn.get((d.line_item_id, d.grant_id), ZERO) + d.amount
                uncovered[d.line_item_id] = uncovered.get(d.line_item_id, ZERO) + d.uncovered_amount
            return drawn, uncovered, settled

        old_drawn, old_uncovered, old_settled = totals(written)
        new_drawn, new_uncovered, new_settled = totals(recomputed)
        for line in lines:
            line_id = line.line_item_id
            grants = sorted({grant for (of, grant) in (*old_drawn, *new_drawn) if of == line_id})
            changes = [(g, new_drawn.get((line_id, g), ZERO) - old_drawn.get((line_id, g), ZERO)) for g in grants]
            changes = [(g, delta) for g, delta in changes if delta != 0]
            uncovered_change = new_uncovered.get(line_id, ZERO) - old_uncovered.get(line_id, ZERO)
            if not changes and uncovered_change == 0:
                continue
            for index, (grant_id, delta) in enumerate(changes or [(None, ZERO)]):
                self.record(
                    "adjustment",
                    line_item_id=line_id,
                    grant_id=grant_id,
                    meter=line.meter,
                    period_start=line.period_start,
                    currency=line.currency,
                    amount=delta,
                    uncovered=uncovered_change if index == max(len(changes), 1) - 1 else ZERO,
                    event_time=line.window_end,
                    grant_balance_after=None if grant_id is None else self._balance_of(grant_id),
                    cause=cause,
                )
        by_key = {(d.kind, d.grant_id): d for d in (*written, *recomputed) if d.kind in ("expiry", "void")}
        for key in sorted(by_key):
            delta = new_settled.get(key, ZERO) - old_settled.get(key, ZERO)
            if delta == 0:
                continue
            example = by_key[key]
            self.record(
                example.kind,
                line_item_id=None,
                grant_id=example.grant_id,
                meter=None,
                period_start=None,
                currency=example.currency,
                amount=delta,
                uncovered=ZERO,
                event_time=example.event_time,
                grant_balance_after=self._balance_of(example.grant_id),
                cause=cause,
            )

    def reported_now(self, record: CreditDrawdown) -> CreditDrawdown:
        """`record` (replayed at its place in event time) with the balances as they are now, as every record of a
        recomputation reports them: the last record written for a customer then always reports its balance."""
        return record.model_copy(update={
            "customer_balance_after": self.balance(record.currency),
            "grant_balance_after": None if record.grant_id is None else self._balance_of(record.grant_id),
        })

    def _balance_of(self, grant_id: str) -> Decimal:
        grant = self.grants.get(grant_id)
        return ZERO if grant is None else grant.balance

    def void(self, event: CreditVoid) -> bool:
        """The earliest void of a grant wins, whichever arrives first (a later one changes nothing)."""
        grant = self.grants.get(event.grant_id)
        if grant is None:
            tomb = self.voids.get(event.grant_id)
            if event.grant_id in self.finished or (tomb is not None and tomb.voided_at <= event.voided_at):
                return False
            self.voids[event.grant_id] = VoidTombstone(
                event.grant_id, event.voided_at, event.voided_at + self.policy.void_tombstone_retention
            )
            return True
        if grant.voided_at is not None and grant.voided_at <= event.voided_at:
            return False
        grant = replace(grant, voided_at=event.voided_at)
        self.grants[grant.grant_id] = grant
        if not grant.usable:
            self.settle(grant)
        return True

    def settle(self, grant: GrantBalance) -> None:
        """The grant's usable range ended (expiry or void): its balance goes, and so does the grant."""
        had_credit = True
        grant = self.grants.pop(grant.grant_id)
        end = grant.end if grant.usable else grant.voided_at
        assert end is not None
        self.finish(grant.grant_id, max(end, grant.effective_at))
        kind: DrawdownKind = "void" if grant.ends_by_void else "expiry"
        if kind == "expiry" and grant.balance <= 0:
            return
        self.record(
            kind,
            line_item_id=None,
            grant_id=grant.grant_id,
            meter=None,
            period_start=None,
            currency=grant.currency,
            amount=grant.balance,
            uncovered=ZERO,
            event_time=end,
            grant_balance_after=ZERO,
        )
        self.balance_alerts(
            grant.currency,
            lowered=grant.balance > 0,
            uncovered_usage=False,
            had_credit=had_credit,
            cause=f"{kind}:{grant.grant_id}",
            event_time=end,
            period_start=self.period_at(end, grant.currency),
        )

    def finish(self, grant_id: str, instant: datetime) -> None:
        forget_at = instant + self.policy.grant_id_retention
        self.finished[grant_id] = max(forget_at, self.finished.get(grant_id, forget_at))

    def prune_spend_caps(self, now: datetime) -> None:
        """Keep, per currency, the override in force at the earliest end of a retained period (or now) and all
        later ones; older ones can no longer apply to any period."""
        floor = min((book.period_end for book in self.periods.values()), default=now)
        kept = []
        for currency in sorted({o.currency for o in self.spend_caps}):
            mine = [o for o in self.spend_caps if o.currency == currency]
            before = [o for o in mine if o.effective_at < floor]
            kept += before[-1:] + [o for o in mine if o.effective_at >= floor]
        self.spend_caps = sorted(kept, key=lambda o: (o.effective_at, o.currency))

    # -- records

    def record(
        self,
        kind: DrawdownKind,
        *,
        line_item_id: str | None,
        grant_id: str | None,
        meter: str | None,
        period_start: datetime | None,
        currency: str,
        amount: Decimal,
        uncovered: Decimal,
        event_time: datetime,
        grant_balance_after: Decimal | None = None,
        customer_balance_after: Decimal | None = None,
        cause: str | None = None,
    ) -> None:
        if grant_balance_after is None and grant_id is not None:
            grant_balance_after = self.grants[grant_id].balance
        self.drawdowns.append(
            CreditDrawdown(
                drawdown_id=drawdown_id(
                    self.tenant_id, self.customer_id, kind, line_item_id, grant_id, cause),
                cause=cause,
                tenant_id=self.tenant_id,
                customer_id=self.customer_id,
                kind=kind,
                line_item_id=line_item_id,
                grant_id=grant_id,
                meter=meter,
                period_start=period_start,
                currency=currency,
                amount=amount,
                grant_balance_after=grant_balance_after,
                customer_balance_after=(
                    self.balance(currency) if customer_balance_after is None else customer_balance_after
                ),
                uncovered_amount=uncovered,
                event_time=event_time,
                emitted_at=self.emitted_at,
            )
        )

    def line_records(self, item: InvoiceLineItem, touched: Touched, uncovered: Decimal) -> None:
        """One record per grant touched, the uncovered amount on the last; one null-grant record if none."""
        common = {
            "line_item_id": item.line_item_id,
            "meter": item.meter,
            "period_start": item.period_start,
            "currency": item.currency,
            "event_time": item.window_end,
        }
        if not touched:
            self.record("usage", grant_id=None, amount=ZERO, uncovered=uncovered, **common)
            return
        for index, (grant_id, amount, grant_after, customer_after) in enumerate(touched):
            self.record(
                "usage",
                grant_id=grant_id,
                amount=amount,
                uncovered=uncovered if index == len(touched) - 1 else ZERO,
                grant_balance_after=grant_after,
                customer_balance_after=customer_after,
                **common,
            )

    def balance_alerts(
        self,
        currency: str,
        *,
        lowered: bool,
        uncovered_usage: bool,
        had_credit: bool,
        cause: str,
        event_time: datetime,
        period_start: datetime | None,
    ) -> None:
        self.flags, crossings = balance_crossings(
            self.flags,
            policy=self.policy,
            currency=currency,
            balance=self.balance(currency),
            total_granted=self.granted(currency),
            lowered=lowered,
            uncovered_usage=uncovered_usage,
            has_credit=had_credit or self.has_grants(currency),
        )
        self._alerts(crossings, currency, cause=cause, event_time=event_time, period_start=period_start)

    def spend_cap_alert(self, book: PeriodBook, *, event_time: datetime) -> None:
        if book.cap_reached:
            return
        crossing = spend_cap_crossing(book.spend, self.cap_for(book))
        if crossing is None:
            return
        self.periods[book.key] = replace(book, cap_reached=True)
        cause = f"period:{datetime_to_wire(book.period_start)}"
        self._alerts([crossing], book.currency, cause=cause, event_time=event_time, period_start=book.period_start)

    def _alerts(
        self,
        crossings: list[Crossing],
        currency: str,
        *,
        cause: str,
        event_time: datetime,
        period_start: datetime | None,
    ) -> None:
        for crossing in crossings:
            self.alerts.append(
                build_alert(
                    crossing,
                    tenant_id=self.tenant_id,
                    customer_id=self.customer_id,
                    currency=currency,
                    period_start=period_start,
                    cause=cause,
                    event_time=event_time,
                    emitted_at=self.emitted_at,
                )
            )
