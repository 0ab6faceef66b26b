"""The failure trial's comparisons report what they are meant to catch: fed deliberately different outputs (a missing
drawdown, a changed alert, a dead letter with other bytes, a wrong balance, a line item the Python specification
prices differently, a record with another outcome), each names the difference; fed equal outputs, none does."""

from __future__ import annotations

import base64
import copy
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from meterstream import chaos_checks
from meterstream.chaos import TrialInputs, flush_events, input_mismatches, place, trial_corrections
from meterstream.workload import RecordKind, WorkloadSpec, generate_workload
from schemas.credits import CreditGrant
from udfs.catalog import load_catalog


def drawdown(kind: str, amount: str, *, grant: str | None = "g1", customer_balance: str, grant_balance: str | None,
             uncovered: str = "0", at: str = "2026-11-24T10:01:00.000Z", line: str | None = "line-1",
             emitted: str = "2026-12-06T05:00:00.000Z", customer: str = "cust-00000") -> dict:
    return {"drawdown_id": f"{kind}-{line}-{grant}", "tenant_id": "acme-ai", "customer_id": customer, "kind": kind,
            "line_item_id": line, "grant_id": grant, "meter": "requests" if line else None,
            "period_start": "2026-11-01T04:00:00.000Z" if line else None, "currency": "USD", "amount": amount,
            "grant_balance_after": grant_balance, "customer_balance_after": customer_balance,
            "uncovered_amount": uncovered, "event_time": at, "emitted_at": emitted}


GRANTS = [CreditGrant(type="grant", grant_id="g1", tenant_id="acme-ai", customer_id="cust-00000", amount="100",
                      currency="USD", effective_at="2026-11-24T09:00:00Z", category="paid"),
          CreditGrant(type="grant", grant_id="g2", tenant_id="acme-ai", customer_id="cust-00000", amount="50",
                      currency="USD", effective_at="2026-11-24T09:00:00Z", expires_at="2026-11-24T10:05:00Z",
                      category="promotional")]


def ledger_output() -> list[dict]:
    """Grant g1 (100) and g2 (50, expires 10:05): usage of 70 from g2 then g1, usage of 90 (g1 pays 80, 10
    uncovered); g2 ran dry before its expiry (an expiry of 0 writes nothing); final balance 0."""
    return [
        drawdown("usage", "50", grant="g2", grant_balance="0", customer_balance="100"),
        drawdown("usage", "20", grant="g1", grant_balance="80", customer_balance="80"),
        drawdown("usage", "80", grant="g1", grant_balance="0", customer_balance="0", uncovered="10",
                 line="line-2", at="2026-11-24T10:02:00.000Z"),
    ]


def test_equal_credit_outputs_give_no_failure():
    # another customer's records in between (its own partition, read interleaved) change nothing
    other = [{**record, "customer_id": "cust-00009"} for record in ledger_output()]
    interleaved = [record for pair in zip(other, ledger_output(), strict=True) for record in pair]
    assert chaos_checks.compare_credits([*ledger_output(), *other], interleaved) == []
    assert chaos_checks.balance_mismatches(GRANTS, ledger_output()) == []


def test_a_missing_drawdown_is_reported_per_grant_and_per_customer():
    trial = ledger_output()[:-1]
    failures = chaos_checks.compare_credits(ledger_output(), trial)
    assert any("grant ('acme-ai', 'cust-00000', 'g1')" in f for f in failures), failures
    assert any("customer ('acme-ai', 'cust-00000', 'USD')" in f for f in failures), failures


def test_a_drawdown_moved_to_another_grant_is_reported_per_grant_only():
    trial = ledger_output()
    trial[0] = {**trial[0], "grant_id": "g3"}
    failures = chaos_checks.compare_credits(ledger_output(), trial)
    assert any("grants have drawdowns in the trial only" in f for f in failures), failures
    assert not any("customer (" in f for f in failures), failures


