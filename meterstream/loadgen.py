"""`meterstream produce`: live demo load for a running billing job (the docker-compose `load-generator`).

Unlike `meterstream demo`, which writes a finished workload into a bounded replay, this feeds an unbounded job in
real time: each run is one `meterstream.workload` stream (duplicates, malformed records and, for runs longer than
the job's lateness bound, late events included) whose event times start at the wall clock when the run starts, and
record i is sent when the clock reaches its place in the run (`start + duration * i / events`). Event times then
never lie in the future (the job would dead-letter them as `too_far_in_future`) nor far in the past (`too_old`),
and a later run continues where the previous one ended, so the job's watermark is never pushed behind new data.

Before the first run the demo's prepaid credits go to `credit-grants` (one expiring a few minutes into the run, one
voided, one invalid) and one spend cap to `spend-caps`, stamped relative to that start.

Event ids are `e<seed>-<index>` (see `meterstream.workload`), so every run needs a seed of its own: by default it is
derived from the run's start time, so a restarted generator never re-sends ids that the job's dedup state (TTL 35
days) would count as duplicates. Pass `--seed` for a reproducible stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meterstream.paths import project_home
from meterstream.workload import WorkloadSpec, iter_workload

CATALOG = "catalogs/example-genai.yaml"
RUN_SEED_STRIDE = 1_000  # runs of one generator: seed, seed + 1, ...; two starts a second apart never collide
EARLY_S = 0.1  # records due within this are sent at once (batched), at most this much ahead of time


@dataclass(frozen=True)
class LoadPlan:
    events: int = 6_000  # records per run, every kind included
    duration: timedelta = timedelta(minutes=5)  # event-time span of one run = its wall-clock length
    customers_per_tenant: int = 50
    runs: int | None = 1  # None: until stopped

    def __post_init__(self) -> None:
        if self.events < 1 or self.duration <= timedelta(0) or self.customers_per_tenant < 1:
            raise ValueError("events >= 1, a positive duration and customers_per_tenant >= 1 are required")
        if self.runs is not None and self.runs < 1:
            raise ValueError("runs must be >= 1 (or None: until stopped)")


def default_seed(now: datetime) -> int:
    """A seed that differs between generator starts (event ids must not repeat across restarts)."""
    return int(now.timestamp()) * RUN_SEED_STRIDE


def run_spec(plan: LoadPlan, *, seed: int, start: datetime) -> WorkloadSpec:
    # The catalog from the project home, not next to the installed module: in the image the package lives in
    # site-packages while the catalogs stay under METERSTREAM_HOME.
    return WorkloadSpec(
        seed=seed,
        events=plan.events,
        customers_per_tenant=plan.customers_per_tenant,
        start=start.astimezone(UTC),
        duration=plan.duration,
        catalog_path=project_home() / CATALOG,
    )


def schedule(spec: WorkloadSpec) -> Iterator[tuple[float, bytes, bytes]]:
    """(seconds after the run's start when the record is due, key, record), in production order.

    Due times follow the workload's own event-time front (record i at `duration * i / events`), so a record is
    never sent before the instant it claims to describe. The key is the workload's partition key (CRC-32 of
    tenant and event id), as in the demo: every copy of an event lands in one partition.
    """
    span_s = spec.duration.total_seconds()
    n = spec.events
    for index, (_kind, record, partition_key, _reason) in enumerate(iter_workload(spec)):
        yield span_s * index / n, str(partition_key).encode(), record


def grant_records(start: datetime) -> tuple[list[bytes], list[bytes]]:
    """(credit-grants records, spend-caps records) for a run starting at `start`: the demo's set."""
    from meterstream.demo import demo_grants

    grants = [json.dumps(grant).encode() for grant in demo_grants(start)]
    cap_from = (start - timedelta(days=40)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    caps = [json.dumps({"tenant_id": "acme-ai", "customer_id": "cust-00000", "amount": "150", "currency": "USD",
                        "effective_at": cap_from}).encode()]
    return grants, caps


def send_paced(
    producer,
    topic: str,
    records: Iterator[tuple[float, bytes, bytes]],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send each (due, key, record) once `clock()` has advanced `due` seconds past the first call (at most
    `EARLY_S` before); returns the count. `producer` is anything with kafka-python's `send(topic, value=, key=)`
    and `flush()`."""
    began = clock()
    count = 0
    for due, key, record in records:
        wait = began + due - clock()
        if wait > EARLY_S:
            producer.flush()  # what was due is on the broker before we idle
            while wait > 0:
                sleep(min(wait, 1.0))
                wait = began + due - clock()
        producer.send(topic, value=record, key=key)
        count += 1
    producer.flush()
    return count


def run(
    bootstrap: str,
    plan: LoadPlan,
    *,
    seed: int | None = None,
    usage_topic: str = "usage-events",
    grants_topic: str | None = "credit-grants",
    spend_caps_topic: str | None = "spend-caps",
    log: Callable[[str], None] = print,
) -> int:
    """Produce the plan's runs to Kafka (grants once, before the first run); returns the usage records sent."""
    from meterstream.topics import new_producer, produce

    first_start = datetime.now(UTC).replace(microsecond=0)
    base_seed = default_seed(first_start) if seed is None else seed
    if grants_topic or spend_caps_topic:
        grants, caps = grant_records(first_start)
        if grants_topic:
            produce(bootstrap, grants_topic, grants)
        if spend_caps_topic:
            produce(bootstrap, spend_caps_topic, caps)
        log(f"[produce] {len(grants)} grant records to {grants_topic}, {len(caps)} spend cap to {spend_caps_topic}")
    producer = new_producer(bootstrap, linger_ms=20, acks="all")
    total = 0
    try:
        index = 0
        while plan.runs is None or index < plan.runs:
            start = first_start if index == 0 else datetime.now(UTC)
            spec = run_spec(plan, seed=base_seed + index, start=start)
            log(f"[produce] run {index + 1}: {plan.events:,} records over {plan.duration} to {usage_topic} "
                f"(seed {spec.seed}, event time from {spec.start.isoformat()})")
            sent = send_paced(producer, usage_topic, schedule(spec))
            total += sent
            log(f"[produce] run {index + 1}: sent {sent:,} records (total {total:,})")
            index += 1
    finally:
        producer.close()
    return total
