"""`meterstream demo`: the billing job end to end on the embedded default, printing what happened.

Local Kafka broker -> topics -> a generated GenAI workload (duplicates, late and malformed records included), plus
each tenant's usage of the end of its previous billing period (uploaded earlier), and one cancel and one amend of
usage events -> the billing job, bounded, on the MiniCluster -> per-customer period-to-date summary, the accounting
table (usage and corrections), credits, the corrections' lines, and the invoices: the previous periods' final ones
(their periods closed during the run) and the current periods' open previews.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from meterstream import kafka_local
from meterstream.kafka_security import use_plaintext
from meterstream.paths import project_home
from meterstream.topics import create_topics, job_topic_configs, produce, read_committed
from meterstream.workload import Workload

CATALOG = "catalogs/example-genai.yaml"
# How much earlier than the current usage the previous periods' tail is sent (its Kafka record time): its customers
# are idle by ingestion time once the current usage arrives, and stop holding the watermark.
PREVIOUS_TAIL_SENT_BEFORE = timedelta(minutes=30)


def period_to_date_by_customer(line_items: list[dict]) -> dict[tuple[str, str, str], Decimal]:
    """(tenant, customer, currency) -> amount to date: the sum of the lines' amounts. The lines of a period
    telescope to its rounded price whatever order they come in (late adjustments included), so no line has to be
    "the latest"."""
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for item in line_items:
        totals[(item["tenant_id"], item["customer_id"], item["currency"])] += Decimal(item["amount"])
    return dict(totals)


def print_summary(line_items: list[dict], *, top: int = 5) -> None:
    totals = period_to_date_by_customer(line_items)
    print(f"\n[demo] period-to-date by customer ({len(totals)} customers, {len(line_items)} line items); "
          f"top {top} per tenant:")
    print(f"  {'tenant':12s} {'customer':14s} {'amount to date':>18s}")
    by_tenant: dict[str, list] = defaultdict(list)
    for (tenant, customer, currency), amount in totals.items():
        by_tenant[tenant].append((amount, customer, currency))
    for tenant in sorted(by_tenant):
        rows = sorted(by_tenant[tenant], reverse=True)
        for amount, customer, currency in rows[:top]:
            print(f"  {tenant:12s} {customer:14s} {amount:>14,} {currency}")
        tenant_total = sum(amount for amount, _, _ in rows)
        print(f"  {tenant:12s} {'(all ' + str(len(rows)) + ')':14s} {tenant_total:>14,} {rows[0][2]}")
    adjustments: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for item in line_items:
        if item.get("kind", "usage") != "usage":
            entry = adjustments[(item["kind"], item["currency"])]
            entry[0] += 1
            entry[1] += item["event_count"]
            entry[2] += Decimal(item["amount"])
    print("[demo] late usage and corrections billed (included above):" if adjustments
          else "[demo] no late usage or corrections billed")
    for (kind, currency), (lines, events, amount) in sorted(adjustments.items()):
        print(f"  {kind:24s} {lines:>6,} lines {events:>7,} events {amount:>14,} {currency}")


def print_invoices(invoices: list[dict], line_items: list[dict], drawdowns: list[dict], *, top: int = 3) -> bool:
    """The final invoices (periods that closed during the run), top customers per tenant, and how many open
    previews; returns whether every invoice is exact against its lines and the drawdowns."""
    from meterstream.invoice_checks import invoice_problems

    by_id, problems = invoice_problems(invoices, line_items, drawdowns)
    final = [i for i in by_id.values() if i.status == "final"]
    print(f"\n[demo] invoices: {len(final)} final (their periods closed during the run), "
          f"{len(by_id) - len(final)} open previews (periods still open when the input ended); "
          f"top {top} final per tenant:")
    print(f"  {'tenant':12s} {'customer':12s} {'period start':24s} {'lines':>5s} {'late':>10s} {'prior':>8s}"
          f" {'total':>12s} {'credits':>10s} {'due':>12s}")
    by_tenant: dict[str, list] = defaultdict(list)
    for invoice in final:
        by_tenant[invoice.tenant_id].append(invoice)
    for tenant in sorted(by_tenant):
        for i in sorted(by_tenant[tenant], key=lambda i: (-i.total, i.customer_id))[:top]:
            print(f"  {tenant:12s} {i.customer_id:12s} {i.period_start.strftime('%Y-%m-%d %H:%M UTC'):24s} "
                  f"{i.line_count:>5,} "
                  f"{i.late_adjustment_total:>10,} {i.prior_period_adjustment_total:>8,} {i.total:>12,} "
                  f"{i.credits_applied:>10,} {i.amount_due:>12,} {i.currency}")
    print(f"[demo] every line item on exactly one invoice, sums exact: {'HOLDS' if not problems else 'BROKEN'}")
    for problem in problems[:10]:
        print(f"  {problem}")
    return not problems


def demo_grants(start: datetime) -> list[dict]:
    """Prepaid credits for a few customers: spent, expiring mid-run, voided, and one whose effective time lies
    before usage that may already be billed when it is read (the ledger then writes corrections). The expiring and
    the voided grant are large enough (each customer bills about 1,000 USD in the run) to leave a balance that
    the expiry or void takes away."""
    def at(minutes: float) -> str:
        return (start + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def grant(grant_id, tenant, customer, amount, currency, **extra):
        return {"type": "grant", "grant_id": grant_id, "tenant_id": tenant, "customer_id": customer,
                "amount": amount, "currency": currency, "priority": extra.get("priority", 50),
                "effective_at": extra.get("effective_at", at(-60)), "expires_at": extra.get("expires_at"),
                "applies_to": extra.get("applies_to"), "category": extra.get("category", "paid")}

    return [
        grant("demo-acme-0", "acme-ai", "cust-00000", "400", "USD"),
        grant("demo-acme-1-promo", "acme-ai", "cust-00001", "3000", "USD", priority=10, category="promotional",
              expires_at=at(5)),
        grant("demo-acme-1", "acme-ai", "cust-00001", "100", "USD"),
        grant("demo-acme-2", "acme-ai", "cust-00002", "3000", "USD"),
        {"type": "void", "grant_id": "demo-acme-2", "tenant_id": "acme-ai", "customer_id": "cust-00002",
         "voided_at": at(4)},
        grant("demo-bolt-0", "bolt-ml", "cust-00000", "50", "EUR"),
        grant("demo-cirrus-0-late", "cirrus-gpu", "cust-00000", "60000", "JPY", effective_at=at(0)),
        grant("demo-bad", "acme-ai", "cust-00003", "-1", "USD"),
    ]


def print_credits(drawdowns: list[dict], alerts: list[dict], grant_dead_letters: list[dict]) -> None:
    from udfs.credits import DRAWN_KINDS

    latest: dict[tuple[str, str, str], dict] = {}
    kinds: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for record in drawdowns:
        key = (record["tenant_id"], record["customer_id"], record["currency"])
        if record["grant_id"] is not None and (
            key not in latest or (record["event_time"], record["emitted_at"])
            >= (latest[key]["event_time"], latest[key]["emitted_at"])
        ):
            latest[key] = record
        if record["grant_id"] is not None:
            kinds[key[:2]][record["kind"]] += Decimal(record["amount"])
        kinds[key[:2]]["uncovered"] += Decimal(record["uncovered_amount"])
    print(f"\n[demo] credits: {len(drawdowns):,} drawdown records, {len(alerts)} alerts, "
          f"{len(grant_dead_letters)} rejected grant records")
    print(f"  {'tenant':12s} {'customer':12s} {'drawn':>12s} {'expired':>10s} {'voided':>10s} {'uncovered':>12s}"
          f" {'balance':>12s}")
    for key in sorted(latest):
        k = kinds[key[:2]]
        drawn = sum((k[kind] for kind in sorted(DRAWN_KINDS)), Decimal(0))
        print(f"  {key[0]:12s} {key[1]:12s} {drawn:>12,} {k['expiry']:>10,} {k['void']:>10,} "
              f"{k['uncovered']:>12,} {Decimal(latest[key]['customer_balance_after']):>12,} {key[2]}")
    for alert in sorted(alerts, key=lambda a: (a["tenant_id"], a["customer_id"], a["event_time"])):
        print(f"  alert {alert['type']:18s} {alert['tenant_id']:12s} {alert['customer_id']:12s} "
              f"threshold {alert['threshold']} value {alert['value']} {alert.get('action') or ''}")


def previous_period_workloads(*, events: int, seed: int, customers_per_tenant: int, now: datetime) -> list[Workload]:
    """Per tenant, usage of the last 10 minutes of its previous billing period (the period before the one
    containing `now` - grace - 1 h, so its close lies an hour or more before `now`): the job closes those periods
    while it reads the current usage, and writes their final invoices. Within the max age (a month is < 35 days);
    clean records (no duplicates, late or malformed ones: the current workload has those). Oldest period first:
    the watermark never goes back, so a tenant's tail sent after a later one would come after the watermark had
    passed its close, and be billed as prior-period adjustments on the next invoice (right, but not this demo)."""
    from meterstream.workload import WorkloadSpec, generate_workload
    from udfs.catalog import load_catalog
    from udfs.periods import billing_period

    catalog = load_catalog(project_home() / CATALOG)
    workloads = []
    for offset, (tenant_id, tenant) in enumerate(sorted(catalog.tenants.items()), start=1):
        schedule = tenant.billing_period
        current_start, _ = billing_period(now - schedule.grace - timedelta(hours=1), schedule.anchor_day,
                                          schedule.zone)
        workloads.append((current_start, generate_workload(WorkloadSpec(
            seed=seed + offset, events=events, tenants=(tenant_id,), customers_per_tenant=customers_per_tenant,
            start=current_start - timedelta(minutes=11), duration=timedelta(minutes=10), duplicate_rate=0.0,
            late_rate=0.0, malformed_rate=0.0))))
    return [workload for _, workload in sorted(workloads, key=lambda pair: pair[0])]


def demo_workload(*, events: int, seed: int, customers_per_tenant: int, now: datetime,
                  correction_rate: float = 0.0) -> Workload:
    """The demo's usage: a generated workload of the 12 minutes before `now` (10 minutes of events); with
    `correction_rate`, the generator's corrections beside it (the usage records are the same either way)."""
    from meterstream.workload import WorkloadSpec, generate_workload

    return generate_workload(
        WorkloadSpec(seed=seed, events=events, customers_per_tenant=customers_per_tenant,
                     start=now - timedelta(minutes=12), duration=timedelta(minutes=10),
                     correction_rate=correction_rate)
    )


