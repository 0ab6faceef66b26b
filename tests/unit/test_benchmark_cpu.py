"""The throughput benchmark's CPU figures: thread names folded over their instances, shares summed per name."""

from __future__ import annotations

import os
import threading
import time

from tests.benchmark_script import billing_throughput


def test_threads_are_summed_by_name_without_their_instance_numbers():
    bench = billing_throughput()
    sampler = bench.RssSampler(root_pid=-1)
    ticks = bench._CLOCK_TICKS
    sampler.thread_ticks = {
        (1, 10): ("route-usage-eve", 30 * ticks),  # both subtasks: Linux keeps 15 bytes of the name
        (1, 11): ("route-usage-eve", 20 * ticks),
        (1, 12): ("GC Thread#0", 4 * ticks),
        (1, 13): ("GC Thread#1", 6 * ticks),
        (1, 14): ("Thread-7", 1 * ticks),
        (2, 20): ("python", 2 * ticks),
    }
    cpu = sampler.cpu(events=1_000_000, top=2)
    assert cpu["total_seconds"] == 63.0
    assert cpu["us_per_event"] == 63.0
    assert cpu["by_thread"] == {"route-usage-eve": 50.0, "GC Thread": 10.0, "(other threads)": 3.0}


def test_a_busy_thread_of_the_sampled_process_shows():
    bench = billing_throughput()
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(range(10_000))

    worker = threading.Thread(target=spin, name="spinner")
    worker.start()
    sampler = bench.RssSampler(os.getpid(), interval=0.05, cpu_every=1)
    sampler.start()
    try:
        time.sleep(0.6)
    finally:
        stop.set()
        worker.join()
        sampler.stop()
    cpu = sampler.cpu(events=0)
    assert cpu["us_per_event"] is None
    assert cpu["total_seconds"] > 0  # Python threads keep the process's name, so this is the process's own time
    assert sampler.peak_bytes > 0
