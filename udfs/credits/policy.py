"""A tenant's credit policy: alert thresholds, the default spend cap, and how long the ledger remembers things.

It lives in the price catalog as an optional `credits:` block of a tenant (format below). This module reads
that block itself so the catalog loader only has to tolerate it (see udfs/README.md, "Credits").

    tenants:
      acme-ai:
        credits:
          low_balance_thresholds: [100, 20]   # absolute amounts in the tenant currency
          low_balance_percent: [10]           # percent of the customer's granted live credit (a number or list)
          spend_cap_default: 5000             # per customer per billing period; spend-caps records override it
          period_grace: P7D                   # keep a period's bookkeeping this long after it ends
          void_tombstone_retention: P30D      # remember a void whose grant has not arrived this long
          grant_id_retention: P30D            # remember a finished grant's id this long (idempotency)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from udfs.catalog import UnknownTenantError

DEFAULT_PERIOD_GRACE = timedelta(days=7)
DEFAULT_VOID_TOMBSTONE_RETENTION = timedelta(days=30)
DEFAULT_GRANT_ID_RETENTION = timedelta(days=30)


class CreditPolicyError(ValueError):
    """The `credits:` block of a tenant is invalid; the message names every bad path."""


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("write amounts as YAML numbers read by the catalog loader or as strings, never floats")
    return value


def _as_tuple(value: Any) -> Any:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(value)
    return (value,)


Amount = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, le=100, allow_inf_nan=False)]
PositiveAmount = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, allow_inf_nan=False)]


class CreditPolicy(BaseModel):
    """Absent block = no alerts and no cap, default retentions. Thresholds are checked per currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low_balance_thresholds: Annotated[tuple[Amount, ...], BeforeValidator(_as_tuple)] = ()
    low_balance_percent: Annotated[tuple[Percent, ...], BeforeValidator(_as_tuple)] = ()
    spend_cap_default: PositiveAmount | None = None
    period_grace: timedelta = Field(default=DEFAULT_PERIOD_GRACE, ge=timedelta(0))
    void_tombstone_retention: timedelta = Field(default=DEFAULT_VOID_TOMBSTONE_RETENTION, ge=timedelta(0))
    grant_id_retention: timedelta = Field(default=DEFAULT_GRANT_ID_RETENTION, ge=timedelta(0))

    @field_validator("low_balance_thresholds", "low_balance_percent")
    @classmethod
    def _distinct(cls, values: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        # Sorted and distinct (by value: 10 and 10.0 are one threshold), so alert order never depends on YAML order.
        unique: dict[Decimal, Decimal] = {}
        for value in values:
            unique.setdefault(value.normalize(), value)
        return tuple(sorted(unique.values(), reverse=True))


DEFAULT_POLICY = CreditPolicy()


def credit_policy_for(catalog: Mapping[str, Any], tenant_id: str) -> CreditPolicy:
    """The policy of `tenant_id` from a catalog mapping (the YAML as loaded, before `parse_catalog`).

    Load the YAML with the catalog's decimal-preserving loader (`udfs.catalog.DecimalLoader`): a plain
    `yaml.safe_load` turns `0.1` into a float, which this function rejects rather than guess.
    Raises `UnknownTenantError` for a tenant not in the catalog and `CreditPolicyError` for a bad block.
    """
    tenants = catalog.get("tenants") if isinstance(catalog, Mapping) else None
    if not isinstance(tenants, Mapping) or tenant_id not in tenants:
        raise UnknownTenantError(f"unknown tenant {tenant_id!r}")
    tenant = tenants[tenant_id]
    block = tenant.get("credits") if isinstance(tenant, Mapping) else None
    if block is None:
        return DEFAULT_POLICY
    try:
        return CreditPolicy.model_validate(block)
    except ValidationError as exc:
        problems = [
            f"tenants.{tenant_id}.credits.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
        raise CreditPolicyError("\n".join(problems)) from None
