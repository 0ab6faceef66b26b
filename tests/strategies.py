"""Hypothesis strategies for raw `usage-events` records, shared by the unit tests and the SQL parity test.

All strategies produce `bytes` (what Kafka hands us), judged against `METERS_BY_TENANT` at `REFERENCE_NOW`:
- `valid_usage_records()`: records `udfs.validation` must accept;
- `near_valid_usage_records()`: a valid record with one to three targeted mutations (each dead-letter reason
  is reachable, including boundary cases one millisecond either side of the time limits);
- `garbage_usage_records()`: arbitrary bytes, arbitrary JSON, and objects with the right keys but any values;
- `usage_records()`: any of the three.

JSON numbers are written from their exact text (`RawJson`), so a value like `12.500` reaches the parser as
written, not as a binary float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

REFERENCE_NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
ACME_METERS = {
    "input_tokens": "sum",
    "requests": "count",
    "gpu_seconds": "sum",
    "seats": "max",
    "active_users": "unique_count",
}
METERS_BY_TENANT = {"acme-ai": ACME_METERS}
MAX_AGE = timedelta(days=35)
MAX_FUTURE_SKEW = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RawJson:
    """A JSON fragment written verbatim (a number token kept exactly as its text)."""

    text: str


def encode(obj: Any) -> bytes:
    """JSON-encode like `json.dumps`, except `RawJson` fragments go in verbatim."""
    return _encode(obj).encode("utf-8", "surrogatepass")


def _encode(obj: Any) -> str:
    if isinstance(obj, RawJson):
        return obj.text
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ", ".join(_encode(v) for v in obj) + "]"
    return json.dumps(obj)


def _millis(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


_ids = st.text(min_size=1, max_size=128)
_offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-05:00", "+05:30", "+14:00", "-12:00", "+23:59"])


@st.composite
def _timestamps(draw: st.DrawFn, low: datetime, high: datetime) -> Any:
    """A wire timestamp whose millisecond-truncated UTC instant lies within [low, high]."""
    millis = draw(st.integers(_millis(low), _millis(high)))
    instant = _EPOCH + timedelta(milliseconds=millis)
    if draw(st.booleans()):
        return RawJson(str(millis)) if draw(st.booleans()) else millis
    offset = draw(_offsets)
    if offset == "Z":
        local = instant
    else:
        sign = -1 if offset[0] == "-" else 1
        delta = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        local = instant + delta
    digits = draw(st.integers(0, 9))
    millis_text = f"{local.microsecond // 1000:03d}"
    if digits < 3 and millis_text[digits:].strip("0"):  # fewer digits would lose millis: keep them exact
        digits = 3
    sub_millis = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=6, max_size=6)))
    fraction = (millis_text + sub_millis)[:digits]
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "")
    return text + offset


@st.composite
def _decimal_texts(draw: st.DrawFn, *, negative: bool = False) -> str:
    integer = draw(st.one_of(st.just("0"), st.integers(1, 10**20 - 1).map(str)))
    scale = draw(st.integers(0, 18))
    fraction = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=scale, max_size=scale)))
    text = integer + (f".{fraction}" if scale else "")
    return ("-" + text) if negative else text


@st.composite
def _values(draw: st.DrawFn) -> Any:
    text = draw(_decimal_texts())
    form = draw(st.sampled_from(["string", "number", "int"]))
    if form == "string":
        return text
    if form == "int" and "." not in text:
        return int(text)
    return RawJson(text)


_dimension_values = st.text(max_size=40)


@st.composite
def valid_usage_objects(draw: st.DrawFn) -> dict[str, Any]:
    meter = draw(st.sampled_from(sorted(ACME_METERS)))
    obj: dict[str, Any] = {
        "event_id": draw(_ids),
        "tenant_id": "acme-ai",
        "customer_id": draw(_ids),
        "meter": meter,
        "timestamp": draw(_timestamps(REFERENCE_NOW - MAX_AGE, REFERENCE_NOW + MAX_FUTURE_SKEW)),
    }
    if ACME_METERS[meter] in {"count", "unique_count"}:
        choice = draw(st.sampled_from(["absent", "null", "value"]))
        if choice == "null":
            obj["value"] = None
        elif choice == "value":
            obj["value"] = draw(_values())
    else:
        obj["value"] = draw(_values())
    dimensions = draw(
        st.one_of(st.none(), st.dictionaries(st.text(min_size=1, max_size=20), _dimension_values, max_size=4))
    )
    if dimensions is not None or draw(st.booleans()):
        obj["dimensions"] = dimensions
    if draw(st.booleans()):
        obj["sdk"] = draw(st.sampled_from([{"name": "py", "version": "1.0"}, "v2", 3, None, [1, 2]]))
    keys = list(obj)
    order = draw(st.permutations(keys))
    return {k: obj[k] for k in order}


def valid_usage_records() -> st.SearchStrategy[bytes]:
    return valid_usage_objects().map(encode)


_WRONG_TYPES = st.sampled_from([None, True, False, 0, 7, RawJson("1.5"), [], {}, ["x"], {"a": "b"}, ""])


@st.composite
def _mutate(draw: st.DrawFn, obj: dict[str, Any]) -> dict[str, Any] | list[Any] | RawJson:
    obj = dict(obj)
    kind = draw(
        st.sampled_from(
            [
                "drop",
                "null",
                "wrong_type",
                "empty_string",
                "too_long",
                "bad_timestamp",
                "bad_value",
                "negative",
                "unknown_tenant",
                "unknown_meter",
                "drop_value",
                "too_old",
                "too_new",
                "boundary",
                "bad_dimensions",
                "extra",
                "lone_surrogate",
            ]
        )
    )
    fields = ["event_id", "tenant_id", "customer_id", "meter", "timestamp", "value", "dimensions"]
    if kind == "drop":
        obj.pop(draw(st.sampled_from(fields)), None)
    elif kind == "null":
        obj[draw(st.sampled_from(fields))] = None
    elif kind == "wrong_type":
        obj[draw(st.sampled_from(fields))] = draw(_WRONG_TYPES)
    elif kind == "empty_string":
        obj[draw(st.sampled_from(fields))] = ""
    elif kind == "too_long":
        obj[draw(st.sampled_from(["event_id", "tenant_id", "customer_id", "meter"]))] = "x" * draw(
            st.sampled_from([128, 129, 1000])
        )
    elif kind == "bad_timestamp":
        obj["timestamp"] = draw(
            st.sampled_from(
                [
                    "2026-11-24T08:31:35",
                    "2026-11-24T08:31:35.123",
                    "2026-11-24 08:31:35Z",
                    "2026-11-24t08:31:35z",
                    "2026-02-30T00:00:00Z",
                    "2026-11-24T24:00:00Z",
                    "2026-11-24T23:59:60Z",
                    "2026-11-24T08:31:35.1234567890Z",
                    "2026-11-24T08:31:35+24:00",
                    "2026-11-24T08:31:35+01:60",
                    "0001-01-01T00:00:00+00:01",
                    "9999-12-31T23:59:59-00:01",
                    "0000-01-01T00:00:00Z",
                    "+2026-11-24T08:31:35Z",
                    "2026-11-24T08:31:35+0100",
                    "",
                    "now",
                    RawJson("1795509095123.0"),
                    RawJson("1.795509095123e12"),
                    RawJson("-1"),
                    RawJson("253402300800000"),
                    RawJson("253402300799999"),
                    RawJson("-0"),
                    RawJson("0"),
                    RawJson("9" * 40),
                    1795509095123,
                    "1795509095123",
                    True,
                ]
            )
        )
    elif kind == "bad_value":
        obj["value"] = draw(
            st.sampled_from(
                [
                    "1e3",
                    "1E3",
                    RawJson("1e3"),
                    RawJson("1.5E-2"),
                    "+1",
                    " 1",
                    "1 ",
                    "01",
                    "1.",
                    ".5",
                    "abc",
                    "NaN",
                    "Infinity",
                    "-",
                    "",
                    "1" * 21,
                    "1" * 20,
                    "0." + "1" * 19,
                    "0." + "1" * 18,
                    "1.0000000000000000000",
                    RawJson("0.1234567890123456789"),
                    RawJson("-0"),
                    "-0",
                    "-0.0",
                    True,
                    [],
                    {},
                    10**20,
                    10**20 - 1,
                    RawJson("1" * 5000),
                    "１２",
                ]
            )
        )
    elif kind == "negative":
        obj["value"] = draw(st.one_of(_decimal_texts(negative=True), _decimal_texts(negative=True).map(RawJson)))
    elif kind == "unknown_tenant":
        obj["tenant_id"] = draw(st.sampled_from(["globex", "ACME-AI", "acme-ai ", "bolt-ml"]))
    elif kind == "unknown_meter":
        obj["meter"] = draw(st.sampled_from(["output_tokens", "Requests", "storage_gb", "x"]))
    elif kind == "drop_value":
        obj.pop("value", None)
    elif kind == "too_old":
        obj["timestamp"] = draw(_timestamps(datetime(1970, 1, 1, tzinfo=UTC), REFERENCE_NOW - MAX_AGE))
    elif kind == "too_new":
        obj["timestamp"] = draw(_timestamps(REFERENCE_NOW + MAX_FUTURE_SKEW, datetime(9999, 12, 30, tzinfo=UTC)))
    elif kind == "boundary":
        edge = draw(st.sampled_from([REFERENCE_NOW - MAX_AGE, REFERENCE_NOW + MAX_FUTURE_SKEW]))
        shift = timedelta(milliseconds=draw(st.sampled_from([-1, 0, 1])))
        obj["timestamp"] = _millis(edge + shift)
    elif kind == "bad_dimensions":
        obj["dimensions"] = draw(
            st.sampled_from(
                [
                    {"": "x"},
                    {"k": 1},
                    {"k": None},
                    {"k": {"n": "v"}},
                    {"k": ["v"]},
                    {"k" * 129: "v"},
                    {"k": "v" * 1025},
                    {"k": "v" * 1024},
                    [],
                    "model=x",
                    RawJson("1"),
                ]
            )
        )
    elif kind == "extra":
        obj[draw(st.text(max_size=10))] = draw(_WRONG_TYPES)
    elif kind == "lone_surrogate":
        obj[draw(st.sampled_from(["event_id", "customer_id", "dimensions"]))] = (
            {"k": "\ud800"} if draw(st.booleans()) else "a\udfffb"
        )
    return obj


@st.composite
def near_valid_usage_records(draw: st.DrawFn) -> bytes:
    obj: Any = draw(valid_usage_objects())
    for _ in range(draw(st.integers(1, 3))):
        obj = draw(_mutate(obj))
    data = encode(obj)
    wrapper = draw(st.sampled_from(["none"] * 8 + ["array", "truncate", "bad_byte", "pad", "bom", "trailing"]))
    if wrapper == "array":
        data = b"[" + data + b"]"
    elif wrapper == "truncate":
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif wrapper == "bad_byte":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])) + data[at:]
    elif wrapper == "pad":
        data = data[:-1] + b', "pad": "' + b"x" * draw(st.sampled_from([65_000, 66_000])) + b'"}'
    elif wrapper == "bom":
        data = b"\xef\xbb\xbf" + data
    elif wrapper == "trailing":
        data = data + draw(st.sampled_from([b" ", b"\n", b"x", b"{}", b"\x00"]))
    return data


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def garbage_usage_records() -> st.SearchStrategy[bytes]:
    keys = st.sampled_from(["event_id", "tenant_id", "customer_id", "meter", "timestamp", "value", "dimensions"])
    return st.one_of(
        st.binary(max_size=200),
        _json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(keys, _json_values, max_size=7).map(lambda v: json.dumps(v).encode()),
        st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


def usage_records() -> st.SearchStrategy[bytes]:
    return st.one_of(valid_usage_records(), near_valid_usage_records(), garbage_usage_records())
