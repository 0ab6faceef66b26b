"""Golden vectors: what the Python specification answers for every rule that also runs in Java.

The files under `engine/src/test/resources/golden/` are written by this module from the rules in `udfs/` (and
`schemas/`), checked in, and replayed twice: by pytest (`tests/unit/test_golden_vectors.py`: the Python rules, run
on each case, give the recorded answer) and by JUnit (`engine/src/test/java/...GoldenTest`: the Java twin gives
it too). So parity is checked in seconds, without a Flink job; the MiniCluster parity tests stay as end-to-end guards.

Each file: the rule (Python) -> its Java twin.
- `validation.json`: `udfs.validation.validate_usage_record` (reason, the field a detail names, a reject's ids by
  `rejected_record_ids`; a case with a `topic` was read from that tenant topic, its tenant by
  `udfs.validation.tenant_of_topic`) and `udfs.grouping` (ids, event time, value, group_json, unique_token,
  fingerprint) -> `UsageEventParser`, `TenantTopics`.
- `canonical.json`: `udfs.grouping.canonical_json` of flat string maps, `udfs.money.to_wire` -> `CanonicalJson`.
- `windows.json`: `udfs.windows.window_bounds` -> `io.meterstream.windows.TumblingWindows`.
- `periods.json`: `udfs.periods.billing_period` -> `RatingCatalog.Tenant.period` (`BillingPeriodStart`).
- `aggregations.json`: the window and period rules of `udfs.aggregations` (sum, count, max, min, last) ->
  `io.meterstream.rating.PeriodFold`, `RateLineItem.lastKey`/`laterLastKey`.
- `pricing-<model>.json`: `udfs/pricing/<model>.py` -> `io.meterstream.pricing.<Model>Model`.
- `rounding.json`: `udfs.money.round_amount` -> `io.meterstream.money.Money.roundAmount`.
- `line-items.json`: `udfs.window_rows.line_item_from_period_row` (price entry, tier deltas, rounding adjustment,
  period, line item id, the JSON; kind and invoice id of a window's own line, of one first opened after a watermark
  and of late events after one, around each period's close) -> `RateLineItem.eval` / `windowLine` /
  `lateAdjustment`.
- `correction-lines.json`: `udfs.line_items.accumulate_correction` (corrections of one fired window after one
  watermark, with the series' period before them: one or two fired windows, or none; the period quantities before and
  after, the change of the window's quantity, the line's kind, id, invoice id, tier deltas; watermarks around each
  period's close) -> `RateLineItem.correctionLine`.
- `unique-windows.json`: the unique_count window rule of `udfs.aggregations` (distinct values, as the parser's
  tokens) -> `io.meterstream.rating.WindowRating`'s fired unique_count windows (`UniqueCountWindowsGoldenTest`).
- `lateness.json`: `udfs.lateness.SeriesLateness` over streams of records, each after the watermark it came after
  (which records are billed, each series' windows and their counts, and its late adjustments: one per window and
  watermark the late events came after, with their count and line item id) -> `io.meterstream.rating.WindowRating`,
  driven by a keyed operator harness in source order, with the watermarks of two channels merged at random (parallelism
  2), and across a snapshot and restore (`WindowRatingHarnessTest`).
- `rating-stream.json`: `udfs.rating_stream.RatingStream` over streams of one tenant's series (sum, count, max, min,
  last): usage on time, past the watermark and late, cancels and amends (of a value; of a group-by dimension, which
  moves usage between series), watermarks across a period's close and grace, as the routing operator hands them on;
  every line each series writes, in order -> `io.meterstream.rating.WindowRating` in a keyed operator harness, in
  order, through two channels merged at random and across a snapshot and restore (`WindowRatingStreamGoldenTest`).
- `dedup.json`: `udfs.dedup` over streams of copies of events, each with the processing time it arrived at (first,
  duplicate_same_payload or duplicate_conflicting_payload; horizon edges included) -> `io.meterstream.routing.
  DedupTable` (`DedupTableGoldenTest`) and `UsageRouting` in a keyed operator harness (`UsageRoutingHarnessTest`).
- `invoices.json`: `udfs.invoices` over one customer's line items of every kind, negative amounts included, and
  credit drawdowns (wire JSON) with the clock
  advancing to, just before and just after each close, and the end of a bounded input: the invoices written, byte
  for byte, and the lines refused because their invoice had closed -> `io.meterstream.invoices.CustomerInvoices`
  (`InvoicesGoldenTest`, with a state write and read between steps).
- `corrections.json`: the correction ledger of `udfs.corrections` (`observe_event`, `observe_dead_letter`,
  `expire_entry`, `decide`) over streams of first-seen events, dead-lettered ids and corrections (cancels, amends of
  value and/or dimensions, unknown ids, horizon edges, a meter gone from the catalog), each at its processing time:
  every correction's rejection reason or its remove/add contributions -> `io.meterstream.corrections.
  CorrectionLedger` (`CorrectionLedgerGoldenTest`).
- `java-catalog.json`: `udfs.java_catalog.java_catalog_json` of the golden catalog (the checked-in example of the
  one JSON form in which the catalog reaches Java) and what the parser's and the rating's views read from it ->
  `io.meterstream.catalog.JavaCatalog` (`JavaCatalogGoldenTest`).

Cases are data written here (seeded, no hypothesis: the files must not change when a test library does).

    python -m udfs.golden --write   # regenerate after changing a rule (then the Java twin must follow)
    python -m udfs.golden --check   # exit 1 if a checked-in file differs (the test command runs it)
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from schemas.credits import CreditDrawdown
from schemas.dead_letter import DeadLetterReason
from schemas.invoice_line_item import InvoiceLineItem
from schemas.topics import EXAMPLE_SOURCE_TOPICS, EXAMPLE_TENANT_TOPIC_PREFIX
from schemas.usage_correction import UsageCorrection
from schemas.usage_event import UsageEvent
from udfs import corrections, grouping, invoices, line_items
from udfs.aggregations import LastObservation, UsageSample, WindowAggregate, aggregator_for, run_window_rule
from udfs.catalog import (
    Catalog,
    DecimalLoader,
    GraduatedPrice,
    PackagePrice,
    PerUnitPrice,
    VolumePrice,
    parse_catalog,
)
from udfs.dedup import DedupMemory
from udfs.generated import write_or_check
from udfs.java_catalog import java_catalog_json, price_entry
from udfs.lateness import SeriesLateness
from udfs.money import ExactnessError, round_amount, to_wire
from udfs.periods import billing_period
from udfs.pricing import graduated, package, per_unit, volume
from udfs.pricing.priced import Priced
from udfs.rating_stream import Correction, RatingStream
from udfs.validation import Rejection, rejected_record_ids, tenant_of_topic, validate_usage_record
from udfs.window_rows import last_key, line_item_from_period_row
from udfs.windows import from_epoch_ms, to_epoch_ms, window_bounds

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "engine" / "src" / "test" / "resources" / "golden"
SEED = 20261206
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=35)
MAX_FUTURE_SKEW = timedelta(minutes=5)
EMITTED_MS = 1_795_509_095_123
MODELS = {"per_unit": (PerUnitPrice, per_unit), "package": (PackagePrice, package),
          "graduated": (GraduatedPrice, graduated), "volume": (VolumePrice, volume)}

# The catalog every family uses: all aggregations and price models, DST zones, odd precisions and anchor days.
CATALOG_YAML = """
version: 1
tenants:
  acme-ai:
    currency: USD
    amount_precision: 2
    billing_period: {interval: monthly, anchor_day: 1, time_zone: America/New_York}
    meters:
      input_tokens: {aggregation: sum, group_by: [model]}
      requests: {aggregation: count}
      gpu_seconds: {aggregation: sum, group_by: [gpu_type, region]}
      seats: {aggregation: max}
      storage_gb: {aggregation: last}
      active_users: {aggregation: unique_count, unique_dimension: user_id, group_by: [plan]}
    prices:
      input_tokens:
        - {id: in-large, match: {model: nova-large}, model: graduated,
           tiers: [{up_to: 1000000, unit_price: 0.000003}, {up_to: 10000000, unit_price: 0.0000025, flat_fee: 1},
                   {up_to: null, unit_price: 0.000002, flat_fee: 0.005}]}
        - {id: in-small, match: {model: nova-small}, model: volume,
           tiers: [{up_to: 10000000, unit_price: 0.0000005}, {up_to: null, unit_price: 0.0000004, flat_fee: 3}]}
        - {id: in-default, model: per_unit, unit_price: 0.000003}
      requests:
        - {id: requests, model: package, package_size: 1000, package_price: 0.50}
      gpu_seconds:
        - {id: gpu-h100-eu, match: {gpu_type: h100, region: eu}, model: per_unit, unit_price: 0.0013}
        - {id: gpu-h100, match: {gpu_type: h100}, model: per_unit, unit_price: 0.0012}
        - {id: gpu-default, model: package, package_size: 0.25, package_price: 0.0007}
      seats:
        - {id: seats, model: graduated, tiers: [{up_to: 5, unit_price: 0, flat_fee: 49}, {up_to: null, unit_price: 20}]}
      storage_gb:
        - {id: storage, model: per_unit, unit_price: 0.023}
      active_users:
        - {id: users, model: graduated, tiers: [{up_to: 100, unit_price: 0}, {up_to: null, unit_price: 0.10}]}
  zeta-test:
    currency: GBP
    amount_precision: 3
    billing_period: {interval: monthly, anchor_day: 31, time_zone: America/Sao_Paulo}
    meters:
      low_water: {aggregation: min, group_by: [region]}
      balance: {aggregation: last}
      calls: {aggregation: count}
    prices:
      low_water:
        - {id: low-eu, match: {region: eu}, model: volume,
           tiers: [{up_to: 10.5, unit_price: 1.005, flat_fee: 0.0005}, {up_to: 100, unit_price: 0.995, flat_fee: 2},
                   {up_to: null, unit_price: 0.5}]}
        - {id: low-default, model: graduated,
           tiers: [{up_to: 0.001, unit_price: 123.456}, {up_to: null, unit_price: 0.0000001, flat_fee: 0.3335}]}
      balance:
        - {id: balance, model: package, package_size: 2.5, package_price: 0.125}
      calls:
        - {id: calls, model: per_unit, unit_price: 0.0005}
  kathmandu:
    currency: NPR
    amount_precision: 0
    billing_period: {interval: monthly, anchor_day: 29, time_zone: Asia/Kathmandu}
    meters:
      tokens: {aggregation: sum}
    prices:
      tokens:
        - {id: tokens, model: volume, tiers: [{up_to: 1, unit_price: 7, flat_fee: 1}, {up_to: null, unit_price: 0.5}]}
