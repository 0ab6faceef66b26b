"""The throughput benchmark's check that the billing job accounted for every generated record as generated."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "billing_throughput.py"

TRUTH = {
    "records": 1_000,
    "on_time": 900,
    "intended_late": 20,
    "intended_duplicates": 50,
    "intended_conflicting_duplicates": 10,
    "intended_malformed": 30,
    "malformed_by_reason": {"malformed_json": 12, "unknown_meter": 18},
}
MATCHING = {
    "records in the input (offsets)": 1_000,
    "dead-lettered": 30,
    "malformed_json": 12,
    "unknown_meter": 18,
    "valid": 970,
    "duplicates (same payload)": 40,
    "duplicates (conflicting)": 10,
    "first seen": 920,
    "billed on time (windowed)": 900,
    "billed late (adjustments)": 20,
}


def _bench():
    spec = importlib.util.spec_from_file_location("billing_throughput_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_an_accounting_table_equal_to_the_ground_truth_has_no_mismatch():
    assert _bench().accounting_mismatches(MATCHING, TRUTH) == {}


def test_each_differing_or_missing_count_is_reported_with_both_figures():
    accounting = {**MATCHING, "billed late (adjustments)": 19, "billed on time (windowed)": 901}
    del accounting["malformed_json"]
    assert _bench().accounting_mismatches(accounting, TRUTH) == {
        "billed late (adjustments)": (19, 20),
        "billed on time (windowed)": (901, 900),
        "malformed_json": (None, 12),
    }
