from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml

from udfs.catalog import CatalogError, UnknownTenantError, load_catalog, parse_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "catalogs" / "example-genai.yaml"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(EXAMPLE)


def test_example_catalog_has_the_tenants_and_required_meters(catalog):
    meters = catalog.meters_by_tenant()
    assert set(meters) == {"acme-ai", "bolt-ml", "cirrus-gpu"}
    for tenant_meters in meters.values():
        assert {"input_tokens", "requests", "gpu_seconds", "seats"} <= set(tenant_meters)
    assert meters["acme-ai"]["input_tokens"] == "sum"
    assert meters["acme-ai"]["requests"] == "count"
    assert meters["acme-ai"]["gpu_seconds"] == "sum"
    assert meters["acme-ai"]["seats"] == "max"
    assert catalog.meter("acme-ai", "input_tokens").group_by == ("model",)
    kinds = {kind for tenant_meters in meters.values() for kind in tenant_meters.values()}
    assert kinds == {"sum", "count", "max", "last", "unique_count"}


def test_example_catalog_tenant_settings(catalog):
    acme, bolt, cirrus = (catalog.tenant(t) for t in ("acme-ai", "bolt-ml", "cirrus-gpu"))
    assert (acme.currency, acme.amount_precision, acme.billing_period.time_zone) == (
        "USD",
        2,
        "America/New_York",
    )
    assert (bolt.currency, bolt.billing_period.anchor_day) == ("EUR", 15)
    assert (cirrus.currency, cirrus.amount_precision) == ("JPY", 0)
    models = {
        entry.model
        for tenant in (acme, bolt, cirrus)
        for entries in tenant.prices.values()
        for entry in entries
    }
    assert models == {"per_unit", "package", "graduated", "volume"}


def test_yaml_decimals_are_exact(catalog):
    entry = catalog.tenant("acme-ai").prices["input_tokens"][0]
    assert entry.tiers[0].unit_price == D("0.000003")
    assert str(catalog.tenant("acme-ai").prices["gpu_seconds"][0].unit_price) == "0.0012"


@pytest.mark.parametrize(
    ("group", "price_id"),
    [
        ({"model": "nova-large"}, "acme-input-large"),
        ({"model": "nova-small"}, "acme-input-small"),
        ({"model": "something-new"}, "acme-input-default"),
        ({}, "acme-input-default"),
        ((("model", "nova-large"),), "acme-input-large"),
    ],
)
def test_price_for_picks_most_specific(catalog, group, price_id):
    assert catalog.tenant("acme-ai").price_for("input_tokens", group).id == price_id


def test_most_specific_of_nested_matches():
    cat = parse_catalog(
        _tenant_catalog(
            meters={"m": {"aggregation": "sum", "group_by": ["a", "b"]}},
            prices={
                "m": [
                    {"id": "any", "model": "per_unit", "unit_price": "1"},
                    {"id": "a", "match": {"a": "1"}, "model": "per_unit", "unit_price": "2"},
                    {"id": "ab", "match": {"a": "1", "b": "2"}, "model": "per_unit", "unit_price": "3"},
                ]
            },
        )
    )
    tenant = cat.tenant("t")
    assert tenant.price_for("m", {"a": "1", "b": "2"}).id == "ab"
    assert tenant.price_for("m", {"a": "1", "b": "3"}).id == "a"
    assert tenant.price_for("m", {"a": "2", "b": "2"}).id == "any"


def test_unknown_tenant_and_meter(catalog):
    with pytest.raises(UnknownTenantError):
        catalog.tenant("nobody")
    with pytest.raises(UnknownTenantError):
        catalog.meter("acme-ai", "nothing")


def _tenant_catalog(**tenant):
    base = {
        "currency": "USD",
        "meters": {"m": {"aggregation": "sum", "group_by": ["model"]}},
        "prices": {"m": [{"id": "m-all", "model": "per_unit", "unit_price": "1"}]},
    }
    return {"version": 1, "tenants": {"t": {**base, **tenant}}}


