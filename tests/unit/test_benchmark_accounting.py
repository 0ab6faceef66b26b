"""The throughput benchmark's check that the billing job accounted for every generated record as generated."""

from __future__ import annotations

from tests.benchmark_script import billing_throughput

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


def test_an_accounting_table_equal_to_the_ground_truth_has_no_mismatch():
    assert billing_throughput().accounting_mismatches(MATCHING, TRUTH) == {}


def test_each_differing_or_missing_count_is_reported_with_both_figures():
    accounting = {**MATCHING, "billed late (adjustments)": 19, "billed on time (windowed)": 901}
    del accounting["malformed_json"]
    assert billing_throughput().accounting_mismatches(accounting, TRUTH) == {
        "billed late (adjustments)": (19, 20),
        "billed on time (windowed)": (901, 900),
        "malformed_json": (None, 12),
    }


# The billing job's accounting table with --corrections (jobs.billing.accounting_table): the corrections' reasons can
# repeat a usage dead-letter label (malformed_json), so the two sections are parsed apart.
TABLE = """meterstream-billing: run 0123 finished in 12.0 s
records in the input (offsets)            1,000
  dead-lettered                              30
    malformed_json                           12
    unknown_meter                            18
  valid                                     970
    duplicates (same payload)                40
    duplicates (conflicting)                 10
    first seen                              920
      billed on time (windowed)             900
      billed late (adjustments)              20
identity received = dead-lettered + duplicates + billed on time + billed late: HOLDS
corrections in the input (offsets)           25
  applied (bill not changed yet)             20
  rejected                                    5
    malformed_json                            1
    unknown_event                             4
identity corrections = applied + rejected: HOLDS
"""


def test_usage_and_correction_sections_are_parsed_apart():
    bench = billing_throughput()
    assert bench.parse_accounting(TABLE) == MATCHING
    assert bench.parse_correction_accounting(TABLE) == {
        "received": 25, "applied": 20, "rejected": 5, "rejected_by_reason": {"malformed_json": 1, "unknown_event": 4}}
    assert bench.parse_correction_accounting(TABLE.split("corrections in")[0]) is None


def test_identities_hold_or_say_what_breaks_them():
    bench = billing_throughput()
    assert bench.usage_identity_problems(MATCHING, 1_000) == []
    assert bench.usage_identity_problems(MATCHING, 1_001) == ["the input held 1,000 records, 1,001 were produced"]
    assert len(bench.usage_identity_problems({**MATCHING, "billed late (adjustments)": 19}, 1_000)) == 1
    section = bench.parse_correction_accounting(TABLE)
    assert bench.correction_identity_problems(section, 25) == []
    assert len(bench.correction_identity_problems(section, 26)) == 2  # not all in the input, nor all accounted for
    assert bench.correction_identity_problems(None, 25) == ["the job printed no corrections accounting"]


def test_input_index_counts_what_the_committed_offsets_cover():
    bench = billing_throughput()
    index = bench.InputIndex.empty(2)
    # partition 0: offsets 0, 2 first-seen (series 0, 1); partition 1: offset 1 (series 0 again), 3 (series 2)
    index.add_first_seen(0, 0, series_id=0, customer_id=0)
    index.add_first_seen(0, 2, series_id=1, customer_id=0)
    index.add_first_seen(1, 1, series_id=0, customer_id=0)
    index.add_first_seen(1, 3, series_id=2, customer_id=1)
    assert index.covered({0: 0, 1: 0}) == {"first_seen": 0, "series": 0, "customers": 0}
    assert index.covered({0: 1, 1: 2}) == {"first_seen": 2, "series": 1, "customers": 1}
    assert index.covered({0: 3, 1: 4}) == {"first_seen": 4, "series": 3, "customers": 2}


def _snapshot(checkpoint: int, offsets: dict[int, int], status: str = "RUNNING") -> dict:
    names = ["Source: usage-events", "route-usage-events", "window-and-rate -> format", "fold-invoices"]
    return {
        "checkpoint_id": checkpoint, "trigger_timestamp": 0, "latest_ack_timestamp": 0, "end_to_end_duration_ms": 5,
        "state_size_bytes": 6_000, "committed_offsets": {"usage": offsets},
        "vertices": [{"name": name, "id": str(i), "status_when_read": status, "parallelism": 2,
                      "subtasks_running_when_read": 2 if status == "RUNNING" else 0,
                      "state_size_bytes": 1_000 * (i + 1), "checkpointed_size_bytes": 1_000 * (i + 1),
                      "subtask_state_size_bytes": [500 * (i + 1), 500 * (i + 1)], "read_records_when_read": 7}
                     for i, name in enumerate(names)],
    }