def demo_corrections(workload: Workload, *, now: datetime) -> list[dict]:
    """One cancel and one amend (the value tripled) of the two largest on-time input_tokens events of different
    series (tenant, customer, model). Sent after the usage (a bounded run decides them once it has all been read):
    each changes its window's line with a `correction` line."""
    largest: dict[tuple, dict] = {}
    for event in _on_time_events(workload):
        key = (event["tenant_id"], event["customer_id"], event.get("dimensions", {}).get("model"))  # the series
        if event["meter"] != "input_tokens" or key[2] is None:
            continue
        if key not in largest or Decimal(str(event["value"])) > Decimal(str(largest[key]["value"])):
            largest[key] = event
    cancel, amend = sorted(largest.values(), key=lambda e: (-Decimal(str(e["value"])), e["event_id"]))[:2]
    sent_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        {"correction_id": f"demo-cancel-{cancel['event_id']}", "tenant_id": cancel["tenant_id"],
         "event_id": cancel["event_id"], "action": "cancel", "sent_at": sent_at, "note": "sent in error"},
        {"correction_id": f"demo-amend-{amend['event_id']}", "tenant_id": amend["tenant_id"],
         "event_id": amend["event_id"], "action": "amend", "value": str(Decimal(str(amend["value"])) * 3),
         "sent_at": sent_at, "note": "the client under-reported: three times the tokens"},
    ]