@pytest.mark.parametrize("column", ["expiry", "void"])
def test_an_expiry_or_void_of_another_amount_is_reported(column):
    base = [*ledger_output()[:2], drawdown(column, "30", grant="g1", line=None, grant_balance="0",
                                           customer_balance="0", at="2026-11-24T10:05:00.000Z")]
    trial = copy.deepcopy(base)
    trial[-1]["amount"] = "29"
    trial[-1]["grant_balance_after"] = trial[-1]["customer_balance_after"] = "1"
    assert len(chaos_checks.compare_credits(base, trial)) == 2  # the grant and the customer


def test_an_adjustment_counts_as_drawn_and_a_missing_one_is_reported():
    """A correction (the ledger's `revision:<n>` records) moves drawn and uncovered like usage does."""
    base = [*ledger_output(), drawdown("adjustment", "-10", grant="g1", grant_balance="10", customer_balance="10",
                                       uncovered="10", line="line-2", at="2026-11-24T10:03:00.000Z")]
    grants, customers = chaos_checks.credit_totals(base)
    assert grants[("acme-ai", "cust-00000", "g1")].drawn == 90
    assert customers[("acme-ai", "cust-00000", "USD")].uncovered == 20
    assert chaos_checks.balance_mismatches(GRANTS, base) == []
    assert len(chaos_checks.compare_credits(base, base[:-1])) == 2


def test_a_different_uncovered_amount_is_reported():
    trial = ledger_output()
    trial[-1] = {**trial[-1], "uncovered_amount": "11"}
    failures = chaos_checks.compare_credits(ledger_output(), trial)
    assert len(failures) == 2 and all("uncovered" in f for f in failures), failures


def test_a_customer_with_late_usage_is_left_out_of_the_baseline_comparison():
    """Late usage is split into lines by the run's watermarks, and the ledger applies each line at its window's end:
    what a voided or expiring grant drew may differ by rounding. Such customers are compared by their money per
    period and their own identities; every other customer as before."""
    late = frozenset({("acme-ai", "cust-00000")})
    base = ledger_output()
    moved = copy.deepcopy(base)
    moved[-1] = {**moved[-1], "uncovered_amount": "11"}
    assert chaos_checks.compare_credits(base, moved, late) == []
    assert len(chaos_checks.compare_credits(base, moved)) == 2


def test_a_different_final_balance_alone_is_reported():
    trial = ledger_output()
    trial[-1] = {**trial[-1], "customer_balance_after": "5"}
    failures = chaos_checks.compare_credits(ledger_output(), trial)
    assert failures and all("customer (" in f for f in failures), failures


def test_the_final_balance_is_the_last_written_not_the_last_in_event_time():
    """A correction of an earlier window (-30 of the first line, written last) makes the ledger recompute: its
    records carry that window's event time and the balance after them, 30; the record of the later window still
    says 0. The customer's records share a partition (the sink keys them), so the last one read is the last
    written."""
    records = [*ledger_output(),
               drawdown("adjustment", "-30", grant="g1", grant_balance="30", customer_balance="30", line="line-3")]
    assert records[-1]["event_time"] < records[-2]["event_time"]
    assert chaos_checks.credit_totals(records)[1][("acme-ai", "cust-00000", "USD")].final_balance == 30
    assert chaos_checks.balance_mismatches(GRANTS, records) == []


def test_a_wrong_reported_balance_is_reported():
    records = ledger_output()
    records[-1] = {**records[-1], "customer_balance_after": "10"}
    failures = chaos_checks.balance_mismatches(GRANTS, records)
    assert len(failures) == 1 and "= 0, the ledger's last customer_balance_after (the order written) is 10" in \
        failures[0], failures


def test_a_missing_drawdown_breaks_the_balance_identity():
    """An earlier drawdown lost: the later balances no longer add up (a lost last one leaves a consistent but
    shorter history, which the comparison with the baseline catches)."""
    failures = chaos_checks.balance_mismatches(GRANTS, ledger_output()[1:])
    assert len(failures) == 1 and "grants - drawn - expired - voided = 50" in failures[0], failures


