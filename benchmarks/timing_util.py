"""Shared by the benchmark scripts (which run as `python benchmarks/bench_*.py`)."""

from __future__ import annotations

import time


def best_times(fn, repeat: int = 3) -> tuple[float, float]:
    """(the fastest wall-clock time, the least CPU time) of `repeat` runs of fn(), in seconds:
    the least disturbed by other jobs on a shared machine. CPU time (this process's, all its
    threads) is what one core spends when other jobs take turns on it."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def best_of(fn, repeat: int = 3) -> float:
    """The fastest of `repeat` wall-clock timings of fn(), in seconds."""
    return best_times(fn, repeat)[0]
