"""`java_catalog_json`: the one JSON form in which the catalog reaches Java (the parser's meters and the rating's
prices and settings) is complete, exact, versioned and deterministic."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from udfs.catalog import load_catalog, parse_catalog
from udfs.java_catalog import JAVA_CATALOG_FORMAT, java_catalog, java_catalog_json

EXAMPLE = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"

SMALL = """
version: 1
tenants:
  t:
    currency: EUR
    amount_precision: 3
    billing_period: {interval: monthly, anchor_day: 31, time_zone: Europe/Berlin}
    meters:
      tokens: {aggregation: sum, group_by: [model]}
      users: {aggregation: unique_count, unique_dimension: user_id}
    prices:
      tokens:
        - id: big
          match: {model: "é\\"x"}
          model: volume
          tiers: [{up_to: 1e3, unit_price: 0.10, flat_fee: 5}, {up_to: null, unit_price: 0.000000001}]
        - {id: pack, match: {model: p}, model: package, package_size: 2.50, package_price: 1}
        - {id: grad, match: {model: g}, model: graduated, tiers: [{up_to: 10, unit_price: 0}, {unit_price: 1.5}]}
        - {id: flat, model: per_unit, unit_price: 0.0000030}
      users:
        - {id: u, model: per_unit, unit_price: 0}
"""


def test_small_catalog_exact_text():
    text = java_catalog_json(parse_catalog(SMALL))
    assert text == (
        '{"format":"java-catalog-v2","tenants":{"t":{"amount_precision":3,"anchor_day":31,"currency":"EUR",'
        '"meters":{"tokens":{"aggregation":"sum","group_by":["model"],"unique_dimension":null},'
        '"users":{"aggregation":"unique_count","group_by":[],"unique_dimension":"user_id"}},'
        '"period_grace_ms":3600000,"prices":{"tokens":['
        '{"id":"big","match":{"model":"é\\"x"},"model":"volume","tiers":['
        '{"flat_fee":"5","unit_price":"0.1","up_to":"1000"},'
        '{"flat_fee":"0","unit_price":"0.000000001","up_to":null}]},'
        '{"id":"pack","match":{"model":"p"},"model":"package","package_price":"1","package_size":"2.5"},'
        '{"id":"grad","match":{"model":"g"},"model":"graduated","tiers":['
        '{"flat_fee":"0","unit_price":"0","up_to":"10"},{"flat_fee":"0","unit_price":"1.5","up_to":null}]},'
        '{"id":"flat","match":{},"model":"per_unit","unit_price":"0.000003"}],'
        '"users":[{"id":"u","match":{},"model":"per_unit","unit_price":"0"}]},'
        '"time_zone":"Europe/Berlin"}}}'
    )


def test_example_catalog_round_trips_every_price_exactly():
    catalog = load_catalog(EXAMPLE)
    data = json.loads(java_catalog_json(catalog))
    assert data["format"] == JAVA_CATALOG_FORMAT
    assert set(data["tenants"]) == set(catalog.tenants)
    for tenant_id, tenant in catalog.tenants.items():
        out = data["tenants"][tenant_id]
        assert (out["currency"], out["amount_precision"]) == (tenant.currency, tenant.amount_precision)
        assert (out["anchor_day"], out["time_zone"]) == (
            tenant.billing_period.anchor_day, tenant.billing_period.time_zone)
        assert {m: v["aggregation"] for m, v in out["meters"].items()} == {
            m: v.aggregation for m, v in tenant.meters.items()}
        for meter, entries in tenant.prices.items():
            assert [e["id"] for e in out["prices"][meter]] == [e.id for e in entries]
            for entry, written in zip(entries, out["prices"][meter], strict=True):
                assert written["match"] == entry.match and written["model"] == entry.model
                for name in ("unit_price", "package_size", "package_price"):
                    if hasattr(entry, name):
                        assert isinstance(written[name], str)
                        assert Decimal(written[name]) == getattr(entry, name)
                for tier, wt in zip(getattr(entry, "tiers", ()), written.get("tiers", ()), strict=True):
                    assert Decimal(wt["unit_price"]) == tier.unit_price
                    assert Decimal(wt["flat_fee"]) == tier.flat_fee
                    assert (wt["up_to"] is None) == (tier.up_to is None)
                    if tier.up_to is not None:
                        assert Decimal(wt["up_to"]) == tier.up_to


def test_deterministic_and_compact():
    first = java_catalog_json(load_catalog(EXAMPLE))
    assert first == java_catalog_json(load_catalog(EXAMPLE))
    assert ": " not in first and ", " not in first
    assert java_catalog(load_catalog(EXAMPLE)) == json.loads(first)


def test_every_meter_carries_what_the_parser_needs():
    """The parser's fields (once `udfs.grouping.catalog_json`, a second document): aggregation, group_by in catalog
    order, the unique dimension."""
    catalog = load_catalog(EXAMPLE)
    data = json.loads(java_catalog_json(catalog))
    assert set(data["tenants"]) == set(catalog.tenants)
    for tenant_id, tenant in catalog.tenants.items():
        assert set(data["tenants"][tenant_id]["meters"]) == set(tenant.meters)
        for name, meter in tenant.meters.items():
            assert data["tenants"][tenant_id]["meters"][name] == {
                "aggregation": meter.aggregation, "group_by": list(meter.group_by),
                "unique_dimension": meter.unique_dimension,
            }
    assert data["tenants"]["acme-ai"]["meters"]["active_users"]["unique_dimension"] == "user_id"
    assert data["tenants"]["bolt-ml"]["meters"]["gpu_seconds"]["group_by"] == ["gpu_type"]
