"""Prepaid credits to the cent: a scripted sequence of grants and usage, fed to a running job in stages.

The credits ledger meets two inputs (line items, grant events); which of two records arriving at once is applied
first is up to the runtime. To pin the order the script depends on, the test feeds the job stage by stage: the
sources watch directories, each stage drops one file, and the next stage starts only after the previous one's
output has been collected (each grants file ends with an invalid record whose dead letter says "read"; each usage
file ends with a flush customer whose last line item says "windows fired": its records carry a record timestamp
(`_ingested_ms`) more than the idle timeout after the stage's other records, so that every other customer is idle by
then and the flush customer's clock alone moves the watermark). Within a stage, event time orders
everything (one meter per customer; timers fire with the watermark). The expected drawdowns and alerts below are
written out by hand from the catalog (acme-ai: USD, h100 GPU-seconds at 0.0012 per second, thresholds 25 and 5 USD
and 10 % of granted credit).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.billing import BillingSettings, build_pipeline, table_environment
from jobs.credits import build_credits
from jobs.runtime import stream_environment
from schemas.credits import BillingAlert, CreditDrawdown
from schemas.invoice_line_item import InvoiceLineItem
from tests.credit_files import file_credit_input_ddl
from tests.job_outputs import tagged_union
from tests.usage_files import INGESTED_FIELD, file_parsed_usage
from udfs.credits.ledger import drawdown_id
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"
TENANT = "acme-ai"
DAY = "2026-11-02T"
REFERENCE_NOW = f"{DAY}10:30:00.000Z"
CHECKPOINT_MS = 1_500
IDLE_TIMEOUT_MS = 1_000


def grant(grant_id, customer, amount, **extra) -> dict:
    return {"type": "grant", "grant_id": grant_id, "tenant_id": TENANT, "customer_id": customer,
            "amount": amount, "currency": "USD", "priority": extra.get("priority", 50),
            "effective_at": extra.get("effective_at", "2026-10-01T00:00:00.000Z"),
            "expires_at": extra.get("expires_at"), "applies_to": extra.get("applies_to"),
            "category": extra.get("category", "paid")}


def invalid_grant(marker: str) -> dict:
    """The last record of each grants file: its dead letter tells the test the file has been read."""
    return grant(marker, "c-marker", "-1")


def gpu(customer: str, at: str, seconds: int) -> dict:
    """h100 GPU-seconds at 0.0012 USD: 5000 s = 6.00 USD."""
    return {"event_id": f"{customer}-{at}", "tenant_id": TENANT, "customer_id": customer, "meter": "gpu_seconds",
            "timestamp": f"{DAY}{at}Z", "value": str(seconds), "dimensions": {"gpu_type": "h100"}}


def flush(until_minute: int, from_minute: int) -> list[dict]:
    """Customer c-z sends a request every 30 s: it moves the watermark step by step (so timers and windows fire
    in event-time order) and its last window is the stage's end marker. Requests: 0.50 USD per started 1000."""
    return [{"event_id": f"c-z-{m}-{s}", "tenant_id": TENANT, "customer_id": "c-z", "meter": "requests",
             "timestamp": f"{DAY}10:{m:02d}:{s:02d}.000Z"}
            for m in range(from_minute, until_minute + 1) for s in (5, 35)]


