"""The price catalog: a versioned YAML file parsed into pydantic models and fully validated at load.

Why validate everything up front: the stream job rates every window with this data; a catalog mistake found at
runtime would mean a stuck or mis-billed partition. After `load_catalog` succeeds, `price_for` is total: every
(meter, group) has exactly one winning price entry.

Decisions (also in catalogs/README.md):
- Decimals in YAML are read from their source text (`0.1` is Decimal("0.1"), never a binary float).
- Every meter needs a catch-all price entry (no `match`). A meter that can see a group value no entry
  matches would be unbillable at runtime; charging nothing for it must be an explicit zero-price entry,
  not an accident.
- Most specific match wins (most matching keys). Two entries with the same number of keys that some group
  could match both at once are rejected at load time, so the winner is always unique.
- Match keys must be in the meter's `group_by`: a window aggregate only knows its group values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CATALOG_VERSION = 1
Aggregation = Literal["sum", "count", "max", "min", "last", "unique_count"]
Group = tuple[tuple[str, str], ...]

_NAME = re.compile(r"[a-z][a-z0-9_]*")


class CatalogError(ValueError):
    """The catalog is unusable; the message lists every problem as `path: what is wrong`."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"invalid price catalog {source}:\n" + "\n".join(f"  - {p}" for p in problems))


class _Problems(ValueError):
    """Cross-field problems found by one validator, each `relative.path: what`, reported one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class UnknownTenantError(KeyError):
    """A tenant (or a tenant's meter) not in the catalog; validation maps it to a dead-letter reason."""


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(
            "write decimals as YAML numbers or strings, not Python floats (binary floats are inexact)"
        )
    return value


NonNegDec = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, allow_inf_nan=False)]
PosDec = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BillingPeriod(_Model):
    interval: Literal["monthly"] = "monthly"
    anchor_day: int = Field(default=1, ge=1, le=31)
    time_zone: str = "UTC"
    # A period closes (its invoice is final) once the event-time clock reaches its end + grace; usage of it after
    # that is billed on the next open invoice (`udfs.line_items`, `udfs.invoices`). ISO 8601 in YAML: PT1H.
    grace: timedelta = Field(default=timedelta(hours=1), ge=timedelta(0), le=timedelta(days=28))

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class Meter(_Model):
    aggregation: Aggregation
    group_by: tuple[str, ...] = ()
    unique_dimension: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Meter:
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError(f"group_by has duplicates: {list(self.group_by)}")
        if self.aggregation == "unique_count":
            if not self.unique_dimension:
                raise ValueError("aggregation unique_count needs unique_dimension (the dimension counted)")
            if self.unique_dimension in self.group_by:
                raise ValueError("unique_dimension must not also be in group_by (each group would count 1)")
        elif self.unique_dimension is not None:
            raise ValueError(f"unique_dimension is only for unique_count, not {self.aggregation}")
        return self


class Tier(_Model):
    """`up_to` is inclusive: a quantity equal to `up_to` belongs to this tier. `None` means no upper bound."""

    up_to: PosDec | None = None
    unit_price: NonNegDec
    flat_fee: NonNegDec = Decimal(0)


class _PriceBase(_Model):
    id: str = Field(min_length=1)
    match: dict[str, str] = Field(default_factory=dict)

    @property
    def specificity(self) -> int:
        return len(self.match)

    def matches(self, group: Mapping[str, str]) -> bool:
        return all(group.get(key) == value for key, value in self.match.items())


class PerUnitPrice(_PriceBase):
    model: Literal["per_unit"]
    unit_price: NonNegDec


class PackagePrice(_PriceBase):
    model: Literal["package"]
    package_size: PosDec
    package_price: NonNegDec


