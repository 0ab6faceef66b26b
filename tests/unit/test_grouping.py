"""udfs.grouping: the canonical forms the Java PARSE_USAGE_EVENT reproduces (parity: tests/job/test_parse_parity.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.usage_event import UsageEvent
from udfs import grouping

ROOT = Path(__file__).resolve().parents[2]


def event(**changes) -> UsageEvent:
    base = {
        "event_id": "evt-1",
        "tenant_id": "acme-ai",
        "customer_id": "cust-42",
        "meter": "input_tokens",
        "timestamp": "2026-11-24T08:31:35.123456Z",
        "value": "12.500",
        "dimensions": {"model": "nova-large", "region": "eu"},
    }
    return UsageEvent.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("dimensions", "group_by", "expected"),
    [
        ({}, (), ()),
        ({"model": "x"}, (), ()),
        ({"model": "x", "region": "eu"}, ("model",), (("model", "x"),)),
        ({"region": "eu", "model": "x"}, ("region", "model"), (("model", "x"), ("region", "eu"))),
        ({"region": "eu"}, ("model", "region"), (("region", "eu"),)),  # missing dimensions are left out
        ({"model": ""}, ("model",), (("model", ""),)),  # present but empty is a value
    ],
)
def test_group_of(dimensions, group_by, expected):
    assert grouping.group_of(dimensions, group_by) == expected


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ((), "{}"),
        ((("model", "nova-large"),), '{"model":"nova-large"}'),
        ((("b", "1"), ("a", "2")), '{"a":"2","b":"1"}'),
        # the escaping contract shared with Java's CanonicalJson
        ((("k", '"\\/'),), '{"k":"\\"\\\\/"}'),
        ((("k", "\b\f\n\r\t"),), '{"k":"\\b\\f\\n\\r\\t"}'),
        ((("k", "\x00\x01\x1f"),), '{"k":"\\u0000\\u0001\\u001f"}'),
        ((("k", "\x7f\u2028é😀"),), '{"k":"\x7f\u2028é😀"}'),
        # code point order: U+1F600 sorts after U+FB01 (UTF-16 order would put it first)
        ((("😀", "a"), ("\ufb01", "b")), '{"\ufb01":"b","😀":"a"}'),
    ],
)
def test_group_json(group, expected):
    assert grouping.group_json(group) == expected
    assert json.loads(expected) == dict(group)


@pytest.mark.parametrize(
    ("value", "token"),
    [("u-1", "u-1"), ("", ""), ("a,b", "a%2Cb"), ("100%", "100%25"), ("%2C", "%252C"), (",%,", "%2C%25%2C")],
)
def test_unique_token(value, token):
    assert grouping.unique_token(value) == token
    assert "," not in token
    assert grouping.decode_unique_token(token) == value


@given(st.text())
def test_unique_token_round_trips(value):
    token = grouping.unique_token(value)
    assert "," not in token
    assert grouping.decode_unique_token(token) == value


def test_fingerprint_text_is_the_documented_form():
    text = grouping.fingerprint_text(event())
    assert text == '["cust-42","input_tokens",1795509095123,"12.5",{"model":"nova-large","region":"eu"}]'
    assert grouping.fingerprint(event()) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), ("0", "0"), ("-0.000", "0"), ("100.00", "100"), ("0.10", "0.1"), ("1250", "1250")],
)
def test_fingerprint_value_normalisation(value, text):
    changes = {"meter": "requests", "value": value}
    assert json.loads(grouping.fingerprint_text(event(**changes)))[3] == text


def test_fingerprint_tells_retries_from_conflicts():
    same = grouping.fingerprint(event())
    assert grouping.fingerprint(event(event_id="evt-2", value="12.5")) == same  # id and trailing zeros: ignored
    assert grouping.fingerprint(event(timestamp="2026-11-24T09:31:35.123999+01:00")) == same  # same UTC ms
    assert grouping.fingerprint(event(dimensions={"region": "eu", "model": "nova-large"})) == same  # key order
    assert grouping.fingerprint(event(value="12.6")) != same
    assert grouping.fingerprint(event(customer_id="cust-43")) != same
    assert grouping.fingerprint(event(dimensions={"model": "nova-large"})) != same
    assert grouping.fingerprint(event(timestamp="2026-11-24T08:31:35.124Z")) != same


def test_fingerprint_golden_value():
    # Pinned so a change to the canonical form is a visible, deliberate decision (the Java side must follow).
    assert grouping.fingerprint(event()) == hashlib.sha256(
        b'["cust-42","input_tokens",1795509095123,"12.5",{"model":"nova-large","region":"eu"}]'
    ).hexdigest()
    assert grouping.epoch_millis(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1000


def test_value_decimal_is_kept_exact():
    assert event(value="99999999999999999999.999999999999999999").value == Decimal(
        "99999999999999999999.999999999999999999"
    )