# Stage 1, before any usage: c-a holds a promotional grant (first in burn order, expires 10:05 with credit left)
# and a paid one, and a spend cap of 20 USD; c-b holds 20 USD, voided at 10:03; c-c holds nothing yet.
GRANTS_1 = [
    grant("a-promo", "c-a", "20", priority=10, category="promotional", expires_at=f"{DAY}10:05:00.000Z",
          applies_to=["gpu_seconds"]),
    grant("a-paid", "c-a", "30"),
    grant("b-paid", "c-b", "20"),
    {"type": "void", "grant_id": "b-paid", "tenant_id": TENANT, "customer_id": "c-b",
     "voided_at": f"{DAY}10:03:00.000Z"},
    invalid_grant("marker-1"),
]
SPEND_CAPS = [
    {"tenant_id": TENANT, "customer_id": "c-a", "amount": "20", "currency": "USD",
     "effective_at": "2026-10-01T00:00:00.000Z"},
    {"tenant_id": TENANT, "customer_id": "c-marker", "amount": "0", "currency": "USD",
     "effective_at": "2026-10-01T00:00:00.000Z"},  # invalid: its dead letter says the file has been read
]
# Stage 2: usage up to 10:08.
USAGE_1 = [
    gpu("c-a", "10:00:30.000", 5000),   # 6.00 from a-promo
    gpu("c-b", "10:00:40.000", 2500),   # 3.00 from b-paid
    gpu("c-c", "10:00:50.000", 10000),  # 12.00, no grant: uncovered
    gpu("c-b", "10:04:30.000", 5000),   # 6.00 after the void: uncovered
    gpu("c-a", "10:06:30.000", 15000),  # 18.00 after a-promo expired: a-paid; spend 24 >= cap 20
    *flush(8, 0),
]
# Stage 3: c-c's grant arrives after its usage of 10:00, which it covers (effective before it): a correction, as
# if it had been known in time.
GRANTS_2 = [grant("c-paid", "c-c", "50"), invalid_grant("marker-2")]
# Stage 4: c-c burns through its grant.
USAGE_2 = [
    gpu("c-c", "10:10:30.000", 25000),  # 30.00 -> balance 8.00 (below 25)
    gpu("c-c", "10:11:30.000", 5000),   # 6.00 -> 2.00 (below 5 and 10 % of 50)
    gpu("c-c", "10:12:30.000", 5000),   # 6.00: 2.00 drawn, 4.00 uncovered: exhausted
    *flush(14, 9),
]
# Stage 5: a new grant pays the 4.00 left uncovered and lifts the balance above every threshold.
GRANTS_3 = [grant("c-topup", "c-c", "100"), invalid_grant("marker-3")]

# (customer, kind, window start or None, grant_id, amount, grant balance after, customer balance after, uncovered,
#  event time): every drawdown of the script except the flush customer's.
EXPECTED_DRAWDOWNS = [
    ("c-a", "usage", "10:00", "a-promo", "6.00", "14.00", "44.00", "0.00", "10:01:00"),
    ("c-a", "expiry", None, "a-promo", "14.00", "0.00", "30.00", "0.00", "10:05:00"),
    ("c-a", "usage", "10:06", "a-paid", "18.00", "12.00", "12.00", "0.00", "10:07:00"),
    ("c-b", "usage", "10:00", "b-paid", "3.00", "17.00", "17.00", "0.00", "10:01:00"),
    ("c-b", "void", None, "b-paid", "17.00", "0.00", "0.00", "0.00", "10:03:00"),
    ("c-b", "usage", "10:04", None, "0.00", None, "0.00", "6.00", "10:05:00"),
    ("c-c", "usage", "10:00", None, "0.00", None, "0.00", "12.00", "10:01:00"),
    ("c-c", "adjustment", "10:00", "c-paid", "12.00", "38.00", "38.00", "-12.00", "10:01:00"),
    ("c-c", "usage", "10:10", "c-paid", "30.00", "8.00", "8.00", "0.00", "10:11:00"),
    ("c-c", "usage", "10:11", "c-paid", "6.00", "2.00", "2.00", "0.00", "10:12:00"),
    ("c-c", "usage", "10:12", "c-paid", "2.00", "0.00", "0.00", "4.00", "10:13:00"),
    ("c-c", "adjustment", "10:12", "c-topup", "4.00", "96.00", "96.00", "-4.00", "10:13:00"),
]
# (customer, type, threshold, threshold percent, value, action, event time, period start): a line item's alerts
# name its billing period, a void's the period it falls in; a grant effective before any period names none.
PERIOD = "2026-11-01T04:00:00+00:00"
EXPECTED_ALERTS = [
    ("c-a", "balance_low", "25.00", None, "12.00", None, "10:07:00", PERIOD),
    ("c-a", "spend_cap_reached", "20.00", None, "24.00", "block", "10:07:00", PERIOD),
    ("c-b", "balance_low", "25.00", None, "17.00", None, "10:01:00", PERIOD),
    ("c-b", "balance_low", "5.00", None, "0.00", None, "10:03:00", PERIOD),
    # After the void no credit is granted any more: 10 % of 0.
    ("c-b", "balance_low", "0.00", "10", "0.00", None, "10:03:00", PERIOD),
    ("c-c", "balance_low", "25.00", None, "8.00", None, "10:11:00", PERIOD),
    ("c-c", "balance_low", "5.00", None, "2.00", None, "10:12:00", PERIOD),
    ("c-c", "balance_low", "5.00", "10", "2.00", None, "10:12:00", PERIOD),
    ("c-c", "balance_exhausted", "0.00", None, "0.00", None, "10:13:00", PERIOD),
    # Caused by the top-up: stamped with its effective time; 10 % is now of 150.
    ("c-c", "balance_recovered", "25.00", None, "96.00", None, "2026-10-01T00:00:00+00:00", None),
    ("c-c", "balance_recovered", "15.00", "10", "96.00", None, "2026-10-01T00:00:00+00:00", None),
    ("c-c", "balance_recovered", "5.00", None, "96.00", None, "2026-10-01T00:00:00+00:00", None),
    ("c-c", "balance_recovered", "0.00", None, "96.00", None, "2026-10-01T00:00:00+00:00", None),
]


