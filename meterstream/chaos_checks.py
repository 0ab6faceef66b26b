"""The comparisons of a failure trial (`meterstream.chaos`), as pure functions over what the runs wrote.

Two kinds of expectation:
- **the baseline** (the same job, bounded, without failures): line items, drawdowns per grant and per customer,
  alerts and dead letters must be the same in the disrupted run;
- **the generator's intent** (`Intent`, from `meterstream.workload`: what each record was made to be), computed
  without the job: the outcome of every input record (dead-lettered with its reason, duplicate, windowed, late),
  each dead letter by (source partition, offset, reason, raw bytes), each late event, and the line items the pure
  Python specification in `udfs/` (validation, windows, aggregations, pricing, period-to-date) gives for the
  records meant to be valid and on time; each correction's outcome and dead letter as the spec's ledger decides
  it with every event seen first, and the corrected series' money per period (`meterstream.corrected_bill`).
Series with late usage or an applied correction are compared by money per period, not line by line: which
watermark a late event or a correction came after (and so their lines' ids and split) is the run's timing.
And one identity within a run: per customer and currency, grants - drawn - expired - voided must equal the
`customer_balance_after` the ledger reported last (the last written).

Each function returns a list of failures (sentences); empty means the check holds. Records are the parsed JSON
dicts of the output topics; drawdowns in the order they sit in their partitions: the sink keys them by customer,
so each customer's are in the order the ledger wrote them.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.wire import datetime_to_wire

ZERO = Decimal(0)
SAMPLES = 3  # how many example keys a failure names


def _d(text: str | None) -> Decimal:
    return Decimal(text) if text is not None else ZERO


def _examples(keys: Iterable) -> str:
    return ", ".join(repr(k) for k in sorted(keys, key=repr)[:SAMPLES])


# ---- credits: per grant and per customer --------------------------------------------------------------------


@dataclass
class CreditTotals:
    """What the drawdowns of one grant (or one customer and currency) add up to, and the balance reported last."""

    drawn: Decimal = ZERO  # usage, catch_up and adjustment
    expired: Decimal = ZERO
    voided: Decimal = ZERO
    uncovered: Decimal = ZERO
    final_balance: Decimal | None = None  # from the last record the ledger wrote

    def as_tuple(self) -> tuple:
        return (self.drawn, self.expired, self.voided, self.uncovered, self.final_balance)




def _column(kind: str) -> str:
    """Which total a drawdown kind moves; the drawn kinds are the ledger's own (`DRAWN_KINDS`)."""
    from udfs.credits.ledger import DRAWN_KINDS

    return "drawn" if kind in DRAWN_KINDS else {"expiry": "expired", "void": "voided"}[kind]


def credit_totals(drawdowns: Sequence[dict]) -> tuple[dict[tuple, CreditTotals], dict[tuple, CreditTotals]]:
    """(per grant: (tenant, customer, grant_id), per customer: (tenant, customer, currency)) -> totals. A grant's
    uncovered amount is what its records carried (catch-up records pay uncovered usage back). `drawdowns` as read
    from their topic: the sink keys them by customer (`jobs.billing.KEYED_BY_CUSTOMER`), so each customer's are in
    the order the ledger wrote them and the last one read reports the balance now. (Not the last in event time: a
    late line or a correction of an earlier window makes the ledger recompute and write records at that window's
    event time with the balance after them, while the records of later windows keep the balance they reported.)"""
    grants: dict[tuple, CreditTotals] = defaultdict(CreditTotals)
    customers: dict[tuple, CreditTotals] = defaultdict(CreditTotals)
    for r in drawdowns:
        c = customers[(r["tenant_id"], r["customer_id"], r["currency"])]
        column = _column(r["kind"])
        setattr(c, column, getattr(c, column) + _d(r["amount"]))
        c.uncovered += _d(r["uncovered_amount"])
        c.final_balance = _d(r["customer_balance_after"])
        if r["grant_id"] is not None:
            g = grants[(r["tenant_id"], r["customer_id"], r["grant_id"])]
            setattr(g, column, getattr(g, column) + _d(r["amount"]))
            g.uncovered += _d(r["uncovered_amount"])
            g.final_balance = _d(r["grant_balance_after"])
    return dict(grants), dict(customers)