TIERS_OK = [{"up_to": "10", "unit_price": "1"}, {"up_to": None, "unit_price": "0.5"}]


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ({"currency": "usd"}, "tenants.t.currency"),
        ({"amount_precision": 9}, "tenants.t.amount_precision"),
        ({"billing_period": {"anchor_day": 0}}, "tenants.t.billing_period.anchor_day"),
        ({"billing_period": {"anchor_day": 32}}, "tenants.t.billing_period.anchor_day"),
        ({"billing_period": {"time_zone": "Mars/Olympus"}}, "unknown IANA time zone 'Mars/Olympus'"),
        ({"billing_period": {"interval": "weekly"}}, "tenants.t.billing_period.interval"),
        ({"meters": {"m": {"aggregation": "avg"}}}, "tenants.t.meters.m.aggregation"),
        ({"meters": {"M-1": {"aggregation": "sum"}}, "prices": {}}, "meter name 'M-1'"),
        ({"meters": {"m": {"aggregation": "unique_count"}}}, "needs unique_dimension"),
        ({"meters": {"m": {"aggregation": "sum", "unique_dimension": "u"}}}, "only for unique_count"),
        ({"meters": {"m": {"aggregation": "sum", "group_by": ["a", "a"]}}}, "duplicates"),
        ({"prices": {}}, "tenants.t.prices.m: meter has no price entries"),
        (
            {"prices": {"m": [], "x": [{"id": "x", "model": "per_unit", "unit_price": 1}]}},
            "prices.x: no meter",
        ),
        (
            {"prices": {"m": [{"id": "a", "match": {"model": "a"}, "model": "per_unit", "unit_price": 1}]}},
            "tenants.t.prices.m: no catch-all entry",
        ),
        (
            {
                "prices": {
                    "m": [
                        {"id": "a", "model": "per_unit", "unit_price": 1},
                        {"id": "a", "match": {"model": "x"}, "model": "per_unit", "unit_price": 1},
                    ]
                }
            },
            "prices.m[1].id: duplicate price id 'a'",
        ),
        (
            {
                "prices": {
                    "m": [
                        {"id": "a", "model": "per_unit", "unit_price": 1},
                        {"id": "b", "match": {"region": "eu"}, "model": "per_unit", "unit_price": 1},
                    ]
                }
            },
            "prices.m[1].match: keys ['region'] are not in the meter's group_by",
        ),
        (
            {
                "meters": {"m": {"aggregation": "sum", "group_by": ["model", "region"]}},
                "prices": {
                    "m": [
                        {"id": "a", "model": "per_unit", "unit_price": 1},
                        {"id": "b", "match": {"model": "x"}, "model": "per_unit", "unit_price": 1},
                        {"id": "c", "match": {"region": "eu"}, "model": "per_unit", "unit_price": 1},
                    ]
                },
            },
            "prices.m[2].match: ties with [1]",
        ),
        (
            {
                "prices": {
                    "m": [
                        {"id": "a", "model": "per_unit", "unit_price": 1},
                        {"id": "b", "model": "per_unit", "unit_price": 2},
                    ]
                }
            },
            "prices.m[1].match: ties with [0]",
        ),
        ({"prices": {"m": [{"id": "a", "model": "per_unit", "unit_price": "-1"}]}}, "prices.m[0].unit_price"),
        ({"prices": {"m": [{"id": "a", "model": "per_unit", "unit_price": 0.1}]}}, "not Python floats"),
        ({"prices": {"m": [{"id": "a", "model": "flat", "unit_price": 1}]}}, "tenants.t.prices.m[0]"),
        (
            {"prices": {"m": [{"id": "a", "model": "package", "package_size": 0, "package_price": 1}]}},
            "prices.m[0].package_size",
        ),
        ({"prices": {"m": [{"id": "a", "model": "graduated", "tiers": []}]}}, "prices.m[0].tiers"),
        (
            {"prices": {"m": [{"id": "a", "model": "volume", "tiers": [{"up_to": 5, "unit_price": 1}]}]}},
            "the last tier must be open-ended",
        ),
        (
            {
                "prices": {
                    "m": [
                        {
                            "id": "a",
                            "model": "graduated",
                            "tiers": [
                                {"up_to": 10, "unit_price": 1},
                                {"up_to": 10, "unit_price": 1},
                                {"unit_price": 1},
                            ],
                        }
                    ]
                }
            },
            "tier [1] up_to 10 must be greater than the previous bound 10",
        ),
        (
            {
                "prices": {
                    "m": [
                        {
                            "id": "a",
                            "model": "graduated",
                            "tiers": [{"up_to": None, "unit_price": 1}, {"unit_price": 1}],
                        }
                    ]
                }
            },
            "only the last tier may be open-ended",
        ),
        (
            {
                "prices": {
                    "m": [
                        {
                            "id": "a",
                            "model": "graduated",
                            "tiers": [{"up_to": 0, "unit_price": 1}, {"unit_price": 1}],
                        }
                    ]
                }
            },
            "prices.m[0].tiers[0].up_to",
        ),
        ({"prices": {"m": [{"id": "a", "model": "graduated", "tiers": TIERS_OK, "extra": 1}]}}, "extra"),
    ],
)
def test_invalid_catalogs_name_the_path(tenant, message):
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(_tenant_catalog(**tenant), source="test.yaml")
    assert message in str(excinfo.value)
    assert "test.yaml" in str(excinfo.value)


def test_reports_every_problem_at_once():
    bad = _tenant_catalog(currency="usd", billing_period={"anchor_day": 40, "time_zone": "Nowhere/X"})
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(bad)
    assert len(excinfo.value.problems) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\ntenants: {}", "version: expected 1"),
        ("tenants: {}", "version: expected 1"),
        ("- 1", "top level must be a mapping"),
        ("version: 1\ntenants: {}", "tenants"),
        ("version: [1", "not valid YAML"),
        (
            "version: 1\ntenants:\n  t:\n    currency: USD\n    meters: {m: {aggregation: sum}}\n"
            "    prices: {m: [{id: a, model: per_unit, unit_price: .inf}]}",
            "unit_price",
        ),
    ],
)
def test_invalid_documents(text, message):
    with pytest.raises(CatalogError, match=None) as excinfo:
        parse_catalog(text)
    assert message in str(excinfo.value)


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError) as excinfo:
        load_catalog(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(excinfo.value)


def test_round_trips_through_yaml_text():
    text = yaml.safe_dump(_tenant_catalog())
    assert parse_catalog(text).tenant("t").currency == "USD"