"""
TRICKY = ["é", 'a"b', "x,y=z|w%25", "back\\slash", "ctl\x00\x1f\x7f", "\u2028", "😀\ue000", "日本語", " sp ace~._-", ""]
LARGE = Decimal("12345678901234567890.123456789012345678")  # DECIMAL(38, 18)'s limit
TINY = Decimal("0.000000000000000001")


def catalog() -> Catalog:
    return parse_catalog(yaml.load(CATALOG_YAML, Loader=DecimalLoader), source="udfs.golden")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else to_wire(value)


# ---- validation, canonical JSON and fingerprint -----------------------------------------------------------

_ABSENT = object()
_NUMBER = re.compile(r'"\$num:([^"]*)"')


def _num(token: str) -> str:
    """A JSON number token, spliced in raw (json.dumps would write a float or an int)."""
    return f"$num:{token}"


def _encode(obj: Any, rng: random.Random) -> bytes:
    separators = (",", ":") if rng.random() < 0.7 else None
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5, separators=separators)
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # a lone surrogate can only travel as a \u escape
        text = json.dumps(obj, ensure_ascii=True, separators=separators)
    return _NUMBER.sub(lambda m: m.group(1), text).encode("utf-8")


def _timestamp(rng: random.Random) -> Any:
    now_ms = to_epoch_ms(NOW)
    near = rng.choice([
        -MAX_AGE // timedelta(milliseconds=1), -MAX_AGE // timedelta(milliseconds=1) - 1,
        MAX_FUTURE_SKEW // timedelta(milliseconds=1), MAX_FUTURE_SKEW // timedelta(milliseconds=1) + 1,
        0, -1, -rng.randrange(0, 30 * 86_400_000), rng.randrange(0, 300_000), -40 * 86_400_000, 3_600_000,
    ]) + now_ms
    kind = rng.randrange(12)
    if kind < 3:
        return near
    if kind == 3:
        return _num(str(near))
    if kind == 4:
        return rng.choice([_num("1.5e12"), _num(f"{near}.0"), -1, 253_402_300_800_000, _num("-0"), True, None])
    instant = from_epoch_ms(near)
    offset = rng.choice([timedelta(0), timedelta(hours=5, minutes=45), timedelta(hours=-3), timedelta(hours=14)])
    local = instant.astimezone(UTC) + offset
    digits = rng.choice([0, 1, 3, 6, 9])
    fraction = ("." + f"{local.microsecond:06d}{rng.randrange(1000):03d}"[:digits]) if digits else ""
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    zone = "Z" if offset == timedelta(0) and rng.random() < 0.5 else f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone
    if kind == 5:
        text = rng.choice([text.replace("T", "t"), text[:-6] if zone != "Z" else text[:-1], text.replace(":", "", 1),
                           "2026-02-29T00:00:00Z", "2026-11-24T23:59:60Z", "2026-11-24T24:00:00Z",
                           "2026-11-24T12:00:00+24:00", "2026-11-24T12:00:00+05:60", "0000-12-31T23:00:00Z",
                           "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59.9999999-00:01", "2026-13-01T00:00:00Z",
                           text + " ", "２026-11-24T12:00:00Z", text.replace("-", "\u2212", 1)])
    return text


def _value(rng: random.Random) -> Any:
    kind = rng.randrange(10)
    if kind == 0:
        return _ABSENT
    if kind == 1:
        return None
    digits = rng.choice(["0", "1", "12.5", "0.000000000000000001", "99999999999999999999.999999999999999999",
                         str(rng.randrange(10**6)), f"{rng.randrange(10**4)}.{rng.randrange(10**6):06d}", "1250"])
    if kind < 6:
        return digits
    if kind < 8:
        return _num(digits)
    return rng.choice(["-0", "-0.00", "-1", "-12.5", "1e3", "1E3", "01", "+1", ".5", "5.", "0.0000000000000000001",
                       "123456789012345678901", "NaN", "", " 1", "1_000", _num("-1"), _num("1e3"), _num("1.0E+2"),
                       _num("-0"), _num("100000000000000000000"), 1.5, True, [], {}])


def _id(rng: random.Random, default: str) -> Any:
    if rng.random() < 0.95:
        return default
    return rng.choice(["", "x" * 128, "x" * 129, "😀" * 128, "😀" * 129, 17, None, _ABSENT, ["a"], "é\u2028" + default,
                       "\ud800", default + "\x00"])


def _dimensions(rng: random.Random, meter: str) -> Any:
    kind = rng.randrange(10)
    if kind == 0:
        return _ABSENT
    if kind == 1:
        return rng.choice([None, [], "model", 3, {}])
    keys = ["model", "gpu_type", "region", "user_id", "plan", rng.choice(TRICKY) or "k"]
    dims = {}
    for key in rng.sample(keys, rng.randrange(0, len(keys) + 1)):
        dims[key] = rng.choice([*TRICKY, "nova-large", "nova-small", "h100", "eu", "u1", "pro"])
    if kind == 9:
        bad = rng.choice([("", "x"), ("k" * 129, "x"), ("k" * 128, "x" * 1024), ("k", "x" * 1025), ("k", 1),
                          ("k", None), ("k", {"n": "x"}), ("\ud800", "x")])
        dims[bad[0]] = bad[1]
    return dims


def _usage_record(rng: random.Random, i: int) -> bytes | None:
    tenant = rng.choice(["acme-ai"] * 6 + ["zeta-test", "kathmandu", "nobody"])
    meters = {"acme-ai": ["input_tokens", "requests", "gpu_seconds", "seats", "storage_gb", "active_users"],
              "zeta-test": ["low_water", "balance", "calls"], "kathmandu": ["tokens"], "nobody": ["x"]}[tenant]
    meter = rng.choice([*meters, *meters, "unknown_meter"])
    fields = {
        "event_id": _id(rng, f"evt-{i}"), "tenant_id": _id(rng, tenant), "customer_id": _id(rng, f"cust-{i % 37}"),
        "meter": _id(rng, meter), "timestamp": _timestamp(rng), "value": _value(rng),
        "dimensions": _dimensions(rng, meter),
    }
    if rng.random() < 0.05:
        fields[rng.choice(list(fields))] = _ABSENT
    obj = {k: v for k, v in fields.items() if v is not _ABSENT}
    if rng.random() < 0.1:
        obj["prompt"] = rng.choice(["hello", {"nested": [1, 2]}, None])
    items = list(obj.items())
    rng.shuffle(items)
    raw = _encode(dict(items), rng)
    damage = rng.random()
    if damage < 0.03:
        raw = raw[: rng.randrange(len(raw))]
    elif damage < 0.05:
        raw = raw + rng.choice([b"{}", b" ", b"\n", b"x"])
    elif damage < 0.06:
        raw = raw.replace(b"evt", b"ev\xc3", 1)
    elif damage < 0.07:
        return None
    elif damage < 0.08:
        raw = b'{"event_id":"dup","event_id":' + raw[1:]
    return raw


_EDGES: list[bytes | None] = [
    None, b"", b" ", b"{}", b"[]", b'"x"', b"null", b"1", b"true", b"\xef\xbb\xbf{}", b"{\x00}",
    b"[" * 512 + b"]" * 512, b"[" * 513 + b"]" * 513, b'{"a":"' + b"[" * 600 + b'"}', b"\xff" * 65_537,
    b" " * 65_536, b"{" + b" " * 65_535,
    b'{"value": NaN}', b'{"value": Infinity}', b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
    b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"requests","timestamp":0}',
    b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"requests","timestamp":"2026-11-24T12:05:00Z"}',
    b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"requests","timestamp":"2026-11-24T12:05:00.001Z"}',
    b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"seats","timestamp":1795521600000}',
    b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"seats","timestamp":1795521600000,"value":null}',
    b'{"event_id":"\\ud800","tenant_id":"acme-ai","customer_id":"c","meter":"requests","timestamp":0}',
    b'{"event_id":"\\ud83d\\ude00","tenant_id":"acme-ai","customer_id":"c","meter":"requests",'
    b'"timestamp":"2026-11-24T11:00:00Z"}',
    b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"active_users","timestamp":"2026-11-24T11:00:00Z",'
    b'"dimensions":{"user_id":"a,b%c","plan":"p\\u0000"}}',
]


def _examples() -> list[tuple[bytes, str | None]]:
    """Every usage-events example with the tenant topic it was read from (None: the shared topic)."""
    root = Path(__file__).resolve().parents[1] / "schemas" / "examples" / "usage-events"
    return [(path.read_bytes(), EXAMPLE_SOURCE_TOPICS.get(path.name)) for path in sorted(root.glob("*/*.json"))]


# Tenant topics of the tenant-topic cases: the golden catalog's tenants, one it lacks, and one whose remainder is
# longer than any tenant id (Kafka allows 249 characters).
_TENANT_TOPICS = ["acme-ai", "acme-ai", "acme-ai", "zeta-test", "kathmandu", "nobody", "globex", "ACME-AI", "acme-a",
                  "x" * 129]


def _tenant_topic_records() -> list[tuple[bytes | None, str]]:
    """Records read from tenant topics (`<prefix><tenant>`): the seeded near-valid records, each from a tenant topic
    (its own tenant's, mostly), and edges around the tenant check's place in the precedence."""
    rng = random.Random(SEED + 19)
    cases: list[tuple[bytes | None, str]] = []
    for i in range(400):
        raw = _usage_record(rng, 10_000 + i)
        tenant = rng.choice(_TENANT_TOPICS)
        if rng.random() < 0.5 and raw is not None:
            match = re.search(rb'"tenant_id": ?"([a-z-]+)"', raw)
            tenant = match.group(1).decode("ascii") if match else tenant  # its own tenant's topic
        cases.append((raw, EXAMPLE_TENANT_TOPIC_PREFIX + tenant))
    base = {"event_id": "e", "customer_id": "c", "meter": "requests", "timestamp": "2026-11-24T11:00:00Z"}
    for tenant_id, topic_tenant, extra in [
        ("acme-ai", "acme-ai", {}), ("acme-ai", "globex", {}), ("globex", "globex", {}), ("globex", "acme-ai", {}),
        ("acme-ai", "globex", {"value": "-1"}), ("acme-ai", "globex", {"meter": "no_such_meter"}),
        ("acme-ai", "globex", {"timestamp": "2020-01-01T00:00:00Z"}), ("acme-ai", "x" * 129, {}),
        ("acme-ai", "acme-ai ", {}), ("ácme", "ácme", {}),
    ]:
        raw = json.dumps({**base, "tenant_id": tenant_id, **extra}, ensure_ascii=False).encode("utf-8")
        cases.append((raw, EXAMPLE_TENANT_TOPIC_PREFIX + topic_tenant))
    return cases


def _detail_field(rejection: Rejection) -> str | None:
    """The field a structural rejection's detail names (its first path segment); None for other reasons."""
    match = re.match(r"field '([^'.]*)", rejection.detail)
    return match.group(1) if match else None


def validation_case(raw: bytes | None, cat: Catalog, meters_by_tenant: Any = None,
                    topic: str | None = None) -> dict[str, Any]:
    """What the specification says of one record (the expected columns of `PARSE_USAGE_EVENT`); `topic`: the tenant
    topic it was read from (of `EXAMPLE_TENANT_TOPIC_PREFIX`), None for the shared topic."""
    topic_tenant = None if topic is None else tenant_of_topic(topic, EXAMPLE_TENANT_TOPIC_PREFIX)
    result = validate_usage_record(raw, meters_by_tenant=meters_by_tenant or cat.meters_by_tenant(), now=NOW,
                                   max_age=MAX_AGE, max_future_skew=MAX_FUTURE_SKEW, topic_tenant=topic_tenant)
    if isinstance(result, Rejection):
        ids = rejected_record_ids(raw)
        return {"reason": result.reason.value, "detail_field": _detail_field(result),
                "ids": None if ids is None else list(ids)}
    assert isinstance(result, UsageEvent)
    meter = cat.meter(result.tenant_id, result.meter)
    unique = None
    if meter.aggregation == "unique_count" and meter.unique_dimension in result.dimensions:
        unique = grouping.unique_token(result.dimensions[meter.unique_dimension])
    return {
        "reason": None, "event_id": result.event_id, "tenant_id": result.tenant_id,
        "customer_id": result.customer_id, "meter": result.meter,
        "event_time_ms": grouping.epoch_millis(result.timestamp), "value": _dec(result.value),
        "aggregation": meter.aggregation,
        "group_json": grouping.group_json(grouping.group_of(result.dimensions, meter.group_by)),
        "unique_token": unique, "fingerprint": grouping.fingerprint(result),
    }


def validation_vectors() -> dict[str, Any]:
    cat = catalog()
    rng = random.Random(SEED)
    records = [*_examples(), *((raw, None) for raw in _EDGES),
               *((_usage_record(rng, i), None) for i in range(2500)), *_tenant_topic_records()]
    meters = cat.meters_by_tenant()
    cases = [{"raw": None if raw is None else base64.b64encode(raw).decode("ascii"),
              **({} if topic is None else {"topic": topic}),
              **validation_case(raw, cat, meters, topic)} for raw, topic in records]
    return {"now_ms": to_epoch_ms(NOW), "max_age_ms": MAX_AGE // timedelta(milliseconds=1),
            "max_future_ms": MAX_FUTURE_SKEW // timedelta(milliseconds=1),
            "tenant_topic_prefix": EXAMPLE_TENANT_TOPIC_PREFIX,
            "java_catalog_json": java_catalog_json(cat), "cases": cases}


def canonical_vectors() -> dict[str, Any]:
    """Canonical JSON of flat string maps (keys in code point order, Python's escapes) and wire decimals."""
    rng = random.Random(SEED + 6)
    alphabet = [*TRICKY, "a", "B", "\ue000", "😀", "\uffff", "\U0001f600a", "\x7f", "\x1b", "\u00e9", "e\u0301", "\t\n"]
    objects = [[], [["", ""]], [["😀", "1"], ["\ue000", "2"], ["\uffff", "3"], ["a", "4"]]]
    for _ in range(300):
        keys = dict.fromkeys(rng.choice(alphabet) + rng.choice(["", *alphabet]) for _ in range(rng.randrange(1, 6)))
        objects.append([[key, rng.choice(alphabet) + rng.choice(alphabet)] for key in keys])
    decimals = ["0", "0.000", "-0", "-0.0", "1.10", "100", "1E+3", "12.500000000000000000", "-7.25",
                "0.000000000000000001", str(LARGE), str(-LARGE), "99999999999999999999.999999999999999999", "1E-18",
                "5E+19"]
    return {"objects": [{"pairs": pairs, "json": grouping.canonical_json(dict(pairs))} for pairs in objects],
            "decimals": [[text, to_wire(Decimal(text))] for text in decimals]}


# ---- windows and billing periods --------------------------------------------------------------------------

WINDOW_SIZES_MS = (1_000, 60_000, 300_000, 3_600_000, 86_400_000)


def window_case(ts_ms: int, size_ms: int) -> list[int]:
    start, end = window_bounds(ts_ms, timedelta(milliseconds=size_ms))
    return [ts_ms, size_ms, to_epoch_ms(start), to_epoch_ms(end)]


def windows_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    cases = []
    for size in WINDOW_SIZES_MS:
        for ts in (0, 1, size - 1, size, size + 1, 253_402_214_399_999, to_epoch_ms(NOW), to_epoch_ms(NOW) - 1):
            cases.append(window_case(ts, size))
        cases.extend(window_case(rng.randrange(0, 4_102_444_800_000), size) for _ in range(60))
    return {"cases": cases}


PERIOD_ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Kathmandu", "Australia/Lord_Howe",
                "America/Sao_Paulo", "America/Havana", "Pacific/Apia", "America/St_Johns", "America/Santiago")
