"""Raw credit-grants / spend-caps records -> model or reason; the catalog's `credits:` policy block."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml

from schemas.credits import CreditGrant, CreditVoid, GrantRejectionReason, SpendCap
from udfs.catalog import DecimalLoader, UnknownTenantError, parse_catalog
from udfs.credits import (
    CreditPolicy,
    CreditPolicyError,
    GrantRejection,
    credit_policy_for,
    dead_letter_for_grant,
    validate_grant_record,
    validate_spend_cap_record,
)

R = GrantRejectionReason


class Money:
    def __init__(self, currency: str, amount_precision: int):
        self.currency, self.amount_precision = currency, amount_precision


TENANTS = {"acme-ai": Money("USD", 2), "cirrus-gpu": Money("JPY", 0)}
GRANT = {
    "type": "grant",
    "grant_id": "g-1",
    "tenant_id": "acme-ai",
    "customer_id": "cust-42",
    "amount": "100.50",
    "currency": "USD",
    "effective_at": "2026-11-01T00:00:00-04:00",
    "category": "paid",
}
VOID = {
    "type": "void",
    "grant_id": "g-1",
    "tenant_id": "acme-ai",
    "customer_id": "cust-42",
    "voided_at": "2026-11-02T00:00:00Z",
}


def raw(obj) -> bytes:
    return json.dumps(obj).encode()


def test_a_valid_grant_is_normalised():
    result = validate_grant_record(raw(GRANT), tenants=TENANTS)
    assert isinstance(result, CreditGrant)
    assert result.amount == Decimal("100.50") and result.priority == 50 and result.expires_at is None
    assert result.effective_at == datetime(2026, 11, 1, 4, tzinfo=UTC)


def test_a_void_needs_only_a_known_tenant():
    assert isinstance(validate_grant_record(raw(VOID), tenants=TENANTS), CreditVoid)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"x" * 70_000, R.TOO_LARGE),
        (b"\xff{}", R.NOT_UTF8),
        (b'{"amount": NaN}', R.MALFORMED_JSON),
        (b"", R.MALFORMED_JSON),
        (b"[1]", R.NOT_AN_OBJECT),
        (raw({k: v for k, v in GRANT.items() if k != "grant_id"}), R.MISSING_FIELD),
        (raw({**GRANT, "grant_id": None}), R.MISSING_FIELD),
        (raw({k: v for k, v in GRANT.items() if k != "type"}), R.MISSING_FIELD),
        (raw({**GRANT, "type": "refund"}), R.INVALID_FIELD),
        (raw({**GRANT, "priority": 101}), R.INVALID_FIELD),
        (raw({**GRANT, "priority": "1"}), R.INVALID_FIELD),
        (raw({**GRANT, "category": "gift"}), R.INVALID_FIELD),
        (raw({**GRANT, "applies_to": []}), R.INVALID_FIELD),
        (raw({**GRANT, "applies_to": ["a", "a"]}), R.INVALID_FIELD),
        (raw({**GRANT, "expire_at": "2026-12-01T00:00:00Z"}), R.INVALID_FIELD),
        (raw({**GRANT, "currency": "usd"}), R.INVALID_FIELD),
        (raw({**GRANT, "effective_at": "2026-11-01 00:00"}), R.INVALID_TIMESTAMP),
        (raw({**GRANT, "effective_at": "2026-11-01T00:00:00"}), R.INVALID_TIMESTAMP),
        (raw({**VOID, "voided_at": 1700000000000}), R.INVALID_TIMESTAMP),
        (raw({**GRANT, "amount": 100.5}), R.INVALID_AMOUNT),
        (raw({**GRANT, "amount": "0"}), R.INVALID_AMOUNT),
        (raw({**GRANT, "amount": "-5"}), R.INVALID_AMOUNT),
        (raw({**GRANT, "amount": "1e3"}), R.INVALID_AMOUNT),
        (raw({**GRANT, "amount": "0." + "0" * 18 + "1"}), R.INVALID_AMOUNT),
        (raw({**GRANT, "expires_at": "2026-11-01T04:00:00Z"}), R.EXPIRES_BEFORE_EFFECTIVE),
        (raw({**GRANT, "tenant_id": "nobody"}), R.UNKNOWN_TENANT),
        (raw({**VOID, "tenant_id": "nobody"}), R.UNKNOWN_TENANT),
        (raw({**GRANT, "currency": "EUR"}), R.CURRENCY_MISMATCH),
        (raw({**GRANT, "amount": "100.505"}), R.AMOUNT_TOO_PRECISE),
        (raw({**GRANT, "tenant_id": "cirrus-gpu", "currency": "JPY", "amount": "100.5"}), R.AMOUNT_TOO_PRECISE),
        # precedence: the earliest reason wins when several apply
        (raw({**GRANT, "grant_id": None, "amount": 1.5, "priority": -1}), R.MISSING_FIELD),
        (raw({**GRANT, "priority": -1, "amount": 1.5}), R.INVALID_FIELD),
        (raw({**GRANT, "currency": "EUR", "tenant_id": "nobody"}), R.UNKNOWN_TENANT),
    ],
)
def test_rejections_have_stable_reasons(record, reason):
    result = validate_grant_record(record, tenants=TENANTS)
    assert isinstance(result, GrantRejection), result
    assert result.reason is reason, result.detail


def test_trailing_zeros_do_not_count_as_precision():
    assert isinstance(validate_grant_record(raw({**GRANT, "amount": "100.5000"}), tenants=TENANTS), CreditGrant)


def test_spend_cap_records():
    good = {
        "tenant_id": "acme-ai",
        "customer_id": "c",
        "amount": "500",
        "currency": "USD",
        "effective_at": "2026-11-01T00:00:00Z",
    }
    assert isinstance(validate_spend_cap_record(raw(good), tenants=TENANTS), SpendCap)
    assert validate_spend_cap_record(raw({**good, "currency": "EUR"}), tenants=TENANTS).reason is R.CURRENCY_MISMATCH
    assert validate_spend_cap_record(raw({**good, "amount": None}), tenants=TENANTS).reason is R.MISSING_FIELD


def test_dead_letter_keeps_the_record():
    record = b"\xff" * 10
    rejection = validate_grant_record(record, tenants=TENANTS)
    letter = dead_letter_for_grant(
        record,
        rejection,
        source_topic="credit-grants",
        partition=1,
        offset=2,
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert letter.raw_encoding == "base64" and letter.reason is R.NOT_UTF8 and letter.raw_size_bytes == 10


CATALOG_YAML = """
version: 1
tenants:
  acme-ai:
    currency: USD
    credits:
      low_balance_thresholds: [100, 20.5, 100.0]
      low_balance_percent: 10
      spend_cap_default: 5000
      period_grace: P2D
  bolt-ml:
    currency: EUR
