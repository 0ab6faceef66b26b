"""Aggregators, one small object per aggregation kind, each with two rules:

- the *window rule* (`initialize`, `agg`, `result`): how the events of one tumbling window combine. The job
  computes this inside Flink (Java operators, SQL); the Python version is the specification the job tests compare
  against.
- the *period rule* (`period_initialize`, `period_combine`, `period_quantity`): how window results combine
  into the billing-period quantity that is rated.

Events missing the value (or, for unique_count, the dimension) are skipped by value-based rules: validation
should have rejected them, and an absent value must never be read as zero for max/min/last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from udfs.money import exact

ZERO = Decimal(0)
Group = tuple[tuple[str, str], ...]


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def normalize_group(group: Mapping[str, str] | Iterable[tuple[str, str]]) -> Group:
    """Group as (dimension, value) pairs sorted by dimension: one spelling per group, usable as a key."""
    pairs = group.items() if isinstance(group, Mapping) else group
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


@dataclass(frozen=True)
class UsageSample:
    """What the window rule needs of one accepted event."""

    event_id: str
    event_time: datetime
    value: Decimal | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LastObservation:
    """The `last` payload: the latest value by event time, ties broken by the larger event_id."""

    value: Decimal
    ts: datetime
    event_id: str

    def order_key(self) -> tuple[datetime, str]:
        return (self.ts, self.event_id)


@dataclass(frozen=True)
class WindowAggregate:
    """One fired tumbling window for one (tenant, customer, meter, group).

    The payload depends on the meter's aggregation: `quantity` for sum/count/max/min, `last` for last,
    `distinct_values` for unique_count; the others stay None. `group` is normalised to sorted pairs.
    """

    tenant_id: str
    customer_id: str
    meter: str
    group: Group
    window_start: datetime
    window_end: datetime
    event_count: int
    quantity: Decimal | None = None
    last: LastObservation | None = None
    distinct_values: frozenset[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", normalize_group(self.group))
        _require_aware("window_start", self.window_start)
        _require_aware("window_end", self.window_end)
        if self.last is not None:
            _require_aware("last.ts", self.last.ts)
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")

    @property
    def group_dict(self) -> dict[str, str]:
        return dict(self.group)


class Aggregator(Protocol):
    kind: ClassVar[str]

    def initialize(self) -> Any: ...
    def agg(self, acc: Any, sample: UsageSample) -> Any: ...
    def result(self, acc: Any) -> dict[str, Any]: ...
    def window_quantity(self, window: WindowAggregate) -> Decimal: ...
    def period_initialize(self) -> Any: ...
    def period_combine(self, acc: Any, window: WindowAggregate) -> Any: ...
    def period_quantity(self, acc: Any) -> Decimal: ...


class _QuantityAggregator:
    """Shared shape of sum/count/max/min: window payload and period state are one Decimal (or None)."""

    kind: ClassVar[str]

    def initialize(self) -> Decimal | None:
        return None

    def result(self, acc: Decimal | None) -> dict[str, Any]:
        return {"quantity": acc}

    def window_quantity(self, window: WindowAggregate) -> Decimal:
        return window.quantity if window.quantity is not None else ZERO

    def period_initialize(self) -> Decimal | None:
        return None

    def period_combine(self, acc: Decimal | None, window: WindowAggregate) -> Decimal | None:
        return self.combine(acc, window.quantity)

    def period_quantity(self, acc: Decimal | None) -> Decimal:
        return acc if acc is not None else ZERO

    def combine(self, left: Decimal | None, right: Decimal | None) -> Decimal | None:
        if left is None:
            return right
        if right is None:
            return left
        return self.merge(left, right)

    def merge(self, left: Decimal, right: Decimal) -> Decimal:
        raise NotImplementedError


class SumAggregator(_QuantityAggregator):
    """Window: sum of values. Period: sum of window sums. An empty window sums to 0."""

    kind = "sum"

    def initialize(self) -> Decimal:
        return ZERO

    def agg(self, acc: Decimal | None, sample: UsageSample) -> Decimal | None:
        return self.combine(acc, sample.value)

    def merge(self, left: Decimal, right: Decimal) -> Decimal:
        return exact(lambda: left + right)


class CountAggregator(SumAggregator):
    """Window: number of events (values are ignored, a missing value still counts). Period: sum of counts."""

    kind = "count"

    def agg(self, acc: Decimal | None, sample: UsageSample) -> Decimal:
        return exact(lambda: (acc or ZERO) + 1)


class MaxAggregator(_QuantityAggregator):
    """Window and period: the largest value seen. Empty is None (quantity 0 when rated)."""

    kind = "max"

    def agg(self, acc: Decimal | None, sample: UsageSample) -> Decimal | None:
        return self.combine(acc, sample.value)

    def merge(self, left: Decimal, right: Decimal) -> Decimal:
        return max(left, right)


class MinAggregator(MaxAggregator):
    """Window and period: the smallest value seen. Not monotonic over a period: amounts can go down."""

    kind = "min"

    def merge(self, left: Decimal, right: Decimal) -> Decimal:
        return min(left, right)


class LastAggregator:
    """Window: the value of the latest event (event time, then larger event_id).
    Period: the value of the latest window's last, so the state keeps that window's start with it."""

    kind: ClassVar[str] = "last"

    def initialize(self) -> LastObservation | None:
        return None

    def agg(self, acc: LastObservation | None, sample: UsageSample) -> LastObservation | None:
        if sample.value is None:
            return acc
        candidate = LastObservation(sample.value, sample.event_time, sample.event_id)
        return candidate if acc is None or candidate.order_key() > acc.order_key() else acc

    def result(self, acc: LastObservation | None) -> dict[str, Any]:
        return {"last": acc}

    def window_quantity(self, window: WindowAggregate) -> Decimal:
        return window.last.value if window.last is not None else ZERO

    def period_initialize(self) -> tuple[datetime, LastObservation] | None:
        return None

    def period_combine(
        self, acc: tuple[datetime, LastObservation] | None, window: WindowAggregate
    ) -> tuple[datetime, LastObservation] | None:
        if window.last is None:
            return acc
        candidate = (window.window_start, window.last)
        if acc is None or _last_key(candidate) > _last_key(acc):
            return candidate
        return acc

    def period_quantity(self, acc: tuple[datetime, LastObservation] | None) -> Decimal:
        return acc[1].value if acc is not None else ZERO


def _last_key(entry: tuple[datetime, LastObservation]) -> tuple[datetime, datetime, str]:
    return (entry[0], *entry[1].order_key())


class UniqueCountAggregator:
    """Window: the set of distinct values of one dimension. Period: union of window sets; quantity = its size.

    The period state holds the set itself (not a sketch): exact counts are what we bill, and a billing period
    of one customer's distinct users is small enough to keep.
    """

    kind: ClassVar[str] = "unique_count"

    def __init__(self, dimension: str):
        self.dimension = dimension

    def initialize(self) -> frozenset[str]:
        return frozenset()

    def agg(self, acc: frozenset[str], sample: UsageSample) -> frozenset[str]:
        value = sample.dimensions.get(self.dimension)
        return acc if value is None else acc | {value}

    def result(self, acc: frozenset[str]) -> dict[str, Any]:
        return {"distinct_values": acc}

    def window_quantity(self, window: WindowAggregate) -> Decimal:
        return Decimal(len(window.distinct_values or ()))

    def period_initialize(self) -> frozenset[str]:
        return frozenset()

    def period_combine(self, acc: frozenset[str], window: WindowAggregate) -> frozenset[str]:
        return acc | (window.distinct_values or frozenset())

    def period_quantity(self, acc: frozenset[str]) -> Decimal:
        return Decimal(len(acc))


_SIMPLE: dict[str, type] = {
    "sum": SumAggregator,
    "count": CountAggregator,
    "max": MaxAggregator,
    "min": MinAggregator,
    "last": LastAggregator,
}


def aggregator_for(aggregation: str, unique_dimension: str | None = None) -> Aggregator:
    """The aggregator of a meter; unique_count needs the dimension it counts."""
    if aggregation == "unique_count":
        if not unique_dimension:
            raise ValueError("unique_count needs the dimension whose distinct values are counted")
        return UniqueCountAggregator(unique_dimension)
    try:
        return _SIMPLE[aggregation]()
    except KeyError:
        raise ValueError(f"unknown aggregation {aggregation!r}") from None


def run_window_rule(aggregator: Aggregator, samples: Iterable[UsageSample]) -> dict[str, Any]:
    """Fold samples with the window rule; returns the WindowAggregate payload fields."""
    acc = aggregator.initialize()
    for sample in samples:
        acc = aggregator.agg(acc, sample)
    return aggregator.result(acc)


def aggregate_window(
    aggregator: Aggregator,
    samples: Iterable[UsageSample],
    *,
    tenant_id: str,
    customer_id: str,
    meter: str,
    group: Mapping[str, str] | Group,
    window_start: datetime,
    window_end: datetime,
) -> WindowAggregate:
    """Build the WindowAggregate the job should emit for these samples (the tests' expected value)."""
    samples = list(samples)
    return WindowAggregate(
        tenant_id=tenant_id,
        customer_id=customer_id,
        meter=meter,
        group=normalize_group(group),
        window_start=window_start,
        window_end=window_end,
        event_count=len(samples),
        **run_window_rule(aggregator, samples),
    )
