"""The correction contracts beyond what `test_contract.py` checks for every topic: the reason table of
`schemas/README.md` is the `CorrectionRejectionReason` order, and the model's cross-field rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.correction_dead_letter import CorrectionDeadLetter, CorrectionRejectionReason
from schemas.dead_letter import DeadLetterReason
from schemas.usage_correction import UsageCorrection

README = Path(__file__).resolve().parents[2] / "schemas" / "README.md"
BASE = {"correction_id": "c-1", "tenant_id": "acme-ai", "event_id": "e-1", "sent_at": "2026-11-24T09:00:00Z"}


def test_readme_table_lists_the_reasons_in_precedence_order():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Correction reasons") : text.index("## Credits")]
    rows = re.findall(r"^\| (\d+) \| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)
    assert [int(number) for number, _ in rows] == list(range(1, len(CorrectionRejectionReason) + 1))
    assert [code for _, code in rows] == [reason.value for reason in CorrectionRejectionReason]


@pytest.mark.parametrize("field", ["customer_id", "meter", "timestamp"])
def test_amend_of_series_or_window_fields_is_refused(field: str):
    with pytest.raises(ValidationError) as info:
        UsageCorrection.model_validate({**BASE, "action": "amend", "value": "1", field: "x"})
    assert info.value.errors()[0]["type"] == "unamendable_field"


def test_null_means_absent_also_for_unamendable_fields():
    correction = UsageCorrection.model_validate({**BASE, "action": "cancel", "meter": None, "value": None})
    assert correction.value is None and correction.dimensions is None


def test_empty_dimensions_is_an_amend_to_no_dimensions():
    correction = UsageCorrection.model_validate({**BASE, "action": "amend", "dimensions": {}})
    assert correction.dimensions == {}


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"action": "cancel", "dimensions": {}}, "payload_on_cancel"),
        ({"action": "cancel", "value": "0"}, "payload_on_cancel"),
        ({"action": "amend"}, "nothing_to_amend"),
        ({"action": "amend", "value": None, "dimensions": None}, "nothing_to_amend"),
    ],
)
def test_payload_must_fit_the_action(record: dict, error: str):
    with pytest.raises(ValidationError) as info:
        UsageCorrection.model_validate({**BASE, **record})
    assert info.value.errors()[0]["type"] == error


def test_a_json_number_value_keeps_every_digit():
    raw = (
        b'{"correction_id":"c","tenant_id":"t","event_id":"e","action":"amend",'
        b'"value":12345678901234567890.123456789012345678,"sent_at":0}'
    )
    assert str(UsageCorrection.model_validate_json(raw).value) == "12345678901234567890.123456789012345678"


def _dead_letter(**fields) -> dict:
    return {
        "raw": "{}", "raw_encoding": "utf-8", "raw_truncated": False, "raw_size_bytes": 2, "detail": "d",
        "correction_id": None, "tenant_id": None, "event_id": None, "source_topic": "usage-corrections",
        "source_partition": 0, "source_offset": 0, "received_at": "2026-11-24T09:00:00.000Z", **fields,
    }


def test_event_dead_letter_reason_is_given_exactly_for_event_dead_lettered():
    CorrectionDeadLetter.model_validate(
        _dead_letter(reason="event_dead_lettered", event_dead_letter_reason=DeadLetterReason.TOO_OLD.value)
    )
    CorrectionDeadLetter.model_validate(_dead_letter(reason="unknown_event", event_dead_letter_reason=None))
    with pytest.raises(ValidationError):
        CorrectionDeadLetter.model_validate(_dead_letter(reason="event_dead_lettered", event_dead_letter_reason=None))
    with pytest.raises(ValidationError):
        CorrectionDeadLetter.model_validate(_dead_letter(reason="unknown_event", event_dead_letter_reason="too_old"))