PERIOD_ANCHORS = (1, 15, 28, 29, 30, 31)


def period_case(instant_ms: int, anchor: int, zone: str) -> list[Any]:
    start, end = billing_period(from_epoch_ms(instant_ms), anchor, zone)
    return [instant_ms, anchor, zone, to_epoch_ms(start), to_epoch_ms(end)]


def periods_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 2)
    begin, span = to_epoch_ms(datetime(2015, 1, 1, tzinfo=UTC)), 12 * 365 * 86_400_000
    cases = [period_case(begin + rng.randrange(span), rng.choice(PERIOD_ANCHORS), rng.choice(PERIOD_ZONES))
             for _ in range(1200)]
    for zone in PERIOD_ZONES:
        for anchor in PERIOD_ANCHORS:
            for year, month in ((2016, 2), (2018, 11), (2024, 3), (2024, 10)):
                start, _ = billing_period(datetime(year, month, 20, tzinfo=UTC), anchor, zone)
                for delta in (-1, 0, 1, 3_600_000):
                    cases.append(period_case(to_epoch_ms(start) + delta, anchor, zone))
    return {"cases": cases}


# ---- aggregations: the window rule over events, the period rule over windows ------------------------------

FOLD_AGGREGATIONS = ("sum", "count", "max", "min", "last")  # unique_count: its window below, its period is Python's


