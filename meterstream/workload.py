"""A seeded, realistic `usage-events` workload: the input of benchmarks, soak runs and end-to-end checks.

One call, `generate_workload(spec)`, gives the records in production order plus the generator's own ground truth
(what it meant each record to be). `iter_workload(spec)` streams the same records without keeping them.

What the stream looks like (and why):
- Event time advances linearly from `spec.start` over `spec.duration` with a jitter of at most
  `jitter_share * out_of_orderness` backwards, so every on-time event is inside the job's out-of-orderness bound
  at its position: the bounded-out-of-orderness watermark never makes an on-time event late.
- A **late** event is first-seen (new event_id), of the series (customer, meter, dimensions) of an earlier on-time
  event older than `max event time so far - out_of_orderness - window_size - late_margin` at its position, and no
  newer than that event: the job is late per series (`udfs/lateness.py`: only when the series has fired the
  event's window or a later one), and that series' window has fired even though the job's watermark lags the
  stream (periodic emission, two partitions, and above all the per-customer clocks: the watermark waits for the
  customer silent longest, minutes in a burst). The earlier events are a sample (one on-time event in
  `LATE_SAMPLE_EVERY` per tenant), so memory stays small.
  Late events only start once the stream is old enough to hold such a timestamp inside [start, end]; their
  probability is scaled up from there so the overall rate is still about `late_rate`.
- A **duplicate** re-sends one of the last `duplicate_horizon` records of the same tenant (a producer retry):
  byte-identical, or (share `conflicting_duplicate_share`) the same event_id with a conflicting payload (a
  different value, or for value-less meters a different value/user). A duplicate is always drawn from records
  already emitted, so its first copy precedes it in the stream: first copy wins by arrival order, and a late
  event is never re-sent before its own first copy.
- A **malformed** record fails validation with a known dead-letter reason (`MALFORMED_REASONS`). Not generated:
  `too_large` (64 KiB records would dominate the byte volume) and `too_far_in_future` (a future timestamp could
  push a watermark computed before validation forward and turn on-time events late, which would break the
  ground truth of everything after it).
- Records are JSON built as strings (no pydantic, no json.dumps per record): mixed RFC 3339 (`Z`, `+02:00`) and
  epoch-ms timestamps, values as decimal strings or JSON number tokens, an occasional unknown top-level field.

`Workload.partition_keys[i]` is a CRC-32 of `tenant_id \\0 event_id`: partitioning by it keeps every copy of an
event in one Kafka partition, so "first copy wins by arrival order" is well defined across partitions too.

**Corrections** (`spec.correction_rate` > 0; the `usage-corrections` input, `schemas.usage_correction`): about
`correction_rate` x the first-seen (valid, non-duplicate) events, as `CorrectionRecord`s in `Workload.corrections`
(or the list given to `iter_workload`), meant to be produced after the usage. They come from a random stream of
their own (seeded by `seed`), so the usage records are byte for byte those of the same spec without corrections
(A/B). Each first-seen event is corrected at most once, so the intended outcome of each correction is the spec's
(`udfs.corrections.CorrectionLedger`) when it is decided after every usage event was seen:
- `1 - correction_reject_share` of them are applied: a **cancel** (`correction_cancel_share`), an **amend of a
  dimension** (`correction_dimension_share`: a group-by dimension, which moves the event to another series, or a
  unique_count meter's counted one) or else an **amend of the value** (a new value; a count or unique_count meter's
  amend changes nothing it reads, applied with no delta) of an earlier event of a meter whose corrections the job
  bills (`BILLED_CORRECTION_AGGREGATIONS`: all six aggregations);
- `correction_reject_share` of them are rejectable, a third each: `duplicate_correction` (a re-send of an earlier
  correction's id and payload, byte-identical or with another `sent_at`/`note`, which the fingerprint ignores),
  `unknown_event` (an event id never sent) and `aggregation_not_correctable` (a cancel or amend of the event of a
  meter whose corrections the job does not bill; none since it bills all six, so `unknown_event` takes that share
  too).
The partition key of a correction is a CRC-32 of `tenant_id \\0 correction_id` (every copy of an id in one
partition). A job that reads corrections and usage at once decides a correction that arrives before its event as
`unknown_event`: the intended outcome assumes the event came first.
"""

from __future__ import annotations

import json
import random
import zlib
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import IntEnum, StrEnum
from pathlib import Path

from schemas.correction_dead_letter import CorrectionRejectionReason
from schemas.dead_letter import DeadLetterReason
from udfs.catalog import Catalog, Meter, load_catalog
from udfs.corrections import BILLED_CORRECTION_AGGREGATIONS

DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "catalogs" / "example-genai.yaml"
DEFAULT_START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