def compare_credits(baseline: Sequence[dict], trial: Sequence[dict],
                    late_customers: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Per grant and per customer and currency: drawn, expired, voided, uncovered and the final balance equal.

    `late_customers` ((tenant, customer) with late usage or a correction) are left out: how their late usage and
    corrections are split into lines follows the run's watermarks (a correction that meets an open window lowers its
    usage line, one after it makes a line of its own; the money per period does not change), and the ledger applies
    each line at its window's end, so what an expiring or voided grant drew before its end can differ by the rounding
    of that split (seed 432934: a cent). Each run's own identities (`balance_mismatches`, the job's credit identity
    check) and the corrected money per period still cover them."""
    baseline = [r for r in baseline if (r["tenant_id"], r["customer_id"]) not in late_customers]
    trial = [r for r in trial if (r["tenant_id"], r["customer_id"]) not in late_customers]
    failures = []
    for what, expected, got in zip(("grant", "customer"), credit_totals(baseline), credit_totals(trial), strict=True):
        missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
        differ = {k for k in expected.keys() & got.keys() if expected[k].as_tuple() != got[k].as_tuple()}
        if missing:
            failures.append(f"credits: {len(missing)} {what}s have drawdowns in the baseline only, e.g. "
                            f"{_examples(missing)}")
        if extra:
            failures.append(f"credits: {len(extra)} {what}s have drawdowns in the trial only, e.g. {_examples(extra)}")
        for key in sorted(differ, key=repr)[:SAMPLES]:
            failures.append(f"credits: {what} {key!r}: (drawn, expired, voided, uncovered, final balance) "
                            f"{_fmt(got[key])} in the trial, {_fmt(expected[key])} in the baseline")
        if len(differ) > SAMPLES:
            failures.append(f"credits: {len(differ)} {what}s differ from the baseline in all")
    return failures


def _fmt(t: CreditTotals) -> str:
    return "(" + ", ".join(str(v) for v in t.as_tuple()) + ")"


def balance_mismatches(grants: Iterable, drawdowns: Sequence[dict]) -> list[str]:
    """Per (tenant, customer, currency): grants - drawn - expired - voided equal to the `customer_balance_after`
    of the customer's last drawdown written (`credit_totals`). `grants`: the valid `CreditGrant`s of the input (a
    repeated grant_id counts once, as in the ledger); a customer holding credit must have a drawdown that reports
    it."""
    from schemas.credits import CreditGrant

    granted: dict[tuple, Decimal] = defaultdict(Decimal)
    seen = set()
    for grant in grants:
        if isinstance(grant, CreditGrant) and (grant.tenant_id, grant.customer_id, grant.grant_id) not in seen:
            seen.add((grant.tenant_id, grant.customer_id, grant.grant_id))
            granted[(grant.tenant_id, grant.customer_id, grant.currency)] += grant.amount
    _, customers = credit_totals(drawdowns)
    failures = []
    for key in sorted(granted.keys() | customers.keys()):
        totals = customers.get(key)
        if totals is None:
            failures.append(f"credits: {key!r} was granted {granted[key]} but no drawdown reports its balance")
            continue
        computed = granted.get(key, ZERO) - totals.drawn - totals.expired - totals.voided
        if computed != totals.final_balance:
            failures.append(f"credits: {key!r}: grants - drawn - expired - voided = {computed}, the ledger's last "
                            f"customer_balance_after (the order written) is {totals.final_balance}")
    return failures


# ---- alerts and dead letters --------------------------------------------------------------------------------


def compare_alerts(baseline: Sequence[dict], trial: Sequence[dict],
                   skip_customers: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """The same alerts by alert_id, each with the same content (every field but `emitted_at`). `skip_customers`
    ((tenant, customer) with a correction applied) are left out: an alert is a signal at arrival, with the spend or
    balance then, and a correction that met an open window in one run lowered a usage line that the other run billed
    whole before its correction line (seed 178641: a spend cap's crossing 23079.54 in the baseline, 23079.55 in the
    trial)."""
    def content(records: Sequence[dict]) -> dict[str, dict]:
        return {r["alert_id"]: {k: v for k, v in r.items() if k != "emitted_at"} for r in records
                if (r["tenant_id"], r["customer_id"]) not in skip_customers}

    expected, got = content(baseline), content(trial)
    failures = []
    for what, ids in (("missing", expected.keys() - got.keys()), ("unexpected", got.keys() - expected.keys()),
                      ("different", {k for k in expected.keys() & got.keys() if expected[k] != got[k]})):
        if ids:
            failures.append(f"alerts: {len(ids)} {what} against the baseline, e.g. {_examples(ids)}")
    return failures


def compare_invoices(baseline: Sequence[dict], trial: Sequence[dict], *, baseline_lines: Sequence[dict],
                     trial_lines: Sequence[dict], baseline_drawdowns: Sequence[dict]) -> list[str]:
    """The baseline's invoices (final ones for the periods that closed, open previews at its end of input) are
    exact against its lines (correction lines included: each names one written invoice and counts on it) and
    drawdowns; the trial, which never ends its input, wrote the same final invoices (every field but `emitted_at`),
    each exact against the trial's lines that name it, and nothing else; every trial line (a correction line too)
    names an invoice the baseline wrote."""
    from meterstream.invoice_checks import invoice_problems

    failures = [f"baseline invoices: {p}" for p in invoice_problems(
        list(baseline), list(baseline_lines), list(baseline_drawdowns))[1][:5]]

    def finals(records: Sequence[dict]) -> dict[str, dict]:
        return {r["invoice_id"]: {k: v for k, v in r.items() if k != "emitted_at"} for r in records
                if r["status"] == "final"}

    expected, got = finals(baseline), finals(trial)
    if not expected:
        failures.append("invoices: no billing period closed in the baseline (no final invoice)")
    for what, ids in (("missing", expected.keys() - got.keys()), ("unexpected", got.keys() - expected.keys()),
                      ("different", {k for k in expected.keys() & got.keys() if expected[k] != got[k]})):
        if ids:
            failures.append(f"final invoices: {len(ids)} {what} against the baseline, e.g. {_examples(ids)}")
    if len(got) != len(trial):
        failures.append(f"the trial wrote {len(trial) - len(got)} open previews (its input never ended)")
    written = {r["invoice_id"] for r in baseline}
    unknown = {line["line_item_id"] for line in trial_lines if line["invoice_id"] not in written}
    if unknown:
        failures.append(f"{len(unknown)} trial lines name an invoice the baseline did not write, e.g. "
                        f"{_examples(unknown)}")
    named = [line for line in trial_lines if line["invoice_id"] in got]
    failures += [f"trial invoices: {p}" for p in invoice_problems(
        [r for r in trial if r["status"] == "final"], named)[1][:5]]
    return failures


def raw_bytes(dead_letter: dict) -> bytes:
    raw = dead_letter["raw"]
    return base64.b64decode(raw) if dead_letter["raw_encoding"] == "base64" else raw.encode()


def dead_letter_keys(dead_letters: Iterable[dict]) -> Counter:
    """(source partition, source offset, reason, raw bytes) of each dead letter, counted."""
    return Counter((r["source_partition"], r["source_offset"], r["reason"], raw_bytes(r)) for r in dead_letters)


def compare_dead_letters(expected: Counter, got: Counter, *, against: str) -> list[str]:
    missing, extra = expected - got, got - expected
    failures = []
    for what, keys in (("missing", missing), ("unexpected", extra)):
        if keys:
            sample = [(p, o, reason) for p, o, reason, _ in sorted(keys)[:SAMPLES]]
            failures.append(f"dead letters: {sum(keys.values())} {what} against {against} (by partition, offset, "
                            f"reason, raw bytes), e.g. {sample}")
    return failures


# ---- the generator's intent ---------------------------------------------------------------------------------


@dataclass
class Intent:
    """What a run must write for the workload, derived from what each record was made to be."""

    outcomes: dict[str, int]  # windowed, billed_late, duplicate_same_payload, duplicate_conflicting_payload, ...
    dead_letter_reasons: dict[str, int]
    dead_letters: Counter  # (partition, offset, reason, raw bytes)
    late: Counter  # (tenant_id, event_id)
    # line_item_id -> the line item (JSON fields, no emitted_at) by the Python spec, for the series without late
    # usage: which watermark a late event came after depends on the run's timing, and so do the ids and the order of
    # its series' lines (their money per period does not: `totals`)
    line_items: dict[str, dict]
    late_series: frozenset[tuple] = frozenset()  # (tenant, customer, meter, sorted group items) with late usage
    # money per (tenant, customer, period, currency), late usage included: the rounded price of each series' period
    # quantity does not depend on the order its usage was billed in
    period_totals: dict[tuple, Decimal] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # intended-valid records the Python validation rejects
    # Corrections, decided by the spec's ledger with every usage event seen first (`meterstream.corrected_bill`):
    correction_outcomes: dict[str, int] = field(default_factory=dict)  # "applied" or the rejection reason -> count
    correction_dead_letters: Counter = field(default_factory=Counter)  # (correction_id, reason)
    # (tenant, customer, meter, group) an applied correction removed usage from or added usage to: when a correction
    # met its window (open: the usage line changes; fired: a correction line) depends on the run's timing, so these
    # are compared by money per period (`corrected_amounts`), not line by line
    corrected_series: frozenset[tuple] = frozenset()
    # the corrected series' money per (tenant, customer, meter, group, period start), the 0s left out: the price of
    # the period quantity of the events as corrected
    corrected_amounts: dict[tuple, Decimal] = field(default_factory=dict)
    corrected_aggregations: frozenset[str] = frozenset()  # of the meters whose events a correction changed

    def totals(self) -> dict[tuple, Decimal]:
        return self.period_totals

    @property
    def timing_series(self) -> frozenset[tuple]:
        """The series compared by money per period only (late usage or a correction)."""
        return self.late_series | self.corrected_series


def line_totals(lines: Iterable[dict]) -> dict[tuple, Decimal]:
    """Money per (tenant, customer, period, currency)."""
    out: dict[tuple, Decimal] = defaultdict(Decimal)
    for r in lines:
        out[(r["tenant_id"], r["customer_id"], r["period_start"], r["currency"])] += Decimal(r["amount"])
    return dict(out)


def intent_of(workload, placement: Sequence[tuple[int, int]], *, catalog, reference_time: datetime,
              window: timedelta, extra_windowed: int = 0, corrections: Sequence = ()) -> Intent:
    """The expectation for `workload` (a `meterstream.workload.Workload`) whose record `i` sits at
    `placement[i] = (partition, offset)` of the input topic. `extra_windowed`: valid records the harness adds (the
    flush events, billed in windows the comparison leaves out). `corrections`: the `meterstream.workload.
    CorrectionRecord`s produced, each of an event the job has seen (or rejectable anyway): decided as the spec's
    ledger decides them after all usage, which must be what the generator meant (`intended`)."""
    from meterstream.workload import RecordKind
    from schemas.usage_event import UsageEvent
    from udfs.aggregations import UsageSample, aggregate_window, aggregator_for
    from udfs.grouping import group_of
    from udfs.line_items import accumulate_window
    from udfs.validation import validate_usage_record
    from udfs.windows import window_bounds

    kinds = Counter(workload.kinds)
    outcomes = {
        "windowed": kinds[RecordKind.ON_TIME] + extra_windowed,
        "billed_late": kinds[RecordKind.LATE],
        "duplicate_same_payload": kinds[RecordKind.DUPLICATE],
        "duplicate_conflicting_payload": kinds[RecordKind.DUPLICATE_CONFLICT],
        "dead_lettered": kinds[RecordKind.MALFORMED],
    }
    reasons = Counter(reason.value for reason in workload.malformed_reasons.values())
    dead = Counter((*placement[i], reason.value, workload.records[i]) for i, reason in
                   workload.malformed_reasons.items())
    meters = catalog.meters_by_tenant()
    late: Counter = Counter()
    late_series: set[tuple] = set()
    samples: dict[tuple, list[UsageSample]] = defaultdict(list)
    first: dict[tuple[str, str], UsageEvent] = {}  # the valid first copies, for the corrections
    problems = []
    for i, kind in enumerate(workload.kinds):
        if kind not in (RecordKind.ON_TIME, RecordKind.LATE):
            continue
        event = validate_usage_record(workload.records[i], meters_by_tenant=meters, now=reference_time)
        if not isinstance(event, UsageEvent):
            problems.append(f"intent: record {i} was made valid, the Python validation says {event.reason}")
            continue
        first[(event.tenant_id, event.event_id)] = event
        meter = catalog.meter(event.tenant_id, event.meter)
        dims = dict(event.dimensions or {})
        start, end = window_bounds(event.timestamp, window)
        key = (event.tenant_id, event.customer_id, event.meter, group_of(dims, tuple(meter.group_by)), start, end)
        samples[key].append(UsageSample(event.event_id, event.timestamp, event.value, dims))
        if kind == RecordKind.LATE:
            late[(event.tenant_id, event.event_id)] += 1
            late_series.add(key[:4])
    corrected = _corrections_intent(first, corrections, catalog, window, problems)
    states: dict[tuple, object] = {}
    lines: dict[str, dict] = {}
    every_line: list[dict] = []  # late usage folded into its window, for the money per period
    for key in sorted(samples):
        tenant_id, customer_id, meter_name, group, start, end = key
        meter = catalog.meter(tenant_id, meter_name)
        aggregate = aggregate_window(aggregator_for(meter.aggregation, meter.unique_dimension), samples[key],
                                     tenant_id=tenant_id, customer_id=customer_id, meter=meter_name, group=group,
                                     window_start=start, window_end=end)
        series = key[:4]
        states[series], line = accumulate_window(states.get(series), aggregate, catalog.tenant(tenant_id),
                                                 emitted_at=reference_time)
        record = json.loads(line.model_dump_json())
        record.pop("emitted_at", None)
        if series in corrected["corrected_series"]:
            continue  # priced as corrected below
        every_line.append(record)
        if series not in late_series:
            lines[record["line_item_id"]] = record
    totals = line_totals(every_line)
    for (tenant_id, customer_id, _, _, period_start), amount in corrected["corrected_amounts"].items():
        key = (tenant_id, customer_id, datetime_to_wire(period_start), catalog.tenant(tenant_id).currency)
        totals[key] = totals.get(key, ZERO) + amount
    return Intent(outcomes, dict(reasons), dead, late, lines, frozenset(late_series), totals, problems, **corrected)


def _corrections_intent(events: Mapping[tuple[str, str], object], corrections: Sequence, catalog, window: timedelta,
                        problems: list[str]) -> dict:
    """The `Intent` fields of the corrections (`correction_outcomes`, ..., `corrected_aggregations`)."""
    from meterstream.corrected_bill import correct_events, expected_period_amounts
    from schemas.usage_correction import UsageCorrection
    from udfs.corrections import AppliedCorrection, validate_correction_record

    valid = []
    for record in corrections:
        correction = validate_correction_record(record.record, tenants=catalog.tenants)
        if isinstance(correction, UsageCorrection):
            valid.append((record, correction))
        else:
            problems.append(f"intent: correction {record.record[:60]!r} was made valid, the Python validation says "
                            f"{correction.reason}")
    decided = correct_events(events, [c for _, c in valid], catalog, window)
    letters: Counter = Counter()
    aggregations = set()
    for (record, correction), (_, outcome) in zip(valid, decided.decisions, strict=True):
        got = "applied" if isinstance(outcome, AppliedCorrection) else outcome.reason.value
        if got != record.intended:
            problems.append(f"intent: correction {correction.correction_id} was made to be {record.intended}, the "
                            f"spec's ledger says {got}")
        if isinstance(outcome, AppliedCorrection):
            if outcome.changed:
                aggregations.add(catalog.meter(correction.tenant_id, events[(correction.tenant_id,
                                                                             correction.event_id)].meter).aggregation)
        else:
            letters[(correction.correction_id, got)] += 1
    series = decided.touched_series
    amounts = {key: amount for key, amount in expected_period_amounts(decided.events.values(), catalog).items()
               if key[:4] in series and amount != 0}
    return {"correction_outcomes": dict(decided.outcomes), "correction_dead_letters": letters,
            "corrected_series": series, "corrected_amounts": amounts, "corrected_aggregations": frozenset(aggregations)}


def series_key(line: dict) -> tuple:
    """(tenant, customer, meter, group as sorted items): `udfs.grouping.group_of`'s form."""
    return (line["tenant_id"], line["customer_id"], line["meter"], tuple(sorted(line["group"].items())))


