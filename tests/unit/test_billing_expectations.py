"""The expected computation of the job tests (`tests.billing_expectations`) on a small script whose outcomes follow
from the rules by hand: the first copy wins, later copies count as same or conflicting payload, a record of a window
its series has fired is late and billed as a late adjustment of that window, a series' windows and adjustments add up
into the period to date."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from tests.billing_expectations import expected_outputs
from udfs import golden
from udfs.windows import to_epoch_ms

T = golden.NOW - timedelta(hours=1)  # a window start (NOW is on a whole minute)


def _record(event_id: str, meter: str, at: timedelta, value: str | None = None, **dims: str) -> bytes:
    record = {"event_id": event_id, "tenant_id": "acme-ai", "customer_id": "c1", "meter": meter,
              "timestamp": to_epoch_ms(T + at), "dimensions": dims}
    if value is not None:
        record["value"] = value
    return json.dumps(record).encode()


def test_outcomes_and_line_items_of_a_script():
    records = [
        _record("e1", "input_tokens", timedelta(seconds=1), "100", model="nova-large"),
        _record("e1", "input_tokens", timedelta(seconds=1), "100.000", model="nova-large"),  # a retry: same content
        _record("e1", "input_tokens", timedelta(seconds=1), "101", model="nova-large"),  # the id reused
        b"not json",
        _record("r1", "requests", timedelta(minutes=2)),  # moves the watermark past the first window
        _record("e2", "input_tokens", timedelta(seconds=30), "7", model="nova-large"),  # its window fired: late
        _record("e3", "input_tokens", timedelta(minutes=3), "50", model="nova-large"),
        _record("e2", "input_tokens", timedelta(seconds=30), "7", model="nova-large"),  # a copy of a late record
    ]
    out = expected_outputs(records, golden.catalog(), now=golden.NOW, window_ms=60_000, out_of_orderness_ms=10_000)
    assert dict(out.counts) == {"received": 8, "dead_lettered": 1, "duplicate_same_payload": 2,
                                "duplicate_conflicting_payload": 1, "billed_late": 1, "windowed": 3}
    assert out.late_event_ids == {("acme-ai", "e2")}
    tokens = [line for line in out.lines if line.meter == "input_tokens"]
    assert [(line.kind, line.window_start, line.quantity, line.period_quantity_to_date, line.event_count)
            for line in tokens] == [
        ("usage", T, Decimal(100), Decimal(100), 1),
        ("late_adjustment", T, Decimal(7), Decimal(107), 1),  # after its window fired, before the next one
        ("usage", T + timedelta(minutes=3), Decimal(50), Decimal(157), 1)]
    assert sum(line.amount for line in tokens) == tokens[-1].period_amount_to_date
    requests = [line for line in out.lines if line.meter == "requests"]
    assert [(line.quantity, line.event_count) for line in requests] == [(Decimal(1), 1)]
