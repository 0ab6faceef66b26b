"""`benchmarks/state_scale.py`'s arithmetic: scaling of the workload, figures per size, targets and the projection
(the runs themselves are the benchmark's, not a test's)."""

from __future__ import annotations

import pytest

from tests.benchmark_script import state_scale


def run(events, *, seconds, rss, ids, bytes_per_id, sync_p50, e2e_p99, subtask_bytes, ok=True, ceiling=None):
    """A billing_throughput result with the parts state_scale reads."""
    return {
        "events": events,
        "workload": {"ground_truth": {"first_seen": ids}},
        "ceiling": None if ceiling is None else {"events_per_second": ceiling},
        "ratio_billing_to_ceiling": None if ceiling is None else round(events / seconds / ceiling, 3),
        "billing": {
            "ok": ok,
            "seconds": seconds,
            "events_per_second": round(events / seconds, 1),
            "peak_rss_mb": rss,
            "cpu": {"us_per_event": 25.0},
            "state": {
                "checkpoint": {"state_size_bytes": 2 * subtask_bytes + 1000, "checkpointed_size_bytes": 5},
                "checkpoint_durations": {
                    "end_to_end_ms": {"p50": 700, "p99": e2e_p99, "max": e2e_p99},
                    "routing_sync_ms": {"p50": sync_p50, "p99": sync_p50 * 2, "max": sync_p50 * 2},
                    "checkpointed_bytes": {"p50": 2 * subtask_bytes, "max": 2 * subtask_bytes},
                },
                "routing": {"state_bytes": 2 * subtask_bytes, "subtask_state_bytes": [subtask_bytes, subtask_bytes - 1],
                            "first_seen_events": ids, "bytes_per_first_seen_event": bytes_per_id},
                "window_rating": {"series": 80_000, "bytes_per_series": 410.0},
            },
        },
    }


def test_the_workload_grows_its_series_but_not_its_events_per_series_and_window():
    scale = state_scale()
    assert scale.scaled_args(5_000_000) == ["--events", "5000000", "--customers", "10000",
                                            "--duration-minutes", "10.00"]
    assert scale.scaled_args(20_000_000)[3:] == ["20000", "--duration-minutes", "20.00"]  # 4x: 2x each
    assert scale.scaled_args(10)[3] == "30"  # at least one customer per tenant and meter set


def test_size_figures_take_the_issue_s_measures_from_one_run():
    figures = state_scale().size_figures(run(5_000_000, seconds=50.0, rss=4000, ids=4_600_000, bytes_per_id=95.5,
                                             sync_p50=500, e2e_p99=2000, subtask_bytes=200_000_000, ceiling=125_000))
    assert figures["events_per_second"] == 100_000.0
    assert figures["ratio_to_ceiling"] == 0.8
    assert figures["checkpoint_full_bytes"] == 400_001_000
    assert figures["checkpoint_written_bytes"] == {"p50": 400_000_000, "max": 400_000_000}
    assert figures["routing_state_bytes_per_subtask_max"] == 200_000_000
    assert figures["state_bytes_per_id"] == 95.5
    assert figures["state_bytes_per_series"] == 410.0
    assert figures["checkpoint_routing_sync_ms"]["p50"] == 500


def test_a_run_without_state_figures_gives_none_not_an_error():
    failed = {"events": 10, "billing": {"ok": False, "state": {"error": "no checkpoint"}}}
    figures = state_scale().size_figures(failed)
    assert figures["ok"] is False
    assert figures["state_bytes_per_id"] is None and figures["events_per_second"] is None


def test_targets_compare_the_largest_size_with_the_smallest_and_each_step():
    scale = state_scale()
    small = scale.size_figures(run(5_000_000, seconds=50.0, rss=4000, ids=4_600_000, bytes_per_id=95.0, sync_p50=500,
                                   e2e_p99=2_000, subtask_bytes=200_000_000))
    big = scale.size_figures(run(20_000_000, seconds=230.0, rss=12000, ids=18_400_000, bytes_per_id=96.0,
                                 sync_p50=2_000, e2e_p99=6_000, subtask_bytes=800_000_000))
    t = scale.targets([small, big])
    assert t["ratio_largest_to_smallest"] == round((20_000_000 / 230) / 100_000, 3)
    assert t["meets_ratio"] is True  # 0.87
    assert t["meets_checkpoint_p99"] is False  # 6 s
    (step,) = t["scaling_steps"]
    assert (step["events_ratio"], step["time_ratio"]) == (4.0, 4.6)
    assert step["meets"] is False and t["meets_scaling"] is False  # 4.6x the time for 4x the events
    assert "error" in scale.targets([])


