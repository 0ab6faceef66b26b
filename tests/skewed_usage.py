"""Usage with a client clock running ahead, for the tests that lateness never depends on another tenant's or
customer's timestamps (issue 15, item 3): a base workload, the same with a skewed tenant or customer woven in, and
the line items of everyone else in a form to compare."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from udfs.catalog import Catalog
from udfs.validation import Rejection, validate_usage_record
from udfs.watermarks import PartitionClock, past_watermark
from udfs.windows import to_epoch_ms


def tenant_of(raw: bytes) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record.get("tenant_id") if isinstance(record, dict) else None


def without_tenant(records: list[bytes], tenant: str) -> list[bytes]:
    return [raw for raw in records if tenant_of(raw) != tenant]


def with_skewed_client(
    records: list[bytes], catalog: Catalog, *, now: datetime, tenant: str, customer: str, ahead: timedelta,
    every: int = 40, meter: str = "requests", lead: bool = False,
) -> list[bytes]:
    """`records` with a record of (`tenant`, `customer`) after every `every`-th one (and first), its timestamp
    `ahead` of the highest event time before it: a client whose clock runs ahead (still valid at `now`). `lead`:
    its first record comes before all others, `ahead` of the first valid one (so every other customer is first seen
    after the watermark has moved on to the fast client's clock)."""
    meters = catalog.meters_by_tenant()

    def skewed(event_id: str, at: int) -> bytes:
        encoded = json.dumps({"event_id": event_id, "tenant_id": tenant, "customer_id": customer, "meter": meter,
                              "timestamp": at}).encode()
        assert not isinstance(validate_usage_record(encoded, meters_by_tenant=meters, now=now), Rejection)
        return encoded

    ahead_ms = int(ahead.total_seconds() * 1000)
    out: list[bytes] = []
    highest: int | None = None
    for index, raw in enumerate(records):
        event = validate_usage_record(raw, meters_by_tenant=meters, now=now)
        if not isinstance(event, Rejection):
            at = to_epoch_ms(event.timestamp)
            if lead and highest is None:
                out.append(skewed(f"skew-{customer}-lead", at + ahead_ms))
            highest = at if highest is None else max(highest, at)
        out.append(raw)
        if highest is not None and index % every == 0:
            out.append(skewed(f"skew-{customer}-{index}", highest + ahead_ms))
    return out


def lines_of_others(line_items: list[dict], *, tenant: str | None = None, customer: tuple[str, str] | None = None):
    """The line items, keyed by id (a usage line per series and window, a late adjustment per series, window and
    watermark), all fields but `emitted_at`, leaving out those of `tenant` and of `customer` ((tenant, customer))."""
    lines = {}
    for item in line_items:
        if item["tenant_id"] == tenant or (item["tenant_id"], item["customer_id"]) == customer:
            continue
        key = item["line_item_id"]
        assert key not in lines, f"two line items {key}"
        lines[key] = {k: v for k, v in item.items() if k != "emitted_at"}
    return lines


class SharedClock:
    """One watermark for all tenants: the highest event time so far minus the bound (the rule before issue 15)."""

    def __init__(self, out_of_orderness_ms: int) -> None:
        self.bound = out_of_orderness_ms
        self.watermark: int | None = None

    def observe(self, customer: tuple[str, str], event_time_ms: int, ingestion_ms: int | None) -> None:
        mark = event_time_ms - self.bound
        self.watermark = mark if self.watermark is None else max(self.watermark, mark)


def late_by_the_watermark(records: list[bytes], catalog: Catalog, clock, *, now: datetime,
                          window_ms: int) -> set[tuple[str, str]]:
    """(tenant, event_id) of the first-seen records whose window `clock` (a `SharedClock` or a
    `udfs.watermarks.PartitionClock`, fed every valid record) had passed: what lateness judged by the watermark alone
    (before lateness per series) would have made late. Shows that an input can tell the rules apart."""
    meters = catalog.meters_by_tenant()
    seen: set[tuple[str, str]] = set()
    late: set[tuple[str, str]] = set()
    for raw in records:
        event = validate_usage_record(raw, meters_by_tenant=meters, now=now)
        if isinstance(event, Rejection):
            continue
        at = to_epoch_ms(event.timestamp)
        key = (event.tenant_id, event.event_id)
        if key not in seen:
            seen.add(key)
            if past_watermark(at, window_ms, clock.watermark):
                late.add(key)
        clock.observe((event.tenant_id, event.customer_id), at, None)
    return late


def late_under_a_shared_clock(records: list[bytes], catalog: Catalog, *, now: datetime, window_ms: int,
                              out_of_orderness_ms: int) -> set[tuple[str, str]]:
    """Late by one watermark shared by all tenants (the rule before issue 15)."""
    return late_by_the_watermark(records, catalog, SharedClock(out_of_orderness_ms), now=now, window_ms=window_ms)


def late_under_customer_clocks(records: list[bytes], catalog: Catalog, *, now: datetime, window_ms: int,
                               out_of_orderness_ms: int) -> set[tuple[str, str]]:
    """Late by the per-customer watermark clocks alone (the rule before lateness per series: a customer first seen
    after a fast one was judged by the fast one's clock)."""
    return late_by_the_watermark(records, catalog, PartitionClock(out_of_orderness_ms, idle_timeout_ms=5_000),
                                 now=now, window_ms=window_ms)


def arrival_times(records: list[bytes], catalog: Catalog, *, now: datetime, latency_ms: int = 500) -> list[int]:
    """Record timestamps as a live run would have them (ingestion time): each record arrives `latency_ms` after the
    highest event time so far of the honest clients; the skewed clients' records (`skew-` ids) arrive at that same
    true time, their event time being ahead of it."""
    meters = catalog.meters_by_tenant()
    out: list[int] = []
    true_time: int | None = None
    for raw in records:
        event = validate_usage_record(raw, meters_by_tenant=meters, now=now)
        if not isinstance(event, Rejection) and not event.event_id.startswith("skew-"):
            at = to_epoch_ms(event.timestamp)
            true_time = at if true_time is None else max(true_time, at)
        out.append((true_time if true_time is not None else to_epoch_ms(now)) + latency_ms)
    return out