def _on_time_events(workload: Workload):
    """The workload's on-time events (first copies, valid), parsed with exact values."""
    from meterstream.workload import RecordKind

    for index, record in enumerate(workload.records):
        if workload.kind(index) == RecordKind.ON_TIME:
            yield json.loads(record, parse_float=Decimal)


def print_corrections(corrections: list[dict], workload: Workload, line_items: list[dict],
                      rejected: list[dict]) -> bool:
    """What each demo correction did: its correction line (window quantity change, amount); returns whether both
    were applied and billed."""
    events = {(event["tenant_id"], event["event_id"]): event for event in _on_time_events(workload)}
    print("\n[demo] corrections (usage-corrections):")
    ok = True
    for correction in corrections:
        event = events[(correction["tenant_id"], correction["event_id"])]
        what = (f"{correction['action']:6s} {event['tenant_id']}/{event['customer_id']} {event['event_id']} "
                f"({event['meter']} {event['value']})")
        letter = next((r for r in rejected if r.get("correction_id") == correction["correction_id"]), None)
        if letter is not None:
            print(f"  {what}: REJECTED ({letter['reason']}: {letter['detail']})")
            ok = False
            continue
        lines = [li for li in line_items if li["kind"] == "correction" and li["tenant_id"] == event["tenant_id"]
                 and li["customer_id"] == event["customer_id"] and li["meter"] == event["meter"]
                 and li["group"] == {"model": event.get("dimensions", {}).get("model")}]
        if not lines:
            print(f"  {what}: applied, but no correction line was billed")
            ok = False
            continue
        for line in lines:
            print(f"  {what}: applied -> correction line: window {line['window_start']} quantity "
                  f"{Decimal(line['quantity']):+,} amount {Decimal(line['amount']):+,} {line['currency']}")
    return ok