MALFORMED_REASONS: tuple[DeadLetterReason, ...] = (
    DeadLetterReason.NOT_UTF8,
    DeadLetterReason.MALFORMED_JSON,
    DeadLetterReason.NOT_AN_OBJECT,
    DeadLetterReason.MISSING_FIELD,
    DeadLetterReason.INVALID_FIELD,
    DeadLetterReason.INVALID_TIMESTAMP,
    DeadLetterReason.INVALID_VALUE,
    DeadLetterReason.NEGATIVE_VALUE,
    DeadLetterReason.UNKNOWN_TENANT,
    DeadLetterReason.UNKNOWN_METER,
    DeadLetterReason.MISSING_VALUE,
    DeadLetterReason.TOO_OLD,
)
TIMESTAMP_STYLES = ("rfc3339_z", "rfc3339_offset", "epoch_ms")
UNKNOWN_TENANT = "ghost-tenant"
UNKNOWN_METER = "bogus_meter"
TOO_OLD_BY = timedelta(days=40)  # older than the validation's 35-day max age for any `now` within 5 days of start

# Relative frequency of meters within a tenant (unlisted meters: 1): token meters are the bulk of GenAI usage.
METER_WEIGHTS = {
    "input_tokens": 4,
    "output_tokens": 4,
    "requests": 3,
    "gpu_seconds": 2,
    "active_users": 2,
    "seats": 1,
    "storage_gb": 1,
}
# Values of the dimensions the catalog groups or counts by; any other dimension gets `<name>-<k>`.
DIMENSION_POOLS = {
    "model": ("nova-large", "nova-small", "nova-mini"),
    "gpu_type": ("h100", "a100", "l4"),
    "user_id": tuple(f"user-{k:04d}" for k in range(500)),
}
_OFFSET_SECONDS = 2 * 3600  # the `+02:00` spelling
_EXTRA_FIELD = ',"sdk":"meterstream-loadgen/1.0"'  # an unknown top-level field: must be ignored, not rejected


class RecordKind(IntEnum):
    """What the generator meant a record to be (one byte per record in `Workload.kinds`)."""

    ON_TIME = 0
    LATE = 1
    DUPLICATE = 2  # byte-identical re-send of an earlier record
    DUPLICATE_CONFLICT = 3  # same (tenant_id, event_id) as an earlier record, different payload
    MALFORMED = 4


class CorrectionKind(StrEnum):
    """What the generator meant a correction to be (`CorrectionRecord.kind`)."""

    CANCEL = "cancel"
    AMEND_VALUE = "amend_value"
    AMEND_DIMENSIONS = "amend_dimensions"  # a group-by dimension: the event moves to another series
    DUPLICATE = "duplicate_correction"  # a re-send of an earlier correction (same id, same fingerprint)
    UNKNOWN_EVENT = "unknown_event"  # of an event id never sent
    NOT_CORRECTABLE = "aggregation_not_correctable"  # of a meter not in BILLED_CORRECTION_AGGREGATIONS


APPLIED = "applied"  # `CorrectionRecord.intended` of a correction meant to be applied
_CORRECTION_OUTCOME = {
    CorrectionKind.CANCEL: APPLIED,
    CorrectionKind.AMEND_VALUE: APPLIED,
    CorrectionKind.AMEND_DIMENSIONS: APPLIED,
    CorrectionKind.DUPLICATE: CorrectionRejectionReason.DUPLICATE_CORRECTION.value,
    CorrectionKind.UNKNOWN_EVENT: CorrectionRejectionReason.UNKNOWN_EVENT.value,
    CorrectionKind.NOT_CORRECTABLE: CorrectionRejectionReason.AGGREGATION_NOT_CORRECTABLE.value,
}


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """One `usage-corrections` record and what it is meant to be."""

    record: bytes  # the JSON, one line
    partition_key: int  # CRC-32 of tenant_id \0 correction_id
    kind: CorrectionKind
    intended: str  # APPLIED, or the rejection reason, when decided after every usage event was seen
    event_index: int  # position in the usage stream of the event it corrects; -1 for none (unknown_event)


