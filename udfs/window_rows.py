"""A fired window as the job hands it over in columns, turned into a `WindowAggregate`.

Windows are aggregated inside Flink (in Java operators or SQL, not here) and reach Python, and the Java rating
function `BILLING_LINE_ITEM_JAVA` (`io.meterstream.rating.RateLineItem`), as a few columns; this is the one place that
knows how those columns encode each aggregation:
- sum / max / min: `quantity` (DECIMAL), count: `event_count`;
- last: `last_key` = 15-digit zero-padded event time ms + event_id + NUL + value, so that the greatest key is the
  latest event by time, ties broken by the larger event_id;
- unique_count: `unique_tokens` = comma-joined distinct percent-encoded dimension values (`udfs.grouping`);
  with corrections on, `unique_token_counts` = comma-joined multiplicities in the same order (how many events of the
  window carry each value: its `udfs.corrections.WindowContents`), and the corrections of a fired window as
  `corrections` = a JSON array of `[event_id, "remove" | "add", token | null]` in arrival order (an amend is a
  remove and an add of one event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.invoice_line_item import InvoiceLineItem
from udfs.aggregations import LastObservation, UsageSample, WindowAggregate
from udfs.catalog import Catalog
from udfs.corrections import Change, WindowContents, corrections_count
from udfs.grouping import decode_unique_token
from udfs.line_items import rate_window
from udfs.windows import from_epoch_ms

LAST_KEY_TIME_DIGITS = 15
LAST_KEY_SEPARATOR = "\x00"


def last_key(event_time_ms: int, event_id: str, value: Decimal | str) -> str:
    """The `last_key` of one event (Java: `RateLineItem.lastKey`; used by the rating parity test)."""
    return f"{event_time_ms:0{LAST_KEY_TIME_DIGITS}d}{event_id}{LAST_KEY_SEPARATOR}{value}"


def parse_last_key(key: str) -> LastObservation:
    ts_ms = int(key[:LAST_KEY_TIME_DIGITS])
    event_id, value = key[LAST_KEY_TIME_DIGITS:].rsplit(LAST_KEY_SEPARATOR, 1)
    return LastObservation(value=Decimal(value), ts=from_epoch_ms(ts_ms), event_id=event_id)


def parse_unique_tokens(joined: str | None) -> frozenset[str]:
    """The distinct values of a fired unique_count window: NULL when it has none; "" is one value, the empty one
    (a dimension value may be empty)."""
    if joined is None:
        return frozenset()
    return frozenset(decode_unique_token(token) for token in joined.split(","))


def unique_window_contents(joined: str | None, counts: str | None, event_count: int) -> WindowContents:
    """The contents of a unique_count window (or of late events of one) from its `unique_tokens` and
    `unique_token_counts` columns: each value with the number of its events that carry it."""
    tokens = [] if joined is None else joined.split(",")
    multiplicities = [] if counts is None else [int(n) for n in counts.split(",")]
    if len(tokens) != len(multiplicities):
        raise ValueError(f"{len(tokens)} unique tokens with {len(multiplicities)} multiplicities")
    members = frozenset((decode_unique_token(t), n) for t, n in zip(tokens, multiplicities, strict=True))
    return WindowContents("unique_count", int(event_count), None, members)


def parse_unique_corrections(text: str, dimension: str) -> tuple[list[Change], int]:
    """The `corrections` column of a fired unique_count window: its changes in arrival order, each record a remove
    or an add of one event's value (none when the event had no value of `dimension`), and how many corrections they
    are (`udfs.corrections.corrections_count`)."""
    changes: list[Change] = []
    sides: list[tuple[str, bool, bool]] = []
    for event_id, action, token in json.loads(text):
        dims = {} if token is None else {dimension: decode_unique_token(token)}
        sample = UsageSample(event_id, _EPOCH, None, dims)
        if action == "remove":
            changes.append((sample, None))
        elif action == "add":
            changes.append((None, sample))
        else:
            raise ValueError(f"correction record action {action!r}")
        sides.append((event_id, action == "remove", action == "add"))
    return changes, corrections_count(sides)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """Window bounds arrive as naive UTC timestamps (the job's SQL session zone is UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window_aggregate_from_row(
    *,
    tenant_id: str,
    customer_id: str,
    meter: str,
    group_json: str,
    aggregation: str,
    window_start: datetime,
    window_end: datetime,
    event_count: int,
    quantity: Decimal | None,
    last_key_value: str | None,
    unique_tokens: str | None,
) -> WindowAggregate:
    common = dict(
        tenant_id=tenant_id,
        customer_id=customer_id,
        meter=meter,
        group=tuple(json.loads(group_json).items()),
        window_start=_utc(window_start),
        window_end=_utc(window_end),
        event_count=int(event_count),
    )
    if aggregation == "count":
        return WindowAggregate(**common, quantity=Decimal(int(event_count)))
    if aggregation == "last":
        return WindowAggregate(**common, last=parse_last_key(last_key_value) if last_key_value else None)
    if aggregation == "unique_count":
        return WindowAggregate(**common, distinct_values=parse_unique_tokens(unique_tokens))
    return WindowAggregate(**common, quantity=quantity)


def line_item_from_period_row(
    catalog: Catalog,
    tenant_id: str,
    customer_id: str,
    meter: str,
    group_json: str,
    aggregation: str,
    window_start_ms: int,
    event_count: int,
    quantity: Decimal | None,
    last_key_value: str | None,
    quantity_before: Decimal | None,
    quantity_after: Decimal | None,
    last_key_before: str | None,
    *,
    window_size: timedelta,
    emitted_at: datetime,
    decided_after: datetime | None = None,
    late: bool = False,
) -> InvoiceLineItem:
    """The line item of one fired window and its period quantities before and after it (the arguments the window
    operator `WindowRating` passes to the Java `BILLING_LINE_ITEM_JAVA`): the Python reference of that function,
    which must produce the same JSON (tests/job/test_rating_parity.py).

    For `last` meters the period quantities are the windows' last values, read from their `last_key`s.
    `decided_after` and `late` as in `udfs.line_items.build_line_item` (the Java `RateLineItem.windowLine` and
    `lateAdjustment`): a window first opened after that watermark, or late events that came after it.
    """
    window_start = from_epoch_ms(window_start_ms)
    window = window_aggregate_from_row(
        tenant_id=tenant_id, customer_id=customer_id, meter=meter, group_json=group_json, aggregation=aggregation,
        window_start=window_start, window_end=window_start + window_size, event_count=event_count,
        quantity=quantity, last_key_value=last_key_value, unique_tokens=None,
    )
    if aggregation == "last":
        quantity_after = parse_last_key(last_key_value).value
        quantity_before = parse_last_key(last_key_before).value if last_key_before else None
    return rate_window(
        window, catalog.tenant(tenant_id), period_quantity_before=quantity_before,
        period_quantity_after=quantity_after, emitted_at=emitted_at, decided_after=decided_after, late=late,
    )
