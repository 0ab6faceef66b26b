"""Corrections of usage events (`usage-corrections`): validation, the correction ledger and what a correction does
to a window. The specification. The billing job runs validation and correction-id idempotency with
`--corrections` (`jobs/corrections.py`); the ledger runs as its Java twin (`io.meterstream.corrections.
CorrectionLedger`, bound by the golden vectors `corrections.json`) inside the routing operator. The window side
(`WindowContents`, `apply_to_window`, `correct_window`) is specified here and its lines by
`udfs.line_items.accumulate_correction`; the job runs it in `io.meterstream.rating.WindowRating` (lines bound by
golden `correction-lines.json`): sum and count windows by the difference, max, min and last windows from the
contents it retains for them (`WindowContents` below; what a series held before it began retaining is frozen: those
events are not correctable, the ledger says so). unique_count periods are rated by the keyed Python accumulator,
which retains its fired windows' contents and each period's frozen part (`RetainedWindows`, `correct_retained`); the
window operator keeps an open unique_count window's value multiplicities and hands the accumulator the corrections
of fired ones.

**What a correction does to its series** (`correct_window`, per series and window, for the corrections of that
window that came after the same watermark): its `Contribution`s are keyed by series (an amend that changes a group-by
dimension removes from one series and adds to another), and each side is one of three cases, by the lateness rule of
`udfs.lateness` (a series has fired a window when it fired that window or a later one):

- the window is **open** (not fired): the correction changes the open window's contents and nothing else; the
  window's `usage` line, when it fires, bills the corrected contents (no line of its own);
- the window has **fired** and its period is open: the window's contents and aggregate are recomputed
  (`recompute_window`), the period-to-date state follows (`accumulate_correction`: sum and count by the difference,
  max/min/last/unique_count folded again over the period's windows) and the change of the rounded period-to-date
  price is a `correction` line, its id `line_item_id(..., kind="correction", watermark=...)`, its
  `adjusts_line_item_id` the window's usage line; no line when the period quantity does not move;
- the window's **period has closed** (the watermark the corrections came after had reached its end + grace): the
  same line is a `prior_period_adjustment` on the customer's next open invoice, rated against the closed period's
  own total (`udfs.line_items.line_kind`).

The period still sums exactly: every line is rounded-after minus rounded-before of the period to date. Negative
lines (a cancel, an amend down) are ordinary lines for credits and invoices.

**Validation** (`validate_correction_record`): bytes in, a `schemas.usage_correction.UsageCorrection` or a
`CorrectionRejection` out, never raising because of the input. Checks run top to bottom and the first failing one
decides (`CorrectionRejectionReason` order, table in `schemas/README.md`): size, UTF-8, JSON (with the usage
nesting limit, numbers kept exact), object, then every structural problem at once (the earliest reason wins, the
detail names the first field in `FIELD_ORDER`), then the tenant. A rejection carries the ids the record gave, when
they were valid, for the dead letter (`correction_dead_letter_for`).

**Idempotency** (`check_correction_id`, per (tenant_id, correction_id)): `udfs.dedup`'s rule, first copy by arrival
wins: a later copy is `duplicate_correction` when its payload fingerprint (`correction_fingerprint`: event id,
action, value, dimensions; not `sent_at` or `note`, which change nothing) equals the first copy's, else
`conflicting_correction`. The first copy decides whatever its outcome, so a rejected correction is retried with a
new id (a correction that arrived before its event, `unknown_event`, included: corrections are decided on arrival,
never held). Ids are remembered for the correction horizon from their first copy: a copy after that finds the event
past its own horizon too (the event was first seen before the correction), so it can never apply twice.

**The ledger** (per (tenant_id, event_id), pure steps `(state | None, input) -> (state | None, outcome)`):

- `observe_event(state, event, now_ms, meter)` for each first copy (`udfs.dedup` outcome `first`): the ledger
  remembers the billed version of the event (`BilledEvent`: customer, meter, event time, value, the group it was
  billed in and, for unique_count, the counted value) and the processing time it was first seen.
  `observe_dead_letter` remembers that a record with these ids was dead-lettered (a valid copy seen first wins); the
  ids are `udfs.validation.rejected_record_ids` (both valid, whatever else failed; a record without them leaves none).
- `decide(state, correction, now_ms, ...)`: the event is looked up at processing time `now_ms` (`expire_entry`):
  `event_dead_lettered`, `unknown_event`, `outside_horizon` (first seen + horizon <= now, Flink's TTL rule as
  `udfs.dedup.expired` states it), `already_cancelled` (a second cancel, or an amend after a cancel),
  `unknown_meter` (the meter left the catalog). Otherwise it applies: a **cancel** removes the current version's
  contribution; an **amend** removes it and adds the new version's (the value and/or the whole dimension map
  replaced; the group and the unique value are recomputed with the meter's current `group_by` /
  `unique_dimension`, so an amended group-by dimension moves the contribution to another series of the same
  customer, meter and window). An amend of an amended event applies to the latest version. The result is an
  `AppliedCorrection` whose `remove` / `add` are `Contribution`s (series, window, and the sample reduced to what the
  meter's aggregation reads): the delta the window operator applies. An amend that changes nothing the aggregation
  reads (a `count` meter's value, an unused dimension) is applied with no delta (`changed` is False): accounted
  for as applied, no line.
- Horizon: `DEFAULT_CORRECTION_HORIZON` (24 h) of processing time after the event was first seen, configurable up
  to the dedup horizon (`dedup_ttl_ms`; a longer one would outlive the dedup memory, and a copy billed again after
  it would make the event ambiguous). After the horizon the entry shrinks to `PastHorizon(first_seen_ms)` until the
  dedup horizon (then None: `unknown_event`), so `outside_horizon` and `unknown_event` stay apart. A dead-letter
  marker is kept for the correction horizon only (then `unknown_event`).

**Cost per event** (what the job's operator will keep, laid out as `UsageRouting` keeps dedup memory: raw bytes in
hash tables per key bucket, keys as 128-bit hashes): for the correction horizon, per first-seen event about
80 bytes: the (tenant, event_id) key hash 16, first seen 8, the series key hash 16 (tenant, customer, meter, group:
enough to route the delta to the window operator, which is keyed by it), event time 8 (the window follows from it),
value as DECIMAL(38,18) 17 (unscaled 128 bits + scale), the unique value's 64-bit hash 8, status and version 2, slot
overhead ~5. After the horizon nothing beyond the dedup entry (which already holds first-seen time). That is
80 B x events per horizon: 1k events/s for 24 h is ~7 GB, so the horizon is a cost knob, not only a policy. The
Python classes here hold the strings themselves (the specification, not the layout). The job's ledger
(`io.meterstream.corrections.LedgerSlots`) keeps the series' strings once, in a dictionary, rather than series hashes
(a correction line must name its series): measured 125 heap bytes and 91 checkpoint bytes per event. Correction
ids: 16 + 8 + 8 B per correction for the horizon. Dead-letter markers: 16 + 8 + 1 B per dead-lettered record with
readable ids.

**What each aggregation needs to be corrected** (`WindowContents`, `recompute_window`): sum and count are
invertible folds, max, min, last and unique_count are not (a window's maximum does not say what the maximum is
without it). So a fired window keeps, for the correction horizon after its last event was first seen:

| aggregation | window keeps | a correction |
|---|---|---|
| sum | the total (and the event count) | total - removed + added, with `SumAggregator.merge` |
| count | the event count | count - 1 on a cancel; an amend changes nothing |
| max, min | its values as a multiset (value -> multiplicity) | multiplicity -1/+1, window rule over the rest |
| last | every event's (event time, event_id, value) | remove/add it, window rule (the runner-up may win) |
| unique_count | token -> multiplicity (events carrying it) | multiplicity -1/+1; a token leaves the set at 0 |

The recomputation always goes through `udfs.aggregations`' own window rules (`run_window_rule`) or their `merge`,
so the rules have one home. The period side has the same problem one level up: a period's max/min/last/unique
accumulator is re-folded from the windows' payloads of the period (`period_combine` over the retained windows;
for unique_count, token -> number of windows holding it); its state is per window, not per event.

Where the job keeps it: `io.meterstream.rating.WindowRating` keeps every open window's contents and a max, min or
last series' fired windows' too, until `retained_for_ms` (two correction horizons of the series' clock, `tick`) after
a window's latest contribution, when it is frozen into its period's frozen part (`freeze_settled`: no correction can
reach its events any more); a unique_count series' fired windows are retained by the keyed Python accumulator that
rates its periods (`RetainedWindows`: each window's aggregate and contents, and each period's frozen part, ~ its
distinct values' bytes per window), whose steps are `begin_retaining`, `retain_window`, `retain_late`,
`correct_retained` and `freeze_settled`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from schemas.correction_dead_letter import CorrectionDeadLetter, CorrectionRejectionReason
from schemas.dead_letter import DeadLetterReason
from schemas.usage_correction import FIELD_ORDER, UsageCorrection
from schemas.usage_event import ID_MAX_LENGTH, ID_MIN_LENGTH, UsageEvent
from schemas.wire import decimal_to_wire
from udfs.aggregations import (
    Aggregator,
    Group,
    LastObservation,
    SumAggregator,
    UsageSample,
    WindowAggregate,
    aggregator_for,
    run_window_rule,
)
from udfs.catalog import Meter, TenantCatalog
from udfs.dedup import DUPLICATE_SAME_PAYLOAD, FIRST, FirstCopy, dedup, expired
from udfs.grouping import canonical_json, group_of
from udfs.line_items import SeriesPeriods, bill_correction
from udfs.money import exact
from udfs.periods import billing_period
from udfs.validation import json_object_of, raw_record_fields
from udfs.windows import window_bounds

Reason = CorrectionRejectionReason
DEFAULT_CORRECTION_HORIZON = timedelta(hours=24)
# The aggregations whose corrections the job bills: all six. The window operator changes their windows (sum and
# count by the difference; max, min and last from the window contents it retains, `WindowContents`); unique_count
# periods are rated by the Python accumulator, which retains its fired windows' contents (`RetainedWindows`). A
# subset here would make `decide` reject the others (`aggregation_not_correctable`) rather than count them applied
# with the bill unchanged; the job still rejects so the corrections of events billed before their windows' contents
# were retained (state restored from an earlier release).
BILLED_CORRECTION_AGGREGATIONS = ("sum", "count", "max", "min", "last", "unique_count")


def not_billed_detail(correctable: Sequence[str] = BILLED_CORRECTION_AGGREGATIONS) -> str:
    """The detail of an `aggregation_not_correctable` rejection (after the event and its meter)."""
    names = list(correctable)
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"only corrections of {listed} meters are billed"
DEFAULT_DEDUP_TTL = timedelta(days=35)  # the billing job's --dedup-ttl-days default
_MS = timedelta(milliseconds=1)
_FIELD_RANK = {name: index for index, name in enumerate(FIELD_ORDER)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---- validation ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorrectionRejection:
    reason: CorrectionRejectionReason
    detail: str
    correction_id: str | None = None
    tenant_id: str | None = None
    event_id: str | None = None
    event_dead_letter_reason: DeadLetterReason | None = None


def validate_correction_record(
    raw: bytes | bytearray | memoryview | None, *, tenants: Collection[str]
) -> UsageCorrection | CorrectionRejection:
    """A `UsageCorrection`, or why not. `tenants` holds the catalog's tenant ids (`Catalog.tenants` will do)."""
    obj = json_object_of(raw)
    if isinstance(obj, tuple):
        return CorrectionRejection(Reason(obj[0]), obj[1])
    ids = _ids_of(obj)
    try:
        correction = UsageCorrection.model_validate(obj)
    except ValidationError as exc:
        reason, detail = _structural_rejection(exc)
        return CorrectionRejection(reason, detail, **ids)
    if correction.tenant_id not in tenants:
        detail = f"tenant {correction.tenant_id!r} is not in the catalog"
        return CorrectionRejection(Reason.UNKNOWN_TENANT, detail, **ids)
    return correction


