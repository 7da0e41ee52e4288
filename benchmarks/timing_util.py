"""Shared by the benchmark scripts (which run as `python benchmarks/bench_*.py`)."""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 3) -> float:
    """The fastest of `repeat` wall-clock timings of fn(), in seconds: the least disturbed by
    other jobs on a shared machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