def test_a_customer_granted_credit_without_any_drawdown_is_reported():
    other = CreditGrant(type="grant", grant_id="g9", tenant_id="acme-ai", customer_id="cust-00042", amount="5",
                        currency="USD", effective_at="2026-11-24T09:00:00Z", category="paid")
    failures = chaos_checks.balance_mismatches([*GRANTS, other], ledger_output())
    assert failures == ["credits: ('acme-ai', 'cust-00042', 'USD') was granted 5 but no drawdown reports its balance"]


def alert(**changes) -> dict:
    return {"alert_id": "a1", "tenant_id": "acme-ai", "customer_id": "cust-00000", "type": "balance_low",
            "threshold": "20", "threshold_percent": None, "value": "0", "currency": "USD",
            "period_start": "2026-11-01T04:00:00.000Z", "action": None, "event_time": "2026-11-24T10:02:00.000Z",
            "emitted_at": "2026-12-06T05:00:00.000Z", **changes}


def test_alerts_equal_but_for_emitted_at_give_no_failure():
    assert chaos_checks.compare_alerts([alert()], [alert(emitted_at="2026-12-06T06:00:00.000Z")]) == []


@pytest.mark.parametrize(("trial", "word"), [
    ([alert(value="1")], "different"),
    ([alert(event_time="2026-11-24T10:03:00.000Z")], "different"),
    ([], "missing"),
    ([alert(), alert(alert_id="a2", type="balance_exhausted", threshold="0")], "unexpected"),
])
def test_a_changed_missing_or_extra_alert_is_reported(trial, word):
    failures = chaos_checks.compare_alerts([alert()], trial)
    assert len(failures) == 1 and word in failures[0], failures


def dead_letter(raw: bytes, *, partition=0, offset=7, reason="malformed_json") -> dict:
    try:
        text, encoding = raw.decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode(), "base64"
    return {"raw": text, "raw_encoding": encoding, "raw_truncated": False, "raw_size_bytes": len(raw),
            "reason": reason, "detail": "whatever", "source_topic": "t", "source_partition": partition,
            "source_offset": offset, "received_at": "2026-12-06T05:00:00.000Z"}


def test_dead_letters_compare_by_partition_offset_reason_and_raw_bytes():
    base = [dead_letter(b'{"event_id":'), dead_letter(b'{"a":"\xff"}', offset=9, reason="not_utf8")]
    keys = chaos_checks.dead_letter_keys
    assert chaos_checks.compare_dead_letters(keys(base), keys([*base[::-1]]), against="the baseline") == []
    assert (1, 2, "not_utf8", b'{"a":"\xff"}') not in keys(base)
    for changed in (dead_letter(b'{"event_id":!'), dead_letter(b'{"event_id":', offset=8),
                    dead_letter(b'{"event_id":', partition=1), dead_letter(b'{"event_id":', reason="not_an_object"),
                    dead_letter(b'{"a":"\xfe"}', offset=9, reason="not_utf8")):
        trial = [changed if (changed["source_offset"], changed["reason"]) == (d["source_offset"], d["reason"])
                 else d for d in base] if changed["raw_encoding"] == "base64" else [changed, base[1]]
        failures = chaos_checks.compare_dead_letters(keys(base), keys(trial), against="the baseline")
        assert len(failures) == 2 and "1 missing" in failures[0] and "1 unexpected" in failures[1], (changed, failures)
    doubled = chaos_checks.compare_dead_letters(keys(base), keys([*base, base[0]]), against="the baseline")
    assert doubled and "1 unexpected" in doubled[0]


# ---- the workload's intent ------------------------------------------------------------------------------------

CATALOG = load_catalog(WorkloadSpec().catalog_path)
NOW = datetime(2026, 11, 24, 10, 20, tzinfo=UTC)
WORKLOAD = generate_workload(WorkloadSpec(seed=11, events=3_000, customers_per_tenant=20,
                                          start=NOW - timedelta(minutes=12), duration=timedelta(minutes=10)))
PLACEMENT = place(WORKLOAD)
INTENT = chaos_checks.intent_of(WORKLOAD, PLACEMENT, catalog=CATALOG, reference_time=WORKLOAD.reference_time,
                                window=timedelta(minutes=1), extra_windowed=2)


