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