def _ids_of(obj: dict[str, Any]) -> dict[str, str | None]:
    """The ids the record gave, where each is a usable id string (for the dead letter), else None."""
    out: dict[str, str | None] = {}
    for name in ("correction_id", "tenant_id", "event_id"):
        value = obj.get(name)
        usable = isinstance(value, str) and ID_MIN_LENGTH <= len(value) <= ID_MAX_LENGTH
        if usable:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                usable = False
        out[name] = value if usable else None
    return out


_REASON_BY_ERROR_TYPE = {
    "unamendable_field": Reason.UNAMENDABLE_FIELD,
    "missing": Reason.MISSING_FIELD,
    "negative_value": Reason.NEGATIVE_VALUE,
    "payload_on_cancel": Reason.PAYLOAD_ON_CANCEL,
    "nothing_to_amend": Reason.NOTHING_TO_AMEND,
}


def _structural_rejection(exc: ValidationError) -> tuple[CorrectionRejectionReason, str]:
    candidates = []
    for error in exc.errors(include_url=False, include_input=False):
        field_name = str(error["loc"][0]) if error["loc"] else ""
        path = ".".join(str(part) for part in error["loc"]) or "record"
        reason = _REASON_BY_ERROR_TYPE.get(error["type"])
        if reason is None:
            reason = {"sent_at": Reason.INVALID_TIMESTAMP, "value": Reason.INVALID_VALUE}.get(
                field_name, Reason.INVALID_FIELD
            )
        rank = _FIELD_RANK.get(field_name, len(_FIELD_RANK))
        candidates.append((reason.precedence, rank, reason, path, str(error["msg"])))
    _, _, reason, path, message = min(candidates, key=lambda c: (c[0], c[1]))
    if reason is Reason.MISSING_FIELD:
        return reason, f"field {path!r} is required (absent or null)"
    if path == "record":
        return reason, message
    return reason, f"field {path!r}: {message}"