def _sample_value(rng: random.Random) -> Decimal | None:
    return rng.choice([None, Decimal(0), TINY, LARGE / 1000, Decimal(rng.randrange(10**6)) / 1000,
                       Decimal(rng.randrange(100)), Decimal("12.50"), Decimal("0.000")])


def aggregation_series(aggregation: str, events: list[list[list[Any]]]) -> dict[str, Any]:
    """events: per window, [event_time_ms, event_id, value or None]; windows in order, one period."""
    agg = aggregator_for(aggregation)
    period = agg.period_initialize()
    windows = []
    for w, window_events in enumerate(events):
        samples = [UsageSample(event_id=e, event_time=from_epoch_ms(t), value=None if v is None else Decimal(v))
                   for t, e, v in window_events]
        payload = run_window_rule(agg, samples)
        start = from_epoch_ms(w * 60_000)
        window = WindowAggregate(tenant_id="t", customer_id="c", meter="m", group=(), window_start=start,
                         window_end=start + timedelta(minutes=1), event_count=len(samples),
                         **({"quantity": Decimal(len(samples))} if aggregation == "count" else payload))
        period = agg.period_combine(period, window)
        windows.append({"events": window_events, "event_count": len(samples),
                        "window_quantity": _dec(agg.window_quantity(window)),
                        "period_quantity": _dec(agg.period_quantity(period))})
    return {"aggregation": aggregation, "windows": windows}


def aggregations_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 3)
    series = []
    for aggregation in FOLD_AGGREGATIONS:
        for n in range(25):
            events = []
            for w in range(rng.randrange(1, 6)):
                window_events = []
                for k in range(rng.choice([0, 1, 1, 2, 3, 5, 8])):
                    ts = w * 60_000 + rng.choice([0, 59_999, rng.randrange(60_000), 30_000])
                    event_id = rng.choice([f"e{n}-{w}-{k}", f"e{n}-{w}", f"e{n}-{w}-{k}0", "é", "e"])
                    value = _sample_value(rng)
                    window_events.append([ts + 0, event_id + f"#{k}" if rng.random() < 0.5 else event_id,
                                          None if value is None else str(value)])
                events.append(window_events)
            series.append(aggregation_series(aggregation, events))
    return {"series": series}


# ---- price models and rounding ----------------------------------------------------------------------------

def _priced(result: Priced) -> dict[str, Any]:
    return {"amount": to_wire(result.amount), "tiers": [
        {"lower_bound": to_wire(t.lower_bound), "up_to": _dec(t.up_to), "quantity": to_wire(t.quantity),
         "unit_price": to_wire(t.unit_price), "flat_fee": to_wire(t.flat_fee), "amount": to_wire(t.amount)}
        for t in result.tiers]}


def price_case(model: str, spec: Any, quantity: Decimal) -> dict[str, Any]:
    try:
        return {"quantity": to_wire(quantity), **_priced(MODELS[model][1].price(quantity, spec))}
    except ExactnessError:
        return {"quantity": to_wire(quantity), "error": "inexact"}


def _specs(model: str) -> list[Any]:
    cat = catalog()
    specs = [entry for tenant in cat.tenants.values() for entries in tenant.prices.values() for entry in entries
             if entry.model == model]
    extra = {
        "per_unit": [{"unit_price": "0"}, {"unit_price": "0.123456789012345678901234567"}, {"unit_price": "1E+3"}],
        "package": [{"package_size": "0.0001", "package_price": "3"}, {"package_size": "7", "package_price": "0"},
                    {"package_size": "3", "package_price": "0.333333333333333333333333"}],
        "graduated": [{"tiers": [{"up_to": "1", "unit_price": "1", "flat_fee": "1"},
                                 {"up_to": "1.000000000000000001", "unit_price": "1000", "flat_fee": "0.5"},
                                 {"up_to": None, "unit_price": "0.1234567890123456789012345"}]}],
        "volume": [{"tiers": [{"up_to": "0.5", "unit_price": "2", "flat_fee": "9"},
                              {"up_to": "1000", "unit_price": "0.1234567890123456789012345", "flat_fee": "1"},
                              {"up_to": None, "unit_price": "0"}]}],
    }[model]
    for n, params in enumerate(extra):
        if "tiers" in params:
            params = {"tiers": [{k: None if v is None else Decimal(v) for k, v in tier.items()}
                                for tier in params["tiers"]]}
        else:
            params = {k: Decimal(v) for k, v in params.items()}
        specs.append(MODELS[model][0].model_validate({"id": f"extra-{n}", "model": model, **params}))
    return specs


def _quantities(spec: Any, rng: random.Random) -> list[Decimal]:
    points = [Decimal(0), -Decimal(1), -TINY, TINY, Decimal(1), LARGE, -LARGE, Decimal("0.5"), Decimal("999.999")]
    marks = [t.up_to for t in getattr(spec, "tiers", ()) if t.up_to is not None]
    if isinstance(spec, PackagePrice):
        marks += [spec.package_size, spec.package_size * 3]
    for mark in marks:
        points += [mark, mark - TINY, mark + TINY, mark * 2]
    points += [Decimal(rng.randrange(10**9)) / Decimal(10) ** rng.randrange(0, 19) for _ in range(12)]
    return points


def pricing_vectors(model: str) -> dict[str, Any]:
    rng = random.Random(f"{SEED}-{model}")
    entries = []
    for spec in _specs(model):
        entries.append({"spec": price_entry(spec),
                        "cases": [price_case(model, spec, q) for q in _quantities(spec, rng)]})
    return {"model": model, "entries": entries}


def rounding_case(amount: Decimal, precision: int) -> dict[str, Any]:
    try:
        return {"amount": to_wire(amount), "precision": precision, "rounded": to_wire(round_amount(amount, precision))}
    except ValueError:
        return {"amount": to_wire(amount), "precision": precision, "error": "precision"}
    except ExactnessError:  # pragma: no cover - a subclass of ArithmeticError, not ValueError
        return {"amount": to_wire(amount), "precision": precision, "error": "inexact"}


def rounding_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 4)
    amounts = [Decimal(s) for s in ("0", "0.5", "-0.5", "0.125", "-0.125", "0.005", "-0.005", "0.0049999999",
                                    "1.995", "-1.995", "2.5", "-2.5", "0.00000000499999999999", "999999.995")]
    amounts += [LARGE, -LARGE, LARGE * LARGE, Decimal("1E+20"), Decimal("123456789012345678901234567890.5")]
    amounts += [Decimal(rng.randrange(-10**12, 10**12)) / Decimal(10) ** rng.randrange(0, 13) for _ in range(80)]
    cases = [rounding_case(a, p) for a in amounts for p in range(0, 9)]
    cases += [rounding_case(Decimal("1.5"), p) for p in (-1, 9)]
    return {"cases": cases}


# ---- line items -------------------------------------------------------------------------------------------

def line_item_case(cat: Catalog, row: dict[str, Any]) -> str | None:
    """The line item JSON, or None when the spec refuses the row (a result the 50-digit context must round)."""
    try:
        item = line_item_from_period_row(
            cat, row["tenant_id"], row["customer_id"], row["meter"], row["group_json"], row["aggregation"],
            row["window_start_ms"], row["event_count"], _parse(row["quantity"]), row["last_key"],
            _parse(row["period_quantity_before"]), _parse(row["period_quantity"]), row["last_key_before"],
            window_size=timedelta(milliseconds=row["window_size_ms"]), emitted_at=from_epoch_ms(EMITTED_MS),
            decided_after=None if row["decided_after_ms"] is None else from_epoch_ms(row["decided_after_ms"]),
            late=row["late"])
    except ExactnessError:
        return None
    return item.model_dump_json()


