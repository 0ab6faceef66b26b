"""Lateness never depends on another tenant's or another customer's clock (issue 15, item 3), on the job tests'
file source, which goes through the same watermark strategy as the Kafka source (one partition, no record
timestamps: nobody is idle). The same usage with and without a client whose clock runs 4 minutes ahead (a tenant of
its own, or a customer of a tenant that also has others; woven in, or also before everybody else, so that every
other customer is first seen after the watermark moved to the fast clock) bills everybody else identically."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.billing_expectations import expected_outputs
from tests.job.test_billing_job import CATALOG_PATH, run_job
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS, scripted_usage
from tests.skewed_usage import (
    late_under_a_shared_clock,
    late_under_customer_clocks,
    lines_of_others,
    with_skewed_client,
    without_tenant,
)
from udfs.catalog import load_catalog

pytestmark = pytest.mark.job

FAST = "fast-clock"
AHEAD = timedelta(minutes=4)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_a_client_clock_ahead_changes_nobody_elses_line_items(tmp_path: Path, parallelism: int):
    catalog = load_catalog(CATALOG_PATH)
    base = without_tenant(scripted_usage(seed=31), "bolt-ml")
    inputs = {
        "base": base,
        "skewed_tenant": with_skewed_client(base, catalog, now=REFERENCE_NOW, tenant="bolt-ml", customer=FAST,
                                            ahead=AHEAD),
        "skewed_customer": with_skewed_client(base, catalog, now=REFERENCE_NOW, tenant="acme-ai", customer=FAST,
                                              ahead=AHEAD),
        "skewed_tenant_first": with_skewed_client(base, catalog, now=REFERENCE_NOW, tenant="bolt-ml", customer=FAST,
                                                  ahead=AHEAD, lead=True),
    }
    excluded = {"base": {}, "skewed_tenant": {"tenant": "bolt-ml"}, "skewed_customer": {"customer": ("acme-ai", FAST)},
                "skewed_tenant_first": {"tenant": "bolt-ml"}}
    out = {}
    for name, records in inputs.items():
        shared = late_under_a_shared_clock(records, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS,
                                           out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
        if name != "base":
            # The input tells the rules apart: one clock for all would have made others' usage late.
            assert len(shared - {k for k in shared if k[1].startswith("skew-")}) > 100
        if name == "skewed_tenant_first":
            # ... and so would per-customer clocks with lateness judged by the watermark (a customer first seen after
            # the fast one judged by its clock), the rule before lateness per series.
            by_clocks = late_under_customer_clocks(records, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS,
                                                   out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
            base_clocks = late_under_customer_clocks(base, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS,
                                                     out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
            assert len(by_clocks - base_clocks - {k for k in by_clocks if k[1].startswith("skew-")}) >= 5
        (tmp_path / name).mkdir()
        out[name] = run_job(tmp_path / name, records, parallelism)
        expected = expected_outputs(records, catalog, now=REFERENCE_NOW, window_ms=WINDOW_MS,
                                    out_of_orderness_ms=OUT_OF_ORDERNESS_MS)
        assert {(e["tenant_id"], e["event_id"]) for e in out[name]["late_events"]} == expected.late_event_ids, name

    baseline = lines_of_others(out["base"]["line_items"])
    assert len(baseline) > 500
    baseline_late = {(e["tenant_id"], e["event_id"]) for e in out["base"]["late_events"]}
    for name in ("skewed_tenant", "skewed_customer", "skewed_tenant_first"):
        assert lines_of_others(out[name]["line_items"], **excluded[name]) == baseline, name
        late = {(e["tenant_id"], e["event_id"]) for e in out[name]["late_events"]}
        assert late == baseline_late, name
        fast_lines = [li for li in out[name]["line_items"] if li["customer_id"] == FAST]
        assert sum(li["event_count"] for li in fast_lines) == len(inputs[name]) - len(base), "the fast client is billed"