class StagedJob:
    """The billing job with credits on a MiniCluster, its sources watching directories the test writes into."""

    def __init__(self, tmp_path: Path, parallelism: int):
        self.dirs = {name: tmp_path / name for name in ("usage", "grants", "caps")}
        for folder in self.dirs.values():
            folder.mkdir()
        self.staging = tmp_path / "staging"
        self.staging.mkdir()
        self.parallelism = parallelism
        self.stage = 0
        self.records: queue.Queue = queue.Queue()
        self.collected: dict[str, list[dict]] = {}
        self.results = None

    def drop(self, folder: str, name: str, records: list[dict]) -> None:
        """Write a whole file, then move it into the watched folder (never seen half-written). Usage records get
        record timestamps: the stage's (after "now", so they cap no clock), and for the flush customer's one idle
        timeout and a second later."""
        if folder == "usage":
            self.stage += 1
            base = to_epoch_ms(_at(REFERENCE_NOW)) + self.stage * 60_000
            records = [{**r, INGESTED_FIELD: base + (IDLE_TIMEOUT_MS + 1_000 if r["customer_id"] == "c-z" else 0)}
                       for r in records]
        staged = self.staging / name
        staged.write_text("".join(json.dumps(r) + "\n" for r in records))
        staged.rename(self.dirs[folder] / name)

    def start(self) -> None:
        settings = BillingSettings(
            catalog_yaml=CATALOG_PATH.read_text(), reference_now_ms=to_epoch_ms(_at(REFERENCE_NOW)),
            watermark_on_every_event=True, idle_timeout_ms=IDLE_TIMEOUT_MS,
        )
        env = stream_environment(parallelism=self.parallelism, checkpoint_interval_ms=CHECKPOINT_MS)
        t_env = table_environment(env, settings)
        source = file_parsed_usage(env, settings, path=str(self.dirs["usage"]), monitor_interval_ms=200)
        outputs = build_pipeline(env, t_env, settings, source)
        credits = build_credits(
            t_env, settings.catalog_yaml, [outputs.line_items, outputs.unique_count_line_items],
            grants_ddl=file_credit_input_ddl("credit_grants_raw", path=str(self.dirs["grants"]),
                                             topic="credit-grants", monitor_interval="200 ms"),
            spend_caps_ddl=file_credit_input_ddl("spend_caps_raw", path=str(self.dirs["caps"]),
                                                 topic="spend-caps", monitor_interval="200 ms"),
        )
        streams = {"line_items": outputs.line_items, "drawdowns": credits.drawdowns, "alerts": credits.alerts,
                   "grant_dead_letters": credits.grant_dead_letters}
        self.collected = {tag: [] for tag in streams}
        self.results = tagged_union(streams).execute_and_collect()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for item in self.results:
                self.records.put(item)
        except Exception as exc:  # the job failed, or the test closed it
            self.records.put(exc)

    def wait_for(self, what: str, done, *, timeout_s: float = 90) -> None:
        """Collect until `done(collected)` holds, then until a checkpoint interval passes with nothing new (the
        records a stage's marker trails: timers firing at the same watermark, alerts)."""
        deadline = time.monotonic() + timeout_s
        quiet_until = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; collected {self.summary()}")
            try:
                item = self.records.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if quiet_until is not None and time.monotonic() >= quiet_until:
                    return
                continue
            if isinstance(item, Exception):
                raise AssertionError(f"job ended while waiting for {what}") from item
            tag, value = item.split("\t", 1)
            self.collected[tag].append(json.loads(value))
            if quiet_until is not None or done(self.collected):
                quiet_until = time.monotonic() + 2 * CHECKPOINT_MS / 1000 + 1

    def summary(self) -> str:
        return ", ".join(f"{tag}: {len(values)}" for tag, values in self.collected.items())

    def close(self) -> None:
        if self.results is not None:
            self.results.close()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def dead_letter_for(marker: str):
    return lambda out: any(f'"{marker}"' in d["raw"] for d in out["grant_dead_letters"])


