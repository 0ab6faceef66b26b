"""The `usage-corrections` input of the billing job on a MiniCluster (issue 17): every correction is validated by the
spec (`udfs.corrections.validate_correction_record`), deduplicated by correction id (`check_correction_id`) and
decided against the correction ledger of the events the job billed (`decide`, in Java beside the dedup memory);
rejects are written to the correction dead letters with their reason, and every record is counted on the accounting
output (applied + rejected by reason), beside unchanged usage accounting; at parallelism 1 and 2. The corrections
are let in once the usage is billed (a correction that comes before its event is `unknown_event`, by design): they
are read from a directory the source watches, and the test writes their file there once it has collected the usage's
line item; the job, unbounded then, is cancelled once every correction's outcome is out and their lines are billed.
The expected outcomes are the spec's (`udfs.corrections.CorrectionLedger`), computed here over the same records.

The applied corrections change the bill (sum meter; `udfs.corrections.correct_window`): they come after the watermark
the usage's clock had reached (a later event of the customer, `TICKS[0]`, fired the window), and are decided when the
watermark passes it (the next one, `TICKS[1]`, written once every correction's outcome is out): the fired window of
series nova-large gets one correction line (the cancel, the amend of the value and the amend that moves e3 to
nova-small), the series nova-small, which had not fired that window, gets it opened and billed as its usage line.
A cancel of a max meter's only event empties its fired window (a correction line back to 0, from the contents the
window retains), and so does one of a unique_count meter's only event (the Python accumulator retains its fired
windows' values with how many events carry each, `udfs.corrections.correct_retained`); one of a dead-lettered event
(too old) is `event_dead_lettered`, with the event's reason.

With credits: a cancel's negative correction line gives credit back, which pays the usage the grant had left
uncovered at once, and the period's invoice, closed by a later event, holds the correction line and the credit its
lines drew, net (`test_a_cancel_gives_credit_back_...`)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from jobs.billing import BillingSettings, build_pipeline, invoices_of, table_environment
from jobs.corrections import RAW_CORRECTION_TYPE
from jobs.credits import build_credits
from jobs.runtime import stream_environment
from schemas.correction_dead_letter import CorrectionDeadLetter
from schemas.credits import CreditDrawdown, CreditGrantRecord
from schemas.dead_letter import DeadLetterReason
from schemas.invoice import Invoice
from schemas.invoice_line_item import InvoiceLineItem
from tests.credit_files import file_credit_input_ddl
from tests.invoice_checks import assert_invoices_exact
from tests.job.test_billing_job import CATALOG_PATH, final_accounting
from tests.job.test_credits_job import grant
from tests.job_outputs import tagged_union
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS
from tests.usage_files import file_parsed_usage
from udfs.catalog import load_catalog
from udfs.corrections import CorrectionLedger, CorrectionRejection, validate_correction_record
from udfs.credits import DRAWN_KINDS, ledger_identity
from udfs.money import round_amount
from udfs.pricing.rate import price as rate_price
from udfs.validation import Rejection, rejected_record_ids, validate_usage_record
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

TOPIC = "usage-corrections"
HORIZON_MS = 24 * 3600 * 1000


def usage(event_id: str, value: str, minutes: int = 0, meter: str = "input_tokens") -> bytes:
    return json.dumps({"event_id": event_id, "tenant_id": "acme-ai", "customer_id": "corr-1", "meter": meter,
                       "timestamp": to_epoch_ms(REFERENCE_NOW) - 3_600_000 + minutes * 60_000, "value": value,
                       "dimensions": {"model": "nova-large", "user_id": "u-1"}}).encode()


def correction(correction_id: str, event_id: str, action: str, tenant: str = "acme-ai", **fields) -> bytes:
    return json.dumps({"correction_id": correction_id, "tenant_id": tenant, "event_id": event_id, "action": action,
                       "sent_at": "2026-11-01T05:00:00Z", **fields}).encode()


USAGE = [usage("e1", "100"), usage("e2", "200"), usage("e3", "300"), usage("s1", "4", meter="seats"),
         usage("u1", "1", meter="active_users"),  # unique_count: the accumulator retains its windows' values
         usage("old-1", "7", minutes=-36 * 24 * 60)]  # too_old: dead-lettered, remembered by its ids
# Later events of the same customer and series: the first fires the usage's window, the second moves the watermark
# past the one the corrections came after.
TICKS = [usage("tick-1", "1", minutes=5), usage("tick-2", "1", minutes=10)]
CORRECTIONS = [
    correction("c-cancel", "e1", "cancel"),
    correction("c-cancel-2", "e1", "cancel"),  # already_cancelled (whichever of the two cancels comes second)
    correction("c-unknown", "e-never-sent", "cancel"),  # unknown_event
    correction("c-cancel", "e1", "cancel", note="a retry: the note changes nothing"),  # duplicate_correction
    correction("c-amend", "e2", "amend", value="150"),
    correction("c-amend", "e2", "amend", value="175"),  # same id, other payload: conflicting_correction
    correction("c-dims", "e3", "amend", dimensions={"model": "nova-small"}),
    correction("c-tenant", "e3", "cancel", tenant="nobody"),  # unknown_tenant
    correction("c-payload", "e3", "cancel", value="1"),  # payload_on_cancel
    correction("c-nothing", "e3", "amend"),  # nothing_to_amend
    correction("c-neg", "e3", "amend", value="-1"),  # negative_value
    correction("c-meter", "e3", "amend", meter="x", value="1"),  # unamendable_field
    correction("c-seats", "s1", "cancel"),  # a max meter's: applied from the window's retained contents
    correction("c-users", "u1", "cancel"),  # a unique_count meter's: applied, the value leaves the period
    correction("c-old", "old-1", "cancel"),  # event_dead_lettered (too_old)
    b"{not json",  # malformed_json
    b"\xff\xfe",  # not_utf8
    b"[1, 2]",  # not_an_object
    b"",  # empty: malformed_json (a tombstone, no value at all, is the unit tier's: a file has no such line)
]


def spec_outcomes(raws: list[bytes | None], usage: list[bytes] = USAGE) -> tuple[int, Counter]:
    """(applied, rejected by reason) by the spec, the usage billed first, then the corrections in this order (the
    outcomes asserted do not depend on the order: a pair of copies of one id gives one first copy and one
    rejection, two cancels of one event one applied and one already_cancelled, whichever comes first)."""
    catalog = load_catalog(CATALOG_PATH)
    meters = {tenant_id: tenant.meters for tenant_id, tenant in catalog.tenants.items()}
    ledger = CorrectionLedger(meters, timedelta(milliseconds=WINDOW_MS), horizon_ms=HORIZON_MS)
    for raw in usage:
        event = validate_usage_record(raw, meters_by_tenant=catalog.meters_by_tenant(), now=REFERENCE_NOW)
        if isinstance(event, Rejection):
            if (ids := rejected_record_ids(raw)) is not None:
                ledger.observe_dead_letter(*ids, event.reason, 1)
        else:
            ledger.observe_event(event, 1)
    applied, rejected = 0, Counter()
    for raw in raws:
        result = validate_correction_record(raw, tenants=catalog.tenants)
        outcome = result if isinstance(result, CorrectionRejection) else ledger.correct(result, 2)
        if isinstance(outcome, CorrectionRejection):
            rejected[outcome.reason.value] += 1
        else:
            applied += 1
    return applied, rejected


def run_job(tmp_path, parallelism: int, applied: int, rejected: int) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """The job on USAGE and TICKS[0], then CORRECTIONS once the usage's line item is out, then TICKS[1] once the
    accounting shows `applied` + `rejected` corrections and `rejected` dead letters are out; returns every output
    collected until the corrections' lines are out (a correction line and nova-small's usage line), and the
    accounting totals when the corrections were all counted."""

    def billed(collected: dict[str, list[dict]]) -> bool:
        kinds = {"nova-small" if line["group"] == {"model": "nova-small"} else "seats-" + line["kind"]
                 if line["meter"] == "seats" else "tick" if line["quantity"] == "1" else line["kind"]
                 for line in collected["line_items"] if line["meter"] in ("input_tokens", "seats")}
        users = {line["kind"] for line in collected["unique_count_line_items"]}
        return {"correction", "nova-small", "tick", "seats-correction"} <= kinds and "correction" in users

    return run_corrected(tmp_path, parallelism, usage=[*USAGE, TICKS[0]], corrections=CORRECTIONS, then=[TICKS[1]],
                         decided=(applied, rejected), done=billed)


def run_corrected(tmp_path, parallelism: int, *, usage: list[bytes], corrections: list[bytes], then: list[bytes],
                  decided: tuple[int, int], done, reference_now=REFERENCE_NOW, grants: list[dict] | None = None,
                  ) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """The job on `usage`, then `corrections` once a line item is out, then `then` once the accounting shows
    `decided` = (applied, rejected) corrections and the rejected ones' dead letters are out; until `done(collected)`
    (closing the results cancels the job). With `grants`: the credits stage (a replay of them) and the invoice
    stage on its drawdowns too. Returns every output collected and the accounting totals when the corrections were
    all counted."""
    from pyflink.common import Duration, WatermarkStrategy
    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat

    applied, rejected = decided
    usage_dir = tmp_path / "usage"
    usage_dir.mkdir()
    (usage_dir / "usage.jsonl").write_bytes(b"\n".join(usage) + b"\n")
    settings = BillingSettings(
        catalog_yaml=CATALOG_PATH.read_text(), window_size_ms=WINDOW_MS, out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        reference_now_ms=to_epoch_ms(reference_now), watermark_on_every_event=True, correction_horizon_ms=HORIZON_MS,
    )
    env = stream_environment(parallelism=parallelism)
    t_env = table_environment(env, settings)
    def raw_correction(line: str, topic=TOPIC):
        """A line of the corrections file, `offset<TAB>record` (ISO-8859-1: one char per byte), as a source row (a
        closure: the Python workers cannot import this test module)."""
        from pyflink.common import Row

        offset, payload = line.split("\t", 1)
        return Row(payload=payload.encode("iso-8859-1"), src_topic=topic, src_partition=0, src_offset=int(offset))

    watched = tmp_path / "corrections"
    watched.mkdir()
    source = (FileSource.for_record_stream_format(StreamFormat.text_line_format("ISO-8859-1"), str(watched))
              .monitor_continuously(Duration.of_millis(100)).build())
    raw = (env.from_source(source, WatermarkStrategy.no_watermarks(), "corrections-file").set_parallelism(1)
           .map(raw_correction, output_type=RAW_CORRECTION_TYPE))
    outputs = build_pipeline(env, t_env, settings, file_parsed_usage(
        env, settings, path=str(usage_dir), monitor_interval_ms=100), raw)

    streams = {tag: stream for tag, stream in vars(outputs).items() if stream is not None}
    if grants is not None:
        grants_file, caps_file = tmp_path / "grants.jsonl", tmp_path / "caps.jsonl"
        grants_file.write_text("\n".join(json.dumps(g) for g in grants) + "\n")
        caps_file.write_text("")
        credits = build_credits(
            t_env, settings.catalog_yaml, [outputs.line_items, outputs.unique_count_line_items],
            grants_ddl=file_credit_input_ddl("credit_grants_raw", path=str(grants_file), topic="credit-grants"),
            spend_caps_ddl=file_credit_input_ddl("spend_caps_raw", path=str(caps_file), topic="spend-caps"),
            replay=True,
        )
        streams.update(drawdowns=credits.drawdowns, invoices=invoices_of(settings, outputs, credits.drawdowns))
    collected: dict[str, list[dict]] = {tag: [] for tag in streams}
    written = False
    counted: dict[str, int] | None = None
    with tagged_union(streams).execute_and_collect() as results:
        for item in results:
            tag, value = item.split("\t", 1)
            collected[tag].append(json.loads(value))
            if collected["line_items"] and not written:
                lines = b"".join(f"{i}\t".encode() + raw + b"\n" for i, raw in enumerate(corrections))
                (tmp_path / "corrections.part").write_bytes(lines)
                (tmp_path / "corrections.part").rename(watched / "corrections.txt")  # whole, at once
                written = True
            totals = final_accounting(collected["accounting"])
            if counted is None and (len(collected["correction_dead_letters"]) == rejected and totals.get(
                    "correction_applied", 0) + totals.get("correction_rejected", 0) == applied + rejected):
                counted = totals  # every correction is decided: now move the watermark past them
                (tmp_path / "then.part").write_bytes(b"\n".join(then) + b"\n")
                (tmp_path / "then.part").rename(usage_dir / "then.jsonl")
            if counted is not None and done(collected):
                break
    return collected, counted


@pytest.mark.parametrize("parallelism", [1, 2])
def test_corrections_are_validated_deduplicated_dead_lettered_and_counted(tmp_path, parallelism):
    applied, rejected = spec_outcomes(CORRECTIONS)
    assert (applied, sum(rejected.values())) == (5, len(CORRECTIONS) - 5)
    assert all(b"\n" not in raw and b"\r" not in raw for raw in CORRECTIONS), "one record per line"
    assert {"duplicate_correction", "conflicting_correction", "not_utf8", "malformed_json", "already_cancelled",
            "unknown_event", "event_dead_lettered"} <= set(rejected)

    out, totals = run_job(tmp_path, parallelism, applied, sum(rejected.values()))

    counts: dict[tuple[str, str], int] = {}
    for record in out["accounting"]:
        counts[(record["outcome"], record["detail"])] = record["records"]
    assert counts[("correction_applied", "")] == applied
    assert {d: n for (o, d), n in counts.items() if o == "correction_rejected"} == dict(rejected)
    assert totals == {"windowed": len(USAGE), "dead_lettered": 1, "correction_applied": applied,
                      "correction_rejected": sum(rejected.values())}, "usage accounting is unchanged"

    letters = [CorrectionDeadLetter.model_validate(letter) for letter in out["correction_dead_letters"]]
    assert Counter(letter.reason.value for letter in letters) == rejected
    for letter in letters:
        assert (letter.source_topic, letter.source_partition) == (TOPIC, 0)
        assert letter.raw_size_bytes == len(CORRECTIONS[letter.source_offset]), "the record it names"
    by_reason = {letter.reason.value: letter for letter in letters}
    assert (by_reason["duplicate_correction"].correction_id, by_reason["duplicate_correction"].event_id) == (
        "c-cancel", "e1")
    assert by_reason["conflicting_correction"].correction_id == "c-amend"
    assert CORRECTIONS[by_reason["conflicting_correction"].source_offset] in (
        correction("c-amend", "e2", "amend", value="150"), correction("c-amend", "e2", "amend", value="175"))
    assert by_reason["unknown_tenant"].tenant_id == "nobody"
    assert by_reason["not_utf8"].raw_encoding == "base64"
    assert by_reason["malformed_json"].correction_id is None
    assert (by_reason["already_cancelled"].event_id, by_reason["already_cancelled"].correction_id in (
        "c-cancel", "c-cancel-2")) == ("e1", True)
    assert (by_reason["unknown_event"].correction_id, by_reason["unknown_event"].event_id) == ("c-unknown",
                                                                                             "e-never-sent")
    assert by_reason["unknown_event"].detail.startswith("event 'e-never-sent' is not known")
    assert (by_reason["event_dead_lettered"].event_id, by_reason["event_dead_lettered"].event_dead_letter_reason) == (
        "old-1", DeadLetterReason.TOO_OLD)

    # the bill: the spec's lines of the corrected usage (udfs.corrections.correct_window)
    lines = [InvoiceLineItem.model_validate(line) for line in out["line_items"]]
    tenant = load_catalog(CATALOG_PATH).tenant("acme-ai")
    window_start = min(x.window_start for x in lines)
    # which of the two copies of c-amend came first (and applied) is arrival order: the other one's dead letter says
    lost = CORRECTIONS[by_reason["conflicting_correction"].source_offset]
    amended = Decimal(175) if lost == correction("c-amend", "e2", "amend", value="150") else Decimal(150)
    after = amended  # e1 cancelled, e2 amended, e3 moved to nova-small: e2 alone is left
    large = [x for x in lines if x.group == {"model": "nova-large"} and x.window_start == window_start]
    assert [(x.kind, x.quantity, x.event_count) for x in large] == [
        ("usage", Decimal(600), 3), ("correction", after - 600, 3)]
    tick = next(x for x in lines if x.group == {"model": "nova-large"} and x.kind == "usage" and x.quantity == 1)
    correction_line = large[1]
    assert correction_line.adjusts_line_item_id == large[0].line_item_id
    assert correction_line.line_item_id != large[0].line_item_id and correction_line.invoice_id == large[0].invoice_id
    # decided after the watermark the corrections came after, before the tick's window fired
    assert (correction_line.period_quantity_to_date, tick.period_quantity_to_date) == (after, after + 1)
    price = tenant.price_for("input_tokens", (("model", "nova-large"),))
    for line, quantity in ((correction_line, after), (tick, after + 1)):
        assert line.period_amount_to_date == round_amount(rate_price(Decimal(quantity), price).amount,
                                                          tenant.amount_precision)
    assert large[0].amount + correction_line.amount + tick.amount == tick.period_amount_to_date
    seats = [(x.kind, x.quantity, x.period_quantity_to_date, x.event_count) for x in lines if x.meter == "seats"]
    assert seats == [("usage", 4, 4, 1), ("correction", -4, 0, 1)], "the max window emptied: the period is at 0"
    assert sum(x.amount for x in lines if x.meter == "seats") == 0
    # unique_count lines come from the Python accumulator (their own stream into the same topic)
    users = [InvoiceLineItem.model_validate(line) for line in out["unique_count_line_items"]]
    assert [(x.kind, x.quantity, x.period_quantity_to_date, x.event_count) for x in users] == [
        ("usage", 1, 1, 1), ("correction", -1, 0, 1)], "u-1's one event cancelled: no user is left"
    assert users[1].adjusts_line_item_id == users[0].line_item_id and users[1].invoice_id == users[0].invoice_id
    assert sum(x.amount for x in users) == 0
    small = [x for x in lines if x.group == {"model": "nova-small"}]
    assert [(x.kind, x.window_start, x.quantity, x.event_count) for x in small] == [
        ("usage", window_start, Decimal(300), 1)]
    small_price = tenant.price_for("input_tokens", (("model", "nova-small"),))
    assert small[0].amount == round_amount(rate_price(Decimal(300), small_price).amount, tenant.amount_precision)


# A cancel after the usage drew credit, then a closed period: the customer's prepaid grant (less than the usage, more
# than the usage left after the cancel) pays what it can; the cancel's negative correction line gives credit back,
# which pays the usage left uncovered at once (udfs.credits.ledger); October's invoice closes (a later event moves the
# clock past its end + grace) with the correction line on it and the credit its lines drew, net: all of it.
CLOSE_NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # the reference clock: the closing event is not in the future
CREDIT_USAGE = [usage("k1", "400000"), usage("k2", "600000"), usage("k-tick", "1", minutes=5)]
CREDIT_CORRECTIONS = [correction("c-k1", "k1", "cancel")]
# 05:30 UTC: November for acme-ai (New York), past October's end (04:00 UTC) + the 1 h grace
CLOSING = [usage("k-close", "1", minutes=120)]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_a_cancel_gives_credit_back_and_the_closed_invoice_holds_its_lines_and_credit(tmp_path, parallelism):
    tenant = load_catalog(CATALOG_PATH).tenant("acme-ai")
    price = tenant.price_for("input_tokens", (("model", "nova-large"),))

    def amount(quantity: int) -> Decimal:
        return round_amount(rate_price(Decimal(quantity), price).amount, tenant.amount_precision)

    granted = amount(800_000)
    assert amount(600_001) < granted < amount(1_000_001), "the grant covers the corrected usage, not the first"
    grants = [grant("g-corr", "acme-ai", "corr-1", str(granted), tenant.currency)]

    def closed(collected: dict[str, list[dict]]) -> bool:
        return any(invoice["status"] == "final" for invoice in collected["invoices"])

    out, _ = run_corrected(tmp_path, parallelism, usage=CREDIT_USAGE, corrections=CREDIT_CORRECTIONS, then=CLOSING,
                           decided=(1, 0), done=closed, reference_now=CLOSE_NOW, grants=grants)

    october = next(Invoice.model_validate(i) for i in out["invoices"] if i["status"] == "final")
    lines = [InvoiceLineItem.model_validate(li) for li in out["line_items"] if li["invoice_id"] == october.invoice_id]
    assert sorted((x.kind, x.quantity) for x in lines) == [
        ("correction", Decimal(-400_000)), ("usage", Decimal(1)), ("usage", Decimal(1_000_000))]
    cancel = next(x for x in lines if x.kind == "correction")
    # decided after the watermark it came after, before the tick's window fired (as in the test above)
    assert cancel.amount == amount(600_000) - amount(1_000_000) < 0 and cancel.period_quantity_to_date == 600_000
    drawdowns = [CreditDrawdown.model_validate(d) for d in out["drawdowns"]]
    own = {x.line_item_id for x in lines}
    drawn = [d for d in drawdowns if d.line_item_id in own and d.kind in DRAWN_KINDS]
    assert sum(d.amount for d in drawn if d.line_item_id == cancel.line_item_id) < 0, "the cancel gives credit back"
    assert any(d.kind == "catch_up" for d in drawn), "the credit given back pays the usage left uncovered at once"

    assert_invoices_exact([october.model_dump(mode="json")], [li.model_dump(mode="json") for li in lines],
                          [d.model_dump(mode="json") for d in drawdowns if d.line_item_id in own])
    assert october.total == amount(600_001) and october.correction_total == cancel.amount
    assert october.credits_applied == sum((d.amount for d in drawn), Decimal(0)) == october.total, (
        "the grant pays the corrected total, net of the credit the cancel gave back")
    assert october.amount_due == 0
    grant_records = [CreditGrantRecord.model_validate(g).root for g in grants]
    for key, check in ledger_identity(grant_records, drawdowns, [InvoiceLineItem.model_validate(li)
                                                                 for li in out["line_items"]]).items():
        assert check.usage_identity_holds, key
        assert check.balance == granted - october.total, key
