"""State at scale (issue 18): the billing job as its dedup memory fills, at several input sizes.

    .venv/bin/python benchmarks/state_scale.py                          # 5M, 25M, 100M (the sizes the disk holds)
    .venv/bin/python benchmarks/state_scale.py --sizes 200000,800000    # smoke run, ~6 min

Each size is one run of `billing_throughput.py`'s workload and billing job, on one local broker started once: the
same shape (5 % duplicates, 1 % late, 1 % malformed, 0.5 % corrections, 4 meters, 3 tenants), with the event-time
span and the customers each scaled with the square root of the size (10 minutes and 10,000 customers at 5M events,
20 and 20,000 at 20M). So every first-seen id is new to the dedup memory (nothing expires: its horizon is 35 days of
processing time), the series grow, and the events per series and window (so the line items per event) stay those of
the 5M run. The smallest size that runs also runs the bare Flink SQL ceiling, as `billing_throughput.py` does.

Per size: events/s, CPU us per event, checkpoint durations (end to end, and the routing operator's synchronous part,
for which processing stops) p50/p99, checkpoint size (full, and what each checkpoint wrote: the same on the heap
backend), state bytes per first-seen id and per series, peak RSS. Then issue 18's targets (largest size >= 0.8x the
smallest's events/s, checkpoint p99 <= 5 s, time per event not growing by more than 5 % per size step) and a
projection to 3.5 billion ids from the largest size's per-id figures and how the pause and what a checkpoint writes
grew over the sizes. Results: `results/state_scale-<ts>.json` (not `latest.json`, which is `billing_throughput.py`'s).

A size whose estimated disk need (`DISK_BYTES_PER_EVENT`) exceeds the free space, or whose estimated memory
(`RSS_BYTES_PER_EVENT`, measured with today's routing state) exceeds 80 % of the RAM, is skipped, and says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "benchmarks") not in sys.path:  # the 5M benchmark beside this script: a script, not a package
    sys.path.insert(0, str(ROOT / "benchmarks"))
import billing_throughput as bench  # noqa: E402

RESULTS_DIR = ROOT / "benchmarks" / "results"
BASE_EVENTS = 5_000_000  # billing_throughput's real run, the unit the workload is scaled by
BASE_CUSTOMERS = 10_000
BASE_MINUTES = 10.0
DEFAULT_SIZES = (5_000_000, 25_000_000, 100_000_000)
# Measured at 5M (T034342): input files 166 B + broker log ~170 B + two checkpoints ~2 x 95 B of routing and ~20 B of
# other state + output topics ~95 B per event; rounded up. Temporary files and topics of a size go before the next.
DISK_BYTES_PER_EVENT = 700
# Measured with the routing state of December 2026 (heap tables, copied whole into each checkpoint): the billing
# job's process tree held 11 GB at 23.5M events read of a 25M run (16 GB heap). A size whose estimate exceeds 80 %
# of the machine's memory is skipped: the kernel would kill a process of the run (a 25M run once lost this script).
RSS_BYTES_PER_EVENT = 480
MEMORY_SHARE = 0.8
TARGET_RATIO_LARGEST_TO_SMALLEST = 0.8
TARGET_CHECKPOINT_P99_MS = 5_000
TARGET_TIME_GROWTH_PER_STEP = 1.05  # "4x the events -> <= 4.2x the time": time per event may grow by 5 % a step
MISSION_IDS = 3_500_000_000
CHECKPOINT_INTERVAL_MS = 5_000  # jobs.runtime.DEFAULT_CHECKPOINT_INTERVAL_MS


def scaled_args(size: int) -> list[str]:
    """billing_throughput arguments for `size` events: customers and event-time span each grow with its square root,
    so the series (and the ids) grow while the events per series and window, hence the line items per event, stay
    those of the 5M run. (Both growing with the size, as first tried, made 14.6x the line items for 5x the events.)"""
    root = math.sqrt(size / BASE_EVENTS)
    return ["--events", str(size), "--customers", str(max(30, round(BASE_CUSTOMERS * root))),
            "--duration-minutes", f"{BASE_MINUTES * root:.2f}"]


def size_figures(run: dict) -> dict:
    """The per-size figures issue 18 asks for, from one billing_throughput result."""
    billing = run.get("billing") or {}
    state = billing.get("state") or {}
    durations = state.get("checkpoint_durations") or {}
    routing = state.get("routing") or {}
    window = state.get("window_rating") or {}
    checkpoint = state.get("checkpoint") or {}
    cpu = billing.get("cpu") or {}
    routing_subtasks = [b for b in routing.get("subtask_state_bytes") or [] if b]
    return {
        "events": run["events"],
        "ok": bool(billing.get("ok")),
        "seconds": billing.get("seconds"),
        "events_per_second": billing.get("events_per_second"),
        "cpu_us_per_event": cpu.get("us_per_event"),
        "peak_rss_mb": billing.get("peak_rss_mb"),
        "checkpoint_end_to_end_ms": durations.get("end_to_end_ms"),
        "checkpoint_routing_sync_ms": durations.get("routing_sync_ms"),
        "checkpoint_full_bytes": checkpoint.get("state_size_bytes"),
        "checkpoint_written_bytes": durations.get("checkpointed_bytes"),
        "routing_state_bytes": routing.get("state_bytes"),
        "routing_state_bytes_per_subtask_max": max(routing_subtasks, default=None),
        "first_seen_ids": ((run.get("workload") or {}).get("ground_truth") or {}).get("first_seen"),
        "first_seen_ids_in_state": routing.get("first_seen_events"),
        "state_bytes_per_id": routing.get("bytes_per_first_seen_event"),
        "series_in_state": window.get("series"),
        "state_bytes_per_series": window.get("bytes_per_series"),
        "ceiling_events_per_second": (run.get("ceiling") or {}).get("events_per_second"),
        "ratio_to_ceiling": run.get("ratio_billing_to_ceiling"),
    }


def targets(sizes: list[dict]) -> dict:
    """Issue 18's targets over the sizes that ran (smallest first); None where a figure is missing."""
    ran = [s for s in sizes if s.get("events_per_second")]
    if not ran:
        return {"error": "no size ran to its end"}
    smallest, largest = ran[0], ran[-1]
    ratio = round(largest["events_per_second"] / smallest["events_per_second"], 3)
    p99 = (largest.get("checkpoint_end_to_end_ms") or {}).get("p99")
    steps = []
    for before, after in zip(ran, ran[1:], strict=False):
        events_ratio = after["events"] / before["events"]
        time_ratio = after["seconds"] / before["seconds"]
        steps.append({"from": before["events"], "to": after["events"], "events_ratio": round(events_ratio, 2),
                      "time_ratio": round(time_ratio, 2),
                      "time_per_event_growth": round(time_ratio / events_ratio, 3),
                      "meets": time_ratio / events_ratio <= TARGET_TIME_GROWTH_PER_STEP})
    return {
        "largest_events": largest["events"],
        "ratio_largest_to_smallest": ratio,
        "meets_ratio": ratio >= TARGET_RATIO_LARGEST_TO_SMALLEST,
        "min_ratio": TARGET_RATIO_LARGEST_TO_SMALLEST,
        "largest_checkpoint_p99_ms": p99,
        "meets_checkpoint_p99": None if p99 is None else p99 <= TARGET_CHECKPOINT_P99_MS,
        "max_checkpoint_p99_ms": TARGET_CHECKPOINT_P99_MS,
        "scaling_steps": steps,
        "meets_scaling": all(step["meets"] for step in steps) if steps else None,
    }


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of y over x, both >= 0: least squares over two or more points, and through the origin (the
    full-copy model: cost proportional to what is held) from one."""
    if len(points) == 1:
        x, y = points[0]
        return 0.0, y / x
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = max(0.0, sum((x - mean_x) * (y - mean_y) for x, y in points) / spread) if spread else 0.0
    return max(0.0, mean_y - slope * mean_x), slope


def projection(sizes: list[dict], taskmanagers: tuple[int, ...] = (4, 8, 16, 32, 64)) -> dict:
    """On paper: 3.5 billion ids in the routing state across N TaskManagers (one routing subtask each), from the
    measured figures: the largest size's checkpoint bytes per id; how the routing operator's synchronous pause (p50)
    and what a checkpoint writes (p50, per subtask) grow with the ids a subtask holds (a linear fit over the sizes
    that ran: from one size, proportional to the ids, as a full copy is; with sealed state and incremental checkpoints
    the measured growth is what it is); and the RSS growth per id (peak RSS between the smallest and largest size
    over their first-seen ids: every process of the job, so an upper bound). Recovery reads the whole state: assumed
    at the largest size's full-state rate over its synchronous pause (not measured)."""
    ran = [s for s in sizes if s.get("state_bytes_per_id") and s.get("first_seen_ids_in_state")]
    if not ran:
        return {"error": "no size reported its state (see each size's billing.state)"}
    largest = ran[-1]
    bytes_per_id = largest["state_bytes_per_id"]
    heap_per_id = None
    rss = [s for s in sizes if s.get("peak_rss_mb") and s.get("first_seen_ids")]
    if len(rss) >= 2:
        grown = (rss[-1]["peak_rss_mb"] - rss[0]["peak_rss_mb"]) * 1e6
        ids = rss[-1]["first_seen_ids"] - rss[0]["first_seen_ids"]
        heap_per_id = round(grown / ids, 1) if ids > 0 else None
    pauses, writes = [], []
    for s in ran:
        per_subtask = s.get("routing_state_bytes_per_subtask_max")
        sync_p50 = (s.get("checkpoint_routing_sync_ms") or {}).get("p50")
        written_p50 = (s.get("checkpoint_written_bytes") or {}).get("p50")
        if per_subtask and sync_p50:
            ids_per_subtask = per_subtask / s["state_bytes_per_id"]
            pauses.append((ids_per_subtask, sync_p50 / 1000))
            if written_p50:
                subtasks = max(1, round(s["routing_state_bytes"] / per_subtask)) if s.get("routing_state_bytes") else 1
                writes.append((ids_per_subtask, written_p50 / subtasks))
    pause_fit = linear_fit(pauses) if pauses else None
    write_fit = linear_fit(writes) if writes else None
    sync_p50 = (largest.get("checkpoint_routing_sync_ms") or {}).get("p50")
    per_subtask = largest.get("routing_state_bytes_per_subtask_max")
    rate = per_subtask / (sync_p50 / 1000) if sync_p50 and per_subtask else None  # bytes per second, one subtask
    rows = []
    for n in taskmanagers:
        ids = MISSION_IDS / n
        state = ids * bytes_per_id
        pause_s = pause_fit[0] + pause_fit[1] * ids if pause_fit else None
        written = write_fit[0] + write_fit[1] * ids if write_fit else None
        memory = ids * heap_per_id if heap_per_id else None
        breaks = []
        if pause_s is not None and pause_s * 1000 > CHECKPOINT_INTERVAL_MS:
            breaks.append(f"the synchronous part ({pause_s:.0f} s) outlasts the {CHECKPOINT_INTERVAL_MS // 1000} s "
                          f"checkpoint interval: processing never catches up")
        if memory is not None and memory > 64e9:
            breaks.append(f"{memory / 1e9:.0f} GB of heap per TaskManager (beyond a practical JVM heap)")
        rows.append({
            "taskmanagers": n,
            "ids_per_taskmanager": round(ids),
            "heap_gb_per_taskmanager": None if memory is None else round(memory / 1e9, 1),
            "checkpoint_gb_per_taskmanager": round(state / 1e9, 1),
            "checkpoint_gb_total": round(MISSION_IDS * bytes_per_id / 1e9, 1),
            "synchronous_pause_s": None if pause_s is None else round(pause_s, 1),
            "written_gb_per_checkpoint_per_taskmanager": None if written is None else round(written / 1e9, 2),
            "recovery_s_assumed": None if rate is None else round(state / rate, 1),
            "breaks": breaks,
        })
    return {
        "ids": MISSION_IDS,
        "from_events": largest["events"],
        "from_sizes": [s["events"] for s in ran],
        "state_bytes_per_id": bytes_per_id,
        "heap_bytes_per_id": heap_per_id,
        "pause_model": None if pause_fit is None else {
            "seconds_at_zero": round(pause_fit[0], 3), "seconds_per_million_ids": round(pause_fit[1] * 1e6, 4),
            "fitted_over": len(pauses)},
        "written_model": None if write_fit is None else {
            "bytes_at_zero": round(write_fit[0]), "bytes_per_id": round(write_fit[1], 2), "fitted_over": len(writes)},
        "sync_bytes_per_second_per_subtask": None if rate is None else round(rate),
        "checkpoint_interval_ms": CHECKPOINT_INTERVAL_MS,
        "rows": rows,
    }