def produce_credit_inputs(bootstrap: str, topics: dict[str, str], *, now: datetime) -> list[dict]:
    """The demo grants into `credit_grants` and one spend cap into `spend_caps`; returns the records written."""
    grants = demo_grants(now - timedelta(minutes=12))
    cap = {"tenant_id": "acme-ai", "customer_id": "cust-00000", "amount": "150", "currency": "USD",
           "effective_at": (now - timedelta(days=40)).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    produce(bootstrap, topics["credit_grants"], [json.dumps(g).encode() for g in grants])
    produce(bootstrap, topics["spend_caps"], [json.dumps(cap).encode()])
    return [*grants, cap]


def produce_inputs(
    bootstrap: str, topics: dict[str, str], *, events: int, seed: int, customers_per_tenant: int
) -> tuple[Workload, list[dict]]:
    """The demo's inputs: the previous periods' tail (`previous_period_workloads`) and a generated workload of the
    last 12 minutes into `usage_events`, the demo grants into `credit_grants` and one spend cap into `spend_caps`,
    one cancel and one amend into `usage_corrections` (topics by `jobs.billing.Topics` field name). Returns the
    current workload and the corrections."""
    now = datetime.now(UTC).replace(microsecond=0)
    workload = demo_workload(events=events, seed=seed, customers_per_tenant=customers_per_tenant, now=now)
    # First the previous periods' usage, sent half an hour earlier (an upload of last month's tail): its customers
    # go idle by ingestion time once the current usage arrives, so they stop holding the watermark, which then
    # passes those periods' end + grace and closes them.
    for previous in previous_period_workloads(events=max(events // 20, 100), seed=seed,
                                              customers_per_tenant=max(customers_per_tenant // 10, 5), now=now):
        produce(bootstrap, topics["usage_events"], previous.records,
                keys=[str(key).encode() for key in previous.partition_keys],
                timestamps_ms=[int((now - PREVIOUS_TAIL_SENT_BEFORE).timestamp() * 1000)] * len(previous.records))
    # Keyed by (tenant, event_id): every copy of an event lands in one partition, so "first copy wins" is
    # decided by arrival order within that partition.
    keys = [str(key).encode() for key in workload.partition_keys]
    # One record timestamp for the whole workload, a minute before now (a burst, like a backfill): no customer goes
    # idle between its records, so the watermark waits for all of them. Record timestamps spread as if sent live
    # would let customers go idle and come back with re-sent (duplicate) records minutes old, which hold the clock
    # back while they are active: windows would fire later and the workload's late events would lie near the
    # watermark.
    sent_at = int(now.timestamp() * 1000) - 60_000
    produce(bootstrap, topics["usage_events"], workload.records, keys=keys,
            timestamps_ms=[sent_at] * len(workload.records))
    produce_credit_inputs(bootstrap, topics, now=now)
    corrections = demo_corrections(workload, now=now)
    produce(bootstrap, topics["usage_corrections"], [json.dumps(c).encode() for c in corrections])
    return workload, corrections


def run_demo(*, events: int, parallelism: int, keep_broker: bool) -> int:
    started = time.monotonic()
    dropped = use_plaintext()  # the demo's own local broker is PLAINTEXT, and so are its clients and its job
    if dropped:
        print(f"[demo] local PLAINTEXT broker: ignoring {', '.join(dropped)}")
    info, started_now = kafka_local.up()
    bootstrap = info.bootstrap_servers
    print(f"[demo] Kafka at {bootstrap} ({'started' if started_now else 'already running'})")
    try:
        suffix = datetime.now(UTC).strftime("%H%M%S")
        topics = {
            "usage_events": f"demo-usage-events-{suffix}",
            "dead_letters": f"demo-usage-dead-letters-{suffix}",
            "late_events": f"demo-usage-late-events-{suffix}",
            "line_items": f"demo-invoice-line-items-{suffix}",
            "accounting": f"demo-billing-accounting-{suffix}",
            "invoices": f"demo-invoices-{suffix}",
            "credit_grants": f"demo-credit-grants-{suffix}",
            "spend_caps": f"demo-spend-caps-{suffix}",
            "credit_drawdowns": f"demo-credit-drawdowns-{suffix}",
            "billing_alerts": f"demo-billing-alerts-{suffix}",
            "credit_grant_dead_letters": f"demo-credit-grant-dead-letters-{suffix}",
            "usage_corrections": f"demo-usage-corrections-{suffix}",
            "correction_dead_letters": f"demo-usage-correction-dead-letters-{suffix}",
        }
        create_topics(bootstrap, list(topics.values()), partitions=2, configs=job_topic_configs(topics))
        workload, corrections = produce_inputs(bootstrap, topics, events=events, seed=42, customers_per_tenant=200)
        print(f"[demo] produced {len(workload.records):,} usage events to {topics['usage_events']} "
              f"(intended: ~{workload.intended_duplicates:,} duplicates, ~{workload.intended_late:,} late, "
              f"~{workload.intended_malformed:,} malformed)")
        print("[demo] produced the demo's grant records (one expiring mid-run, one void, one invalid) "
              "and one spend cap; one cancel and one amend of usage events")
        args = [sys.executable, "-m", "jobs.billing", "--credits", "--corrections", "--bootstrap", bootstrap,
                "--catalog", str(project_home() / CATALOG), "--bounded", "--parallelism", str(parallelism),
                "--reference-time", workload.reference_time.isoformat(), "--watermark-on-every-event"]
        for name, topic in topics.items():
            args += [f"--topic-{name.replace('_', '-')}", topic]
        print("[demo] running the billing job (bounded, MiniCluster):", " ".join(args[1:4]), "...")
        run = subprocess.run(args)
        if run.returncode != 0:
            print("[demo] the billing job failed", file=sys.stderr)
            return run.returncode
        def read(topic: str) -> list[dict]:
            return [json.loads(v) for v in read_committed(bootstrap, topics[topic])]

        line_items, drawdowns = read("line_items"), read("credit_drawdowns")
        print_summary(line_items)
        print_credits(drawdowns, read("billing_alerts"), read("credit_grant_dead_letters"))
        if not print_corrections(corrections, workload, line_items, read("correction_dead_letters")):
            print("[demo] a demo correction was not applied and billed", file=sys.stderr)
            return 1
        if not print_invoices(read("invoices"), line_items, drawdowns):
            print("[demo] the invoices do not match their line items", file=sys.stderr)
            return 1
        print(f"\n[demo] done in {time.monotonic() - started:.1f} s; outputs stay in topics "
              f"{', '.join(topics[t] for t in ('line_items', 'dead_letters', 'late_events'))}"
              + (f" on {bootstrap}" if keep_broker else ""))
        return 0
    finally:
        if not keep_broker and started_now:
            kafka_local.down()
            print("[demo] Kafka stopped")