def test_state_figures_come_from_the_last_checkpoint_taken_while_the_operators_ran():
    bench = billing_throughput()
    index = bench.InputIndex.empty(2)
    for offset in range(4):
        index.add_first_seen(offset % 2, offset // 2, series_id=offset % 3, customer_id=0)
    snapshots = [_snapshot(1, {0: 1, 1: 1}), _snapshot(2, {0: 2, 1: 1}), _snapshot(3, {0: 2, 1: 2}, "FINISHED"),
                 _snapshot(4, {0: 2, 1: 2})]
    for vertex in snapshots[3]["vertices"]:
        vertex["subtasks_running_when_read"] = 1  # one subtask had finished: its state is no longer in the checkpoint
    figures = bench.state_size_figures(snapshots, "usage", index, total_records=4, port=1)
    assert figures["checkpoint"]["checkpoint_id"] == 2
    assert figures["input_covered"]["records"] == 3 and figures["input_covered"]["first_seen"] == 3
    assert figures["window_rating"] == {"vertex": "window-and-rate -> format", "state_bytes": 3_000,
                                        "subtask_state_bytes": [1_500, 1_500], "read_records_when_read": 7,
                                        "series": 3, "bytes_per_series": 1_000.0}
    assert figures["routing"]["bytes_per_first_seen_event"] == round(2_000 / 3, 1)
    assert figures["invoices"]["bytes_per_customer"] == 4_000.0
    snapshots[1]["vertices"][2]["checkpointed_size_bytes"] = 250  # the window operator wrote little the second time
    written = bench.state_size_figures(snapshots, "usage", index, total_records=4, port=1)["written_by_vertex"]
    assert written["window-and-rate"] == [3_000, 250, 3_000, 3_000]
    assert written["route-usage-events"] == [2_000] * 4
    assert "error" in bench.state_size_figures(snapshots[2:], "usage", index, total_records=4, port=1)


def test_series_keys_read_from_the_record_bytes_are_those_of_its_fields():
    bench = billing_throughput()
    record = (b'{"event_id":"e1","tenant_id":"acme-ai","customer_id":"c-1","meter":"input_tokens","timestamp":1,'
              b'"value":"5","dimensions":{"model":"nova-large"},"sdk":"x"}')
    series, customer = bench._series_bytes(record)
    assert customer == b',"tenant_id":"acme-ai","customer_id":"c-1"'
    assert series == (b',"tenant_id":"acme-ai","customer_id":"c-1","meter":"input_tokens"',
                      b',"dimensions":{"model":"nova-large"')
    assert bench._series_bytes(record.replace(b',"dimensions":{"model":"nova-large"}', b""))[0][1] == b""


def test_the_job_name_passed_through_is_the_group_whose_offsets_are_read():
    bench = billing_throughput()
    assert bench.job_group_id([]) == "meterstream-billing"
    assert bench.job_group_id(["--checkpoint-interval-ms=60000", "--job-name=bench-b"]) == "bench-b"
    assert bench.job_group_id(["--job-name", "bench-c"]) == "bench-c"


def test_checkpoint_durations_take_the_slowest_routing_subtask_per_checkpoint():
    bench = billing_throughput()

    def snap(end_to_end, syncs, written=None):
        return {"end_to_end_duration_ms": end_to_end, "checkpointed_size_bytes": written, "vertices": [
            {"name": f"{bench.ROUTING_VERTEX} -> x", "subtask_sync_ms": syncs},
            {"name": "other", "subtask_sync_ms": [9_999]}]}

    durations = bench.checkpoint_durations([snap(100, [10, 30], 7), snap(300, [50, None], 9), snap(200, [20, 5])])
    assert durations["checkpoints"] == 3
    assert durations["checkpointed_bytes"] == {"p50": 9, "max": 9}
    assert durations["end_to_end_ms"] == {"p50": 200, "p99": 300, "max": 300}
    assert durations["routing_sync_ms"] == {"p50": 30, "p99": 50, "max": 50}
    assert bench.checkpoint_durations([])["routing_sync_ms"] == {"p50": None, "p99": None, "max": None}