"""


def test_credit_policy_from_the_catalog_block():
    data = yaml.load(CATALOG_YAML, Loader=DecimalLoader)
    policy = credit_policy_for(data, "acme-ai")
    assert policy.low_balance_thresholds == (Decimal(100), Decimal("20.5"))
    assert policy.low_balance_percent == (Decimal(10),)
    assert policy.spend_cap_default == Decimal(5000)
    assert policy.period_grace.days == 2
    assert credit_policy_for(data, "bolt-ml") == CreditPolicy()
    with pytest.raises(UnknownTenantError):
        credit_policy_for(data, "nobody")


@pytest.mark.parametrize(
    "block",
    [
        {"low_balance_thresholds": [0.5]},  # a binary float
        {"low_balance_percent": [150]},
        {"spend_cap_default": 0},
        {"low_balance_threshold": [1]},  # typo: unknown key
    ],
)
def test_bad_credit_policy_blocks_are_errors(block):
    with pytest.raises(CreditPolicyError, match="tenants.acme-ai.credits"):
        credit_policy_for({"tenants": {"acme-ai": {"credits": block}}}, "acme-ai")


def test_the_catalog_loader_tolerates_a_credits_block():
    data = yaml.load(CATALOG_YAML, Loader=DecimalLoader)
    for tenant in data["tenants"].values():
        tenant.update(
            meters={"m": {"aggregation": "sum"}}, prices={"m": [{"id": "p", "model": "per_unit", "unit_price": 1}]}
        )
    parse_catalog(data)