def faithful_outputs() -> dict:
    """What a correct run writes, built from the generator's records (not from the intent's own tables)."""
    kinds = Counter(WORKLOAD.kinds)
    accounting = {("windowed", ""): kinds[RecordKind.ON_TIME] + 2, ("billed_late", ""): kinds[RecordKind.LATE],
                  ("duplicate_same_payload", ""): kinds[RecordKind.DUPLICATE],
                  ("duplicate_conflicting_payload", ""): kinds[RecordKind.DUPLICATE_CONFLICT]}
    for reason, n in Counter(r.value for r in WORKLOAD.malformed_reasons.values()).items():
        accounting[("dead_lettered", reason)] = n
    dead = [dead_letter(WORKLOAD.records[i], partition=PLACEMENT[i][0], offset=PLACEMENT[i][1], reason=r.value)
            for i, r in WORKLOAD.malformed_reasons.items()]
    import json

    late = [json.loads(WORKLOAD.records[i]) for i, k in enumerate(WORKLOAD.kinds) if k == RecordKind.LATE]
    lines = [{**line, "emitted_at": "2026-12-06T05:00:00.000Z"} for line in INTENT.line_items.values()]
    return {"accounting": accounting, "dead_letters": dead, "late_events": late,
            "line_items": lines + late_series_lines()}


def late_series_lines() -> list[dict]:
    """The lines of the series with late usage as one correct run could bill them: the on-time windows in order,
    then each late event as a late adjustment of its window (the watermark it came after is the run's)."""
    import json

    from udfs.aggregations import UsageSample, aggregate_window, aggregator_for
    from udfs.grouping import group_of
    from udfs.line_items import SeriesPeriods, bill_late, bill_window
    from udfs.validation import validate_usage_record
    from udfs.windows import window_bounds

    on_time, late = defaultdict(lambda: defaultdict(list)), defaultdict(list)
    for i, kind in enumerate(WORKLOAD.kinds):
        if kind not in (RecordKind.ON_TIME, RecordKind.LATE):
            continue
        event = validate_usage_record(WORKLOAD.records[i], meters_by_tenant=CATALOG.meters_by_tenant(),
                                      now=WORKLOAD.reference_time)
        meter = CATALOG.meter(event.tenant_id, event.meter)
        series = (event.tenant_id, event.customer_id, event.meter, group_of(event.dimensions, meter.group_by))
        if series not in INTENT.late_series:
            continue
        sample = UsageSample(event.event_id, event.timestamp, event.value, dict(event.dimensions))
        start = window_bounds(event.timestamp, timedelta(minutes=1))[0]
        (on_time[series][start] if kind == RecordKind.ON_TIME else late[series]).append((start, sample))
    lines = []
    for series in INTENT.late_series:
        tenant_id, customer_id, meter_name, group = series
        meter = CATALOG.meter(tenant_id, meter_name)
        aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)

        def window(start, samples, series=series, aggregator=aggregator):
            return aggregate_window(aggregator, samples, tenant_id=series[0], customer_id=series[1],
                                    meter=series[2], group=series[3], window_start=start,
                                    window_end=start + timedelta(minutes=1))

        periods = SeriesPeriods()
        for start in sorted(on_time[series]):
            periods, line = bill_window(periods, window(start, [s for _, s in on_time[series][start]]),
                                        CATALOG.tenant(tenant_id), emitted_at=NOW, max_age=timedelta(days=35))
            lines.append(json.loads(line.model_dump_json()))
        for start, sample in late[series]:
            periods, line = bill_late(periods, window(start, [sample]), CATALOG.tenant(tenant_id), watermark=NOW,
                                      emitted_at=NOW)
            if line is not None:
                lines.append(json.loads(line.model_dump_json()))
    return lines


def test_the_intent_counts_every_kind_the_generator_made():
    assert INTENT.problems == []
    assert sum(INTENT.outcomes.values()) == len(WORKLOAD.records) + 2
    assert INTENT.outcomes["billed_late"] > 0 and INTENT.outcomes["duplicate_conflicting_payload"] > 0
    assert sum(INTENT.dead_letter_reasons.values()) == INTENT.outcomes["dead_lettered"] > 0
    assert sum(INTENT.late.values()) == INTENT.outcomes["billed_late"]
    assert INTENT.late_series
    assert len(INTENT.line_items) > 100


