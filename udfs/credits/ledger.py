"""The credit ledger of one (tenant, customer): snapshot in, snapshot out, Bytewax style.

    apply_line_item(state | None, item, policy, *, emitted_at)   -> (state | None, drawdowns, alerts)
    apply_grant_event(state | None, event, policy, *, emitted_at) -> (state | None, drawdowns, alerts)
    apply_spend_cap(state | None, cap, policy, *, emitted_at)     -> (state | None, drawdowns, alerts)
    on_time(state | None, now, policy, *, emitted_at)             -> (state | None, drawdowns, alerts)
    next_timer(state | None) -> datetime | None   # the earliest instant `on_time` has work to do

The input state is never modified (it is a frozen snapshot: tuples, frozensets, Decimals, aware datetimes;
safe to pickle into Flink state). `None` in means "nothing known"; `None` out means "clear the state".

Semantics (the burn order and eligibility are in `burn_order.py`, the alert rules in `alerts.py`):

- **Usage** (line amount > 0): eligible grants pay in burn order, each at most its balance; what is left is
  `uncovered_amount` (to be invoiced). One `usage` record per grant drawn; the line's uncovered amount sits on
  its last record; a line no grant touched gets one record with `grant_id: null`, `amount: 0` (a zero line too).
  Event time of a line's records and alerts: its `window_end`.
- **Negative lines** return credit to the grants that the same (meter, period) drew from, most recently drawn
  first (within one line that is reverse burn order), never more than the net drawn from each; grants already
  expired or voided are skipped (their credit is gone). The rest lowers the uncovered amount: a negative
  `uncovered_amount` on the line's last record, and the retained uncovered entries of that (meter, period) are
  cut, newest first, so a later grant cannot pay usage that was credited back.
- **Catch-up**: a grant that arrives after usage it covers pays that usage's retained uncovered amount at once,
  oldest window first: one `catch_up` record per line, `uncovered_amount = -amount`, event time
  `max(effective_at, window_end)`. It never takes usage away from a grant that already paid it (a reported
  drawdown is never rewritten), so per-grant balances can depend on arrival order; customer balances and
  uncovered totals do not, for usage that every grant covers.
- **Expiry** at `expires_at` (`on_time`): one `expiry` record with the balance left (none when it is 0), and
  the grant leaves the state.
- **Void**: a void ends the grant's usable range at `voided_at` (usage in windows before it may still draw,
  also by catch-up); at `voided_at` (`on_time`) one `void` record removes the balance left (always written,
  amount 0 when nothing was left). A void at or before `effective_at` settles at once. A void of an unknown
  grant is kept as a tombstone for `void_tombstone_retention` after `voided_at`: the grant, when it comes,
  arrives voided. Credit already drawn before a void is processed is not clawed back. The first void wins.
- **Idempotency**: a repeated `grant_id` (held, or finished less than `grant_id_retention` ago) is a no-op, as
  is a repeated void. A line item already applied in its period (same `line_item_id`) is a no-op.
- **Bounded state / retention**: a period's bookkeeping (applied line ids, spend, per (meter, grant) net
  draws, uncovered entries a later grant could pay) is kept until `period_end + period_grace`: lines and grants
  arriving later than that are treated as new (no catch-up into closed periods, no duplicate detection). A
  spent grant (balance 0) stays while a retained period drew from it (a negative line may return credit to
  it), and leaves at the latest at its expiry. Finished grant ids are remembered for `grant_id_retention`.
  Spend cap overrides are configuration and stay (the latest one in force and any later ones). When nothing is
  left the state is `None` (alert hysteresis flags go with it: a customer who comes back starts afresh).
- **Balances**: a customer's balance in a currency is the sum of the balances of all grants held in that
  currency, also those not yet effective; it never goes below 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
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

    def balance(self, currency: str) -> Decimal:
        with money_context():
            return sum((g.balance for g in self.grants if g.currency == currency), ZERO)

    def balances(self) -> dict[str, Decimal]:
        return {currency: self.balance(currency) for currency in sorted({g.currency for g in self.grants})}


def drawdown_id(tenant_id: str, customer_id: str, kind: str, line_item_id: str | None, grant_id: str | None) -> str:
    """uuid5 over `v1|tenant|customer|kind|line_item_id|grant_id` (absent parts empty, parts percent-encoded).
    Unique: a line item is applied once, a grant catches up once, and expires or is voided once."""
    parts = (DRAWDOWN_ID_VERSION, tenant_id, customer_id, kind, line_item_id or "", grant_id or "")
    return str(uuid.uuid5(DRAWDOWN_NAMESPACE, "|".join(quote(part, safe="") for part in parts)))


# ---- the pure API -----------------------------------------------------------------------------------------


def apply_line_item(
    state: CustomerCredits | None, item: InvoiceLineItem, policy: CreditPolicy, *, emitted_at: datetime
) -> Result:
    _require_aware(emitted_at)
    with money_context():
        work = _Work.open(state, item.tenant_id, item.customer_id, policy, emitted_at)
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

        cause = f"line:{item.line_item_id}"
        work.balance_alerts(
            item.currency,
            lowered=any(amount > 0 for _, amount, _, _ in touched),
            uncovered_usage=uncovered > 0,
            had_credit=had_credit,
            cause=cause,
            event_time=item.window_end,
            period_start=item.period_start,
        )
        work.spend_cap_alert(work.periods[book.key], event_time=item.window_end)
        return work.close()


def apply_grant_event(
    state: CustomerCredits | None,
    event: CreditGrant | CreditVoid,
    policy: CreditPolicy,
    *,
    emitted_at: datetime,
) -> Result:
    _require_aware(emitted_at)
    with money_context():
        work = _Work.open(state, event.tenant_id, event.customer_id, policy, emitted_at)
        if isinstance(event, CreditGrant):
            if not work.add_grant(event):
                return state, [], []
        elif not work.void(event):
            return state, [], []
        return work.close()


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


def next_timer(state: CustomerCredits | None) -> datetime | None:
    """The earliest instant at which `on_time` would change something; the adapter keeps one timer on it."""
    if state is None:
        return None
    instants = [g.end for g in state.grants if g.end is not None]
    instants += [book.retain_until for book in state.periods]
    instants += [tomb.forget_at for tomb in state.voids]
    instants += [forget_at for _, forget_at in state.finished]
    return min(instants, default=None)


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
            column = {"usage": "drawn", "catch_up": "drawn", "expiry": "expired", "void": "voided"}[record.kind]
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
        lowered = False
        if not grant.usable:
            self.settle(grant)
            return True
        for entry in sorted(self.uncovered, key=lambda u: u.order):
            grant = self.grants[grant.grant_id]
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
            self._set_balance(grant.grant_id, grant.balance - take)
            self.uncovered[self.uncovered.index(entry)] = replace(entry, remaining=entry.remaining - take)
            self._note_draw((entry.period_start, entry.currency), entry.meter, grant.grant_id, take)
            lowered = True
            self.record(
                "catch_up",
                line_item_id=entry.line_item_id,
                grant_id=grant.grant_id,
                meter=entry.meter,
                period_start=entry.period_start,
                currency=entry.currency,
                amount=take,
                uncovered=-take,
                event_time=max(grant.effective_at, entry.window_end),
            )
        self.balance_alerts(
            grant.currency,
            lowered=lowered,
            uncovered_usage=False,
            had_credit=had_credit,
            cause=f"grant:{grant.grant_id}",
            event_time=grant.effective_at,
            period_start=self.period_at(grant.effective_at, grant.currency),
        )
        return True

    def void(self, event: CreditVoid) -> bool:
        grant = self.grants.get(event.grant_id)
        if grant is None:
            if event.grant_id in self.finished or event.grant_id in self.voids:
                return False
            self.voids[event.grant_id] = VoidTombstone(
                event.grant_id, event.voided_at, event.voided_at + self.policy.void_tombstone_retention
            )
            return True
        if grant.voided_at is not None:
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
    ) -> None:
        if grant_balance_after is None and grant_id is not None:
            grant_balance_after = self.grants[grant_id].balance
        self.drawdowns.append(
            CreditDrawdown(
                drawdown_id=drawdown_id(self.tenant_id, self.customer_id, kind, line_item_id, grant_id),
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


def customer_balances(state: CustomerCredits | None) -> Mapping[str, Decimal]:
    """Balance per currency of a state (empty for None)."""
    return {} if state is None else state.balances()
