from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from udfs.aggregations import (
    LastObservation,
    UsageSample,
    WindowAggregate,
    aggregate_window,
    aggregator_for,
    run_window_rule,
)

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def ev(event_id, value=None, *, at=0, **dimensions):
    return UsageSample(event_id, T0 + timedelta(seconds=at), None if value is None else D(value), dimensions)


def last(value, at, event_id):
    return LastObservation(D(value), T0 + timedelta(seconds=at), event_id)


# One table per the Quix habit: (aggregation, samples, expected window payload, expected window quantity).
WINDOW_CASES = [
    ("sum", [], {"quantity": D(0)}, D(0)),
    ("sum", [ev("a", "1.5"), ev("b", "2.25")], {"quantity": D("3.75")}, D("3.75")),
    ("sum", [ev("a", "5"), ev("b", "-2")], {"quantity": D("3")}, D("3")),
    ("sum", [ev("a", "5"), ev("b")], {"quantity": D("5")}, D("5")),  # missing value skipped
    ("count", [], {"quantity": D(0)}, D(0)),
    ("count", [ev("a", "7"), ev("b"), ev("c", "0")], {"quantity": D(3)}, D(3)),  # value irrelevant
    ("max", [], {"quantity": None}, D(0)),
    ("max", [ev("a", "3"), ev("b", "9"), ev("c", "4")], {"quantity": D(9)}, D(9)),
    ("max", [ev("a", "-3"), ev("b", "-9")], {"quantity": D(-3)}, D(-3)),
    ("max", [ev("a"), ev("b", "2")], {"quantity": D(2)}, D(2)),  # None is not zero
    ("min", [], {"quantity": None}, D(0)),
    ("min", [ev("a", "3"), ev("b", "9"), ev("c", "4")], {"quantity": D(3)}, D(3)),
    ("min", [ev("a"), ev("b", "2")], {"quantity": D(2)}, D(2)),
    ("last", [], {"last": None}, D(0)),
    ("last", [ev("a", "1", at=5), ev("b", "2", at=1)], {"last": last("1", 5, "a")}, D(1)),  # event time wins
    ("last", [ev("a", "1", at=5), ev("b", "2", at=5)], {"last": last("2", 5, "b")}, D(2)),  # tie: larger id
    (
        "last",
        [ev("b", "2", at=5), ev("a", "1", at=5)],
        {"last": last("2", 5, "b")},
        D(2),
    ),  # order-independent
    ("last", [ev("a", "4", at=5), ev("b", at=9)], {"last": last("4", 5, "a")}, D(4)),  # missing value skipped
    ("unique_count", [], {"distinct_values": frozenset()}, D(0)),
    (
        "unique_count",
        [ev("a", user_id="u1"), ev("b", user_id="u2"), ev("c", user_id="u1")],
        {"distinct_values": frozenset({"u1", "u2"})},
        D(2),
    ),
    ("unique_count", [ev("a", user_id="u1"), ev("b")], {"distinct_values": frozenset({"u1"})}, D(1)),
]


@pytest.mark.parametrize(("kind", "samples", "payload", "quantity"), WINDOW_CASES)
def test_window_rule(kind, samples, payload, quantity):
    aggregator = aggregator_for(kind, "user_id" if kind == "unique_count" else None)
    assert run_window_rule(aggregator, samples) == payload
    window = aggregate_window(
        aggregator,
        samples,
        tenant_id="t",
        customer_id="c",
        meter="m",
        group={},
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
    )
    assert window.event_count == len(samples)
    assert aggregator.window_quantity(window) == quantity


def window(hour, **payload):
    start = T0 + timedelta(hours=hour)
    return WindowAggregate("t", "c", "m", (), start, start + timedelta(hours=1), 1, **payload)


# (aggregation, windows in arrival order, expected period quantity)
PERIOD_CASES = [
    ("sum", [], D(0)),
    ("sum", [window(0, quantity=D("1.5")), window(1, quantity=D("2")), window(2, quantity=D("-0.5"))], D(3)),
    ("count", [window(0, quantity=D(3)), window(1, quantity=D(4))], D(7)),
    ("max", [], D(0)),
    ("max", [window(0, quantity=D(5)), window(1, quantity=D(3)), window(2, quantity=D(8))], D(8)),
    ("max", [window(0, quantity=D(5)), window(1, quantity=None)], D(5)),
    ("min", [window(0, quantity=D(5)), window(1, quantity=D(3)), window(2, quantity=D(8))], D(3)),
    ("last", [], D(0)),
    ("last", [window(0, last=last("7", 10, "a")), window(1, last=last("2", 3700, "b"))], D(2)),
    # The latest *window* wins, whatever the arrival order.
    ("last", [window(1, last=last("2", 3700, "b")), window(0, last=last("7", 10, "a"))], D(2)),
    ("last", [window(0, last=last("7", 10, "a")), window(1)], D(7)),  # window without a value keeps the last
    ("unique_count", [], D(0)),
    (
        "unique_count",
        [
            window(0, distinct_values=frozenset({"u1", "u2"})),
            window(1, distinct_values=frozenset({"u2", "u3"})),
        ],
        D(3),
    ),
    ("unique_count", [window(0, distinct_values=frozenset({"u1"})), window(1)], D(1)),
]


@pytest.mark.parametrize(("kind", "windows", "quantity"), PERIOD_CASES)
def test_period_rule(kind, windows, quantity):
    aggregator = aggregator_for(kind, "user_id" if kind == "unique_count" else None)
    acc = aggregator.period_initialize()
    for w in windows:
        acc = aggregator.period_combine(acc, w)
    assert aggregator.period_quantity(acc) == quantity


def test_group_is_normalised_and_times_must_be_aware():
    w = WindowAggregate("t", "c", "m", (("z", "1"), ("a", "2")), T0, T0 + timedelta(hours=1), 1)
    assert w.group == (("a", "2"), ("z", "1"))
    assert w.group_dict == {"a": "2", "z": "1"}
    with pytest.raises(ValueError):
        WindowAggregate("t", "c", "m", (), datetime(2025, 1, 1), T0, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError):
        WindowAggregate("t", "c", "m", (), T0, T0, 1)


def test_aggregator_for_rejects_unknown_and_incomplete():
    with pytest.raises(ValueError):
        aggregator_for("avg")
    with pytest.raises(ValueError):
        aggregator_for("unique_count")