class _TieredPrice(_PriceBase):
    tiers: tuple[Tier, ...] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _ordered_tiers(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        *bounded, last = tiers
        if last.up_to is not None:
            raise ValueError("the last tier must be open-ended (up_to: null)")
        previous = Decimal(0)
        for index, tier in enumerate(bounded):
            if tier.up_to is None:
                raise ValueError(f"tier [{index}] has up_to: null but only the last tier may be open-ended")
            if tier.up_to <= previous:
                raise ValueError(
                    f"tier [{index}] up_to {tier.up_to} must be greater than the previous bound {previous}"
                )
            previous = tier.up_to
        return tiers


class GraduatedPrice(_TieredPrice):
    model: Literal["graduated"]


class VolumePrice(_TieredPrice):
    model: Literal["volume"]


PriceEntry = Annotated[
    PerUnitPrice | PackagePrice | GraduatedPrice | VolumePrice, Field(discriminator="model")
]


class TenantCatalog(_Model):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount_precision: int = Field(default=2, ge=0, le=8)
    billing_period: BillingPeriod = Field(default_factory=BillingPeriod)
    meters: dict[str, Meter] = Field(min_length=1)
    prices: dict[str, tuple[PriceEntry, ...]]
    # Prepaid-credit policy (thresholds, spend cap); validated by udfs.credits.policy.credit_policy_for.
    credits: dict[str, Any] | None = None

    @field_validator("meters")
    @classmethod
    def _meter_names(cls, meters: dict[str, Meter]) -> dict[str, Meter]:
        for name in meters:
            if not _NAME.fullmatch(name):
                raise ValueError(f"meter name {name!r} must match {_NAME.pattern}")
        return meters

    @model_validator(mode="after")
    def _prices_fit_meters(self) -> TenantCatalog:
        problems = [p for meter in self.prices if meter not in self.meters for p in [_unknown_meter(meter)]]
        for meter_name, meter in self.meters.items():
            problems += _price_problems(meter_name, meter, self.prices.get(meter_name, ()))
        if problems:
            raise _Problems(problems)
        return self

    def meter(self, meter: str) -> Meter:
        try:
            return self.meters[meter]
        except KeyError:
            raise UnknownTenantError(f"unknown meter {meter!r}") from None

    def price_for(self, meter: str, group: Mapping[str, str] | Group) -> PriceEntry:
        """The winning price entry for a group: the matching entry with the most match keys (unique by load
        validation; the catch-all guarantees one exists)."""
        values = dict(group)
        candidates = [entry for entry in self.prices[meter] if entry.matches(values)]
        return max(candidates, key=lambda entry: entry.specificity)


class Catalog(_Model):
    version: Literal[1]
    tenants: dict[str, TenantCatalog] = Field(min_length=1)

    def tenant(self, tenant_id: str) -> TenantCatalog:
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise UnknownTenantError(f"unknown tenant {tenant_id!r}") from None

    def meters_by_tenant(self) -> dict[str, dict[str, str]]:
        """`{tenant: {meter: aggregation}}`: what validation needs to accept or reject an event."""
        return {
            tenant_id: {name: meter.aggregation for name, meter in tenant.meters.items()}
            for tenant_id, tenant in self.tenants.items()
        }

    def meter(self, tenant_id: str, meter: str) -> Meter:
        return self.tenant(tenant_id).meter(meter)


def _unknown_meter(meter: str) -> str:
    return f"prices.{meter}: no meter {meter!r} is defined"


def _price_problems(meter_name: str, meter: Meter, entries: tuple[PriceEntry, ...]) -> list[str]:
    where = f"prices.{meter_name}"
    if not entries:
        return [f"{where}: meter has no price entries (add one without `match`, a zero price if it is free)"]
    problems = []
    for index, entry in enumerate(entries):
        outside = sorted(set(entry.match) - set(meter.group_by))
        if outside:
            problems.append(
                f"{where}[{index}].match: keys {outside} are not in the meter's group_by "
                f"{list(meter.group_by)}"
            )
    if not any(entry.specificity == 0 for entry in entries):
        problems.append(
            f"{where}: no catch-all entry (one without `match`); unmatched groups would be unbillable"
        )
    problems += _duplicate_ids(where, entries) + _ambiguous_matches(where, entries)
    return problems


def _duplicate_ids(where: str, entries: tuple[PriceEntry, ...]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, entry in enumerate(entries):
        if entry.id in seen:
            problems.append(f"{where}[{index}].id: duplicate price id {entry.id!r}")
        seen.add(entry.id)
    return problems


def _ambiguous_matches(where: str, entries: tuple[PriceEntry, ...]) -> list[str]:
    """Two equally specific entries that agree on every shared key can both match one group: a tie."""
    problems = []
    for i, first in enumerate(entries):
        for j in range(i + 1, len(entries)):
            second = entries[j]
            if first.specificity != second.specificity:
                continue
            shared = set(first.match) & set(second.match)
            if all(first.match[key] == second.match[key] for key in shared):
                problems.append(
                    f"{where}[{j}].match: ties with [{i}] ({first.match} vs {second.match}): "
                    "equally specific entries that can match the same group"
                )
    return problems


class DecimalLoader(yaml.SafeLoader):
    """SafeLoader that turns YAML floats into Decimal from their source text, so 0.1 stays exactly 0.1."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        value = Decimal(text)
    except ArithmeticError:
        return loader.construct_yaml_float(node)  # .inf / .nan: left as float so validation rejects them
    return value if value.is_finite() else loader.construct_yaml_float(node)


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def parse_catalog(data: Mapping[str, Any] | str, *, source: str = "<catalog>") -> Catalog:
    """Validate a catalog given as a mapping or YAML text; raise CatalogError listing every problem."""
    if isinstance(data, str):
        try:
            data = yaml.load(data, Loader=DecimalLoader)
        except yaml.YAMLError as exc:
            raise CatalogError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(data, Mapping):
        raise CatalogError(source, ["top level must be a mapping with `version` and `tenants`"])
    if data.get("version") != CATALOG_VERSION:
        raise CatalogError(source, [f"version: expected {CATALOG_VERSION}, got {data.get('version')!r}"])
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = [line for error in exc.errors() for line in _describe(error)]
        raise CatalogError(source, problems) from None


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog file; the error names the file and every bad path inside it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(path), [f"cannot read: {exc}"]) from exc
    return parse_catalog(text, source=str(path))


_UNION_TAGS = {"per_unit", "package", "graduated", "volume"}


def _describe(error: Mapping[str, Any]) -> list[str]:
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _UNION_TAGS or part.startswith("function-"):
            continue  # pydantic's discriminator/validator step, not a place in the file
        else:
            path += f".{part}" if path else str(part)
    prefix = path or "<root>"
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _Problems):
        return [f"{prefix}.{problem}" for problem in cause.problems]
    return [f"{prefix}: {str(error['msg']).removeprefix('Value error, ')}"]
