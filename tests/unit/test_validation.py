"""udfs.validation: one table of records -> reasons (precedence included), the edges, and properties."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import generate
from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.usage_event import UsageEvent
from tests.strategies import (
    MAX_AGE,
    MAX_FUTURE_SKEW,
    METERS_BY_TENANT,
    REFERENCE_NOW,
    garbage_usage_records,
    near_valid_usage_records,
    usage_records,
    valid_usage_records,
)
from udfs import validation
from udfs.validation import (
    MAX_RECORD_BYTES,
    Rejection,
    dead_letter_for,
    rejected_record_ids,
    validate_usage_record,
)

R = DeadLetterReason
BASE: dict[str, Any] = {
    "event_id": "evt-1",
    "tenant_id": "acme-ai",
    "customer_id": "cust-1",
    "meter": "input_tokens",
    "timestamp": "2026-11-24T08:31:35.123Z",
    "value": "10",
}
_ABSENT = object()


def record(**changes: Any) -> bytes:
    obj = {**BASE, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not _ABSENT}).encode()


def check(raw: bytes, **kwargs: Any) -> UsageEvent | Rejection:
    return validate_usage_record(raw, meters_by_tenant=METERS_BY_TENANT, now=REFERENCE_NOW, **kwargs)


CASES: list[tuple[str, bytes, DeadLetterReason | None]] = [
    ("valid", record(), None),
    ("too large beats everything", b"\xff" * (MAX_RECORD_BYTES + 1), R.TOO_LARGE),
    ("exactly at the size limit is judged on content", b" " * MAX_RECORD_BYTES, R.MALFORMED_JSON),
    ("invalid utf-8", b'{"event_id": "\xc3"}', R.NOT_UTF8),
    ("encoded surrogate is not utf-8", b'{"a": "\xed\xa0\x80"}', R.NOT_UTF8),
    ("empty", b"", R.MALFORMED_JSON),
    ("truncated", record()[:-1], R.MALFORMED_JSON),
    ("trailing data", record() + b"{}", R.MALFORMED_JSON),
    ("NaN", b'{"value": NaN}', R.MALFORMED_JSON),
    ("utf-8 BOM", b"\xef\xbb\xbf" + record(), R.MALFORMED_JSON),
    ("too deep", b"[" * 600 + b"]" * 600, R.MALFORMED_JSON),
    ("array", b"[]", R.NOT_AN_OBJECT),
    ("string", b'"x"', R.NOT_AN_OBJECT),
    ("null", b"null", R.NOT_AN_OBJECT),
    ("missing event_id", record(event_id=_ABSENT), R.MISSING_FIELD),
    ("null tenant_id", record(tenant_id=None), R.MISSING_FIELD),
    ("missing timestamp", record(timestamp=_ABSENT), R.MISSING_FIELD),
    ("missing beats invalid", record(event_id=_ABSENT, customer_id=5, timestamp="x", value="y"), R.MISSING_FIELD),
    ("number event_id", record(event_id=17), R.INVALID_FIELD),
    ("empty customer_id", record(customer_id=""), R.INVALID_FIELD),
    ("129-char meter", record(meter="m" * 129), R.INVALID_FIELD),
    (
        "lone surrogate",
        b'{"event_id":"\\ud800","tenant_id":"acme-ai","customer_id":"c","meter":"requests","timestamp":0}',
        R.INVALID_FIELD,
    ),
    ("dimension value not a string", record(dimensions={"model": 1}), R.INVALID_FIELD),
    ("dimensions not an object", record(dimensions=["model"]), R.INVALID_FIELD),
    ("empty dimension key", record(dimensions={"": "x"}), R.INVALID_FIELD),
    ("invalid field beats bad timestamp and value", record(meter=1, timestamp="x", value="-1"), R.INVALID_FIELD),
    ("timestamp without offset", record(timestamp="2026-11-24T08:31:35.123"), R.INVALID_TIMESTAMP),
    ("lowercase z", record(timestamp="2026-11-24T08:31:35z"), R.INVALID_TIMESTAMP),
    ("space separator", record(timestamp="2026-11-24 08:31:35Z"), R.INVALID_TIMESTAMP),
    ("no such day", record(timestamp="2026-02-29T00:00:00Z"), R.INVALID_TIMESTAMP),
    ("leap second", record(timestamp="2026-12-31T23:59:60Z"), R.INVALID_TIMESTAMP),
    ("offset hours 24", record(timestamp="2026-11-24T08:31:35+24:00"), R.INVALID_TIMESTAMP),
    ("10 fraction digits", record(timestamp="2026-11-24T08:31:35.1234567890Z"), R.INVALID_TIMESTAMP),
    ("before year 1 in UTC", record(timestamp="0001-01-01T00:00:00+00:01"), R.INVALID_TIMESTAMP),
    (
        "float epoch",
        b'{"event_id":"e","tenant_id":"acme-ai","customer_id":"c","meter":"requests","timestamp":1795509095123.0}',
        R.INVALID_TIMESTAMP,
    ),
    ("negative epoch", record(timestamp=-1), R.INVALID_TIMESTAMP),
    ("epoch past 9999", record(timestamp=253402300800000), R.INVALID_TIMESTAMP),
    ("epoch as string", record(timestamp="1795509095123"), R.INVALID_TIMESTAMP),
    ("bool timestamp", record(timestamp=True), R.INVALID_TIMESTAMP),
    ("bad timestamp beats bad value", record(timestamp="x", value="-1"), R.INVALID_TIMESTAMP),
    ("exponent string", record(value="1e3"), R.INVALID_VALUE),
    ("exponent number", record().replace(b'"10"', b"1e3"), R.INVALID_VALUE),
    ("19 fraction digits", record(value="0." + "1" * 19), R.INVALID_VALUE),
    ("trailing zeros count", record(value="1.0000000000000000000"), R.INVALID_VALUE),
    ("21 integer digits", record(value="1" * 21), R.INVALID_VALUE),
    ("leading zero", record(value="01"), R.INVALID_VALUE),
    ("plus sign", record(value="+1"), R.INVALID_VALUE),
    ("whitespace", record(value=" 1"), R.INVALID_VALUE),
    ("bool value", record(value=True), R.INVALID_VALUE),
    ("object value", record(value={"amount": "1"}), R.INVALID_VALUE),
    ("invalid value on a count meter", record(meter="requests", value="abc"), R.INVALID_VALUE),
    ("negative string", record(value="-0.5"), R.NEGATIVE_VALUE),
    ("negative number", record().replace(b'"10"', b"-3"), R.NEGATIVE_VALUE),
    ("negative on a count meter", record(meter="requests", value="-1"), R.NEGATIVE_VALUE),
    ("negative beats unknown tenant", record(tenant_id="globex", value="-1"), R.NEGATIVE_VALUE),
    ("unknown tenant", record(tenant_id="globex"), R.UNKNOWN_TENANT),
    ("tenant ids are case sensitive", record(tenant_id="ACME-AI"), R.UNKNOWN_TENANT),
    ("unknown tenant beats unknown meter", record(tenant_id="globex", meter="nope"), R.UNKNOWN_TENANT),
    ("unknown meter", record(meter="output_images"), R.UNKNOWN_METER),
    ("unknown meter beats too old", record(meter="nope", timestamp="2020-01-01T00:00:00Z"), R.UNKNOWN_METER),
    ("sum meter without value", record(value=_ABSENT), R.MISSING_VALUE),
    ("max meter with null value", record(meter="seats", value=None), R.MISSING_VALUE),
    ("missing value beats too old", record(value=None, timestamp="2020-01-01T00:00:00Z"), R.MISSING_VALUE),
    ("count meter without value", record(meter="requests", value=_ABSENT), None),
    ("count meter with a value", record(meter="requests", value="3"), None),
    ("unique_count meter without value", record(meter="active_users", value=None, dimensions={"user_id": "u"}), None),
    ("zero", record(value="0"), None),
    ("negative zero", record(value="-0.000"), None),
    ("largest value", record(value="99999999999999999999.999999999999999999"), None),
    ("too old", record(timestamp="2026-10-20T11:59:59.999Z"), R.TOO_OLD),
    ("exactly max age", record(timestamp="2026-10-20T12:00:00Z"), None),
    ("old by sub-millisecond digits only", record(timestamp="2026-10-20T11:59:59.9999Z"), R.TOO_OLD),
    ("too far in future", record(timestamp="2026-11-24T12:05:00.001Z"), R.TOO_FAR_IN_FUTURE),
    ("exactly max skew", record(timestamp="2026-11-24T12:05:00.000999Z"), None),
    ("future via offset", record(timestamp="2026-11-24T13:05:00.001+01:00"), R.TOO_FAR_IN_FUTURE),
    ("epoch ms", record(timestamp=1795509095123), None),
    ("unknown fields ignored", record(extra={"anything": [1, 2.5, None]}), None),
    ("duplicate keys: the last wins", record()[:-1] + b', "value": "-1"}', R.NEGATIVE_VALUE),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reason_table(raw: bytes, expected: DeadLetterReason | None):
    result = check(raw)
    if expected is None:
        assert isinstance(result, UsageEvent), result
    else:
        assert isinstance(result, Rejection), result
        assert result.reason is expected, result.detail
        assert result.detail


def test_precedence_is_the_enum_order():
    assert tuple(DeadLetterReason) == validation.REASON_PRECEDENCE
    assert [r.precedence for r in DeadLetterReason] == list(range(len(DeadLetterReason)))
    assert validation.REASON_PRECEDENCE[0] is R.TOO_LARGE
    assert validation.REASON_PRECEDENCE[-2:] == (R.TOO_OLD, R.TOO_FAR_IN_FUTURE)


def test_detail_names_the_first_field_in_field_order():
    result = check(record(customer_id=1, event_id=2))
    assert isinstance(result, Rejection)
    assert "'event_id'" in result.detail
    result = check(record(dimensions={"model": 7}))
    assert isinstance(result, Rejection)
    assert "dimensions.model" in result.detail


def test_normalisation():
    event = check(record(timestamp="2026-11-24T03:31:35.123987-05:00", value="12.500", dimensions={"m": "x"}))
    assert isinstance(event, UsageEvent)
    assert event.timestamp == datetime(2026, 11, 24, 8, 31, 35, 123000, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.value == Decimal("12.500")
    assert event.dimensions == {"m": "x"}
    assert not hasattr(event, "extra")


def test_number_value_keeps_every_digit():
    raw = record().replace(b'"10"', b"12345678901234567890.123456789012345678")
    event = check(raw)
    assert isinstance(event, UsageEvent)
    assert event.value == Decimal("12345678901234567890.123456789012345678")


def test_limits_are_parameters():
    old = record(timestamp="2026-11-01T00:00:00Z")
    assert isinstance(check(old), UsageEvent)
    assert check(old, max_age=timedelta(days=1)).reason is R.TOO_OLD
    ahead = record(timestamp="2026-11-24T13:00:00Z")
    assert check(ahead).reason is R.TOO_FAR_IN_FUTURE
    assert isinstance(check(ahead, max_future_skew=timedelta(hours=1)), UsageEvent)


def test_now_may_be_in_any_zone_but_not_naive():
    from zoneinfo import ZoneInfo

    tokyo_now = REFERENCE_NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    raw = record(timestamp="2026-11-24T12:05:00.001Z")
    assert validate_usage_record(raw, meters_by_tenant=METERS_BY_TENANT, now=tokyo_now).reason is (R.TOO_FAR_IN_FUTURE)
    with pytest.raises(ValueError):
        validate_usage_record(raw, meters_by_tenant=METERS_BY_TENANT, now=REFERENCE_NOW.replace(tzinfo=None))


def test_tombstone_and_buffer_types():
    assert check(None).reason is R.MALFORMED_JSON  # type: ignore[arg-type]
    assert isinstance(check(bytearray(record())), UsageEvent)
    assert isinstance(check(memoryview(record())), UsageEvent)


def test_unknown_aggregation_needs_a_value():
    meters = {"acme-ai": {"input_tokens": "percentile"}}
    result = validate_usage_record(record(value=None), meters_by_tenant=meters, now=REFERENCE_NOW)
    assert result.reason is R.MISSING_VALUE


# ---- dead letters ----------------------------------------------------------------------------------------
RECEIVED = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)


def _dead_letter(raw: bytes) -> DeadLetter:
    rejection = check(raw)
    assert isinstance(rejection, Rejection)
    return dead_letter_for(raw, rejection, source_topic="usage-events", partition=2, offset=41, received_at=RECEIVED)


def test_dead_letter_keeps_utf8_as_text():
    raw = record(meter="nope")
    letter = _dead_letter(raw)
    assert (letter.raw, letter.raw_encoding, letter.raw_truncated) == (raw.decode(), "utf-8", False)
    assert letter.reason is R.UNKNOWN_METER
    wire = letter.model_dump(mode="json")
    assert wire["received_at"] == "2026-11-24T12:00:00.123Z"
    assert wire["reason"] == "unknown_meter"
    assert wire["source_partition"] == 2 and wire["source_offset"] == 41
    assert DeadLetter.model_validate_json(letter.model_dump_json()) == letter


def test_dead_letter_base64_when_not_utf8():
    raw = b'{"event_id": "\xff"}'
    letter = _dead_letter(raw)
    assert letter.raw_encoding == "base64"
    assert base64.b64decode(letter.raw) == raw
    assert letter.raw_size_bytes == len(raw)


def test_dead_letter_of_an_oversized_record_is_truncated():
    raw = b'{"pad": "' + "é".encode() * MAX_RECORD_BYTES + b'"}'
    letter = _dead_letter(raw)
    assert letter.reason is R.TOO_LARGE
    assert letter.raw_truncated and letter.raw_size_bytes == len(raw)
    kept = letter.raw.encode() if letter.raw_encoding == "utf-8" else base64.b64decode(letter.raw)
    assert kept == raw[:MAX_RECORD_BYTES]


# ---- properties ------------------------------------------------------------------------------------------
_SCHEMA = json.loads((generate.JSON_DIR / "usage-events.schema.json").read_text(encoding="utf-8"))
_VALIDATOR = jsonschema.Draft202012Validator(_SCHEMA)
_STRUCTURAL = {
    R.NOT_UTF8,
    R.MALFORMED_JSON,
    R.NOT_AN_OBJECT,
    R.MISSING_FIELD,
    R.INVALID_FIELD,
    R.INVALID_TIMESTAMP,
    R.INVALID_VALUE,
    R.NEGATIVE_VALUE,
}
_PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY_SETTINGS
@given(valid_usage_records())
def test_valid_records_are_accepted_and_round_trip(raw: bytes):
    event = check(raw)
    assert isinstance(event, UsageEvent), (event, raw)
    assert event.timestamp.tzinfo is UTC and event.timestamp.microsecond % 1000 == 0
    assert REFERENCE_NOW - MAX_AGE <= event.timestamp <= REFERENCE_NOW + MAX_FUTURE_SKEW
    assert check(event.to_wire().encode()) == event
    assert _VALIDATOR.is_valid(json.loads(raw))


@_PROPERTY_SETTINGS
@given(st.one_of(near_valid_usage_records(), garbage_usage_records(), st.binary(max_size=400)))
def test_never_raises_and_agrees_with_the_model(raw: bytes):
    result = check(raw)
    assert isinstance(result, UsageEvent | Rejection)
    try:
        model_event: UsageEvent | None = UsageEvent.model_validate_json(raw)
    except ValidationError:
        model_event = None
    if isinstance(result, UsageEvent):
        assert model_event == result
    elif result.reason in _STRUCTURAL:
        assert model_event is None, result
    elif result.reason is not R.TOO_LARGE:
        assert model_event is not None, result
    if model_event is not None:  # the JSON Schema never rejects what the model accepts
        assert _VALIDATOR.is_valid(json.loads(raw.decode("utf-8"))), raw


@_PROPERTY_SETTINGS
@given(usage_records())
def test_rejections_become_valid_dead_letters(raw: bytes):
    result = check(raw)
    if isinstance(result, Rejection):
        letter = dead_letter_for(raw, result, source_topic="usage-events", partition=0, offset=0, received_at=RECEIVED)
        assert DeadLetter.model_validate_json(letter.model_dump_json()) == letter
        decoded = letter.raw.encode() if letter.raw_encoding == "utf-8" else base64.b64decode(letter.raw)
        assert decoded == raw[:MAX_RECORD_BYTES]


@_PROPERTY_SETTINGS
@given(near_valid_usage_records())
def test_reason_is_deterministic(raw: bytes):
    assert check(raw) == check(raw)


@pytest.mark.parametrize(("raw", "ids"), [
    (b'{"event_id":"e-1","tenant_id":"acme-ai","timestamp":"yesterday"}', ("acme-ai", "e-1")),  # invalid_timestamp
    (b'{"event_id":"e-1","tenant_id":"acme-ai","customer_id":7}', ("acme-ai", "e-1")),  # invalid customer_id
    (b'{"event_id":1,"tenant_id":"acme-ai"}', None),  # a number is not an id
    (b'{"event_id":"","tenant_id":"acme-ai"}', None),  # too short
    (b'{"event_id":"e-1"}', None),  # no tenant
    (b'{"event_id":"\\ud800","tenant_id":"acme-ai"}', None),  # a lone surrogate
    (b'["e-1","acme-ai"]', None),  # not an object
    (b'{"event_id":"e-1",', None),  # malformed
])
def test_rejected_record_ids_are_named_only_when_both_are_valid(raw: bytes, ids):
    assert rejected_record_ids(raw) == ids


# ---- tenant topics (--usage-topic-prefix): the topic says whose usage a record is ----------------------------

TENANT_CASES: list[tuple[str, bytes, str | None, DeadLetterReason | None]] = [
    ("own tenant's topic", record(), "acme-ai", None),
    ("shared topic: no tenant check", record(tenant_id="globex"), None, R.UNKNOWN_TENANT),
    ("another tenant's record", record(tenant_id="acme-ai"), "globex", R.TENANT_MISMATCH),
    ("a tenant id differing in case only", record(tenant_id="ACME-AI"), "acme-ai", R.TENANT_MISMATCH),
    ("before unknown_tenant: the claimed tenant does not exist", record(tenant_id="ghost"), "acme-ai",
     R.TENANT_MISMATCH),
    ("own topic, tenant not in the catalog", record(tenant_id="globex"), "globex", R.UNKNOWN_TENANT),
    ("before unknown_meter", record(meter="nope"), "globex", R.TENANT_MISMATCH),
    ("before too_old", record(timestamp="2020-01-01T00:00:00Z"), "globex", R.TENANT_MISMATCH),
    ("after the structural checks", record(value="-1"), "globex", R.NEGATIVE_VALUE),
    ("needs a valid tenant_id", record(tenant_id=7), "globex", R.INVALID_FIELD),
    ("a topic's tenant longer than any id", record(), "x" * 129, R.TENANT_MISMATCH),
]


@pytest.mark.parametrize(("raw", "topic_tenant", "expected"), [c[1:] for c in TENANT_CASES],
                         ids=[c[0] for c in TENANT_CASES])
def test_tenant_topic_check(raw: bytes, topic_tenant: str | None, expected: DeadLetterReason | None):
    result = check(raw, topic_tenant=topic_tenant)
    if expected is None:
        assert isinstance(result, UsageEvent), result
    else:
        assert isinstance(result, Rejection), result
        assert result.reason is expected, result.detail


def test_tenant_mismatch_detail_names_both_tenants_and_sits_before_unknown_tenant():
    result = check(record(tenant_id="acme-ai"), topic_tenant="globex")
    assert isinstance(result, Rejection)
    assert "'acme-ai'" in result.detail and "'globex'" in result.detail
    order = list(DeadLetterReason)
    assert order.index(R.NEGATIVE_VALUE) < order.index(R.TENANT_MISMATCH) == order.index(R.UNKNOWN_TENANT) - 1
    assert validation.rejected_record_ids(record(tenant_id="acme-ai")) == ("acme-ai", BASE["event_id"])


def test_tenant_of_topic():
    assert validation.tenant_of_topic("usage-events.acme-ai", "usage-events.") == "acme-ai"
    assert validation.tenant_of_topic("usage-events.a.b", "usage-events.") == "a.b"
    for topic, prefix in [("usage-events.", "usage-events."), ("usage-events", "usage-events."),
                          ("other.acme-ai", "usage-events."), ("acme-ai", "")]:
        with pytest.raises(ValueError):
            validation.tenant_of_topic(topic, prefix)
    topics = ["usage-events.acme-ai", "usage-events." + "x" * 128, "usage-events." + "x" * 129]
    assert validation.invalid_tenant_topics(topics, "usage-events.") == ["usage-events." + "x" * 129]


def test_tenant_topic_pattern_is_the_prefix_then_a_tenant():
    assert validation.tenant_topic_pattern("usage-events.") == "usage-events\\..+"
    topics = ["usage-events.acme-ai", "usage-events.", "usage-events", "usage-eventsXacme", "usage-events.b.c",
              "x.usage-events.acme"]
    assert validation.tenant_topics(topics, "usage-events.") == ["usage-events.acme-ai", "usage-events.b.c"]
    for bad in ["", "usage events.", "usage-events.*", "tenant/", "usage\n", "u" * 249]:
        with pytest.raises(ValueError):
            validation.tenant_topic_pattern(bad)