@dataclass(frozen=True)
class WorkloadSpec:
    seed: int = 0
    events: int = 10_000  # total records emitted, every kind included
    tenants: tuple[str, ...] | None = None  # None: every tenant of the catalog
    customers_per_tenant: int = 100
    meters: tuple[str, ...] | None = None  # None: every meter of each tenant; else those of these it has
    start: datetime = DEFAULT_START
    duration: timedelta = timedelta(minutes=10)
    duplicate_rate: float = 0.05
    conflicting_duplicate_share: float = 0.2
    late_rate: float = 0.01
    malformed_rate: float = 0.01
    window_size: timedelta = timedelta(minutes=1)
    out_of_orderness: timedelta = timedelta(seconds=10)
    # Seven minutes: the job's watermark is the lowest clock among its partition's customers (issue 15), so in a
    # topic written in one burst it waits for the customer silent longest, measured 1.5-6 minutes behind the front
    # in the demo's and the chaos trial's workloads; a late event must be older than that to be late for sure.
    late_margin: timedelta = timedelta(minutes=7)
    late_spread: timedelta = timedelta(minutes=3)  # late events are up to this much older than the bound
    jitter_share: float = 0.5  # on-time events are at most jitter_share * out_of_orderness behind the front
    duplicate_horizon: int = 10_000  # a re-send reaches back at most this many records of its tenant
    unknown_field_rate: float = 0.02  # records carrying an extra top-level field (forward compatibility)
    timestamp_styles: tuple[str, ...] = TIMESTAMP_STYLES
    malformed_reasons: tuple[DeadLetterReason, ...] = MALFORMED_REASONS
    catalog_path: Path = DEFAULT_CATALOG
    # Corrections (module docstring): their number as a share of the first-seen events, and their mix.
    correction_rate: float = 0.0
    correction_reject_share: float = 0.1  # of the corrections: meant to be rejected (a third per reason)
    correction_cancel_share: float = 0.4  # of the applicable ones: cancels
    correction_dimension_share: float = 0.15  # of the applicable ones: group-by dimension amends (else value amends)

    def __post_init__(self) -> None:
        # Lists are accepted for convenience; stored as tuples so the spec stays hashable.
        for name in ("tenants", "meters", "timestamp_styles", "malformed_reasons"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if self.events < 0 or self.customers_per_tenant < 1 or self.duplicate_horizon < 1:
            raise ValueError("events >= 0, customers_per_tenant >= 1 and duplicate_horizon >= 1 are required")
        rates = (self.duplicate_rate, self.late_rate, self.malformed_rate)
        if any(r < 0 for r in rates) or sum(rates) >= 1:
            raise ValueError("rates must be >= 0 and sum to less than 1")
        if not 0 <= self.jitter_share < 1 or not 0 <= self.conflicting_duplicate_share <= 1:
            raise ValueError("jitter_share must be in [0, 1) and conflicting_duplicate_share in [0, 1]")
        if self.duration <= timedelta(0) or self.window_size <= timedelta(0):
            raise ValueError("duration and window_size must be positive")
        unknown_styles = set(self.timestamp_styles) - set(TIMESTAMP_STYLES)
        if not self.timestamp_styles or unknown_styles:
            raise ValueError(f"timestamp_styles must be a non-empty subset of {TIMESTAMP_STYLES}")
        if self.malformed_rate > 0 and not self.malformed_reasons:
            raise ValueError("malformed_rate > 0 needs at least one malformed reason")
        unsupported = set(self.malformed_reasons) - set(MALFORMED_REASONS)
        if unsupported:
            raise ValueError(f"cannot generate reasons {sorted(unsupported)}")
        shares = (self.correction_reject_share, self.correction_cancel_share, self.correction_dimension_share)
        if not 0 <= self.correction_rate <= 1 or any(not 0 <= share <= 1 for share in shares):
            raise ValueError("correction_rate and the correction shares must be in [0, 1]")
        if self.correction_cancel_share + self.correction_dimension_share > 1:
            raise ValueError("correction_cancel_share + correction_dimension_share must be at most 1")

    @property
    def start_ms(self) -> int:
        return _to_ms(self.start)

    @property
    def end(self) -> datetime:
        return self.start.astimezone(UTC) + self.duration

    @property
    def late_bound_lag(self) -> timedelta:
        """A late event is older than `max event time so far - late_bound_lag` at its position."""
        return self.out_of_orderness + self.window_size + self.late_margin


@dataclass
class GroundTruth:
    """What the generator intended, counted while generating."""

    records: int = 0
    on_time: int = 0
    intended_late: int = 0
    intended_duplicates: int = 0  # byte-identical and conflicting together
    intended_conflicting_duplicates: int = 0
    intended_malformed: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    max_event_time_ms: int | None = None  # of the records meant to be valid

    def max_event_time(self, spec: WorkloadSpec) -> datetime:
        ms = self.max_event_time_ms if self.max_event_time_ms is not None else spec.start_ms
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    def reference_time(self, spec: WorkloadSpec) -> datetime:
        """An instant just after the workload: a `now` under which every valid record is neither too old nor
        too far in the future (use it as the billing job's `--reference-time`)."""
        return self.max_event_time(spec).replace(microsecond=0) + timedelta(seconds=1)

    @property
    def first_seen(self) -> int:
        """Valid events counted once: what the job should window (on time) or route (late)."""
        return self.on_time + self.intended_late

    @property
    def valid(self) -> int:
        return self.first_seen + self.intended_duplicates


@dataclass
class Workload:
    spec: WorkloadSpec
    records: list[bytes]
    kinds: bytearray  # RecordKind per record
    partition_keys: array  # 'I': CRC-32 of tenant_id \0 event_id per record
    malformed_reasons: dict[int, DeadLetterReason]  # record index -> the reason it must be rejected with
    truth: GroundTruth
    corrections: list[CorrectionRecord] = field(default_factory=list)  # to produce after the records

    @property
    def intended_duplicates(self) -> int:
        return self.truth.intended_duplicates

    @property
    def intended_late(self) -> int:
        return self.truth.intended_late

    @property
    def intended_malformed(self) -> int:
        return self.truth.intended_malformed

    @property
    def max_event_time(self) -> datetime:
        return self.truth.max_event_time(self.spec)

    @property
    def reference_time(self) -> datetime:
        return self.truth.reference_time(self.spec)

    def kind(self, index: int) -> RecordKind:
        return RecordKind(self.kinds[index])

    def partition(self, index: int, partitions: int) -> int:
        return self.partition_keys[index] % partitions

    def after(self, earlier: Sequence[Workload]) -> Workload:
        """This workload's records preceded by those of `earlier` (each in order): one input with, say, last
        month's tail first. Spec and ground truth stay this workload's (its reference time, its intended
        duplicates, late and malformed records); the earlier records' kinds and dead-letter reasons come along."""
        records, kinds, keys, reasons = [], bytearray(), array("I"), {}
        for part in (*earlier, self):
            reasons.update({len(records) + i: reason for i, reason in part.malformed_reasons.items()})
            records += part.records
            kinds += part.kinds
            keys += part.partition_keys
        return Workload(self.spec, records, kinds, keys, reasons, self.truth, self.corrections)


# ---- generation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MeterPlan:
    name: str
    name_json: str  # the meter as a JSON string literal
    aggregation: str
    dimensions: tuple[str, ...]  # group_by + unique_dimension
    unique_dimension: str | None


@dataclass
class _TenantPlan:
    tenant_id: str
    tenant_json: str
    meters: list[_MeterPlan]  # expanded by weight: uniform index choice = weighted choice
    customers: list[str]
    history: list[tuple]  # ring buffer of render arguments of emitted valid records
    cursor: int = 0
    # A sample of on-time events, (event time, render arguments, meter) in stream order: the series late events
    # belong to.
    past: deque = field(default_factory=deque)
    on_time: int = 0


LATE_SAMPLE_EVERY = 32


def _to_ms(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(milliseconds=1)


def _plans(spec: WorkloadSpec, catalog: Catalog) -> list[_TenantPlan]:
    tenants = spec.tenants if spec.tenants is not None else tuple(catalog.tenants)
    plans = []
    for tenant_id in tenants:
        tenant = catalog.tenant(tenant_id)
        names = [m for m in tenant.meters if spec.meters is None or m in spec.meters]
        if not names:
            raise ValueError(f"tenant {tenant_id!r} has none of the meters {spec.meters}")
        weighted = []
        for name in names:
            meter: Meter = tenant.meters[name]
            dims = tuple(meter.group_by) + ((meter.unique_dimension,) if meter.unique_dimension else ())
            plan = _MeterPlan(name, _jstr(name), meter.aggregation, dims, meter.unique_dimension)
            weighted += [plan] * METER_WEIGHTS.get(name, 1)
        customers = [f"cust-{k:05d}" for k in range(spec.customers_per_tenant)]
        plans.append(_TenantPlan(tenant_id, _jstr(tenant_id), weighted, customers, []))
    if not plans:
        raise ValueError("the workload needs at least one tenant")
    return plans


def _jstr(text: str) -> str:
    """A JSON string literal for the plain ASCII names used here (ids, meters, dimension values)."""
    if any(c in text for c in '"\\') or not text.isascii() or not text.isprintable():
        raise ValueError(f"{text!r} needs escaping; the generator only builds plain ASCII names")
    return f'"{text}"'


class _Generator:
    def __init__(self, spec: WorkloadSpec, catalog: Catalog | None = None) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.plans = _plans(spec, catalog or load_catalog(spec.catalog_path))
        self.truth = GroundTruth()
        self._prefix_cache: dict[tuple[int, bool], str] = {}
        self._dims_cache: dict[tuple[tuple[str, str], ...], str] = {}
        self.corrections: list[CorrectionRecord] = []
        self._corrector = _Corrector(spec, self.plans, self.corrections) if spec.correction_rate > 0 else None

    # -- rendering ------------------------------------------------------------------------------------------

    def _timestamp(self, ms: int, style: str) -> str:
        if style == "epoch_ms":
            return str(ms)
        offset = style == "rfc3339_offset"
        second, millis = divmod(ms, 1000)
        prefix = self._prefix_cache.get((second, offset))
        if prefix is None:
            if len(self._prefix_cache) > 100_000:
                self._prefix_cache.clear()
            local = datetime.fromtimestamp(second + (_OFFSET_SECONDS if offset else 0), tz=UTC)
            prefix = '"' + local.strftime("%Y-%m-%dT%H:%M:%S")
            self._prefix_cache[(second, offset)] = prefix
        return f'{prefix}.{millis:03d}{"+02:00" if offset else "Z"}"'

    def _value(self, meter: _MeterPlan) -> str | None:
        """The value's decimal text (None: no value), by meter kind; never a float."""
        r = self.rng.random()
        if meter.aggregation == "unique_count":
            return None
        if meter.aggregation == "count":
            return "1" if r < 0.2 else None
        name = meter.name
        if name.endswith("tokens"):
            return str(1 + int(r * (4000 if name.startswith("input") else 1500)))
        if name == "seats" or meter.aggregation in ("max", "min"):
            return str(1 + int(r * 50))
        scaled = int(r * 600_000)  # 0.000 .. 599.999 (gpu seconds, GB, ...)
        if meter.aggregation == "last":
            return f"{scaled // 1000}.{(scaled // 10) % 100:02d}"
        return f"{scaled // 1000}.{scaled % 1000:03d}"

    def _dimensions(self, meter: _MeterPlan) -> tuple[tuple[str, str], ...]:
        rng = self.rng
        dims = []
        for name in meter.dimensions:
            pool = DIMENSION_POOLS.get(name)
            if pool is None:
                dims.append((name, f"{name}-{int(rng.random() * 4)}"))
            elif name == "model":  # large models dominate
                dims.append((name, pool[0 if rng.random() < 0.5 else 1 + int(rng.random() * (len(pool) - 1))]))
            else:
                dims.append((name, pool[int(rng.random() * len(pool))]))
        return tuple(dims)

    def _render(self, args: tuple) -> str:
        event_id, tenant_json, customer, meter_json, ts_text, value, value_as_number, dims, extra = args
        if value is None:
            value_text = ""
        elif value_as_number:
            value_text = f',"value":{value}'
        else:
            value_text = f',"value":"{value}"'
        if dims:
            dims_text = self._dims_cache.get(dims)
            if dims_text is None:
                dims_text = ',"dimensions":{' + ",".join(f"{_jstr(k)}:{_jstr(v)}" for k, v in dims) + "}"
                self._dims_cache[dims] = dims_text
        else:
            dims_text = ""
        return (
            f'{{"event_id":"{event_id}","tenant_id":{tenant_json},"customer_id":"{customer}","meter":{meter_json},'
            f'"timestamp":{ts_text}{value_text}{dims_text}{_EXTRA_FIELD if extra else ""}}}'
        )

    def _event_args(self, tenant: _TenantPlan, event_id: str, ts_ms: int) -> tuple[tuple, _MeterPlan]:
        rng = self.rng
        spec = self.spec
        meter = tenant.meters[int(rng.random() * len(tenant.meters))]
        # Quadratic skew: a few customers send much of the traffic, yet every customer sends some.
        r = rng.random()
        customer = tenant.customers[int(r * r * len(tenant.customers))]
        style = spec.timestamp_styles[int(rng.random() * len(spec.timestamp_styles))]
        args = (
            event_id,
            tenant.tenant_json,
            customer,
            meter.name_json,
            self._timestamp(ts_ms, style),
            self._value(meter),
            rng.random() < 0.5,
            self._dimensions(meter) if meter.dimensions else None,
            rng.random() < spec.unknown_field_rate,
        )
        return args, meter

    @staticmethod
    def _late_series(tenant: _TenantPlan, bound_ms: int) -> tuple[int, tuple, _MeterPlan] | None:
        """The newest sampled on-time event of the tenant older than `bound_ms` (its series fired its window before
        a record at this position arrives), or None; older samples are dropped, the bound only grows."""
        past = tenant.past
        while len(past) >= 2 and past[1][0] < bound_ms:
            past.popleft()
        return past[0] if past and past[0][0] < bound_ms else None

    def _late_args(self, earlier: tuple, meter: _MeterPlan, event_id: str, ts_ms: int) -> tuple:
        """A new event of the earlier event's series (customer, meter, dimensions) at `ts_ms`."""
        rng = self.rng
        style = self.spec.timestamp_styles[int(rng.random() * len(self.spec.timestamp_styles))]
        return (event_id, earlier[1], earlier[2], earlier[3], self._timestamp(ts_ms, style), self._value(meter),
                rng.random() < 0.5, earlier[7], rng.random() < self.spec.unknown_field_rate)

    def _remember(self, tenant: _TenantPlan, args: tuple, meter: _MeterPlan, record: bytes) -> None:
        entry = (args, meter, record)
        horizon = self.spec.duplicate_horizon
        if len(tenant.history) < horizon:
            tenant.history.append(entry)
        else:
            tenant.history[tenant.cursor] = entry
            tenant.cursor = (tenant.cursor + 1) % horizon

    def _conflicting(self, args: tuple, meter: _MeterPlan) -> tuple:
        """The same event (same ids, time) with a payload that differs in what the meter bills."""
        fields = list(args)
        old_value, old_dims = args[5], args[7]
        if meter.aggregation == "unique_count" and meter.unique_dimension:
            dims = dict(old_dims or ())
            pool = DIMENSION_POOLS.get(meter.unique_dimension, ("other-user",))
            dims[meter.unique_dimension] = next(v for v in (pool[int(self.rng.random() * len(pool))], *pool)
                                                if v != dims.get(meter.unique_dimension))
            fields[7] = tuple(dims.items())
        else:
            value = self._value(meter) if meter.aggregation != "count" else "2"
            while value is None or value == old_value:
                value = str(int(old_value or "0") + 1) if old_value and "." not in old_value else "7"
            fields[5] = value
        return tuple(fields)

    # -- malformed records ---------------------------------------------------------------------------------

    def _malformed(self, reason: DeadLetterReason, tenant: _TenantPlan, event_id: str, ts_ms: int) -> bytes:
        args, meter = self._event_args(tenant, event_id, ts_ms)
        fields = list(args)
        value_meters = [m for m in tenant.meters if m.aggregation not in ("count", "unique_count")]
        if reason in (DeadLetterReason.NEGATIVE_VALUE, DeadLetterReason.INVALID_VALUE,
                      DeadLetterReason.MISSING_VALUE) and value_meters:
            meter = value_meters[int(self.rng.random() * len(value_meters))]
            fields[3] = meter.name_json
            fields[7] = self._dimensions(meter) if meter.dimensions else None
            fields[5] = self._value(meter)
        if reason is DeadLetterReason.NOT_UTF8:
            return self._render(tuple(fields)).encode().replace(b'"customer_id":"', b'"customer_id":"\xff\xfe', 1)
        if reason is DeadLetterReason.MALFORMED_JSON:
            text = self._render(tuple(fields))
            return text[: len(text) // 2].encode()  # a truncated write
        if reason is DeadLetterReason.NOT_AN_OBJECT:
            return ("[" + self._render(tuple(fields)) + "]").encode()
        if reason is DeadLetterReason.MISSING_FIELD:
            field_name = ("event_id", "customer_id", "meter", "timestamp")[int(self.rng.random() * 4)]
            text = self._render(tuple(fields))
            start = text.index(f'"{field_name}":')
            end = text.find(',"', start)
            if end == -1:  # the last field: drop it with the comma before it
                return (text[: start - 1] + "}").encode()
            return (text[:start] + text[end + 1:]).encode()
        if reason is DeadLetterReason.INVALID_FIELD:
            text = self._render(tuple(fields))
            return text.replace(f'"customer_id":"{fields[2]}"', f'"customer_id":{1 + int(self.rng.random() * 9999)}',
                                1).encode()
        if reason is DeadLetterReason.INVALID_TIMESTAMP:
            moment = datetime.fromtimestamp(ts_ms // 1000, tz=UTC)
            spellings = (
                moment.strftime('"%Y-%m-%d %H:%M:%S"'),  # no T, no offset
                moment.strftime('"%Y-%m-%dT%H:%M:%S"'),  # no offset
                f'"{ts_ms}"',  # epoch ms as a string
                "-1",  # before the epoch
            )
            fields[4] = spellings[int(self.rng.random() * len(spellings))]
        elif reason is DeadLetterReason.INVALID_VALUE:
            fields[5] = ("1e3", "01.5", "12.", "abc")[int(self.rng.random() * 4)]
            fields[6] = False  # as a string: a bare `abc` would be malformed JSON instead
        elif reason is DeadLetterReason.NEGATIVE_VALUE:
            fields[5] = "-" + (fields[5] if fields[5] not in (None, "0") else "5")
        elif reason is DeadLetterReason.UNKNOWN_TENANT:
            fields[1] = _jstr(UNKNOWN_TENANT)
        elif reason is DeadLetterReason.UNKNOWN_METER:
            fields[3] = _jstr(UNKNOWN_METER)
        elif reason is DeadLetterReason.MISSING_VALUE:
            fields[5] = None
            if not value_meters:  # only value-less meters here: fall back to a reason the tenant can produce
                fields[3] = _jstr(UNKNOWN_METER)
        elif reason is DeadLetterReason.TOO_OLD:
            fields[4] = self._timestamp(ts_ms - TOO_OLD_BY // timedelta(milliseconds=1), "rfc3339_z")
        return self._render(tuple(fields)).encode()

    # -- the stream -----------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, bytes, int, DeadLetterReason | None]]:
        spec, rng, truth = self.spec, self.rng, self.truth
        n = spec.events
        start_ms = spec.start_ms
        span_ms = spec.duration // timedelta(milliseconds=1)
        jitter_ms = int(spec.out_of_orderness / timedelta(milliseconds=1) * spec.jitter_share)
        lag_ms = spec.late_bound_lag // timedelta(milliseconds=1)
        spread_ms = max(1, spec.late_spread // timedelta(milliseconds=1))
        # Late events need `front - lag > start`: they can only begin after this position; scale the rate up.
        late_from = min(n, int((lag_ms + jitter_ms + 1) * n / span_ms) + 1) if n else 0
        late_p = spec.late_rate * n / (n - late_from) if n > late_from else 0.0
        malformed_p = spec.malformed_rate
        dup_p = malformed_p + spec.duplicate_rate
        reasons = spec.malformed_reasons
        plans = self.plans
        conflict_share = spec.conflicting_duplicate_share
        crc32 = zlib.crc32
        max_ts = None
        seed = spec.seed
        corrector = self._corrector

        for i in range(n):
            base = start_ms + span_ms * i // n
            tenant = plans[int(rng.random() * len(plans))]
            r = rng.random()
            if r < malformed_p:
                event_id = f"e{seed}-{i}"
                ts = max(start_ms, base - int(rng.random() * jitter_ms))
                reason = reasons[int(rng.random() * len(reasons))]
                record = self._malformed(reason, tenant, event_id, ts)
                if reason is DeadLetterReason.MISSING_VALUE and UNKNOWN_METER.encode() in record:
                    reason = DeadLetterReason.UNKNOWN_METER
                truth.intended_malformed += 1
                truth.malformed_by_reason[reason.value] = truth.malformed_by_reason.get(reason.value, 0) + 1
                yield RecordKind.MALFORMED, record, crc32(f"{tenant.tenant_id}\0{event_id}".encode()), reason
                continue
            if r < dup_p and tenant.history:
                args, meter, record = tenant.history[int(rng.random() * len(tenant.history))]
                kind = RecordKind.DUPLICATE
                if rng.random() < conflict_share:
                    record = self._render(self._conflicting(args, meter)).encode()
                    kind = RecordKind.DUPLICATE_CONFLICT
                    truth.intended_conflicting_duplicates += 1
                truth.intended_duplicates += 1
                yield kind, record, crc32(f"{tenant.tenant_id}\0{args[0]}".encode()), None
                continue
            event_id = f"e{seed}-{i}"
            kind = RecordKind.ON_TIME
            ts = max(start_ms, base - int(rng.random() * jitter_ms))
            earlier = None
            if i >= late_from and r < dup_p + late_p and max_ts is not None and max_ts - lag_ms > start_ms:
                earlier = self._late_series(tenant, max_ts - lag_ms)  # exclusive: a late timestamp is older
            if earlier is not None:
                earlier_ts, earlier_args, meter = earlier
                low = max(start_ms, earlier_ts - spread_ms)
                ts = low + int(rng.random() * (earlier_ts - low + 1))
                args = self._late_args(earlier_args, meter, event_id, ts)
                kind = RecordKind.LATE
                truth.intended_late += 1
            else:
                truth.on_time += 1
                if max_ts is None or ts > max_ts:
                    max_ts = ts
                args, meter = self._event_args(tenant, event_id, ts)
                tenant.on_time += 1
                if tenant.on_time % LATE_SAMPLE_EVERY == 0:
                    tenant.past.append((ts, args, meter))
            record = self._render(args).encode()
            self._remember(tenant, args, meter, record)
            if corrector is not None:
                corrector.observe(i, tenant, args, meter, ts)
            yield kind, record, crc32(f"{tenant.tenant_id}\0{event_id}".encode()), None
        truth.records = n
        truth.max_event_time_ms = max_ts


# ---- corrections ---------------------------------------------------------------------------------------------


class _Corrector:
    """Picks the corrections while the usage is generated (module docstring), from a random stream of its own.

    Per first-seen event: one draw decides whether this event is corrected (further draws then say how), one
    whether an extra rejectable correction (unknown event, or a re-send of an earlier correction) follows; all from
    this stream alone, so the corrections are a function of the seed and the usage. The probabilities make each
    kind's expected share of `correction_rate` x first-seen events the spec's: the event's meter decides which share
    it serves (billed aggregations: applicable; others, none today: `aggregation_not_correctable`), scaled by how
    often the workload's meters are of each kind.
    """

    RESEND_WINDOW = 1_000  # a re-send repeats one of the last this many first copies

    def __init__(self, spec: WorkloadSpec, plans: list[_TenantPlan], out: list[CorrectionRecord]) -> None:
        self.spec = spec
        self.out = out
        self.rng = random.Random(f"meterstream-corrections-{spec.seed}")
        self.first_copies: deque = deque(maxlen=self.RESEND_WINDOW)  # (tenant_id, correction_id, payload dict)
        self.count = 0
        # Share of first-seen events whose meter is not correctable: tenants are drawn uniformly, meters uniformly
        # from the weighted list; late events repeat sampled on-time series, so they follow the same mix.
        share_nc = sum(
            sum(m.aggregation not in BILLED_CORRECTION_AGGREGATIONS for m in plan.meters) / len(plan.meters)
            for plan in plans
        ) / len(plans)
        rate, reject = spec.correction_rate, spec.correction_reject_share
        third = rate * reject / 3
        self.p_applicable = min(1.0, rate * (1 - reject) / (1 - share_nc)) if share_nc < 1 else 0.0
        self.p_not_correctable = min(1.0, third / share_nc) if share_nc > 0 else 0.0
        self.p_unknown = third if share_nc > 0 else 2 * third
        self.p_resend = third

    def observe(self, index: int, tenant: _TenantPlan, args: tuple, meter: _MeterPlan, ts_ms: int) -> None:
        """A first-seen event (on time or late) at stream position `index`, rendered from `args`."""
        rng = self.rng
        correctable = meter.aggregation in BILLED_CORRECTION_AGGREGATIONS
        if rng.random() < (self.p_applicable if correctable else self.p_not_correctable):
            self._correct(index, tenant, args, meter, ts_ms, correctable)
        extra = rng.random()
        if extra < self.p_unknown:
            payload = {"tenant_id": tenant.tenant_id, "event_id": f"e{self.spec.seed}-never-{self.count}",
                       "action": "cancel", "sent_at": _rfc3339(ts_ms + 60_000)}
            self._emit(CorrectionKind.UNKNOWN_EVENT, payload, -1)
        elif extra < self.p_unknown + self.p_resend and self.first_copies:
            tenant_id, correction_id, payload = self.first_copies[int(rng.random() * len(self.first_copies))]
            if rng.random() < 0.5:  # another sent_at and a note: the fingerprint ignores both, still a duplicate
                payload = {**payload, "sent_at": _rfc3339(ts_ms + 120_000), "note": "re-sent by the client"}
            record = _correction_json(correction_id, payload)
            self.out.append(CorrectionRecord(
                record, zlib.crc32(f"{tenant_id}\0{correction_id}".encode()), CorrectionKind.DUPLICATE,
                _CORRECTION_OUTCOME[CorrectionKind.DUPLICATE], -1))

    def _correct(self, index: int, tenant: _TenantPlan, args: tuple, meter: _MeterPlan, ts_ms: int,
                 correctable: bool) -> None:
        rng, spec = self.rng, self.spec
        payload: dict = {"tenant_id": tenant.tenant_id, "event_id": args[0]}
        amendable = [d for d in meter.dimensions if d != meter.unique_dimension or meter.aggregation == "unique_count"]
        r = rng.random()
        if r < spec.correction_cancel_share:
            kind, payload["action"] = CorrectionKind.CANCEL, "cancel"
        elif r < spec.correction_cancel_share + spec.correction_dimension_share and amendable and args[7]:
            kind, payload["action"] = CorrectionKind.AMEND_DIMENSIONS, "amend"
            dims = dict(args[7])
            name = amendable[int(rng.random() * len(amendable))]
            pool = DIMENSION_POOLS.get(name) or tuple(f"{name}-{k}" for k in range(4))
            dims[name] = next(v for v in (pool[int(rng.random() * len(pool))], *pool) if v != dims.get(name))
            payload["dimensions"] = dims  # the whole map: a dimension amend replaces it
        else:
            kind, payload["action"] = CorrectionKind.AMEND_VALUE, "amend"
            payload["value"] = self._new_value(meter, args[5])
        if not correctable:
            kind = CorrectionKind.NOT_CORRECTABLE
        payload["sent_at"] = _rfc3339(ts_ms + 60_000 + int(rng.random() * 3_600_000))
        if rng.random() < 0.1:
            payload["note"] = "customer dispute" if payload["action"] == "cancel" else "metering fix"
        self._emit(kind, payload, index)

    def _new_value(self, meter: _MeterPlan, old: str | None) -> str | int:
        """A replacement value unlike the old one: a decimal string or an integer JSON number."""
        rng = self.rng
        if meter.aggregation == "count":
            return "2"  # a count meter counts events: its value is not read (applied with no delta)
        while True:
            if meter.name.endswith("tokens") or meter.aggregation in ("max", "min") or meter.name == "seats":
                value: str | int = 1 + int(rng.random() * 4000)
            else:
                scaled = int(rng.random() * 600_000)
                value = f"{scaled // 1000}.{scaled % 1000:03d}"
            if old is None or Decimal(str(value)) != Decimal(old):
                return str(value) if rng.random() < 0.5 else value

    def _emit(self, kind: CorrectionKind, payload: dict, event_index: int) -> None:
        correction_id = f"c{self.spec.seed}-{self.count}"
        self.count += 1
        tenant_id = payload["tenant_id"]
        self.out.append(CorrectionRecord(
            _correction_json(correction_id, payload), zlib.crc32(f"{tenant_id}\0{correction_id}".encode()), kind,
            _CORRECTION_OUTCOME[kind], event_index))
        self.first_copies.append((tenant_id, correction_id, payload))


def _correction_json(correction_id: str, payload: dict) -> bytes:
    return json.dumps({"correction_id": correction_id, **payload}, separators=(",", ":")).encode()


def _rfc3339(ms: int) -> str:
    second, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def iter_workload(
    spec: WorkloadSpec,
    *,
    truth: GroundTruth | None = None,
    catalog: Catalog | None = None,
    corrections: list[CorrectionRecord] | None = None,
) -> Iterator[tuple[RecordKind, bytes, int, DeadLetterReason | None]]:
    """Stream `(kind, record, partition_key, malformed_reason)` without keeping the records.

    Pass a `GroundTruth` to have it filled in, and a list to have the corrections (`spec.correction_rate`) appended
    to it; both are complete once the iterator is exhausted.
    """
    generator = _Generator(spec, catalog)
    if truth is not None:
        generator.truth = truth
    if corrections is not None and generator._corrector is not None:
        generator._corrector.out = generator.corrections = corrections
    return iter(generator)


def generate_workload(spec: WorkloadSpec, *, catalog: Catalog | None = None) -> Workload:
    records: list[bytes] = []
    kinds = bytearray()
    keys = array("I")
    reasons: dict[int, DeadLetterReason] = {}
    truth = GroundTruth()
    corrections: list[CorrectionRecord] = []
    append_record, append_kind, append_key = records.append, kinds.append, keys.append
    stream = iter_workload(spec, truth=truth, catalog=catalog, corrections=corrections)
    for index, (kind, record, key, reason) in enumerate(stream):
        append_record(record)
        append_kind(kind)
        append_key(key)
        if reason is not None:
            reasons[index] = reason
    return Workload(spec, records, kinds, keys, reasons, truth, corrections)
