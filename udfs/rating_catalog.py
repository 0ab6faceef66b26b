"""The `catalog_json` argument of the Java `BILLING_LINE_ITEM_JAVA` (`io.meterstream.rating.RateLineItem`).

What the Java rating needs of each tenant, nothing more, as canonical JSON (compact, keys sorted, non-ASCII raw):

    {"format": "rating-v1", "tenants": {"<tenant>": {
        "currency": "USD", "amount_precision": 2, "anchor_day": 1, "time_zone": "America/New_York",
        "meters": {"<meter>": {"aggregation": "sum", "unique_dimension": null}},
        "prices": {"<meter>": [{"id": "...", "match": {"model": "nova-large"}, "model": "graduated",
                                "tiers": [{"up_to": "1000000", "unit_price": "0.000003", "flat_fee": "0"}]}]}}}}

Price parameters by model: per_unit `unit_price`; package `package_size`, `package_price`; graduated and volume
`tiers` (`up_to` null for the open-ended last tier). Every decimal is a canonical wire STRING (`to_wire`): a JSON
number would pass through a binary double somewhere and could lose a digit. Entries keep the catalog's order
(the winner is unique by load validation, so the order does not decide anything).

The catalog was fully validated by `udfs.catalog`; the Java side trusts this shape and fails the job otherwise.
"""

from __future__ import annotations

from typing import Any

from udfs.catalog import Catalog, GraduatedPrice, PackagePrice, PerUnitPrice, PriceEntry, Tier, VolumePrice
from udfs.grouping import canonical_json
from udfs.money import to_wire

RATING_CATALOG_FORMAT = "rating-v1"


def _tier(tier: Tier) -> dict[str, Any]:
    return {
        "up_to": None if tier.up_to is None else to_wire(tier.up_to),
        "unit_price": to_wire(tier.unit_price),
        "flat_fee": to_wire(tier.flat_fee),
    }


def price_entry(entry: PriceEntry) -> dict[str, Any]:
    """One price entry as the rating catalog writes it (every decimal a wire string)."""
    out: dict[str, Any] = {"id": entry.id, "match": dict(entry.match), "model": entry.model}
    match entry:
        case PerUnitPrice():
            out["unit_price"] = to_wire(entry.unit_price)
        case PackagePrice():
            out["package_size"] = to_wire(entry.package_size)
            out["package_price"] = to_wire(entry.package_price)
        case GraduatedPrice() | VolumePrice():
            out["tiers"] = [_tier(tier) for tier in entry.tiers]
        case _:
            raise TypeError(f"unknown price model {type(entry).__name__}")
    return out


def rating_catalog(catalog: Catalog) -> dict[str, Any]:
    tenants: dict[str, Any] = {}
    for tenant_id, tenant in catalog.tenants.items():
        tenants[tenant_id] = {
            "currency": tenant.currency,
            "amount_precision": tenant.amount_precision,
            "anchor_day": tenant.billing_period.anchor_day,
            "time_zone": tenant.billing_period.time_zone,
            "meters": {
                name: {"aggregation": meter.aggregation, "unique_dimension": meter.unique_dimension}
                for name, meter in tenant.meters.items()
            },
            "prices": {name: [price_entry(entry) for entry in entries] for name, entries in tenant.prices.items()},
        }
    return {"format": RATING_CATALOG_FORMAT, "tenants": tenants}


def rating_catalog_json(catalog: Catalog) -> str:
    """Deterministic: the same catalog always gives the same text (the Java side caches its parse by content)."""
    return canonical_json(rating_catalog(catalog))