def test_the_intents_line_items_follow_the_generated_values():
    """One line item recomputed by hand from the raw records: a `sum` meter's quantity is the sum of the values of
    the on-time records of its window (the intent must not just echo any run)."""
    import json

    line = next(r for r in INTENT.line_items.values() if r["meter"] == "gpu_seconds")
    total, count = Decimal(0), 0
    for i, kind in enumerate(WORKLOAD.kinds):
        if kind != RecordKind.ON_TIME:
            continue
        event = json.loads(WORKLOAD.records[i])
        ts = event["timestamp"]
        if isinstance(ts, int):
            moment = datetime.fromtimestamp(ts / 1000, tz=UTC)
        else:
            moment = datetime.fromisoformat(ts).astimezone(UTC)
        stamp = moment.replace(second=0, microsecond=0).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if (event["tenant_id"], event["customer_id"], event["meter"], event.get("dimensions", {}), stamp) == (
                line["tenant_id"], line["customer_id"], "gpu_seconds", line["group"], line["window_start"]):
            total += Decimal(str(event["value"]))
            count += 1
    assert count == line["event_count"] > 0
    assert Decimal(line["quantity"]) == total


def check(**changes) -> list[str]:
    outputs = {**faithful_outputs(), **changes}
    return chaos_checks.compare_with_intent(INTENT, **outputs)


def test_a_faithful_run_matches_the_intent():
    assert check() == []


def test_a_record_with_another_outcome_is_reported():
    outputs = faithful_outputs()
    accounting = dict(outputs["accounting"])
    accounting[("billed_late", "")] -= 1
    accounting[("windowed", "")] += 1
    failures = check(accounting=accounting)
    assert any("records billed_late" in f for f in failures) and any("records windowed" in f for f in failures), \
        failures


def test_late_usage_left_unbilled_is_reported_as_money_missing():
    """Late usage must be billed: a run that drops a late adjustment line bills less for that customer's period."""
    lines = faithful_outputs()["line_items"]
    target = next(i for i, r in enumerate(lines) if r.get("kind") == "late_adjustment" and r["amount"] != "0")
    failures = check(line_items=lines[:target] + lines[target + 1:])
    assert any("money per customer and period" in f for f in failures), failures


def test_a_dead_letter_with_another_reason_or_bytes_is_reported():
    outputs = faithful_outputs()
    dead = outputs["dead_letters"]
    dead[0] = {**dead[0], "raw": dead[0]["raw"] + " "} if dead[0]["raw_encoding"] == "utf-8" else \
        {**dead[0], "raw": base64.b64encode(b"x").decode()}
    assert any("dead letters: 1 missing against the workload" in f for f in check(dead_letters=dead))
    accounting = dict(outputs["accounting"])
    reason = next(k for k in accounting if k[0] == "dead_lettered")
    accounting[reason] -= 1
    accounting[("dead_lettered", "too_large")] = 1
    failures = check(accounting=accounting)
    assert any("dead letters too_large" in f for f in failures), failures


def test_a_missing_late_event_is_reported():
    late = faithful_outputs()["late_events"][1:]
    assert any("late events missing" in f for f in check(late_events=late))


def test_a_line_item_priced_otherwise_is_reported_with_its_field_and_the_money_total():
    lines = faithful_outputs()["line_items"]
    target = next(i for i, r in enumerate(lines) if r["amount"] != "0")
    lines[target] = {**lines[target], "amount": str(float(lines[target]["amount"]) + 1)}
    failures = check(line_items=lines)
    assert any("differ from the Python specification" in f and "amount" in f for f in failures), failures
    assert any("money per customer and period" in f for f in failures), failures


