"""The catalog as the Java code inside Flink reads it: one JSON document, handed to Java once per job.

Both Java consumers read this one form: the usage parser (the Kafka source's deserializer, the job tests' file
parse, `PARSE_USAGE_EVENT`: meters, their aggregation, group_by and unique dimension) and the rating
(`WindowRating`, `BILLING_LINE_ITEM_JAVA`: currency, amount precision, billing period, prices).
`io.meterstream.catalog.JavaCatalog` parses it once per JVM per distinct text and builds both views from it.

Canonical JSON (compact, keys sorted, non-ASCII raw; `udfs.grouping.canonical_json`), so the same catalog always
gives the same text:

    {"format": "java-catalog-v2", "tenants": {"<tenant>": {
        "currency": "USD", "amount_precision": 2, "anchor_day": 1, "time_zone": "America/New_York",
        "period_grace_ms": 3600000,
        "meters": {"<meter>": {"aggregation": "sum", "group_by": ["model"], "unique_dimension": null}},
        "prices": {"<meter>": [{"id": "...", "match": {"model": "nova-large"}, "model": "graduated",
                                "tiers": [{"up_to": "1000000", "unit_price": "0.000003", "flat_fee": "0"}]}]}}}}

`format` versions the document (`JAVA_CATALOG_FORMAT`, generated into `Rules.JAVA_CATALOG_FORMAT`): the Java side
refuses any other value, so a jar and a job that disagree fail at start, not silently. A change of shape is a new
version. `group_by` lists the meter's group dimensions in catalog order (Java sorts them by code point);
`unique_dimension` is null except for unique_count meters. Price parameters by model: per_unit `unit_price`;
package `package_size`, `package_price`; graduated and volume `tiers` (`up_to` null for the open-ended last tier).
Every decimal is a canonical wire STRING (`to_wire`): a JSON number would pass through a binary double somewhere
and could lose a digit. Entries keep the catalog's order (the winner is unique by load validation, so the order
does not decide anything). A checked-in example, the golden catalog's document, is
`engine/src/test/resources/golden/java-catalog.json` (`python -m udfs.golden --write`; `--check` fails on
drift), which `JavaCatalogGoldenTest` reads.

The catalog was fully validated by `udfs.catalog`; the Java side trusts these invariants (a catch-all price entry
per meter, no equally specific ties, ordered tiers) and fails the job on a document of the wrong shape.
"""

from __future__ import annotations

from typing import Any

from udfs.catalog import Catalog, GraduatedPrice, PackagePrice, PerUnitPrice, PriceEntry, Tier, VolumePrice
from udfs.grouping import canonical_json
from udfs.money import to_wire

JAVA_CATALOG_FORMAT = "java-catalog-v2"  # v2 added period_grace_ms


def _tier(tier: Tier) -> dict[str, Any]:
    return {
        "up_to": None if tier.up_to is None else to_wire(tier.up_to),
        "unit_price": to_wire(tier.unit_price),
        "flat_fee": to_wire(tier.flat_fee),
    }


def price_entry(entry: PriceEntry) -> dict[str, Any]:
    """One price entry as the document writes it (every decimal a wire string)."""
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


def java_catalog(catalog: Catalog) -> dict[str, Any]:
    """The document as a dict (see the module docstring)."""
    tenants: dict[str, Any] = {}
    for tenant_id, tenant in catalog.tenants.items():
        tenants[tenant_id] = {
            "currency": tenant.currency,
            "amount_precision": tenant.amount_precision,
            "anchor_day": tenant.billing_period.anchor_day,
            "time_zone": tenant.billing_period.time_zone,
            "period_grace_ms": int(tenant.billing_period.grace.total_seconds() * 1000),
            "meters": {
                name: {"aggregation": meter.aggregation, "group_by": list(meter.group_by),
                       "unique_dimension": meter.unique_dimension}
                for name, meter in tenant.meters.items()
            },
            "prices": {name: [price_entry(entry) for entry in entries] for name, entries in tenant.prices.items()},
        }
    return {"format": JAVA_CATALOG_FORMAT, "tenants": tenants}


def java_catalog_json(catalog: Catalog) -> str:
    """The document's text. Deterministic: the same catalog always gives the same text (the Java side caches its
    parse by content, once per JVM)."""
    return canonical_json(java_catalog(catalog))