def fit_check(size: int, path: Path, memory_bytes: int) -> str | None:
    """Why `size` does not fit on this machine (the disk holding `path`, `memory_bytes` of RAM), or None."""
    need = size * DISK_BYTES_PER_EVENT
    free = shutil.disk_usage(path).free
    if need > free:
        return (f"needs ~{need / 1e9:.0f} GB of disk ({DISK_BYTES_PER_EVENT} B per event), "
                f"{free / 1e9:.0f} GB free")
    rss = size * RSS_BYTES_PER_EVENT
    if rss > MEMORY_SHARE * memory_bytes:
        return (f"needs ~{rss / 1e9:.0f} GB of memory ({RSS_BYTES_PER_EVENT} B per event with today's routing "
                f"state), more than {MEMORY_SHARE:.0%} of the machine's {memory_bytes / 1e9:.0f} GB")
    return None


def memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def print_summary(result: dict) -> None:
    def fmt(value: object, spec: str = ",.0f") -> str:
        return "-" if value is None else format(value, spec) if isinstance(value, int | float) else str(value)

    print(f"\nstate_scale ({result['machine']['nproc']} CPUs, {result['machine']['memory_gb']} GB, "
          f"job heap {result['job_heap'] or 'JVM default'}):")
    print(f"{'events':>12s} {'ev/s':>9s} {'us/ev':>6s} {'ckpt p50':>9s} {'p99':>7s} {'sync p50':>9s} {'p99':>7s} "
          f"{'ckpt MB':>9s} {'B/id':>6s} {'B/series':>9s} {'RSS MB':>8s}")
    for s in result["sizes"]:
        if s.get("skipped"):
            print(f"{s['events']:>12,} skipped: {s['skipped']}")
            continue
        e2e, sync = s.get("checkpoint_end_to_end_ms") or {}, s.get("checkpoint_routing_sync_ms") or {}
        full = s.get("checkpoint_full_bytes")
        print(f"{s['events']:>12,} {fmt(s['events_per_second']):>9s} {fmt(s['cpu_us_per_event'], '.1f'):>6s} "
              f"{fmt(e2e.get('p50')):>9s} {fmt(e2e.get('p99')):>7s} {fmt(sync.get('p50')):>9s} "
              f"{fmt(sync.get('p99')):>7s} {fmt(full and full / 1e6):>9s} {fmt(s['state_bytes_per_id'], '.1f'):>6s} "
              f"{fmt(s['state_bytes_per_series'], '.0f'):>9s} {fmt(s['peak_rss_mb']):>8s}"
              + ("" if s["ok"] else "   NOT OK: see the run's billing section"))
    t = result["targets"]
    if "error" not in t:
        print(f"largest ({t['largest_events']:,}) / smallest events/s: {t['ratio_largest_to_smallest']} "
              f"(target >= {t['min_ratio']}: {t['meets_ratio']}); checkpoint p99 {fmt(t['largest_checkpoint_p99_ms'])}"
              f" ms (target <= {t['max_checkpoint_p99_ms']}: {t['meets_checkpoint_p99']})")
        for step in t["scaling_steps"]:
            print(f"  {step['from']:,} -> {step['to']:,}: {step['events_ratio']}x the events, {step['time_ratio']}x "
                  f"the time (target <= {TARGET_TIME_GROWTH_PER_STEP}x per event: {step['meets']})")
    p = result["projection"]
    if "error" not in p:
        model = p.get("pause_model") or {}
        print(f"projection, {p['ids']:,} ids ({p['state_bytes_per_id']} B per id in checkpoints, "
              f"{fmt(p['heap_bytes_per_id'], '.0f')} B of RSS per id, from {p['from_events']:,} events; pause "
              f"{fmt(model.get('seconds_at_zero'), '.3f')} s + {fmt(model.get('seconds_per_million_ids'), '.4f')} s "
              f"per million ids a subtask holds, fitted over {model.get('fitted_over', 0)} size(s)):")
        for row in p["rows"]:
            print(f"  {row['taskmanagers']:>3} TMs: heap {fmt(row['heap_gb_per_taskmanager'], '.1f')} GB, checkpoint "
                  f"{row['checkpoint_gb_per_taskmanager']} GB per TM ({row['checkpoint_gb_total']} GB in all), "
                  f"written {fmt(row['written_gb_per_checkpoint_per_taskmanager'], '.2f')} GB per checkpoint, "
                  f"pause {fmt(row['synchronous_pause_s'], '.1f')} s"
                  + (f"  BREAKS: {'; '.join(row['breaks'])}" if row["breaks"] else ""))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="comma-separated event counts, ascending")
    parser.add_argument("--job-heap", default=f"{memory_bytes() * 2 // 3 >> 30}g",
                        help="-Xmx of each job's JVM (the MiniCluster's heap), '' for the JVM default; both jobs "
                             "(default: two thirds of the RAM, 15g on 24 GB)")
    parser.add_argument("--correction-rate", type=float, default=0.005)
    parser.add_argument("--job-arg", action="append", default=[], help="passed to each billing run")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes takes comma-separated integers, got {args.sizes!r}")
    if args.sizes != sorted(args.sizes) or any(s <= 0 for s in args.sizes):
        parser.error(f"--sizes must be positive and ascending, got {args.sizes}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    from meterstream import kafka_local
    from meterstream.topics import delete_topics

    if args.job_heap:
        os.environ["JVM_ARGS"] = f"{os.environ.get('JVM_ARGS', '')} -Xmx{args.job_heap}".strip()
    started_at = datetime.now(UTC)
    path = RESULTS_DIR / f"state_scale-{started_at.strftime('%Y%m%dT%H%M%S')}.json"
    result: dict = {"benchmark": "state_scale", "started_at": started_at.isoformat().replace("+00:00", "Z"),
                    "machine": bench.machine(), "job_heap": args.job_heap or None, "job_args": args.job_arg,
                    "sizes": [], "runs": []}
    broker = kafka_local.start_broker(heap="-Xms512m -Xmx2g")
    try:
        ceiling_ran = False  # the ceiling runs once, with the first size that runs
        for size in args.sizes:
            why_not = fit_check(size, ROOT, memory_bytes())
            if why_not:
                print(f"[scale] {size:,} events skipped: {why_not}", flush=True)
                result["sizes"].append({"events": size, "skipped": why_not})
                continue
            print(f"[scale] {size:,} events ...", flush=True)
            run_args = bench.parse_args([*scaled_args(size), "--bootstrap", broker.bootstrap_servers,
                                         "--correction-rate", str(args.correction_rate),
                                         *(["--skip-ceiling"] if ceiling_ran else []),
                                         *(f"--job-arg={a}" for a in args.job_arg)])
            run = bench.run_benchmark(run_args)
            ceiling_ran = True
            bench.print_table(run)
            result["runs"].append(run)
            result["sizes"].append(size_figures(run))
            write(result, path)  # each size as it ends: a later size that fails loses nothing measured before
            # the disk for the next size
            delete_topics(broker.bootstrap_servers, (run.get("topics") or {}).values())
    finally:
        kafka_local.stop_broker(broker, remove_data=True)
    write(result, path)
    print_summary(result)
    print(f"results: {path}")
    return 0 if all(s.get("ok") or s.get("skipped") for s in result["sizes"]) else 1


def write(result: dict, path: Path) -> None:
    """The result so far, targets and projection recomputed from the sizes that ran."""
    ran = [s for s in result["sizes"] if not s.get("skipped")]
    result["targets"] = targets(ran)
    result["projection"] = projection(ran)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
