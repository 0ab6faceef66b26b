"""The usage watermark of one Kafka partition: what decides lateness (the specification; the job runs the Java twin,
`io.meterstream.watermarks.UsageEventWatermarks` with `CustomerClocks`, bound to this by golden vectors).

Per (tenant, customer) of the partition: its clock, the highest event time of its valid records, and the highest
ingestion time (Kafka record timestamp; None: unknown) of its records. A customer whose last record is more than
`idle_timeout_ms` of ingestion time older than the partition's newest valid record stops counting (checked in
arrival order: the least recently seen first, stopping at the first that still counts). The partition's clock is
the lowest clock of the customers that count, at most the highest ingestion time; the watermark is that clock minus
the out-of-orderness bound and never goes back. Rejected records change nothing.

So a client whose clock runs ahead cannot move the watermark past another active customer; a slow one only holds
the watermark back until it has been silent for the idle timeout. The watermark fires windows; whether a record
whose window it has passed (`window_end - 1 <= watermark`, `past_watermark`) is late is decided per series, by
`udfs.lateness`: so not even a customer seen for the first time after a fast one is judged by the fast one's clock.

    python -m udfs.watermarks --write   # regenerate the golden vectors the Java tests replay
    python -m udfs.watermarks --check   # exit 1 if they differ from this rule
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from udfs.generated import write_or_check

GOLDEN_PATH = (Path(__file__).resolve().parents[1] / "engine" / "src" / "test" / "resources"
               / "watermarks-golden.json")


class PartitionClock:
    def __init__(self, out_of_orderness_ms: int, idle_timeout_ms: int) -> None:
        self.bound = out_of_orderness_ms
        self.idle = idle_timeout_ms
        self.customers: dict[tuple[str, str], list] = {}  # [clock, last ingestion], least recently seen first
        self.max_ingestion: int | None = None
        self.watermark: int | None = None

    def observe(self, customer: tuple[str, str], event_time_ms: int, ingestion_ms: int | None) -> None:
        """A valid record of `customer` ((tenant_id, customer_id)), in partition order; updates `watermark`."""
        if ingestion_ms is not None and (self.max_ingestion is None or ingestion_ms > self.max_ingestion):
            self.max_ingestion = ingestion_ms
        clock, last = self.customers.pop(customer, (event_time_ms, ingestion_ms))
        clock = max(clock, event_time_ms)
        if ingestion_ms is not None and (last is None or ingestion_ms > last):
            last = ingestion_ms
        self.customers[customer] = [clock, last]
        if self.max_ingestion is not None:
            while self.customers:
                first = next(iter(self.customers))
                last = self.customers[first][1]
                if last is not None and last >= self.max_ingestion - self.idle:
                    break
                del self.customers[first]
        clocks = [c for c, _ in self.customers.values()]
        if self.max_ingestion is not None:
            clocks.append(self.max_ingestion)
        if clocks:
            mark = min(clocks) - self.bound
            self.watermark = mark if self.watermark is None else max(self.watermark, mark)


def past_watermark(event_time_ms: int, window_ms: int, watermark: int | None) -> bool:
    """Whether the watermark has passed the record's tumbling window (only such a record can be late:
    `udfs.lateness`)."""
    window_end = event_time_ms - event_time_ms % window_ms + window_ms
    return watermark is not None and window_end - 1 <= watermark


# ---- golden vectors: scripted and random streams, with the watermark after every record ----

BOUND_MS = 10_000
IDLE_MS = 5_000
_H = 1_793_502_000_000  # 2026-11-01T03:00:00Z, a whole hour


def _streams() -> list[dict]:
    """Each record: [tenant, customer, event_time_ms, ingestion_ms or None, valid]."""
    repro = ([["acme-ai", "c1", _H + 58 * 60_000 + i * 10_000, None, True] for i in range(6)]
             + [["bolt-ml", "c9", _H + 63 * 60_000, None, True]]
             + [["acme-ai", "c1", _H + 59 * 60_000 + i * 10_000, None, True] for i in range(6)])
    idle = [["acme-ai", "slow", _H, _H + 3_600_000, True],
            ["acme-ai", "c1", _H + 300_000, _H + 3_601_000, True],
            ["acme-ai", "c2", _H + 90_000, _H + 3_605_000, True],
            ["acme-ai", "c1", _H + 301_000, _H + 3_606_001, True],
            ["acme-ai", "c3", _H + 30_000, _H + 3_606_002, True]]
    capped = [["acme-ai", "c1", _H + 240_000, _H, True],
              ["acme-ai", "c1", _H + 250_000, _H + 20_000, True],
              ["bolt-ml", "c2", _H + 10_000, _H + 30_000, True]]
    streams = [{"name": "issue-15-repro", "records": repro}, {"name": "idle-by-ingestion", "records": idle},
               {"name": "ingestion-cap", "records": capped}]
    rng = random.Random(20261206)
    for n in range(12):
        with_ingestion = n % 3 != 0
        customers = [(rng.choice(["acme-ai", "bolt-ml", "cirrus-gpu", "ünï-tenant"]), f"cust-{k}")
                     for k in range(rng.randrange(1, 30))]
        skew = {c: rng.choice([0, 0, 0, 240_000, -120_000]) for c in customers}
        true_time, ingestion, records = _H, _H + 3_600_000, []
        for _ in range(rng.randrange(50, 400)):
            true_time += rng.randrange(0, 2_000)
            ingestion += rng.randrange(0, 3_000) if rng.random() < 0.9 else -rng.randrange(0, 2_000)
            customer = rng.choice(customers)
            event_time = true_time + skew[customer] - rng.randrange(0, 4_000)
            records.append([*customer, event_time, ingestion if with_ingestion else None, rng.random() > 0.05])
        streams.append({"name": f"random-{n}", "records": records})
    return streams


def golden() -> dict:
    streams = []
    for stream in _streams():
        clock = PartitionClock(BOUND_MS, IDLE_MS)
        marks = []
        for tenant, customer, event_time, ingestion, valid in stream["records"]:
            if valid:
                clock.observe((tenant, customer), event_time, ingestion)
            marks.append(clock.watermark)
        streams.append({**stream, "watermarks": marks})
    return {"out_of_orderness_ms": BOUND_MS, "idle_timeout_ms": IDLE_MS, "streams": streams}


def golden_text() -> str:
    return json.dumps(golden(), ensure_ascii=False, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(argv, {GOLDEN_PATH: golden_text}, "python -m udfs.watermarks")


if __name__ == "__main__":
    raise SystemExit(main())
