"""Collect a job test's output streams (JSON strings) in one run: each tagged with its name, unioned, collected."""

from __future__ import annotations

import json
from collections.abc import Callable

from pyflink.common import Types
from pyflink.datastream import DataStream


def tagged_union(streams: dict[str, DataStream]) -> DataStream:
    """One stream of `name<TAB>record` for every record of every named stream."""
    tagged = [
        stream.map(lambda value, tag=tag: f"{tag}\t{value}", output_type=Types.STRING()).uid(f"test-tag-{tag}")
        for tag, stream in streams.items()
    ]
    return tagged[0].union(*tagged[1:])


def collect_outputs(
    streams: dict[str, DataStream], on_record: Callable[[dict[str, list[dict]]], None] | None = None
) -> dict[str, list[dict]]:
    """Run the job and return each stream's records (parsed JSON) by name; `on_record(collected)` is called after
    each one. The unique_count line items, if collected, join the line items. A stream that is None (an optional
    output that is off, such as the correction dead letters without corrections) is left out."""
    streams = {tag: stream for tag, stream in streams.items() if stream is not None}
    collected: dict[str, list[dict]] = {tag: [] for tag in streams}
    with tagged_union(streams).execute_and_collect() as results:
        for item in results:
            tag, value = item.split("\t", 1)
            collected[tag].append(json.loads(value))
            if on_record is not None:
                on_record(collected)
    if "unique_count_line_items" in collected:
        collected["line_items"] += collected.pop("unique_count_line_items")
    return collected
