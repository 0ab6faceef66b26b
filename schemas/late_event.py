"""The `usage-late-events` record: a valid usage event that arrived after its series had fired its window.

It carries the normalised event (UTC millisecond timestamp, canonical decimal string) and why it was late:
the window it belonged to and the watermark when it was routed here. Late events are billed as late adjustment line
items (`kind: late_adjustment` on `invoice-line-items`); this topic is their audit trail.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.usage_event import Dimensions, IdString, UsageEvent
from schemas.wire import UtcMillis, WireDecimal


class LateUsageEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: IdString
    tenant_id: IdString
    customer_id: IdString
    meter: IdString
    timestamp: UtcMillis
    value: WireDecimal | None = Field(description="null when the event had none (count meters)")
    dimensions: Dimensions
    window_start: UtcMillis = Field(description="inclusive start of the event's window")
    window_end: UtcMillis = Field(description="exclusive end of the event's window")
    watermark: UtcMillis = Field(description="the watermark when the event was routed here")
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    routed_at: UtcMillis

    @classmethod
    def from_event(
        cls,
        event: UsageEvent,
        *,
        window_start: datetime,
        window_end: datetime,
        watermark: datetime,
        source_partition: int,
        source_offset: int,
        routed_at: datetime,
    ) -> LateUsageEvent:
        return cls(
            event_id=event.event_id,
            tenant_id=event.tenant_id,
            customer_id=event.customer_id,
            meter=event.meter,
            timestamp=event.timestamp,
            value=event.value,
            dimensions=event.dimensions,
            window_start=window_start,
            window_end=window_end,
            watermark=watermark,
            source_partition=source_partition,
            source_offset=source_offset,
            routed_at=routed_at,
        )