def _parse(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _window_starts(cat: Catalog, tenant_id: str, size_ms: int, rng: random.Random) -> list[int]:
    tenant = cat.tenant(tenant_id)
    starts = []
    for instant in (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC),
                    datetime(2026, 2, 28, 12, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)):
        period_start, _ = billing_period(instant, tenant.billing_period.anchor_day, tenant.billing_period.time_zone)
        edge = to_epoch_ms(period_start)
        for ms in (edge - size_ms, edge, edge + size_ms, to_epoch_ms(instant)):
            starts.append(ms - ms % size_ms)
    starts.append(rng.randrange(0, 4_102_444_800_000) // size_ms * size_ms)
    return starts


def _line_rows(cat: Catalog) -> list[dict[str, Any]]:
    rng = random.Random(SEED + 5)
    rows = []
    customers = ["cust-42", "cüst/ö|,=%", 'c"q', "c😀"]
    for tenant_id, tenant, meter_name, meter, group, points, size, start in _priced_windows(cat, rng):
        after = rng.choice(points)
        before = rng.choice([None, Decimal(0), *points])
        row = _row(tenant_id, meter_name, meter.aggregation, group, before, after, start, size,
                   rng.choice(customers), rng)
        rows.append({**row, **_decision(tenant, start, size, rng)})
    return rows


def _priced_windows(cat: Catalog, rng: random.Random):
    """Every (tenant, meter, price entry) of the catalog rated in Java (not unique_count: Python only), with a group
    the entry matches, the quantities around its tier and package marks, and window starts of two sizes around its
    periods' edges: (tenant_id, tenant, meter_name, meter, group, points, size, start), drawing from `rng` lazily."""
    for tenant_id, tenant in cat.tenants.items():
        for meter_name, meter in tenant.meters.items():
            if meter.aggregation == "unique_count":
                continue
            for entry in tenant.prices[meter_name]:
                group = {key: entry.match.get(key, rng.choice(TRICKY)) for key in meter.group_by}
                marks = [t.up_to for t in getattr(entry, "tiers", ()) if t.up_to is not None]
                if isinstance(entry, PackagePrice):
                    marks.append(entry.package_size)
                points = [Decimal(0), TINY, Decimal(1), LARGE, *(m + d for m in marks for d in (-TINY, 0, TINY))]
                for size in (60_000, 3_600_000):
                    for start in _window_starts(cat, tenant_id, size, rng):
                        yield tenant_id, tenant, meter_name, meter, group, points, size, start


def _decision(tenant, start: int, size: int, rng: random.Random) -> dict[str, Any]:
    """How the line came about: a window's own line (most), a window first opened after a watermark, or late events
    that came after one; the watermarks around the period's close (its end + grace), so both kinds of each occur."""
    roll = rng.random()
    if roll < 0.5:
        return {"decided_after_ms": None, "late": False}
    end = to_epoch_ms(billing_period(from_epoch_ms(start), tenant.billing_period.anchor_day,
                                     tenant.billing_period.time_zone)[1])
    grace = int(tenant.billing_period.grace.total_seconds() * 1000)
    watermark = rng.choice([start + size, end + grace - 1, end + grace, end + grace + 3 * 86_400_000])
    return {"decided_after_ms": max(watermark, start + size), "late": roll >= 0.75}


def _row(tenant_id: str, meter: str, aggregation: str, group: dict[str, str], before: Decimal | None,
         after: Decimal, start: int, size: int, customer: str, rng: random.Random) -> dict[str, Any]:
    quantity = after - (before or 0) if aggregation == "sum" else after
    count = rng.randrange(1, 9)
    if aggregation == "count":  # whole events: the window's count, added to the period's
        count = rng.choice([1, 7, 999, 1000, 1001, 2500])
        before = None if before is None else abs(before).to_integral_value()
        quantity = Decimal(count)
        after = quantity + (before or 0)
    key = key_before = None
    if aggregation == "last":
        key = last_key(start + rng.randrange(size), rng.choice(["e1", "é", 'e"q']), after)
        if before is not None:
            key_before = last_key(start - 1, "e0", before)
    return {
        "tenant_id": tenant_id, "customer_id": customer, "meter": meter,
        "group_json": grouping.group_json(tuple(sorted(group.items()))), "aggregation": aggregation,
        "window_start_ms": start, "event_count": count,
        "quantity": None if aggregation == "last" else to_wire(quantity), "last_key": key,
        "period_quantity_before": None if aggregation == "last" or before is None else to_wire(before),
        "period_quantity": None if aggregation == "last" else to_wire(after), "last_key_before": key_before,
        "window_size_ms": size,
    }


def line_items_vectors() -> dict[str, Any]:
    cat = catalog()
    return {"java_catalog_json": java_catalog_json(cat), "emitted_at_ms": EMITTED_MS,
            "cases": [{**row, "line_item": line_item_case(cat, row)} for row in _line_rows(cat)]}


def _correction_window(aggregator: Any, key: tuple[str, str, str, Any], start: int, size: int, count: int,
                       value: Decimal, rng: random.Random) -> WindowAggregate:
    bounds = (from_epoch_ms(start), from_epoch_ms(start + size))
    if aggregator.kind == "last":
        observation = LastObservation(value, from_epoch_ms(start + rng.randrange(size)), rng.choice(["e1", "é"]))
        return WindowAggregate(*key, *bounds, count, last=observation)
    quantity = Decimal(count) if aggregator.kind == "count" else value
    return WindowAggregate(*key, *bounds, count, quantity=quantity)


def correction_line_case(cat: Catalog, tenant_id: str, meter_name: str, group: dict[str, str], start: int, size: int,
                         customer: str, points: list[Decimal], rng: random.Random) -> dict[str, Any] | None:
    """Corrections of one fired window after one watermark (`udfs.line_items.accumulate_correction`): the series'
    period before (one or two fired windows, or none: an amend moved usage into a series without it), the window
    after, and the line; None when the spec makes no line or refuses the numbers (the 50-digit context)."""
    tenant = cat.tenant(tenant_id)
    meter = tenant.meter(meter_name)
    aggregator = aggregator_for(meter.aggregation, meter.unique_dimension)
    key = (tenant_id, customer, meter_name, tuple(sorted(group.items())))
    count_before = rng.choice([1, 3, 1000])
    fresh = rng.random() < 0.15
    emitted = from_epoch_ms(EMITTED_MS)
    try:
        before = None if fresh else _correction_window(aggregator, key, start, size, count_before, rng.choice(points),
                                                       rng)
        corrections = rng.randrange(1, 4)
        count_after = (0 if before is None else before.event_count) + rng.choice([-1, 0, 1]) * (
            corrections if aggregator.kind == "count" else 0)
        after = _correction_window(aggregator, key, start, size, max(count_after, 0), rng.choice(points), rng)
        state, others = None, []
        if before is not None:
            state, _ = line_items.accumulate_window(None, before, tenant, emitted_at=emitted)
            schedule = tenant.billing_period
            nxt = from_epoch_ms(start + size)
            if rng.random() < 0.5 and billing_period(nxt, schedule.anchor_day, schedule.zone)[0] == state.period_start:
                other = _correction_window(aggregator, key, start + size, size, 1, rng.choice(points), rng)
                state, _ = line_items.accumulate_window(state, other, tenant, emitted_at=emitted)
                others = [other]
        decided = _decision(tenant, start, size, rng)["decided_after_ms"] or start + size
        new_state, line = line_items.accumulate_correction(
            state, before, after, tenant, period_windows=others, corrections=corrections,
            watermark=from_epoch_ms(decided), emitted_at=emitted)
    except ExactnessError:
        return None
    if line is None:
        return None
    last = aggregator.kind == "last"
    return {
        "tenant_id": tenant_id, "customer_id": customer, "meter": meter_name,
        "group_json": grouping.group_json(key[3]), "aggregation": meter.aggregation, "window_start_ms": start,
        "window_size_ms": size, "corrections": corrections, "quantity": to_wire(line.quantity),
        "period_quantity_before": None if state is None else to_wire(state.period_quantity),
        "period_quantity": to_wire(new_state.period_quantity), "watermark_ms": decided,
        "last": last, "line_item": line.model_dump_json(),
    }


def correction_lines_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 23)
    cat = catalog()
    cases = []
    customers = ["cust-42", "cüst/ö|,=%", 'c"q']
    for tenant_id, _, meter_name, _, group, points, size, start in _priced_windows(cat, rng):
        for _ in range(2):
            case = correction_line_case(cat, tenant_id, meter_name, group, start, size, rng.choice(customers),
                                        points, rng)
            if case is not None:
                cases.append(case)
    return {"java_catalog_json": java_catalog_json(cat), "emitted_at_ms": EMITTED_MS, "cases": cases}


def unique_window_series(rng: random.Random) -> dict[str, Any]:
    """Events of one unique_count series over a few windows: [event_time_ms, event_id, the counted value or None,
    its token as the parser writes it]; per window the event count and the distinct values' tokens (the window rule
    of `udfs.aggregations.UniqueCountAggregator`)."""
    agg = aggregator_for("unique_count", "user_id")
    values = [*TRICKY[:6], "", "u-1", "u-2", "u-3", "a,b", "100%", "%2C"]
    events = []
    for index in range(rng.randrange(0, 30)):
        value = rng.choice([*values, None])
        events.append([rng.randrange(0, 5) * 60_000 + rng.randrange(60_000), f"e{index}", value,
                       None if value is None else grouping.unique_token(value)])
    windows = []
    for start in sorted({t - t % 60_000 for t, *_ in events}):
        samples = [UsageSample(event_id=e, event_time=from_epoch_ms(t), dimensions={} if v is None else {"user_id": v})
                   for t, e, v, _ in events if t - t % 60_000 == start]
        distinct = run_window_rule(agg, samples)["distinct_values"]
        windows.append({"window_start_ms": start, "event_count": len(samples),
                        "tokens": sorted(grouping.unique_token(v) for v in distinct)})
    return {"events": events, "windows": windows}


def unique_windows_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 6)
    return {"window_size_ms": 60_000, "series": [unique_window_series(rng) for _ in range(40)]}


LATENESS_WINDOW_MS = 60_000
LATENESS_SERIES = [("acme-ai", "c1", "requests"), ("acme-ai", "c2", "requests"), ("acme-ai", "c3", "requests"),
                   ("zeta-test", "z1", "calls")]


