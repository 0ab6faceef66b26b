"""The topic contract: generated JSON Schemas match the models, and every example is judged as its folder says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import generate
from schemas.dead_letter import DeadLetterReason
from schemas.topics import EXAMPLE_SOURCE_TOPICS, EXAMPLE_TENANT_TOPIC_PREFIX, TOPICS, USAGE_EVENTS
from schemas.usage_event import UsageEvent
from udfs.validation import Rejection, tenant_of_topic, validate_usage_record

EXAMPLES = Path(generate.__file__).resolve().parent / "examples"
REFERENCE_NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
ACME = {"acme-ai": {"input_tokens": "sum", "requests": "count", "gpu_seconds": "sum", "seats": "max"}}
# Reasons the record alone decides (schema and model reject); the rest need the catalog, the clock, the size or the
# topic the record was read from.
STRUCTURAL = {
    DeadLetterReason.NOT_UTF8,
    DeadLetterReason.MALFORMED_JSON,
    DeadLetterReason.NOT_AN_OBJECT,
    DeadLetterReason.MISSING_FIELD,
    DeadLetterReason.INVALID_FIELD,
    DeadLetterReason.INVALID_TIMESTAMP,
    DeadLetterReason.INVALID_VALUE,
    DeadLetterReason.NEGATIVE_VALUE,
}


def _topic_tenant(path: Path) -> str | None:
    """The tenant of the tenant topic an example was read from (`schemas.topics.EXAMPLE_SOURCE_TOPICS`), else None."""
    topic = EXAMPLE_SOURCE_TOPICS.get(path.name)
    return None if topic is None else tenant_of_topic(topic, EXAMPLE_TENANT_TOPIC_PREFIX)


def _examples(kind: str) -> list[tuple[str, Path]]:
    return [(topic, path) for topic in sorted(TOPICS) for path in sorted((EXAMPLES / topic / kind).glob("*.json"))]


def _ids(cases: list[tuple[str, Path]]) -> list[str]:
    return [f"{topic}/{path.stem}" for topic, path in cases]


def _schema(topic: str) -> dict[str, Any]:
    return json.loads((generate.JSON_DIR / f"{topic}.schema.json").read_text(encoding="utf-8"))


def _schema_accepts(topic: str, raw: bytes) -> bool:
    try:
        instance = json.loads(raw.decode("utf-8"))
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(_schema(topic)).is_valid(instance)


def _model_accepts(topic: str, raw: bytes) -> bool:
    try:
        TOPICS[topic].model.model_validate_json(raw)
    except ValidationError:
        return False
    return True


def test_checked_in_json_schemas_match_the_models():
    for path, text in generate.expected_files().items():
        assert path.exists(), f"missing {path.name}: run python -m schemas.generate"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} drifted: run python -m schemas.generate"
    assert generate.main(["--check"]) == 0


def test_generation_is_deterministic():
    assert generate.expected_files() == generate.expected_files()
    assert all(text.endswith("}\n") for text in generate.expected_files().values())


def test_every_schema_is_a_valid_json_schema():
    for topic in TOPICS:
        jsonschema.Draft202012Validator.check_schema(_schema(topic))


def test_every_topic_has_a_description_and_valid_and_invalid_examples():
    assert set(TOPICS) == {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    for topic, spec in TOPICS.items():
        assert spec.name == topic and spec.description.strip()
        assert list((EXAMPLES / topic / "valid").glob("*.json")), topic
        assert list((EXAMPLES / topic / "invalid").glob("*.json")), topic


@pytest.mark.parametrize(("topic", "path"), _examples("valid"), ids=_ids(_examples("valid")))
def test_valid_example_passes_schema_and_model(topic: str, path: Path):
    raw = path.read_bytes()
    assert _schema_accepts(topic, raw)
    record = TOPICS[topic].model.model_validate_json(raw)
    if topic == USAGE_EVENTS:
        result = validate_usage_record(raw, meters_by_tenant=ACME, now=REFERENCE_NOW)
        assert result == record
    else:  # output topics: what we write is exactly the example (wire form is canonical)
        assert record.model_dump(mode="json") == json.loads(raw)


@pytest.mark.parametrize(("topic", "path"), _examples("invalid"), ids=_ids(_examples("invalid")))
def test_invalid_example_is_rejected(topic: str, path: Path):
    raw = path.read_bytes()
    if topic != USAGE_EVENTS:
        assert not _schema_accepts(topic, raw)
        assert not _model_accepts(topic, raw)
        return
    expected = DeadLetterReason(path.stem)  # the file is named after the reason it must yield
    result = validate_usage_record(raw, meters_by_tenant=ACME, now=REFERENCE_NOW, topic_tenant=_topic_tenant(path))
    assert isinstance(result, Rejection), result
    assert result.reason is expected, result.detail
    if expected in STRUCTURAL:
        assert not _schema_accepts(topic, raw)
        assert not _model_accepts(topic, raw)
    else:  # only the catalog, the clock or the size limit can tell
        assert _schema_accepts(topic, raw)
        assert _model_accepts(topic, raw)


def test_every_dead_letter_reason_has_a_usage_event_example():
    names = {p.stem for p in (EXAMPLES / USAGE_EVENTS / "invalid").glob("*.json")}
    assert names == {reason.value for reason in DeadLetterReason}


def test_usage_event_wire_form_is_strings_and_utc_millis():
    event = UsageEvent.model_validate_json(
        b'{"event_id":"e","tenant_id":"t","customer_id":"c","meter":"m",'
        b'"timestamp":"2026-11-24T09:31:35.123999+01:00","value":0.1234567890123456789e0}'.replace(
            b"0.1234567890123456789e0", b"12345678901234567890.123456789012345678"
        )
    )
    assert event.value == Decimal("12345678901234567890.123456789012345678")  # no float on the way
    assert event.timestamp == datetime(2026, 11, 24, 8, 31, 35, 123000, tzinfo=UTC)
    dumped = event.model_dump(mode="json")
    assert dumped["timestamp"] == "2026-11-24T08:31:35.123Z"
    assert dumped["value"] == "12345678901234567890.123456789012345678"
    assert UsageEvent.model_validate_json(event.to_wire()) == event


def test_usage_event_model_validate_json_reports_malformed_json_as_validation_error():
    with pytest.raises(ValidationError):
        UsageEvent.model_validate_json(b"{nope")
    with pytest.raises(ValidationError):
        UsageEvent.model_validate_json(b"\xff")


def test_usage_event_rejects_binary_floats_from_python():
    with pytest.raises(ValidationError):
        UsageEvent(event_id="e", tenant_id="t", customer_id="c", meter="m", timestamp=0, value=0.5)