def test_a_missing_line_item_is_reported_and_the_flush_customer_is_left_out():
    lines = faithful_outputs()["line_items"]
    flush = {**lines[0], "line_item_id": "flush-line", "customer_id": "chaos-flush"}
    assert check(line_items=[*lines, flush], skip_customers=frozenset({"chaos-flush"})) == []
    assert any("line items missing" in f for f in check(line_items=lines[1:]))
    assert any("line items unexpected" in f for f in check(line_items=[*lines, flush]))


def test_the_input_topic_must_hold_the_workload_where_it_was_placed():
    flush = flush_events(WORKLOAD.max_event_time)
    inputs = TrialInputs(WORKLOAD, PLACEMENT, 100, flush)
    ends = Counter(p for p, _ in PLACEMENT)
    read = [(p, o, WORKLOAD.records[i]) for i, (p, o) in enumerate(PLACEMENT)]
    read += [(p, ends[p], value) for p, value in flush]
    assert input_mismatches(inputs, read) == []
    assert input_mismatches(inputs, [*read, (0, ends[0] + 1, read[0][2])])  # a producer retry wrote a copy
    swapped = list(read)
    first, second = (next(i for i, r in enumerate(read) if r[0] == 0 and r[1] == n) for n in (0, 1))
    swapped[first], swapped[second] = (0, 0, read[second][2]), (0, 1, read[first][2])
    assert read[first][2] == read[second][2] or input_mismatches(inputs, swapped)


# ---- corrections ----------------------------------------------------------------------------------------------

# The same usage with the generator's corrections (its usage records are byte for byte WORKLOAD's); those of events
# in the first two thirds are produced, as a trial produces those of the events written before it starts.
CORRECTED = generate_workload(WorkloadSpec(seed=11, events=3_000, customers_per_tenant=20,
                                           start=NOW - timedelta(minutes=12), duration=timedelta(minutes=10),
                                           correction_rate=0.05))
HEAD = 2_000
CORRECTIONS = trial_corrections(CORRECTED.corrections, first_index=0, head=HEAD)
CORRECTED_INTENT = chaos_checks.intent_of(CORRECTED, PLACEMENT, catalog=CATALOG,
                                          reference_time=CORRECTED.reference_time, window=timedelta(minutes=1),
                                          extra_windowed=2, corrections=CORRECTIONS)


def test_the_trial_produces_corrections_of_events_before_its_start_and_resends_of_those_only():
    from meterstream.workload import CorrectionKind

    assert CORRECTED.records == WORKLOAD.records
    assert all(c.event_index < HEAD for c in CORRECTIONS if c.kind is not CorrectionKind.DUPLICATE)
    assert any(c.event_index >= HEAD for c in CORRECTED.corrections), "some are left out"
    assert {c.kind for c in CORRECTIONS} >= {CorrectionKind.CANCEL, CorrectionKind.AMEND_VALUE,
                                             CorrectionKind.UNKNOWN_EVENT, CorrectionKind.DUPLICATE}
    import json

    def correction_id(c) -> str:
        return json.loads(c.record)["correction_id"]

    first_copies = {correction_id(c) for c in CORRECTIONS if c.kind is not CorrectionKind.DUPLICATE}
    for correction in CORRECTED.corrections:
        if correction.kind is CorrectionKind.DUPLICATE:
            assert any(correction is c for c in CORRECTIONS) == (correction_id(correction) in first_copies)


def test_the_corrections_intent_is_what_the_generator_meant():
    intent = CORRECTED_INTENT
    assert intent.problems == []
    intended = Counter(c.intended for c in CORRECTIONS)
    assert intent.correction_outcomes == dict(intended) and intended["applied"] > 10
    assert sum(intent.correction_dead_letters.values()) == len(CORRECTIONS) - intended["applied"]
    assert intent.corrected_series and intent.corrected_amounts
    assert not any(chaos_checks.series_key(r) in intent.corrected_series for r in intent.line_items.values())
    assert {k[:4] for k in intent.corrected_amounts} <= intent.corrected_series
    # the uncorrected series are billed as without corrections
    assert {k: v for k, v in INTENT.line_items.items() if k in intent.line_items} == intent.line_items