def lateness_stream(rng: random.Random, records: int) -> dict[str, Any]:
    """One stream in source order: each record with the watermark it came after (None: none yet). Customers come
    and go, some far behind the watermark (new series past it), some straggle behind their own clock."""
    base = to_epoch_ms(NOW) - 3_600_000
    clocks: dict[int, int] = {}
    watermark: int | None = None
    lateness = SeriesLateness(LATENESS_WINDOW_MS)
    out = []
    windows: dict[int, dict[int, int]] = {}
    late: dict[int, dict[tuple[int, int], int]] = {}
    for index in range(records):
        series = rng.randrange(len(LATENESS_SERIES))
        if series not in clocks:
            # a new customer: behind, at, or ahead of the front
            clocks[series] = base + rng.randrange(-20, 5) * LATENESS_WINDOW_MS
        clocks[series] += rng.randrange(0, 20_000)
        roll = rng.random()
        at = clocks[series] - (rng.randrange(0, 4) * LATENESS_WINDOW_MS if roll < 0.15 else rng.randrange(0, 8_000))
        billed = lateness.offer(LATENESS_SERIES[series], at)
        start = at - at % LATENESS_WINDOW_MS
        if billed:
            windows.setdefault(series, {})[start] = windows.setdefault(series, {}).get(start, 0) + 1
        else:  # one late adjustment per (series, window, watermark the events came after)
            by_group = late.setdefault(series, {})
            by_group[(watermark, start)] = by_group.get((watermark, start), 0) + 1
        out.append({"id": f"e{index}", "series": series, "event_time_ms": at, "floor_ms": watermark, "billed": billed})
        if rng.random() < 0.4:
            front = max(clocks.values())
            candidate = min(clocks.values()) if rng.random() < 0.5 else front - rng.randrange(0, 3) * LATENESS_WINDOW_MS
            if watermark is None or candidate > watermark:
                watermark = candidate
                lateness.advance(watermark)
    return {"records": out,
            "windows": {str(series): [[start, count] for start, count in sorted(by_start.items())]
                        for series, by_start in sorted(windows.items())},
            # per series, in the order decided (watermark, then window): window start, events, line_item_id
            "adjustments": {str(series): [[start, count, _late_line_id(LATENESS_SERIES[series], start, floor)]
                                          for (floor, start), count in sorted(groups.items())]
                            for series, groups in sorted(late.items())}}


def _late_line_id(series: tuple[str, str, str], window_start_ms: int, watermark_ms: int) -> str:
    tenant = catalog().tenant(series[0])
    start = from_epoch_ms(window_start_ms)
    period = billing_period(start, tenant.billing_period.anchor_day, tenant.billing_period.zone)
    kind, _ = line_items.line_kind(period, tenant, late=True, decided_after=from_epoch_ms(watermark_ms))
    return line_items.line_item_id(*series, {}, start, kind=kind, watermark=from_epoch_ms(watermark_ms))


def lateness_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 15)
    return {"java_catalog_json": java_catalog_json(catalog()), "window_size_ms": LATENESS_WINDOW_MS,
            "series": [list(s) for s in LATENESS_SERIES],
            "streams": [lateness_stream(rng, rng.randrange(20, 160)) for _ in range(40)]}


# The window operator's series in the rating streams: (tenant, customer, meter, group, values a record may carry).
# Two groups of one sum meter and of one min meter, so that an amend of a group-by dimension moves usage across.
RATING_STREAM_SERIES = [
    ("acme-ai", "c1", "input_tokens", {"model": "nova-large"}, ["1", "250000", "4000000", "9000000", "0.5"]),
    ("acme-ai", "c1", "input_tokens", {"model": "nova-small"}, ["1", "250000", "4000000", "9000000", "0.5"]),
    ("acme-ai", "c1", "requests", {}, [None]),
    ("acme-ai", "c2", "seats", {}, ["1", "4", "5", "6", "12", "2.50"]),
    ("acme-ai", "c2", "storage_gb", {}, ["1.5", "2.25", "10", "10.0", "0.001"]),
    ("zeta-test", "z1", "low_water", {"region": "eu"}, ["3.5", "12", "0.0005", "150", "10.5"]),
    ("zeta-test", "z1", "low_water", {"region": "us"}, ["3.5", "12", "0.0005", "150", "10.5"]),
    ("zeta-test", "z1", "balance", {}, ["1.5", "2.5", "7", "0.125"]),
    ("zeta-test", "z1", "calls", {}, [None]),
]
RATING_STREAM_WINDOW_MS = 60_000
RATING_STREAM_END_MS = 2**63 - 1  # the watermark a bounded input ends with


def _rating_stream_times(tenant_id: str, rng: random.Random) -> tuple[int, int]:
    """A start an hour or so before one of the tenant's period ends, and when that period has closed (end + grace):
    streams cross both."""
    tenant = catalog().tenant(tenant_id)
    end = billing_period(NOW, tenant.billing_period.anchor_day, tenant.billing_period.zone)[1]
    start = to_epoch_ms(end) - rng.randrange(20, 90) * RATING_STREAM_WINDOW_MS
    return start, to_epoch_ms(invoices.closes_at(end, tenant.billing_period.grace))


def rating_stream(rng: random.Random, steps: int) -> dict[str, Any]:
    """One tenant's series through the window operator: usage (on time, past the watermark, late), cancels and
    amends of it (value; group-by dimension: usage moves between series), and watermarks, in arrival order, as the
    routing operator hands them on; and the lines `udfs.rating_stream` says each series writes, in order."""
    tenant_id = rng.choice(["acme-ai", "zeta-test"])
    series = [s for s in RATING_STREAM_SERIES if s[0] == tenant_id]
    keys = [(t, c, m, grouping.group_of(g, sorted(g))) for t, c, m, g, _ in series]
    model = RatingStream(catalog(), RATING_STREAM_WINDOW_MS, timedelta(days=35), from_epoch_ms(EMITTED_MS))
    clock, closed = _rating_stream_times(tenant_id, rng)
    watermark: int | None = None
    billed: dict[str, tuple[int, UsageSample]] = {}  # event id -> its series and version as billed now
    ops: list[dict[str, Any]] = []
    lines: dict[int, list[str]] = {}

    def record(op: str, index: int, sample: UsageSample, value: Decimal | None, floor: int | None) -> None:
        ops.append({"op": op, "series": index, "event_id": sample.event_id,
                    "event_time_ms": to_epoch_ms(sample.event_time),
                    "value": None if value is None else str(value), "floor_ms": floor})

    def correct(index: int, correction: Correction) -> None:
        model.correct(keys[index], correction, watermark)
        aggregation = catalog().tenant(tenant_id).meter(keys[index][2]).aggregation
        remove, add = correction.remove, correction.add
        if aggregation in ("sum", "count") and remove is not None and add is not None:
            change = None if aggregation == "count" else add.value - remove.value
            record("amend", index, add, change, watermark)
            return
        if remove is not None:
            record("remove", index, remove, remove.value, watermark)
        if add is not None:
            record("add", index, add, add.value, watermark)

    for step in range(steps):
        if step == steps * 2 // 3:  # on past the period's close: corrections of its usage are prior-period ones
            clock = max(clock, closed + rng.randrange(0, 20) * RATING_STREAM_WINDOW_MS)
        roll = rng.random()
        if roll < 0.6 or not billed or watermark is None:
            index = rng.randrange(len(series))
            clock += rng.randrange(0, 40_000) if rng.random() < 0.92 else rng.randrange(10, 50) * 60_000
            behind = rng.random()
            at = clock - (rng.randrange(1, 6) * RATING_STREAM_WINDOW_MS if behind < 0.2 else rng.randrange(0, 5_000))
            value = rng.choice(series[index][4])
            sample = UsageSample(f"e{step}", from_epoch_ms(at), None if value is None else Decimal(value))
            model.usage(keys[index], sample, watermark)
            record("usage", index, sample, sample.value, watermark)
            billed[sample.event_id] = (index, sample)
        else:
            event_id = rng.choice(sorted(billed))
            index, sample = billed[event_id]
            kind = rng.random()
            movable = [i for i, s in enumerate(series) if i != index and s[2] == series[index][2]]
            if kind < 0.35:
                correct(index, Correction(event_id, sample, None))
                del billed[event_id]
            elif kind < 0.55 and movable:
                to = rng.choice(movable)
                correct(index, Correction(event_id, sample, None))
                correct(to, Correction(event_id, None, sample))
                billed[event_id] = (to, sample)
            else:
                value = rng.choice(series[index][4])
                amended = replace(sample, value=None if value is None else Decimal(value))
                correct(index, Correction(event_id, sample, amended))
                billed[event_id] = (index, amended)
        if rng.random() < 0.3:
            candidate = clock - rng.choice([0, 0, 1, 2, 5]) * RATING_STREAM_WINDOW_MS - rng.randrange(0, 30_000)
            if watermark is None or candidate > watermark:
                watermark = candidate
                ops.append({"op": "watermark", "ms": watermark})
                for key, out in model.advance(watermark).items():
                    lines.setdefault(keys.index(key), []).extend(line.model_dump_json() for line in out)
    ops.append({"op": "watermark", "ms": RATING_STREAM_END_MS})
    for key, out in model.advance(RATING_STREAM_END_MS).items():
        lines.setdefault(keys.index(key), []).extend(line.model_dump_json() for line in out)
    return {"series": [[t, c, m, grouping.group_json(k[3]), catalog().tenant(t).meter(m).aggregation]
                       for (t, c, m, _, _), k in zip(series, keys, strict=True)],
            "ops": ops, "lines": {str(i): out for i, out in sorted(lines.items())}}


