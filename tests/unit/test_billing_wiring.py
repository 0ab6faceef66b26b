"""The billing job's wiring contracts that need no JVM: one input type for `build_pipeline`, the catalog parsed once
per settings object, and Java objects built only through constructors and methods named by their parameter types."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from jobs.billing import BillingSettings, build_pipeline

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalogs" / "example-genai.yaml"


def test_build_pipeline_refuses_anything_but_parsed_usage():
    """A SQL DDL string was the job tests' second source type; no path parses differently from production now."""
    settings = BillingSettings(catalog_yaml=CATALOG.read_text())
    ddl = "CREATE TEMPORARY TABLE usage_raw (payload BYTES) WITH ('connector' = 'filesystem')"
    for source in (ddl, (object(), object())):
        with pytest.raises(TypeError, match="ParsedUsage"):
            build_pipeline(None, None, settings, source)


def test_the_catalog_is_parsed_once_per_settings(monkeypatch):
    import jobs.billing as billing

    calls = []
    real = billing.parse_catalog

    def counting(text):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(billing, "parse_catalog", counting)
    settings = BillingSettings(catalog_yaml=CATALOG.read_text(), run_id="r1")
    first = settings.catalog
    assert settings.catalog is first
    assert settings.period_state_ttl_days() > 0 and settings.catalog.tenants
    assert len(calls) == 1
    assert BillingSettings(catalog_yaml=CATALOG.read_text(), run_id="r1") == settings, "the cache is not a field"


def test_one_catalog_text_for_every_java_object():
    """The parser and the rating read one document (`udfs.java_catalog`), computed once per settings object."""
    import json

    from udfs.java_catalog import JAVA_CATALOG_FORMAT, java_catalog_json

    settings = BillingSettings(catalog_yaml=CATALOG.read_text())
    text = settings.java_catalog_json
    assert settings.java_catalog_json is text
    assert text == java_catalog_json(settings.catalog)
    document = json.loads(text)
    assert document["format"] == JAVA_CATALOG_FORMAT
    meter = document["tenants"]["acme-ai"]["meters"]["input_tokens"]
    assert set(meter) == {"aggregation", "group_by", "unique_dimension"}
    assert document["tenants"]["acme-ai"]["prices"]["input_tokens"], "the rating's prices in the same document"


def test_no_java_object_is_built_by_constructor_position():
    """`getConstructors()[0]` picked whichever constructor the JVM listed first; every Java object is made through
    `jobs.java_interop` (lookup by parameter types) instead."""
    offenders = []
    for path in sorted((ROOT / "jobs").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Attribute) and node.attr in {"getConstructors", "getDeclaredConstructors"}:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
