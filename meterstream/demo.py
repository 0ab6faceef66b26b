"""`meterstream demo`: the billing job end to end on the embedded default, printing what happened.

Local Kafka broker -> topics -> a generated GenAI workload (duplicates, late and malformed records included) ->
the billing job, bounded, on the MiniCluster -> per-customer period-to-date summary and the accounting table.
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
from meterstream.paths import project_home
from meterstream.topics import create_topics, produce, read_committed

CATALOG = "catalogs/example-genai.yaml"


def period_to_date_by_customer(line_items: list[dict]) -> dict[tuple[str, str, str], Decimal]:
    """(tenant, customer, currency) -> amount to date, from the latest line of each meter/group/period."""
    latest: dict[tuple, dict] = {}
    for item in line_items:
        key = (item["tenant_id"], item["customer_id"], item["meter"], json.dumps(item["group"], sort_keys=True),
               item["period_start"])
        if key not in latest or item["window_start"] > latest[key]["window_start"]:
            latest[key] = item
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for (tenant, customer, *_), item in latest.items():
        totals[(tenant, customer, item["currency"])] += Decimal(item["period_amount_to_date"])
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


def run_demo(*, events: int, parallelism: int, keep_broker: bool) -> int:
    from meterstream.workload import WorkloadSpec, generate_workload

    started = time.monotonic()
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
        }
        create_topics(bootstrap, list(topics.values()), partitions=2)
        now = datetime.now(UTC).replace(microsecond=0)
        workload = generate_workload(
            WorkloadSpec(seed=42, events=events, customers_per_tenant=200, start=now - timedelta(minutes=12),
                         duration=timedelta(minutes=10))
        )
        # Keyed by (tenant, event_id): every copy of an event lands in one partition, so "first copy wins" is
        # decided by arrival order within that partition.
        keys = [str(key).encode() for key in workload.partition_keys]
        produced = produce(bootstrap, topics["usage_events"], workload.records, keys=keys)
        print(f"[demo] produced {produced:,} usage events to {topics['usage_events']} "
              f"(intended: ~{workload.intended_duplicates:,} duplicates, ~{workload.intended_late:,} late, "
              f"~{workload.intended_malformed:,} malformed)")
        args = [sys.executable, "-m", "jobs.billing", "--bootstrap", bootstrap, "--catalog",
                str(project_home() / CATALOG), "--bounded", "--parallelism", str(parallelism),
                "--reference-time", workload.reference_time.isoformat(), "--watermark-on-every-event"]
        for name, topic in topics.items():
            args += [f"--topic-{name.replace('_', '-')}", topic]
        print("[demo] running the billing job (bounded, MiniCluster):", " ".join(args[1:4]), "...")
        run = subprocess.run(args)
        if run.returncode != 0:
            print("[demo] the billing job failed", file=sys.stderr)
            return run.returncode
        line_items = [json.loads(v) for v in read_committed(bootstrap, topics["line_items"], idle_timeout_ms=3_000)]
        print_summary(line_items)
        print(f"\n[demo] done in {time.monotonic() - started:.1f} s; outputs stay in topics "
              f"{', '.join(topics[t] for t in ('line_items', 'dead_letters', 'late_events'))}"
              + (f" on {bootstrap}" if keep_broker else ""))
        return 0
    finally:
        if not keep_broker and started_now:
            kafka_local.down()
            print("[demo] Kafka stopped")