def rating_stream_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 31)
    return {"java_catalog_json": java_catalog_json(catalog()), "window_size_ms": RATING_STREAM_WINDOW_MS,
            "max_age_ms": 35 * 86_400_000, "emitted_at_ms": EMITTED_MS,
            "streams": [rating_stream(rng, rng.randrange(20, 100)) for _ in range(40)]}


DEDUP_TENANTS = ["acme-ai", "zeta-test"]
DEDUP_EVENT_IDS = ["evt-1", "evt-2", "é", "a|b", "😀", "x" * 128, "evt-1 "]
DEDUP_TTLS_MS = [1_000, 60_000, 35 * 86_400_000]


def _content_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dedup_stream(rng: random.Random, records: int, ttl_ms: int) -> dict[str, Any]:
    """Copies of a few events in arrival order, each with its processing time: retries, conflicting reuses of an
    id, the same id under another tenant, and copies right before, at and after a key's horizon."""
    memory = DedupMemory(ttl_ms)
    now = 1_795_000_000_000 + rng.randrange(0, 1000)
    contents: dict[tuple[str, str], list[str]] = {}
    out = []
    for _ in range(records):
        keys = list(memory.keys)
        if keys and rng.random() < 0.25:
            key = rng.choice(keys)
            edge = memory.keys[key].first_seen_ms + ttl_ms + rng.choice([-1, 0, 1])
            now = max(now, edge)
        else:
            now += rng.choice([0, 0, 1, rng.randrange(0, 50), rng.randrange(0, ttl_ms // 2 + 1)])
            key = rng.choice(keys) if keys and rng.random() < 0.6 else (
                rng.choice(DEDUP_TENANTS), rng.choice(DEDUP_EVENT_IDS))
        variants = contents.setdefault(key, [f"{key[0]}|{key[1]}|0"])
        if rng.random() < 0.3:
            variants.append(f"{key[0]}|{key[1]}|{len(variants)}")
        fingerprint = _content_fingerprint(rng.choice(variants))
        outcome = memory.offer(key, fingerprint, now)
        out.append({"tenant_id": key[0], "event_id": key[1], "fingerprint": fingerprint,
                    "processing_time_ms": now, "outcome": outcome})
    # the Java twin compares the first 64 bits (32 once an id is sealed): no two different fingerprints may agree
    prefixes = {r["fingerprint"][:8]: r["fingerprint"] for r in out}
    assert len(prefixes) == len({r["fingerprint"] for r in out})
    last = max(r["processing_time_ms"] for r in out)
    return {"ttl_ms": ttl_ms, "records": out, "live_at_end": memory.live(last),
            "horizon_end_ms": max(state.first_seen_ms for state in memory.keys.values()) + ttl_ms}


def dedup_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 16)
    return {"streams": [dedup_stream(rng, rng.randrange(5, 120), ttl) for ttl in DEDUP_TTLS_MS for _ in range(12)]}
# (correction horizon, dedup horizon) in ms: short ones put many decisions on both horizons' edges.
LEDGER_HORIZONS_MS = ((1_000, 5_000), (60_000, 60_000), (7, 9))
LEDGER_EVENT_IDS = ("e-1", "e-2", "e-3", "e-4", "e-5", "e-6")
LEDGER_WINDOW_MS = 60_000


def _ledger_contribution(c: corrections.Contribution | None) -> dict[str, Any] | None:
    if c is None:
        return None
    dims = c.sample.dimensions
    return {"customer_id": c.customer_id, "meter": c.meter, "group_json": grouping.group_json(c.group),
            "window_start_ms": grouping.epoch_millis(c.window_start), "window_end_ms": grouping.epoch_millis(
                c.window_end), "event_id": c.sample.event_id, "event_time_ms": grouping.epoch_millis(
                c.sample.event_time), "value": _dec(c.sample.value),
            "unique_value": next(iter(dims.values())) if dims else None}


def _ledger_dimensions(rng: random.Random, tenant) -> dict[str, str]:
    keys = sorted({k for m in tenant.meters.values() for k in (*m.group_by, m.unique_dimension or "")} - {""})
    dims = {k: rng.choice(["a", "b", rng.choice(TRICKY)]) for k in keys if rng.random() < 0.7}
    if rng.random() < 0.2:
        dims["other"] = "x"
    return dims


def ledger_stream(rng: random.Random, ops: int, horizon_ms: int, dedup_ttl_ms: int) -> dict[str, Any]:
    """First-seen events, dead-lettered ids and corrections of a few ids in arrival order, each at its processing
    time (some right before, at and after an id's horizons), with what the ledger decides for each correction."""
    cat = catalog()
    tenants = sorted(t for t in cat.tenants if t != "kathmandu") + ["kathmandu"]
    states: dict[tuple[str, str], Any] = {}
    now = 1_795_000_000_000 + rng.randrange(0, 1000)
    out = []
    for _ in range(ops):
        if states and rng.random() < 0.25:
            state = states[rng.choice(sorted(states))]
            if state is not None:
                now = max(now, state.first_seen_ms + rng.choice([horizon_ms, dedup_ttl_ms]) + rng.choice([-1, 0, 1]))
        else:
            now += rng.choice([0, 1, rng.randrange(0, horizon_ms + 1)])
        op = rng.random()
        if op >= 0.45 and states and rng.random() < 0.75:
            key = rng.choice(sorted(states))  # mostly corrections of ids the ledger has seen
        else:
            key = (rng.choice(tenants), rng.choice(LEDGER_EVENT_IDS))
        tenant_id = key[0]
        tenant = cat.tenants[tenant_id]
        if op < 0.35:
            meter_name = rng.choice(sorted(tenant.meters))
            meter = tenant.meters[meter_name]
            event_time_ms = grouping.epoch_millis(NOW) + rng.randrange(-3 * LEDGER_WINDOW_MS, 3 * LEDGER_WINDOW_MS)
            value = _sample_value(rng)
            if value is None and meter.aggregation not in ("count", "unique_count"):
                value = Decimal(rng.randrange(0, 1000))
            record = {"event_id": key[1], "tenant_id": tenant_id, "customer_id": rng.choice(["c-1", "c-2"]),
                      "meter": meter_name, "timestamp": event_time_ms, "dimensions": _ledger_dimensions(rng, tenant)}
            if value is not None:
                record["value"] = _dec(value)
            event = UsageEvent.model_validate(record)
            states[key] = corrections.observe_event(states.get(key), event, now, meter)
            group = grouping.group_of(event.dimensions, meter.group_by)
            unique = event.dimensions.get(meter.unique_dimension) if meter.unique_dimension else None
            out.append({"op": "event", "tenant_id": tenant_id, "event_id": key[1], "now_ms": now,
                        "customer_id": event.customer_id, "meter": meter_name, "event_time_ms": event_time_ms,
                        "value": _dec(event.value), "group_json": grouping.group_json(group),
                        "unique_token": None if unique is None else grouping.unique_token(unique)})
        elif op < 0.45:
            reason = rng.choice([DeadLetterReason.INVALID_VALUE, DeadLetterReason.TOO_OLD,
                                 DeadLetterReason.UNKNOWN_METER])
            state = corrections.expire_entry(states.get(key), now, horizon_ms, dedup_ttl_ms)
            states[key] = corrections.observe_dead_letter(state, reason, now)
            out.append({"op": "dead_letter", "tenant_id": tenant_id, "event_id": key[1], "now_ms": now,
                        "reason": reason.value})
        else:
            record = {"correction_id": f"k-{len(out)}", "tenant_id": tenant_id, "event_id": key[1],
                      "action": "cancel" if rng.random() < 0.4 else "amend", "sent_at": 1_795_000_000_000}
            if record["action"] == "amend":
                choice = rng.random()
                if choice < 0.7:
                    record["value"] = _dec(_sample_value(rng) or Decimal(rng.randrange(0, 50)))
                if choice > 0.5 or "value" not in record:
                    record["dimensions"] = _ledger_dimensions(rng, tenant)
            correction = UsageCorrection.model_validate(record)
            removed = [m for m in sorted(tenant.meters) if rng.random() < 0.05]
            meters = {n: m for n, m in tenant.meters.items() if n not in removed}
            states[key], outcome = corrections.decide(
                states.get(key), correction, now, meters=meters, window_size=timedelta(milliseconds=LEDGER_WINDOW_MS),
                horizon_ms=horizon_ms, dedup_ttl_ms=dedup_ttl_ms)
            if isinstance(outcome, corrections.CorrectionRejection):
                expect = {"reason": outcome.reason.value, "event_dead_letter_reason":
                          None if outcome.event_dead_letter_reason is None else outcome.event_dead_letter_reason.value}
            else:
                expect = {"remove": _ledger_contribution(outcome.remove), "add": _ledger_contribution(outcome.add)}
            out.append({"op": "correct", "tenant_id": tenant_id, "event_id": key[1], "now_ms": now,
                        "action": correction.action, "value": _dec(correction.value),
                        "dimensions": correction.dimensions, "removed_meters": removed, "expect": expect})
    return {"horizon_ms": horizon_ms, "dedup_ttl_ms": dedup_ttl_ms, "ops": out}


def corrections_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 17)
    return {"java_catalog_json": java_catalog_json(catalog()), "window_size_ms": LEDGER_WINDOW_MS,
            "streams": [ledger_stream(rng, rng.randrange(10, 100), horizon, ttl)
                        for horizon, ttl in LEDGER_HORIZONS_MS for _ in range(10)]}


def java_catalog_vectors() -> dict[str, Any]:
    """The golden catalog's Java document (`udfs.java_catalog`, the checked-in example of the format) and what each
    Java view must read from it: the parser's (meters: aggregation, group_by in code point order, the unique
    dimension of unique_count meters) and the rating's (tenant settings, each meter's price entry ids, most specific
    match first, catalog order among equals)."""
    cat = catalog()
    parser_view = {
        tenant_id: {name: {"aggregation": meter.aggregation, "group_by": sorted(set(meter.group_by)),
                           "unique_dimension": meter.unique_dimension if meter.aggregation == "unique_count" else None}
                    for name, meter in tenant.meters.items()}
        for tenant_id, tenant in cat.tenants.items()
    }
    rating_view = {
        tenant_id: {"currency": tenant.currency, "amount_precision": tenant.amount_precision,
                    "anchor_day": tenant.billing_period.anchor_day, "time_zone": tenant.billing_period.time_zone,
                    "meters": {name: {"aggregation": meter.aggregation,
                                      "price_ids": [e.id for e in sorted(tenant.prices[name],
                                                                         key=lambda e: -len(e.match))]}
                               for name, meter in tenant.meters.items()}}
        for tenant_id, tenant in cat.tenants.items()
    }
    return {"java_catalog_json": java_catalog_json(cat), "parser_view": parser_view, "rating_view": rating_view}


# ---- invoices ------------------------------------------------------------------------------------------------

INVOICE_CUSTOMERS = ["cust-1", "a|b", "é😀", 'q"uote']


def invoices_catalog() -> Catalog:
    """The golden catalog with a grace of its own for one tenant (the others keep the default hour)."""
    cat = catalog()
    zeta = cat.tenants["zeta-test"]
    zeta = zeta.model_copy(update={"billing_period": zeta.billing_period.model_copy(
        update={"grace": timedelta(hours=2, minutes=30, milliseconds=7)})})
    return cat.model_copy(update={"tenants": {**cat.tenants, "zeta-test": zeta}})


def _invoice_line(rng: random.Random, tenant_id: str, tenant, customer: str, kind: str,
                  own: tuple[datetime, datetime], named: tuple[datetime, datetime], n: int) -> str:
    meter = rng.choice(sorted(tenant.meters))
    group = rng.choice([{}, {"model": "nova-large"}, {"model": "b", "region": "eu"}, {TRICKY[0]: TRICKY[6]},
                        {"z": "1", "a": TRICKY[1]}])
    window_start = own[0] + timedelta(minutes=rng.randrange(0, 600))
    amount = Decimal(rng.randrange(-5000, 100000)).scaleb(-rng.choice([0, 2, 3, 4]))
    quantity = Decimal(rng.randrange(0, 10**9)).scaleb(-rng.choice([0, 3, 18]))
    line = InvoiceLineItem(
        line_item_id=f"line-{n}", kind=kind, adjusts_line_item_id=None if kind == "usage" else f"line-{n - 1}",
        invoice_id=invoices.invoice_id(tenant_id, customer, named[0], tenant.currency),
        tenant_id=tenant_id, customer_id=customer, meter=meter, group=group,
        window_start=window_start, window_end=window_start + timedelta(minutes=1),
        period_start=own[0], period_end=own[1], quantity=quantity, period_quantity_to_date=quantity,
        amount=amount, period_amount_to_date=amount, currency=tenant.currency, tiers=(),
        rounding_adjustment=amount, event_count=1, emitted_at=window_start, price_ref="p",
    )
    return line.model_dump_json()


def _invoice_drawdown(rng: random.Random, tenant_id: str, tenant, customer: str,
                      period_start: datetime, n: int) -> str:
    kind = rng.choice(["usage", "usage", "catch_up", "adjustment", "expiry", "void"])
    of_line = kind in ("usage", "catch_up", "adjustment")
    amount = Decimal(rng.randrange(-3000, 20000)).scaleb(-rng.choice([0, 2, 4]))
    return CreditDrawdown(
        drawdown_id=f"dd-{n}", tenant_id=tenant_id, customer_id=customer, kind=kind,
        line_item_id=f"line-{n}" if of_line else None, grant_id="g-1",
        meter="m" if of_line else None, period_start=period_start if of_line else None, currency=tenant.currency,
        amount=amount, grant_balance_after=Decimal(0), customer_balance_after=Decimal(0),
        uncovered_amount=Decimal(0), event_time=period_start, emitted_at=period_start,
    ).model_dump_json()


def invoices_case(rng: random.Random, cat: Catalog) -> dict[str, Any]:
    """One customer's lines and credit movements over a few periods, with the clock advancing to, just before and
    just after each close; the invoices each close (and the end of the input) writes, as `udfs.invoices` writes
    them."""
    tenant_id = rng.choice(sorted(cat.tenants))
    tenant = cat.tenants[tenant_id]
    customer = rng.choice(INVOICE_CUSTOMERS)
    grace = tenant.billing_period.grace
    schedule = tenant.billing_period

    def period_of(instant: datetime) -> tuple[datetime, datetime]:
        return billing_period(instant, schedule.anchor_day, schedule.zone)

    start = NOW - timedelta(days=rng.randrange(0, 400))
    clock = period_of(start)[0] + timedelta(days=rng.randrange(0, 28))
    state: invoices.CustomerInvoices | None = None
    steps: list[dict[str, Any]] = []
    for n in range(rng.randrange(3, 40)):
        roll = rng.random()
        current = period_of(clock - grace)  # the open period
        if roll < 0.55:
            kind = rng.choice(["usage", "usage", "late_adjustment", "correction", "prior_period_adjustment"])
            if kind == "prior_period_adjustment":
                own = period_of(current[0] - timedelta(days=rng.choice([1, 1, 40])))
                named = current
            else:
                own = named = period_of(clock) if rng.random() < 0.5 else current
            if rng.random() < 0.05:  # a line for an invoice that has closed: refused loudly
                own = named = period_of(current[0] - timedelta(days=1))
                kind = "usage"
            text = _invoice_line(rng, tenant_id, tenant, customer, kind, own, named, n)
            step: dict[str, Any] = {"line": text, "clock_ms": to_epoch_ms(clock)}
            try:
                state = invoices.add_line(state, InvoiceLineItem.model_validate_json(text), tenant, clock=clock)
            except invoices.InvoiceClosed:
                step["error"] = "closed"
        elif roll < 0.75:
            period_start = period_of(clock - timedelta(days=rng.choice([0, 0, 20, 45])))[0]
            text = _invoice_drawdown(rng, tenant_id, tenant, customer, period_start, n)
            step = {"drawdown": text, "clock_ms": to_epoch_ms(clock)}
            state = invoices.add_drawdown(state, CreditDrawdown.model_validate_json(text), tenant, clock=clock)
        else:
            due = invoices.next_close(state)
            if due is not None and rng.random() < 0.7:
                clock = max(clock, due + timedelta(milliseconds=rng.choice([-1, 0, 0, 1, 3_600_000])))
            else:
                clock += timedelta(hours=rng.randrange(0, 24 * 20))
            state, out = invoices.close_due(state, clock, emitted_at=from_epoch_ms(EMITTED_MS))
            step = {"close_ms": to_epoch_ms(clock), "invoices": [i.model_dump_json() for i in out]}
        steps.append(step)
    steps.append({"end_of_input": True,
                  "invoices": [i.model_dump_json() for i in invoices.end_of_input(
                      state, emitted_at=from_epoch_ms(EMITTED_MS))]})
    return {"tenant_id": tenant_id, "customer_id": customer, "steps": steps}


def invoices_vectors() -> dict[str, Any]:
    rng = random.Random(SEED + 17)
    cat = invoices_catalog()
    return {"java_catalog_json": java_catalog_json(cat), "emitted_at_ms": EMITTED_MS,
            "cases": [invoices_case(rng, cat) for _ in range(80)]}


# ---- the files ----------------------------------------------------------------------------------------------

FILES: dict[str, Callable[[], dict[str, Any]]] = {
    "validation.json": validation_vectors,
    "canonical.json": canonical_vectors,
    "windows.json": windows_vectors,
    "periods.json": periods_vectors,
    "aggregations.json": aggregations_vectors,
    **{f"pricing-{model}.json": (lambda model=model: pricing_vectors(model)) for model in MODELS},
    "rounding.json": rounding_vectors,
    "line-items.json": line_items_vectors,
    "correction-lines.json": correction_lines_vectors,
    "lateness.json": lateness_vectors,
    "rating-stream.json": rating_stream_vectors,
    "unique-windows.json": unique_windows_vectors,
    "dedup.json": dedup_vectors,
    "corrections.json": corrections_vectors,
    "java-catalog.json": java_catalog_vectors,
    "invoices.json": invoices_vectors,
}


def text(name: str) -> str:
    return json.dumps(FILES[name](), ensure_ascii=False, separators=(",", ":")) + "\n"


def load(name: str) -> Any:
    """A checked-in vector file, for the replays."""
    return json.loads((GOLDEN_DIR / name).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    return write_or_check(argv, {GOLDEN_DIR / name: (lambda name=name: text(name)) for name in FILES},
                          "python -m udfs.golden")


if __name__ == "__main__":
    raise SystemExit(main())