def corrected_outputs() -> dict:
    """What a correct run with the corrections writes: the uncorrected series' lines as without them, the corrected
    series' money as one line per period (how a run splits it is its timing's), the corrections' outcomes."""
    outputs = faithful_outputs()
    intent = CORRECTED_INTENT
    lines = [r for r in outputs["line_items"] if chaos_checks.series_key(r) not in intent.corrected_series]
    for i, ((tenant, customer, meter, group, period_start), amount) in enumerate(intent.corrected_amounts.items()):
        lines.append({"line_item_id": f"corrected-{i}", "kind": "correction", "tenant_id": tenant,
                      "customer_id": customer, "meter": meter, "group": dict(group), "currency":
                      CATALOG.tenant(tenant).currency, "period_start": period_start.isoformat(
                          timespec="milliseconds").replace("+00:00", "Z"), "amount": str(amount)})
    accounting = dict(outputs["accounting"])
    for outcome, n in intent.correction_outcomes.items():
        accounting[("correction_applied", "") if outcome == "applied" else ("correction_rejected", outcome)] = n
    letters = [{"correction_id": cid, "reason": reason} for (cid, reason), n in intent.correction_dead_letters.items()
               for _ in range(n)]
    return {**outputs, "line_items": lines, "accounting": accounting, "correction_dead_letters": letters}


def check_corrected(**changes) -> list[str]:
    return chaos_checks.compare_with_intent(CORRECTED_INTENT, **{**corrected_outputs(), **changes})


def test_a_faithful_run_with_corrections_matches_the_intent():
    assert check_corrected() == []


def test_a_correction_with_another_outcome_or_dead_letter_is_reported():
    outputs = corrected_outputs()
    accounting = dict(outputs["accounting"])
    accounting[("correction_applied", "")] -= 1
    accounting[("correction_rejected", "unknown_event")] = accounting.get(("correction_rejected", "unknown_event"),
                                                                           0) + 1
    failures = check_corrected(accounting=accounting)
    assert any(f.startswith("corrections: outcomes") for f in failures), failures
    letters = outputs["correction_dead_letters"]
    failures = check_corrected(correction_dead_letters=[*letters[1:], {**letters[0], "reason": "outside_horizon"}])
    assert any("correction dead letters: 1 missing" in f for f in failures), failures
    assert any("correction dead letters: 1 unexpected" in f for f in failures), failures


def test_a_corrected_series_billed_as_before_its_correction_is_reported():
    """A run that ignored a cancel bills the event's series as without corrections: its money differs."""
    lines = corrected_outputs()["line_items"]
    target = next(i for i, r in enumerate(lines) if r["line_item_id"].startswith("corrected-") and r["amount"] != "0")
    lines[target] = {**lines[target], "amount": str(Decimal(lines[target]["amount"]) + 1)}
    failures = check_corrected(line_items=lines)
    assert any("money of 1 corrected series and periods differs" in f for f in failures), failures
    assert any("money per customer and period" in f for f in failures), failures


def test_trial_and_baseline_corrections_compare_by_outcome_dead_letter_and_money():
    outputs = corrected_outputs()
    side = (chaos_checks.correction_outcomes(outputs["accounting"]),
            chaos_checks.correction_letter_keys(outputs["correction_dead_letters"]),
            chaos_checks.corrected_amounts(outputs["line_items"], CORRECTED_INTENT.corrected_series))
    assert chaos_checks.compare_corrections(side, side, against="the baseline") == []
    fewer = (side[0], side[1] - Counter([next(iter(side[1]))]), dict(list(side[2].items())[1:]))
    failures = chaos_checks.compare_corrections(side, fewer, against="the baseline")
    assert len(failures) == 2 and "1 missing" in failures[0] and "money of 1 corrected" in failures[1], failures


def test_alerts_of_customers_with_a_correction_are_left_out_of_the_comparison():
    base = alert()
    other = {**base, "value": str(Decimal(base["value"]) + Decimal("0.01"))}
    assert chaos_checks.compare_alerts([base], [other])
    assert chaos_checks.compare_alerts([base], [other], frozenset({(base["tenant_id"], base["customer_id"])})) == []