def correction_dead_letter_for(
    raw: bytes | bytearray | memoryview | None,
    rejection: CorrectionRejection,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    received_at: datetime,
) -> CorrectionDeadLetter:
    """The `usage-correction-dead-letters` record of a rejected raw correction."""
    return CorrectionDeadLetter(
        **raw_record_fields(raw),
        reason=rejection.reason,
        detail=rejection.detail,
        correction_id=rejection.correction_id,
        tenant_id=rejection.tenant_id,
        event_id=rejection.event_id,
        event_dead_letter_reason=rejection.event_dead_letter_reason,
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        received_at=received_at,
    )


# ---- idempotency by correction_id ------------------------------------------------------------------------


def correction_fingerprint(correction: UsageCorrection) -> str:
    """Hex SHA-256 of what a correction does: event, action, value, dimensions (not sent_at, not note)."""
    payload = {
        "event_id": correction.event_id,
        "action": correction.action,
        "value": None if correction.value is None else decimal_to_wire(correction.value),
        "dimensions": correction.dimensions,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def check_correction_id(
    state: FirstCopy | None, correction: UsageCorrection, now_ms: int, ttl_ms: int
) -> tuple[FirstCopy, CorrectionRejection | None]:
    """Per (tenant_id, correction_id): the id's new state and None for a first copy (decide it), or the rejection
    of a later copy. `ttl_ms` is the correction horizon."""
    new_state, outcome = dedup(state, correction_fingerprint(correction), now_ms, ttl_ms)
    if outcome == FIRST:
        return new_state, None
    reason = Reason.DUPLICATE_CORRECTION if outcome == DUPLICATE_SAME_PAYLOAD else Reason.CONFLICTING_CORRECTION
    detail = (
        f"correction {correction.correction_id!r} was received before "
        + ("with the same payload: applied once" if reason is Reason.DUPLICATE_CORRECTION else "with another payload")
    )
    return new_state, _rejection(reason, detail, correction)


def _rejection(
    reason: CorrectionRejectionReason,
    detail: str,
    correction: UsageCorrection,
    event_reason: DeadLetterReason | None = None,
) -> CorrectionRejection:
    return CorrectionRejection(
        reason, detail, correction.correction_id, correction.tenant_id, correction.event_id, event_reason
    )


# ---- the ledger ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BilledEvent:
    """The version of an event that is billed now: what a correction must take back."""

    customer_id: str
    meter: str
    event_time: datetime
    value: Decimal | None
    group: Group
    unique_value: str | None  # unique_count meters: the value of the counted dimension, if present


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A first-seen event within the correction horizon. `current` is None once it is cancelled."""

    tenant_id: str
    event_id: str
    first_seen_ms: int
    current: BilledEvent | None
    corrections_applied: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetteredEvent:
    first_seen_ms: int
    reason: DeadLetterReason


@dataclass(frozen=True, slots=True)
class PastHorizon:
    """An event past its correction horizon, still within the dedup horizon (the dedup entry holds this time)."""

    first_seen_ms: int


LedgerState = LedgerEntry | DeadLetteredEvent | PastHorizon | None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one event version adds to one window of one series, the sample reduced to what the meter's aggregation
    reads (so two contributions are equal exactly when they aggregate alike)."""

    tenant_id: str
    customer_id: str
    meter: str
    group: Group
    window_start: datetime
    window_end: datetime
    sample: UsageSample

    @property
    def series(self) -> tuple[str, str, str, Group]:
        return (self.tenant_id, self.customer_id, self.meter, self.group)


@dataclass(frozen=True, slots=True)
class AppliedCorrection:
    correction_id: str
    action: str
    remove: Contribution | None
    add: Contribution | None

    @property
    def changed(self) -> bool:
        return self.remove is not None or self.add is not None


def check_horizon(horizon_ms: int, dedup_ttl_ms: int) -> None:
    if not 0 < horizon_ms <= dedup_ttl_ms:
        raise ValueError(f"the correction horizon must be in (0, dedup horizon = {dedup_ttl_ms} ms], got {horizon_ms}")


def billed_event(event: UsageEvent, meter: Meter) -> BilledEvent:
    return BilledEvent(
        customer_id=event.customer_id,
        meter=event.meter,
        event_time=event.timestamp,
        value=event.value,
        group=group_of(event.dimensions, meter.group_by),
        unique_value=_unique_value(event.dimensions, meter),
    )


def _unique_value(dimensions: Mapping[str, str], meter: Meter) -> str | None:
    return dimensions.get(meter.unique_dimension) if meter.unique_dimension else None


def observe_event(state: LedgerState, event: UsageEvent, now_ms: int, meter: Meter) -> LedgerEntry:
    """A first copy (dedup outcome `first`) billed at processing time `now_ms`: a fresh entry, whatever the key held
    (dedup is the judge of first: a dead-letter marker or an entry past the dedup horizon is replaced)."""
    return LedgerEntry(event.tenant_id, event.event_id, now_ms, billed_event(event, meter))


def observe_dead_letter(state: LedgerState, reason: DeadLetterReason, now_ms: int) -> LedgerState:
    """A record with these ids went to usage-dead-letters; a valid copy (or dead letter) seen before stays."""
    return DeadLetteredEvent(now_ms, reason) if state is None else state


def expire_entry(state: LedgerState, now_ms: int, horizon_ms: int, dedup_ttl_ms: int) -> LedgerState:
    """The key's state at processing time `now_ms` (Flink's TTL rule for both horizons)."""
    if state is None or expired(state.first_seen_ms, now_ms, dedup_ttl_ms):
        return None
    if not expired(state.first_seen_ms, now_ms, horizon_ms):
        return state
    if isinstance(state, DeadLetteredEvent):
        return None
    return state if isinstance(state, PastHorizon) else PastHorizon(state.first_seen_ms)


def decide(
    state: LedgerState,
    correction: UsageCorrection,
    now_ms: int,
    *,
    meters: Mapping[str, Meter],
    window_size: timedelta,
    horizon_ms: int = DEFAULT_CORRECTION_HORIZON // _MS,
    dedup_ttl_ms: int = DEFAULT_DEDUP_TTL // _MS,
    correctable: Collection[str] = BILLED_CORRECTION_AGGREGATIONS,
) -> tuple[LedgerState, AppliedCorrection | CorrectionRejection]:
    """One correction (a first copy of its id) against its event's state at processing time `now_ms`: the new
    state and the delta, or the rejection (the state then only aged). `meters` is the tenant's catalog meters;
    `correctable` the aggregations whose corrections are applied (the job's: `BILLED_CORRECTION_AGGREGATIONS`; the
    window rules below are specified for all six)."""
    check_horizon(horizon_ms, dedup_ttl_ms)
    state = expire_entry(state, now_ms, horizon_ms, dedup_ttl_ms)
    event = repr(correction.event_id)
    if isinstance(state, DeadLetteredEvent):
        detail = f"event {event} was rejected ({state.reason}): nothing was billed, so nothing can be corrected"
        return state, _rejection(Reason.EVENT_DEAD_LETTERED, detail, correction, state.reason)
    if state is None:
        detail = f"event {event} is not known (not arrived yet, never sent, or past the dedup horizon)"
        return state, _rejection(Reason.UNKNOWN_EVENT, detail, correction)
    if isinstance(state, PastHorizon):
        age = timedelta(milliseconds=now_ms - state.first_seen_ms)
        detail = f"event {event} was first seen {age} ago, beyond the correction horizon of {horizon_ms * _MS}"
        return state, _rejection(Reason.OUTSIDE_HORIZON, detail, correction)
    if state.current is None:
        return state, _rejection(Reason.ALREADY_CANCELLED, f"event {event} is cancelled", correction)
    meter = meters.get(state.current.meter)
    if meter is None:
        detail = f"meter {state.current.meter!r} of event {event} is no longer in the tenant's catalog"
        return state, _rejection(Reason.UNKNOWN_METER, detail, correction)

    if meter.aggregation not in correctable:
        detail = f"event {event} is usage of meter {state.current.meter!r} ({meter.aggregation}): " + (
            not_billed_detail(tuple(correctable)))
        return state, _rejection(Reason.AGGREGATION_NOT_CORRECTABLE, detail, correction)
    before = contribution(state, state.current, meter, window_size)
    if correction.action == "cancel":
        after_version, after = None, None
    else:
        after_version = _amended(state.current, correction, meter)
        after = contribution(state, after_version, meter, window_size)
    new_state = replace(state, current=after_version, corrections_applied=state.corrections_applied + 1)
    if before == after:
        return new_state, AppliedCorrection(correction.correction_id, correction.action, None, None)
    return new_state, AppliedCorrection(correction.correction_id, correction.action, before, after)


def _amended(current: BilledEvent, correction: UsageCorrection, meter: Meter) -> BilledEvent:
    version = current if correction.value is None else replace(current, value=correction.value)
    if correction.dimensions is None:
        return version
    return replace(
        version,
        group=group_of(correction.dimensions, meter.group_by),
        unique_value=_unique_value(correction.dimensions, meter),
    )


def contribution(entry: LedgerEntry, version: BilledEvent, meter: Meter, window_size: timedelta) -> Contribution:
    """The contribution of one version of the event to its window, reduced to what `meter.aggregation` reads."""
    start, end = window_bounds(version.event_time, window_size)
    aggregation = meter.aggregation
    value = None if aggregation in ("count", "unique_count") else version.value
    dimensions = {}
    if aggregation == "unique_count" and version.unique_value is not None:
        dimensions = {meter.unique_dimension: version.unique_value}
    sample = UsageSample(entry.event_id, version.event_time, value, dimensions)
    return Contribution(entry.tenant_id, version.customer_id, version.meter, version.group, start, end, sample)


@dataclass
class CorrectionLedger:
    """The steps above over a stream: ledger entries per (tenant_id, event_id), correction ids per
    (tenant_id, correction_id). `meters_by_tenant[tenant][meter]` is the catalog's `Meter`."""

    meters_by_tenant: Mapping[str, Mapping[str, Meter]]
    window_size: timedelta
    horizon_ms: int = DEFAULT_CORRECTION_HORIZON // _MS
    dedup_ttl_ms: int = DEFAULT_DEDUP_TTL // _MS
    correctable: Collection[str] = BILLED_CORRECTION_AGGREGATIONS
    events: dict[tuple[str, str], LedgerState] = field(default_factory=dict)
    correction_ids: dict[tuple[str, str], FirstCopy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_horizon(self.horizon_ms, self.dedup_ttl_ms)

    def observe_event(self, event: UsageEvent, now_ms: int) -> None:
        key = (event.tenant_id, event.event_id)
        meter = self.meters_by_tenant[event.tenant_id][event.meter]
        self.events[key] = observe_event(self.events.get(key), event, now_ms, meter)

    def observe_dead_letter(self, tenant_id: str, event_id: str, reason: DeadLetterReason, now_ms: int) -> None:
        key = (tenant_id, event_id)
        state = expire_entry(self.events.get(key), now_ms, self.horizon_ms, self.dedup_ttl_ms)
        self.events[key] = observe_dead_letter(state, reason, now_ms)

    def correct(self, correction: UsageCorrection, now_ms: int) -> AppliedCorrection | CorrectionRejection:
        id_key = (correction.tenant_id, correction.correction_id)
        self.correction_ids[id_key], duplicate = check_correction_id(
            self.correction_ids.get(id_key), correction, now_ms, self.horizon_ms
        )
        if duplicate is not None:
            return duplicate
        key = (correction.tenant_id, correction.event_id)
        self.events[key], outcome = decide(
            self.events.get(key),
            correction,
            now_ms,
            meters=self.meters_by_tenant.get(correction.tenant_id, {}),
            window_size=self.window_size,
            horizon_ms=self.horizon_ms,
            dedup_ttl_ms=self.dedup_ttl_ms,
            correctable=self.correctable,
        )
        return outcome


# ---- what a correction does to a window ------------------------------------------------------------------


@dataclass(frozen=True)
class WindowContents:
    """What a fired window keeps so that corrections can be applied to it (module docstring, table).

    `total` is the sum meter's running total (None otherwise); `members` the multiset of the window's values (max,
    min), observations (last) or tokens (unique_count) as (member, multiplicity) pairs, empty for sum and count.
    """

    aggregation: str
    event_count: int
    total: Decimal | None = None
    members: frozenset[tuple[Hashable, int]] = frozenset()


def _member(aggregator: Aggregator, sample: UsageSample) -> Hashable | None:
    """The multiset member a sample contributes, None when the window rule skips it (no value, no dimension)."""
    kind = aggregator.kind
    if kind in ("max", "min"):
        return sample.value
    if kind == "last":
        return None if sample.value is None else LastObservation(sample.value, sample.event_time, sample.event_id)
    if kind == "unique_count":
        return sample.dimensions.get(aggregator.dimension)
    return None


def window_contents(aggregator: Aggregator, samples: Iterable[UsageSample]) -> WindowContents:
    """The contents of a window holding these samples (as the window operator builds them while it is open)."""
    contents = WindowContents(aggregator.kind, 0, SumAggregator().initialize() if aggregator.kind == "sum" else None)
    for sample in samples:
        contents = apply_to_window(contents, aggregator, add=sample)
    return contents


def apply_to_window(
    contents: WindowContents,
    aggregator: Aggregator,
    *,
    remove: UsageSample | None = None,
    add: UsageSample | None = None,
) -> WindowContents:
    """The contents after taking out `remove` and putting in `add` (either may be None). Removing a sample the
    window does not hold is a programming error (ValueError): the ledger only removes what it added."""
    if aggregator.kind != contents.aggregation:
        raise ValueError(f"contents of a {contents.aggregation} window, aggregator {aggregator.kind}")
    count = contents.event_count - (remove is not None) + (add is not None)
    if count < 0:
        raise ValueError("removing a sample from an empty window")
    if aggregator.kind == "sum":
        total = contents.total
        if remove is not None and remove.value is not None:
            total = SumAggregator().merge(total, exact(lambda: -remove.value))
        if add is not None:
            total = SumAggregator().agg(total, add)
        return replace(contents, event_count=count, total=total)
    if aggregator.kind == "count":
        return replace(contents, event_count=count)
    members = Counter(dict(contents.members))
    if remove is not None and (member := _member(aggregator, remove)) is not None:
        if members[member] <= 0:
            raise ValueError(f"the window holds no {member!r} to remove")
        members[member] -= 1
    if add is not None and (member := _member(aggregator, add)) is not None:
        members[member] += 1
    return replace(contents, event_count=count, members=frozenset((m, n) for m, n in members.items() if n > 0))


def window_payload(contents: WindowContents, aggregator: Aggregator) -> dict[str, Any]:
    """The `WindowAggregate` payload fields of these contents, computed by the aggregation's own rules."""
    kind = aggregator.kind
    if kind == "sum":
        return aggregator.result(contents.total)
    if kind == "count":
        return aggregator.result(Decimal(contents.event_count))
    members = [member for member, _ in contents.members]
    if kind in ("max", "min"):
        samples = [UsageSample("", _EPOCH, value) for value in members]
    elif kind == "last":
        samples = [UsageSample(obs.event_id, obs.ts, obs.value) for obs in members]
    else:
        samples = [UsageSample("", _EPOCH, None, {aggregator.dimension: token}) for token in members]
    return run_window_rule(aggregator, samples)


def recompute_window(
    window: WindowAggregate,
    contents: WindowContents,
    aggregator: Aggregator,
    *,
    remove: UsageSample | None = None,
    add: UsageSample | None = None,
) -> tuple[WindowContents, WindowAggregate]:
    """A fired window after a correction: its new contents and its new aggregate (same series and bounds)."""
    after = apply_to_window(contents, aggregator, remove=remove, add=add)
    empty = {"quantity": None, "last": None, "distinct_values": None}
    return after, replace(window, event_count=after.event_count, **{**empty, **window_payload(after, aggregator)})


Change = tuple[UsageSample | None, UsageSample | None]  # (remove, add) of one applied correction in one series


def corrections_count(sides: Iterable[tuple[str, bool, bool]]) -> int:
    """How many corrections the records of one window are, each given as (event id, removes, adds): per event, the
    more of its removes and its adds. The window operator sends a correction as a remove and/or an add of one
    event (an amend of a max, min, last or unique_count event is both), so an amend is one, two amends of an event
    after one watermark are two, and a move out and back into a series is one (it changed the event there once)."""
    removes: Counter[str] = Counter()
    adds: Counter[str] = Counter()
    for event_id, remove, add in sides:
        removes[event_id] += remove
        adds[event_id] += add
    return sum(max(removes[e], adds[e]) for e in {*removes, *adds})


@dataclass(frozen=True)
class CorrectedWindow:
    """One series' window after the corrections of it that came after one watermark: its contents and aggregate,
    the series' period states, and the line (None when the window was open, or the period quantity did not move)."""

    contents: WindowContents
    window: WindowAggregate
    series: SeriesPeriods
    line: Any = None  # schemas.invoice_line_item.InvoiceLineItem | None


def correct_window(
    series: SeriesPeriods,
    window: WindowAggregate | None,
    contents: WindowContents | None,
    changes: Sequence[Change],
    catalog_tenant: TenantCatalog,
    *,
    key: tuple[str, str, str, Group],
    window_start: datetime,
    window_end: datetime,
    fired: bool,
    period_windows: Iterable[WindowAggregate] = (),
    frozen: Any = None,
    corrections: int | None = None,
    watermark: datetime,
    emitted_at: datetime,
) -> CorrectedWindow:
    """The corrections `changes` of one window of series `key` that came after `watermark` (module docstring, "What
    a correction does to its series"). `window` / `contents`: the window as it stands (None, None: the series has no
    usage in it); `fired`: the series has fired it (or a later window); `period_windows`: the series' other windows
    of the same period, which max/min/last/unique_count need, and `frozen` the period accumulator of its windows
    fired before the series retained contents (`accumulate_correction`); `corrections`: how many corrections the
    changes are (the line's event count; default one per change: the window operator sends an amend as a remove
    and an add of one event, which is one correction)."""
    meter = catalog_tenant.meter(key[2])
    aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
    if contents is None:
        contents = window_contents(aggregator, ())
    before = window
    if window is None:
        window = WindowAggregate(*key, window_start, window_end, 0, **window_payload(contents, aggregator))
    for remove, add in changes:
        contents = apply_to_window(contents, aggregator, remove=remove, add=add)
    empty = {"quantity": None, "last": None, "distinct_values": None}
    after = replace(window, event_count=contents.event_count, **{**empty, **window_payload(contents, aggregator)})
    if not fired:
        return CorrectedWindow(contents, after, series)
    series, line = bill_correction(series, before, after, catalog_tenant, period_windows=period_windows,
                                   frozen=frozen, corrections=len(changes) if corrections is None else corrections,
                                   watermark=watermark, emitted_at=emitted_at)
    return CorrectedWindow(contents, after, series, line)


# ---- what a series' accumulator retains when it rates its own periods (unique_count) --------------------


@dataclass(frozen=True)
class RetainedWindows:
    """What a series whose periods are rated apart from its windows (unique_count: the keyed Python accumulator,
    which receives fired windows) keeps so that corrections of its fired windows can be billed with `correct_window`:
    each fired window of the periods it still holds (its aggregate and contents, by window start), and per period a
    frozen part, the period accumulator of the windows fired before it began to retain (restored from a release
    without contents, or billed while corrections were off) or frozen since (`freeze_settled`). The correction
    ledger holds no correctable event of a frozen window, so the frozen part only ever takes part in the period's
    fold, as it stands."""

    windows: Mapping[datetime, tuple[WindowAggregate, WindowContents]] = field(default_factory=dict)
    frozen: Mapping[datetime, Any] = field(default_factory=dict)
    # The series' clock (`tick`) when each retained window had its latest contribution (firing, late events,
    # corrections); a window missing here (restored from a state without it) counts from the next `freeze_settled`.
    seen: Mapping[datetime, int] = field(default_factory=dict)
    next_freeze_check_ms: int = 0  # `freeze_settled` looks again from then on (series clock)
    clock_ms: int = 0  # the series' clock
    wall_ms: int | None = None  # the processing time it was last ticked at


# A series' clock advances by at most retained_for / this per tick (a quarter of a correction horizon).
CLOCK_STEP_DIVISOR = 8


def retained_for_ms(horizon_ms: int) -> int:
    """How long a fired window keeps its contents after its latest contribution, on its series' clock (`tick`): two
    correction horizons. The ledger holds an event as correctable for one horizon of processing time from its first
    copy, which came no later than the window's latest contribution; the second is the margin a correction the
    ledger accepted has to reach the window. Then the window is frozen into its period's frozen part
    (`freeze_settled`): a series retains contents for about the correction horizon, not until its period is
    forgotten (~36 days)."""
    return 2 * horizon_ms


def tick(retained: RetainedWindows, now_ms: int, retain_ms: int) -> RetainedWindows:
    """The series' clock at processing time `now_ms`: it follows processing time, but one tick moves it by at most
    `retain_ms` / `CLOCK_STEP_DIVISOR`. So a job stopped for days (or a series silent for days) counts a quarter
    horizon: a correction the ledger accepted before a stop, still waiting in the window operator after it, finds
    its window retained (the ledger, on processing time, refuses later ones as outside the horizon). A series seen
    rarely retains longer; never shorter than the ledger holds its events."""
    step = 0 if retained.wall_ms is None else min(max(0, now_ms - retained.wall_ms),
                                                  max(1, retain_ms // CLOCK_STEP_DIVISOR))
    return replace(retained, clock_ms=retained.clock_ms + step, wall_ms=now_ms)


def freeze_settled(retained: RetainedWindows, aggregator: Aggregator, catalog_tenant: TenantCatalog, *,
                   now_ms: int, retain_ms: int) -> RetainedWindows:
    """The retained windows whose latest contribution is `retain_ms` or more behind `now_ms` (the series' clock,
    `tick`) folded into their period's frozen part (`period_combine`: the period to date does not change) and
    dropped with their contents. A late event for such a window is retained from then on beside the frozen part
    (`retain_late`), as for windows fired before the series began to retain. Looked for at most every `retain_ms` /
    16; a window without its time starts counting now. (`io.meterstream.rating.WindowRating.freezeSettled` is the
    same for max, min and last.)"""
    if now_ms < retained.next_freeze_check_ms:
        return retained
    windows, frozen, seen = dict(retained.windows), dict(retained.frozen), dict(retained.seen)
    for start in sorted(windows):
        if start not in seen:
            seen[start] = now_ms
        elif now_ms - seen[start] >= retain_ms:
            window, _ = windows.pop(start)
            del seen[start]
            period_start = _period_start(start, catalog_tenant)
            accumulator = frozen.get(period_start)
            frozen[period_start] = aggregator.period_combine(
                aggregator.period_initialize() if accumulator is None else accumulator, window)
    return replace(retained, windows=windows, frozen=frozen, seen=seen,
                   next_freeze_check_ms=now_ms + max(1, retain_ms // 16))


def begin_retaining(series: SeriesPeriods) -> RetainedWindows:
    """The retained state of a series that had none: every period it holds is frozen as it stands."""
    return RetainedWindows({}, {p.period_start: p.quantity_state for p in series.periods})


def _period_start(window_start: datetime, catalog_tenant: TenantCatalog) -> datetime:
    schedule = catalog_tenant.billing_period
    return billing_period(window_start, schedule.anchor_day, schedule.zone)[0]


def retain_window(
    retained: RetainedWindows, window: WindowAggregate, contents: WindowContents, series: SeriesPeriods,
    catalog_tenant: TenantCatalog, *, now_ms: int,
) -> RetainedWindows:
    """A fired window (after `bill_window`) and its contents, seen at `now_ms` (series clock); the windows and
    frozen parts of the periods `series` no longer holds are forgotten with them (no event can reach them)."""
    kept = {p.period_start for p in series.periods}
    windows = {start: held for start, held in retained.windows.items()
               if _period_start(start, catalog_tenant) in kept}
    windows[window.window_start] = (window, contents)
    seen = {start: at for start, at in retained.seen.items() if start in windows}
    seen[window.window_start] = now_ms
    return replace(retained, windows=windows, seen=seen,
                   frozen={start: acc for start, acc in retained.frozen.items() if start in kept})


def retain_late(
    retained: RetainedWindows, late: WindowAggregate, late_contents: WindowContents, aggregator: Aggregator, *,
    now_ms: int,
) -> RetainedWindows:
    """Late events of a fired window (after `bill_late`), seen at `now_ms` (series clock), into its retained
    contents. A window fired before the series retained (or frozen since) has none: it is retained from these on
    (what it held before is in its period's frozen part)."""
    held = retained.windows.get(late.window_start)
    window, contents = held if held is not None else (None, window_contents(aggregator, ()))
    members = Counter(dict(contents.members))
    members.update(dict(late_contents.members))
    total = contents.total
    if late_contents.total is not None:
        total = late_contents.total if total is None else SumAggregator().merge(total, late_contents.total)
    merged = WindowContents(contents.aggregation, contents.event_count + late_contents.event_count, total,
                            frozenset(members.items()))
    base = late if window is None else window
    empty = {"quantity": None, "last": None, "distinct_values": None}
    window = replace(base, event_count=merged.event_count, **{**empty, **window_payload(merged, aggregator)})
    return replace(retained, windows={**retained.windows, late.window_start: (window, merged)},
                   seen={**retained.seen, late.window_start: now_ms})


def correct_retained(
    series: SeriesPeriods,
    retained: RetainedWindows,
    changes: Sequence[Change],
    catalog_tenant: TenantCatalog,
    *,
    key: tuple[str, str, str, Group],
    window_start: datetime,
    window_end: datetime,
    corrections: int,
    watermark: datetime,
    emitted_at: datetime,
    now_ms: int,
) -> tuple[SeriesPeriods, RetainedWindows, Any]:
    """The corrections of one fired window of a retaining series (`correct_window` over its retained window, the
    period's other retained windows and its frozen part), seen at `now_ms` (series clock): the new period states,
    retained windows, and the line (None when the period quantity did not move). A window it does not retain had
    no usage of this series since it began to retain: an amend may move usage into it."""
    held = retained.windows.get(window_start)
    window, contents = held if held is not None else (None, None)
    period_start = _period_start(window_start, catalog_tenant)
    others = [w for start, (w, _) in retained.windows.items()
              if start != window_start and _period_start(start, catalog_tenant) == period_start]
    corrected = correct_window(
        series, window, contents, changes, catalog_tenant, key=key, window_start=window_start, window_end=window_end,
        fired=True, period_windows=others, frozen=retained.frozen.get(period_start), corrections=corrections,
        watermark=watermark, emitted_at=emitted_at)
    windows = {**retained.windows, window_start: (corrected.window, corrected.contents)}
    return (corrected.series, replace(retained, windows=windows, seen={**retained.seen, window_start: now_ms}),
            corrected.line)


__all__ = [
    "BILLED_CORRECTION_AGGREGATIONS",
    "DEFAULT_CORRECTION_HORIZON",
    "DEFAULT_DEDUP_TTL",
    "AppliedCorrection",
    "BilledEvent",
    "Change",
    "CorrectedWindow",
    "Contribution",
    "CorrectionLedger",
    "CorrectionRejection",
    "DeadLetteredEvent",
    "LedgerEntry",
    "PastHorizon",
    "RetainedWindows",
    "WindowContents",
    "apply_to_window",
    "begin_retaining",
    "billed_event",
    "check_correction_id",
    "check_horizon",
    "contribution",
    "correct_retained",
    "correct_window",
    "corrections_count",
    "correction_dead_letter_for",
    "correction_fingerprint",
    "decide",
    "expire_entry",
    "freeze_settled",
    "not_billed_detail",
    "observe_dead_letter",
    "observe_event",
    "recompute_window",
    "retained_for_ms",
    "tick",
    "retain_late",
    "retain_window",
    "validate_correction_record",
    "window_contents",
    "window_payload",
]