def outcome_totals(counts: Mapping[tuple[str, str], int]) -> tuple[dict[str, int], dict[str, int]]:
    """An accounting read (`jobs.billing.read_accounting`): (per usage outcome, per dead-letter reason); the
    corrections' outcomes are `correction_outcomes`'."""
    from udfs.accounting import CorrectionOutcome

    outcomes: dict[str, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    for (outcome, detail), n in counts.items():
        if outcome in set(CorrectionOutcome):
            continue
        outcomes[outcome] += n
        if outcome == "dead_lettered":
            reasons[detail] += n
    return dict(outcomes), dict(reasons)


def compare_with_intent(intent: Intent, *, accounting: Mapping[tuple[str, str], int], dead_letters: Iterable[dict],
                        late_events: Iterable[dict], line_items: Iterable[dict], skip_customers: frozenset[str] =
                        frozenset(), correction_dead_letters: Iterable[dict] = ()) -> list[str]:
    """A run's outputs against the generator's intent; `skip_customers`' line items are left out (the flush)."""
    failures = list(intent.problems[:SAMPLES])
    outcomes, reasons = outcome_totals(accounting)
    for name in sorted(intent.outcomes.keys() | outcomes.keys()):
        if outcomes.get(name, 0) != intent.outcomes.get(name, 0):
            failures.append(f"intent: {outcomes.get(name, 0)} records {name}, the workload made "
                            f"{intent.outcomes.get(name, 0)}")
    for reason in sorted(intent.dead_letter_reasons.keys() | reasons.keys()):
        if reasons.get(reason, 0) != intent.dead_letter_reasons.get(reason, 0):
            failures.append(f"intent: {reasons.get(reason, 0)} dead letters {reason}, the workload made "
                            f"{intent.dead_letter_reasons.get(reason, 0)}")
    failures += compare_dead_letters(intent.dead_letters, dead_letter_keys(dead_letters), against="the workload")
    late = Counter((r["tenant_id"], r["event_id"]) for r in late_events)
    for what, keys in (("missing", intent.late - late), ("unexpected", late - intent.late)):
        if keys:
            failures.append(f"intent: {sum(keys.values())} late events {what} against the workload, e.g. "
                            f"{_examples(keys)}")
    got = {}
    every_line = []
    for r in line_items:
        if r["customer_id"] not in skip_customers:
            every_line.append(r)
            if series_key(r) not in intent.timing_series:
                got[r["line_item_id"]] = {k: v for k, v in r.items() if k != "emitted_at"}
    expected = intent.line_items
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    differ = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
    for what, ids in (("missing", missing), ("unexpected", extra)):
        if ids:
            failures.append(f"intent: {len(ids)} line items {what} against the Python specification, e.g. "
                            f"{_examples(ids)}")
    if differ:
        k = differ[0]
        fields = sorted(f for f in expected[k].keys() | got[k].keys() if expected[k].get(f) != got[k].get(f))
        failures.append(f"intent: {len(differ)} line items differ from the Python specification, e.g. {k} in "
                        + ", ".join(f"{f} ({got[k].get(f)!r}, expected {expected[k].get(f)!r})" for f in fields))
    got_totals, expected_totals = line_totals(every_line), intent.totals()
    wrong = {k for k in expected_totals.keys() | got_totals.keys()
             if got_totals.get(k, ZERO) != expected_totals.get(k, ZERO)}
    if wrong:
        failures.append(f"intent: money per customer and period differs from the Python pricing for {len(wrong)} "
                        f"customers, e.g. {_examples(wrong)}")
    failures += compare_corrections(
        (intent.correction_outcomes, intent.correction_dead_letters, intent.corrected_amounts),
        (correction_outcomes(accounting), correction_letter_keys(correction_dead_letters),
         corrected_amounts(every_line, intent.corrected_series)), against="the workload (spec ledger and pricing)")
    return failures


# ---- corrections --------------------------------------------------------------------------------------------


def correction_outcomes(accounting: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """An accounting read's corrections: "applied" and each rejection reason -> corrections (0s left out)."""
    from udfs.accounting import CorrectionAccounting

    counts = CorrectionAccounting.of(accounting)
    return {k: n for k, n in {"applied": counts.applied, **counts.rejected_by_reason}.items() if n}


def correction_letter_keys(correction_dead_letters: Iterable[dict]) -> Counter:
    """(correction_id, reason) of each correction dead letter, counted."""
    return Counter((r["correction_id"], r["reason"]) for r in correction_dead_letters)


def corrected_amounts(lines: Iterable[dict], series: frozenset[tuple]) -> dict[tuple, Decimal]:
    """The money of `series` per (tenant, customer, meter, group, period start) over all their lines, 0s left out."""
    from meterstream.corrected_bill import billed_period_amounts, nonzero

    return nonzero({k: v for k, v in billed_period_amounts(lines).items() if k[:4] in series})


def compare_corrections(expected: tuple[Mapping, Counter, Mapping], got: tuple[Mapping, Counter, Mapping], *,
                        against: str) -> list[str]:
    """(outcomes, dead-letter keys, corrected series' money per period): `correction_outcomes`,
    `correction_letter_keys`, `corrected_amounts` of one side each."""
    (outcomes, letters, amounts), (got_outcomes, got_letters, got_amounts) = expected, got
    failures = []
    if dict(outcomes) != dict(got_outcomes):
        failures.append(f"corrections: outcomes {dict(sorted(got_outcomes.items()))}, {against} has "
                        f"{dict(sorted(outcomes.items()))}")
    for what, keys in (("missing", letters - got_letters), ("unexpected", got_letters - letters)):
        if keys:
            failures.append(f"correction dead letters: {sum(keys.values())} {what} against {against} (by correction "
                            f"id, reason), e.g. {_examples(keys)}")
    wrong = {k for k in amounts.keys() | got_amounts.keys() if amounts.get(k, ZERO) != got_amounts.get(k, ZERO)}
    if wrong:
        key = sorted(wrong, key=repr)[0]
        failures.append(f"corrections: the money of {len(wrong)} corrected series and periods differs from {against},"
                        f" e.g. {key!r}: {got_amounts.get(key, ZERO)}, expected {amounts.get(key, ZERO)}")
    return failures
