"""A fired window as the job hands it over in columns, turned into a `WindowAggregate`.

Windows are aggregated inside Flink (in Java operators or SQL, not here) and reach Python, and the Java rating
function `BILLING_LINE_ITEM_JAVA` (`io.meterstream.rating.RateLineItem`), as a few columns; this is the one place that
knows how those columns encode each aggregation:
- sum / max / min: `quantity` (DECIMAL), count: `event_count`;
- last: `last_key` = 15-digit zero-padded event time ms + event_id + NUL + value, so that the greatest key is the
  latest event by time, ties broken by the larger event_id;
- unique_count: `unique_tokens` = comma-joined distinct percent-encoded dimension values (`udfs.grouping`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.invoice_line_item import InvoiceLineItem
from udfs.aggregations import LastObservation, WindowAggregate
from udfs.catalog import Catalog
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