def test_the_projection_scales_the_measured_per_id_figures_and_says_where_it_breaks():
    scale = state_scale()
    small = scale.size_figures(run(5_000_000, seconds=50.0, rss=4000, ids=5_000_000, bytes_per_id=100.0,
                                   sync_p50=500, e2e_p99=2_000, subtask_bytes=250_000_000))
    big = scale.size_figures(run(25_000_000, seconds=250.0, rss=8000, ids=25_000_000, bytes_per_id=100.0,
                                 sync_p50=2_500, e2e_p99=4_000, subtask_bytes=1_250_000_000))
    p = scale.projection([small, big], taskmanagers=(10, 1000))
    assert p["heap_bytes_per_id"] == 200.0  # 4,000 MB more for 20M more ids
    assert p["sync_bytes_per_second_per_subtask"] == 500_000_000  # 1.25 GB in 2.5 s
    ten, thousand = p["rows"]
    assert ten["ids_per_taskmanager"] == 350_000_000
    assert ten["checkpoint_gb_per_taskmanager"] == 35.0 and ten["checkpoint_gb_total"] == 350.0
    assert ten["heap_gb_per_taskmanager"] == 70.0
    assert ten["synchronous_pause_s"] == 70.0
    assert len(ten["breaks"]) == 2  # a 70 s pause every 5 s, and 70 GB of heap
    assert thousand["synchronous_pause_s"] == 0.7 and thousand["breaks"] == []
    assert ten["written_gb_per_checkpoint_per_taskmanager"] == 35.0  # a full copy: what is held, every time
    assert p["pause_model"] == {"seconds_at_zero": 0.0, "seconds_per_million_ids": 0.2, "fitted_over": 2}
    assert "error" in scale.projection([])


def test_a_pause_that_did_not_grow_with_the_ids_is_projected_flat_and_one_size_proportionally():
    """Sealed state with incremental checkpoints: the pause and what a checkpoint writes track what changed, not
    what is held; the fit over the sizes says so. From one size alone the projection assumes a full copy."""
    scale = state_scale()
    small = scale.size_figures(run(5_000_000, seconds=50.0, rss=4000, ids=5_000_000, bytes_per_id=50.0,
                                   sync_p50=300, e2e_p99=2_000, subtask_bytes=125_000_000))
    big = scale.size_figures(run(20_000_000, seconds=200.0, rss=5000, ids=20_000_000, bytes_per_id=50.0,
                                 sync_p50=320, e2e_p99=2_000, subtask_bytes=500_000_000))
    for s, written in ((small, 90_000_000), (big, 100_000_000)):
        s["checkpoint_written_bytes"] = {"p50": written, "max": written}
    flat = scale.projection([small, big], taskmanagers=(4,))
    row = flat["rows"][0]
    # 20 ms more over 7.5M more ids a subtask: 2.7 ms per million, 2.6 s at 875M ids
    assert flat["pause_model"]["seconds_per_million_ids"] == pytest.approx(0.0027, abs=1e-4)
    assert row["synchronous_pause_s"] == pytest.approx(2.6, abs=0.1) and row["breaks"] == []
    assert row["written_gb_per_checkpoint_per_taskmanager"] == pytest.approx(0.63, abs=0.01)
    one = scale.projection([small], taskmanagers=(4,))
    assert one["rows"][0]["synchronous_pause_s"] == pytest.approx(875e6 / 2.5e6 * 0.3, abs=0.1)
    assert one["rows"][0]["breaks"]


def test_a_size_the_machine_cannot_hold_is_skipped_with_its_reason(tmp_path):
    scale = state_scale()
    assert scale.fit_check(1_000, tmp_path, memory_bytes=24 * 10**9) is None
    why = scale.fit_check(10**15, tmp_path, memory_bytes=24 * 10**9)
    assert why is not None and "GB of disk" in why and "free" in why
    why = scale.fit_check(100_000, tmp_path, memory_bytes=50_000_000)  # 48 MB at 480 B per event: > 80 % of 50
    assert why is not None and "GB of memory" in why
    assert scale.fit_check(100_000, tmp_path, memory_bytes=70_000_000) is None


@pytest.mark.parametrize("sizes", ["5000000,1000000", "0", "5M"])
def test_sizes_must_be_positive_ascending_integers(sizes, capsys):
    with pytest.raises(SystemExit):
        state_scale().parse_args(["--sizes", sizes])
    assert "--sizes" in capsys.readouterr().err