def flush_window(minute: int):
    return lambda out: any(li["customer_id"] == "c-z" and li["window_start"] == f"{DAY}10:{minute:02d}:00.000Z"
                           for li in out["line_items"])


def run_script(tmp_path: Path, parallelism: int) -> dict[str, list[dict]]:
    job = StagedJob(tmp_path, parallelism)
    job.drop("grants", "grants-1.jsonl", GRANTS_1)
    job.drop("caps", "caps-1.jsonl", SPEND_CAPS)
    try:
        job.start()
        job.wait_for("stage 1: grants and spend caps read", lambda out: len(out["grant_dead_letters"]) == 2)
        job.drop("usage", "usage-1.jsonl", USAGE_1)
        job.wait_for("stage 2: usage up to 10:08 rated and drawn", flush_window(7))
        job.drop("grants", "grants-2.jsonl", GRANTS_2)
        job.wait_for("stage 3: the late grant caught up", dead_letter_for("marker-2"))
        job.drop("usage", "usage-2.jsonl", USAGE_2)
        job.wait_for("stage 4: usage up to 10:14 rated and drawn", flush_window(13))
        job.drop("grants", "grants-3.jsonl", GRANTS_3)
        job.wait_for("stage 5: the top-up", dead_letter_for("marker-3"))
    finally:
        job.close()
    return job.collected


def _clock(value) -> str | None:
    """The time of day on the scripted day, else the full instant."""
    if value is None:
        return None
    return value.strftime("%H:%M:%S") if value.date().isoformat() == DAY[:-1] else value.isoformat()


def _period(value) -> str | None:
    return None if value is None else value.isoformat()


def _order(row: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in row)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


# At parallelism 2 the watched-directory usage source hands each stage's one file to one reader; the other reader
# holds the watermark until it is declared idle, hence the short idle timeout (every pause between stages is longer
# than it). That is the setting that exposed the ordering races of issue 4: the grants input moving the ledger's
# clock (jobs.credits.build_credits drops its watermark) and, after a pause, one line-item channel becoming active
# before the other and moving the clock past line items still in flight (idleness now stops at the routing
# operator, io.meterstream.routing.UsageRouting).
@pytest.mark.parametrize("parallelism", [1, 2])
def test_scripted_grants_and_usage_give_the_exact_drawdowns_and_alerts(tmp_path, parallelism):
    out = run_script(tmp_path, parallelism)
    lines = {li.line_item_id: li for li in (InvoiceLineItem.model_validate(v) for v in out["line_items"])}
    drawdowns = [CreditDrawdown.model_validate(v) for v in out["drawdowns"]]
    alerts = [BillingAlert.model_validate(v) for v in out["alerts"]]

    assert len({d.drawdown_id for d in drawdowns}) == len(drawdowns)
    assert len({a.alert_id for a in alerts}) == len(alerts)
    for d in drawdowns:
        assert d.drawdown_id == drawdown_id(d.tenant_id, d.customer_id, d.kind, d.line_item_id, d.grant_id, d.cause)

    got_drawdowns = sorted((
        (d.customer_id, d.kind, _clock(lines[d.line_item_id].window_start)[:5] if d.line_item_id else None,
         d.grant_id, _money(d.amount), _money(d.grant_balance_after), _money(d.customer_balance_after),
         _money(d.uncovered_amount), _clock(d.event_time))
        for d in drawdowns if d.customer_id != "c-z"
    ), key=_order)
    assert got_drawdowns == sorted(EXPECTED_DRAWDOWNS, key=_order)

    got_alerts = sorted((
        (a.customer_id, a.type, _money(a.threshold), None if a.threshold_percent is None else str(a.threshold_percent),
         _money(a.value), a.action, _clock(a.event_time), _period(a.period_start))
        for a in alerts if a.customer_id != "c-z"
    ), key=_order)
    assert got_alerts == sorted(EXPECTED_ALERTS, key=_order)
    assert not [a for a in alerts if a.customer_id == "c-z"], "the flush customer holds no credit and no cap"

    # The flush customer has no credit: each of its line items is one uncovered record, and nothing else.
    flush_lines = [li for li in lines.values() if li.customer_id == "c-z"]
    flush_drawdowns = [d for d in drawdowns if d.customer_id == "c-z"]
    assert sorted(d.line_item_id for d in flush_drawdowns) == sorted(li.line_item_id for li in flush_lines)
    assert all(d.grant_id is None and d.uncovered_amount == lines[d.line_item_id].amount for d in flush_drawdowns)
