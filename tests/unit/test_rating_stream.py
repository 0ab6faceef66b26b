"""`udfs.rating_stream`, the window operator's order of rules over a stream with corrections: its golden streams
reach every case the Java twin must get right, and the money it bills per period is that of the corrected usage
alone, whatever came late, was cancelled, amended or moved between series, and in whatever watermark steps."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest

from udfs import golden, grouping
from udfs.aggregations import UsageSample
from udfs.corrections import corrections_count
from udfs.rating_stream import Correction, RatingStream
from udfs.windows import from_epoch_ms


def _keys(stream: dict) -> list[tuple]:
    return [(t, c, m, tuple(sorted(json.loads(g).items()))) for t, c, m, g, _ in stream["series"]]


def _final_usage(stream: dict) -> dict[str, tuple[int, int, Decimal | None]]:
    """Each event as billed at the end of the stream's ops: (series, event time, value); cancelled ones gone."""
    events: dict[str, tuple[int, int, Decimal | None]] = {}
    for op in stream["ops"]:
        if op["op"] == "watermark":
            continue
        value = None if op["value"] is None else Decimal(op["value"])
        if op["op"] in ("usage", "add"):
            events[op["event_id"]] = (op["series"], op["event_time_ms"], value)
        elif op["op"] == "remove":
            assert events.pop(op["event_id"])[0] == op["series"]
        else:  # amend of a sum or count event in its own series and window: the value's change
            series, at, old = events[op["event_id"]]
            events[op["event_id"]] = (series, at, None if value is None else old + value)
    return events


def _period_amounts(lines_by_series: dict) -> dict[tuple, Decimal]:
    """Per (series, period start): the sum of its lines (each period's lines telescope to its rounded price)."""
    totals: dict[tuple, Decimal] = defaultdict(Decimal)
    for series, lines in lines_by_series.items():
        for line in lines:
            parsed = json.loads(line) if isinstance(line, str) else json.loads(line.model_dump_json())
            totals[(series, parsed["period_start"])] += Decimal(parsed["amount"])
    return totals


@pytest.fixture(scope="module")
def vectors():
    return golden.load("rating-stream.json")


def test_the_streams_reach_every_case(vectors):
    kinds: Counter = Counter()
    ops: Counter = Counter()
    aggregations = set()
    for stream in vectors["streams"]:
        aggregations |= {s[4] for s in stream["series"]}
        ops.update(op["op"] for op in stream["ops"])
        for lines in stream["lines"].values():
            kinds.update(json.loads(line)["kind"] for line in lines)
    assert aggregations == {"sum", "count", "max", "min", "last"}
    assert set(ops) == {"usage", "remove", "add", "amend", "watermark"}
    assert set(kinds) == {"usage", "late_adjustment", "correction", "prior_period_adjustment"}
    assert min(kinds.values()) >= 10, kinds


@pytest.mark.parametrize("index", range(40))
def test_each_period_bills_the_money_of_its_corrected_usage_alone(vectors, index):
    """The streamed run (late usage, corrections in watermark steps, windows opened past the watermark) against the
    same series given only their final usage, on time: every (series, period) sums to the same money."""
    stream = vectors["streams"][index]
    keys = _keys(stream)
    streamed = {int(series): lines for series, lines in stream["lines"].items()}
    cat = golden.catalog()
    alone = RatingStream(cat, vectors["window_size_ms"], timedelta(milliseconds=vectors["max_age_ms"]),
                         from_epoch_ms(vectors["emitted_at_ms"]))
    for event_id, (series, at, value) in sorted(_final_usage(stream).items(), key=lambda e: e[1][1]):
        alone.usage(keys[series], UsageSample(event_id, from_epoch_ms(at), value), None)
    final = {keys.index(key): lines for key, lines in alone.advance(golden.RATING_STREAM_END_MS).items()}
    expected = _period_amounts(final)
    got = _period_amounts(streamed)
    for key in {*expected, *got}:
        assert got.get(key, Decimal(0)) == expected.get(key, Decimal(0)), (index, key)


def test_a_cancel_after_usage_moved_into_an_empty_window_in_the_same_step_is_decided():
    """An amend of the group moves an event into a series with no usage in its window (the add opens it) and a
    cancel follows after the same watermark: the window opens and empties; the original series gets its line."""
    cat = golden.catalog()
    model = RatingStream(cat, 60_000, timedelta(days=35), from_epoch_ms(golden.EMITTED_MS))
    eu = ("zeta-test", "z1", "low_water", grouping.group_of({"region": "eu"}, ["region"]))
    us = ("zeta-test", "z1", "low_water", grouping.group_of({"region": "us"}, ["region"]))
    t = 1_795_000_000_000 - 1_795_000_000_000 % 60_000
    kept = UsageSample("a", from_epoch_ms(t + 1_000), Decimal("12"))
    moved = UsageSample("b", from_epoch_ms(t + 2_000), Decimal("7"))
    model.usage(eu, kept, None)
    model.usage(eu, moved, None)
    floor = t + 130_000
    assert [line.kind for line in model.advance(floor)[eu]] == ["usage"]
    model.correct(eu, Correction("b", moved, None), floor)
    model.correct(us, Correction("b", None, moved), floor)
    model.correct(us, Correction("b", moved, None), floor)
    lines = model.advance(floor + 1)
    assert [(line.kind, line.period_quantity_to_date) for line in lines[eu]] == [("correction", Decimal("12"))]
    assert us not in lines or all(line.amount == 0 for line in lines[us])


def test_a_correction_line_counts_corrections_not_records():
    assert corrections_count([("e", True, True)]) == 1  # an amend: a remove and an add
    assert corrections_count([("e", True, True), ("e", True, True)]) == 2  # two amends
    assert corrections_count([("e", True, False), ("e", False, True)]) == 1  # moved out and back
    assert corrections_count([("e", True, True), ("e", True, False), ("f", False, True)]) == 3  # amend, cancel; move in


def test_unique_count_series_are_not_the_window_operators():
    model = RatingStream(golden.catalog(), 60_000, timedelta(days=35), from_epoch_ms(golden.EMITTED_MS))
    with pytest.raises(ValueError, match="unique_count"):
        model.usage(("acme-ai", "c1", "active_users", ()), UsageSample("e", from_epoch_ms(0)), None)


def test_a_remove_of_a_window_neither_open_nor_fired_is_refused():
    model = RatingStream(golden.catalog(), 60_000, timedelta(days=35), from_epoch_ms(golden.EMITTED_MS))
    key = ("acme-ai", "c1", "seats", ())
    model.usage(key, UsageSample("a", from_epoch_ms(120_000), Decimal("3")), None)
    model.correct(key, Correction("x", UsageSample("x", from_epoch_ms(601_000), Decimal("3")), None), 500_000)
    with pytest.raises(ValueError, match="neither holds open nor has fired"):
        model.advance(500_001)


def test_the_generator_is_seeded():
    assert golden.rating_stream(random.Random(7), 30) == golden.rating_stream(random.Random(7), 30)
