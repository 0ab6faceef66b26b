"""A small, hand-shaped usage stream for job and integration tests, with every kind of trouble in known places.

Three tenants of the example catalog, 30 minutes around acme-ai's billing-period boundary (2026-11-01 00:00
America/New_York = 04:00 UTC, the day DST ends there), so one key crosses into a new period. In the past, pinned by
`REFERENCE_NOW` (the job's output records carry their write time, so future event times work too:
`tests/integration/test_output_timestamps.py`). On-time events are at most 3 s out of order
(the job allows 10 s); late events are 10+ minutes behind the stream, so their windows have surely fired;
duplicates repeat earlier records byte for byte or with a conflicting value.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

START = datetime(2026, 11, 1, 3, 50, tzinfo=UTC)
REFERENCE_NOW = datetime(2026, 11, 1, 4, 30, tzinfo=UTC)
WINDOW_MS = 60_000
OUT_OF_ORDERNESS_MS = 10_000

_METERS = {
    "acme-ai": ["input_tokens", "output_tokens", "requests", "gpu_seconds", "seats", "storage_gb", "active_users"],
    "bolt-ml": ["input_tokens", "requests", "gpu_seconds", "seats"],
    "cirrus-gpu": ["input_tokens", "requests", "gpu_seconds", "seats"],
}
_MALFORMED = [
    b'{"event_id": "broken", ',
    b"[1, 2, 3]",
    b'{"tenant_id": "acme-ai", "customer_id": "c1", "meter": "requests", "timestamp": 1793505600000}',
    b"\xff\xfe not utf-8",
    json.dumps({"event_id": "neg-1", "tenant_id": "acme-ai", "customer_id": "c1", "meter": "input_tokens",
                "timestamp": "2026-11-01T04:00:00Z", "value": "-5", "dimensions": {"model": "nova-large"}}).encode(),
    json.dumps({"event_id": "um-1", "tenant_id": "acme-ai", "customer_id": "c1", "meter": "bogus_meter",
                "timestamp": "2026-11-01T04:00:00Z", "value": "1"}).encode(),
    json.dumps({"event_id": "ut-1", "tenant_id": "nobody", "customer_id": "c1", "meter": "requests",
                "timestamp": "2026-11-01T04:00:00Z"}).encode(),
    json.dumps({"event_id": "old-1", "tenant_id": "acme-ai", "customer_id": "c1", "meter": "requests",
                "timestamp": "2026-08-01T05:00:00Z"}).encode(),
    json.dumps({"event_id": "fut-1", "tenant_id": "acme-ai", "customer_id": "c1", "meter": "requests",
                "timestamp": "2026-11-01T05:00:00Z"}).encode(),
    json.dumps({"event_id": "ts-1", "tenant_id": "acme-ai", "customer_id": "c1", "meter": "requests",
                "timestamp": "2026-11-01 04:00:00"}).encode(),
]


def _event(rng: random.Random, seq: int, tenant: str, at: datetime) -> dict:
    meter = rng.choice(_METERS[tenant])
    record: dict = {
        "event_id": f"{tenant}-e{seq}",
        "tenant_id": tenant,
        "customer_id": f"cust-{rng.randrange(4)}",
        "meter": meter,
    }
    # Mix the timestamp spellings the contract admits.
    style = seq % 3
    if style == 0:
        record["timestamp"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    elif style == 1:
        record["timestamp"] = int(at.timestamp() * 1000)
    else:
        record["timestamp"] = at.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
    dims: dict[str, str] = {}
    if meter in ("input_tokens", "output_tokens"):
        dims["model"] = rng.choice(["nova-large", "nova-small", "other"])
        record["value"] = str(rng.randrange(1, 400_000))
    elif meter == "gpu_seconds":
        dims["gpu_type"] = rng.choice(["h100", "a100", "l4"])
        record["value"] = f"{rng.randrange(1, 5000)}.{rng.randrange(1000):03d}"
    elif meter == "seats":
        record["value"] = rng.randrange(1, 30)
    elif meter == "storage_gb":
        record["value"] = f"{rng.randrange(1, 900)}.5"
    elif meter == "active_users":
        dims["user_id"] = f"u{rng.randrange(25)}"
    if dims:
        record["dimensions"] = dims
    return record


def scripted_usage(
    seed: int = 11, events: int = 3000, *, start: datetime = START, duration: timedelta | None = None,
    first_seq: int = 0, with_late: bool = True,
) -> list[bytes]:
    """`events` events spread over [start, start + duration) (default: 30 minutes from START), plus the trouble.

    Event ids are `<tenant>-e<seq>` from `first_seq` on (late ones from `first_seq + events`): workloads produced
    in parts (the savepoint upgrade test) give each part its own range. Late events (unless `with_late` is False)
    appear once the stream is 15 minutes (or half the duration, if shorter) past `start`.
    """
    rng = random.Random(seed)
    duration = REFERENCE_NOW - START - timedelta(minutes=10) if duration is None else duration
    late_after = min(timedelta(minutes=15), duration / 2)
    out: list[bytes] = []
    sent: list[dict] = []
    for i in range(events):
        seq = first_seq + i
        at = start + duration * i / events - timedelta(milliseconds=rng.randrange(3000))
        record = _event(rng, seq, rng.choice(list(_METERS)), at)
        out.append(json.dumps(record).encode())
        sent.append(record)
        roll = rng.random()
        if roll < 0.05 and sent:  # duplicate: mostly byte-identical, sometimes conflicting
            earlier = rng.choice(sent[-200:])
            copy = dict(earlier)
            if rng.random() < 0.25 and "value" in copy:
                copy["value"] = "1"
            out.append(json.dumps(copy).encode())
        elif roll < 0.07 and with_late and at - start > late_after:  # late: its window closed minutes ago
            late = _event(rng, events + seq, rng.choice(list(_METERS)), at - timedelta(minutes=12))
            out.append(json.dumps(late).encode())
        elif roll < 0.08:
            out.append(rng.choice(_MALFORMED))
    return out
