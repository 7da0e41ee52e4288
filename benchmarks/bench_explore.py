"""`stmoe explore` on Dask: a 2,000-point grid on the bundled tiny-moe-code trace with 1 and with
2 local worker processes, in points per second; the scaling efficiency (2-worker rate over
twice the 1-worker rate; target >= 0.8) and the per-point overhead against a plain loop calling
`simulate` on the same points in this process (target < 10%), split into what building explore's
rows costs (the same `run_batch` the workers call, run here) and what Dask adds on top of it.

    python benchmarks/bench_explore.py [--buffers N] [--repeat R]

Each cluster is started and warmed (numba's cached kernels loaded) before its runs are timed;
the start-up is printed apart. The in-process loops run in turn with the 1-worker cluster's
runs, round by round, so other jobs on the machine disturb both alike; each figure is the best
of `--repeat` rounds (the least disturbed). Wall-clock overhead on a busy machine mostly
measures the other jobs, so the overhead is also given in CPU seconds of every process involved
(the workers, the scheduler and client, against the loop's process). The timed run includes
scattering the trace, batching, moving the rows back and writing the Parquet parts. On a
machine whose cores other jobs share, the 2-worker figure measures what the cores gave, not
only Dask.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from distributed import Client

from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import dims_for
from stmoe.sim.explore import _local_cluster, _starting, explore, read_results, run_batch
from stmoe.sim.explore_spec import HARDWARE_PARAMETERS, parse_spec
from stmoe.sim.hardware import preset
from stmoe.sim.timing import decode_tokens, simulate

TRACE = "tiny-moe-code"
SYSTEMS = ["on-demand", "lru-cache"]   # no predictor: each point is one simulation, as in the loop


def grid(buffers: int) -> dict:
    return {"traces": [TRACE], "presets": ["accelerator"], "systems": SYSTEMS,
            "parameters": {"buffer_bytes": {"start": 2 ** 20, "stop": 64 * 2 ** 20, "num": buffers, "scale": "log"},
                           "link_bandwidth": {"start": 32e9, "stop": 512e9, "num": 10, "scale": "log"},
                           "macs_per_cycle": [64 ** 2, 96 ** 2, 128 ** 2, 192 ** 2, 256 ** 2]}}


def timed(fn, cpu) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of fn(); cpu() reads the CPU seconds of every process involved."""
    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def in_process(spec) -> dict:
    """The work of a 1-worker run done in this process, each a function of no arguments:
    `loop`, the best plain loop calling simulate (sizes and simulated tokens found once, as the
    workers do), and `rows`, the rows explore writes (speedups with their intervals, flattened
    fields) built here by the function the workers run, so that what is left between `rows` and
    a worker is Dask's scheduling, moving rows and writing Parquet."""
    trace = spec.traces[TRACE]
    dims, _ = dims_for(trace)
    decode = decode_tokens(trace, "decode")[0]
    simulate(decode, "accelerator", "on-demand", dims=dims, phase=None)     # compile / load the kernels

    def loop():
        for p in spec.points:
            hw = preset(p["preset"], **{k: p[k] for k in HARDWARE_PARAMETERS if p[k] is not None})
            simulate(decode, hw, p["system"], dims=dims, phase=None)
    return {"loop": loop, "rows": lambda: run_batch(trace, spec.points)}


def on_cluster(spec, workers: int, repeat: int, alongside: dict | None = None) -> tuple[float, dict]:
    """(start-up seconds, {name: (wall, CPU) seconds}) of the spec on a fresh local cluster of
    `workers` ("explore": CPU of the workers, the scheduler and this client), started as
    `stmoe explore` starts its own. The functions `alongside` are timed in
    this process in turn with the cluster's runs, so that other jobs on the machine disturb
    both alike; each figure is the least of `repeat` rounds."""
    alongside = alongside or {}
    start = time.perf_counter()
    with _starting():   # the command's own local cluster: its settings and fork server
        cluster = _local_cluster(workers)
    with cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        trace = load_trace(TRACE)
        client.run(lambda: simulate(trace, "accelerator", "on-demand") and None)   # warm each worker
        startup = time.perf_counter() - start

        def cpu():   # the scheduler runs in this process, beside the client
            return time.process_time() + sum(client.run(time.process_time).values())

        def run_once():
            with tempfile.TemporaryDirectory() as tmp:
                run = explore(spec, Path(tmp) / "out", client=client, progress=lambda *a: None, log=lambda s: None)
                assert run.computed == len(spec.points) == len(read_results(Path(tmp) / "out"))
        runs: dict = {name: [] for name in [*alongside, "explore"]}
        for _ in range(repeat):
            for name, fn in alongside.items():
                runs[name].append(timed(fn, time.process_time))
            runs["explore"].append(timed(run_once, cpu))
    return startup, {name: (min(w for w, _ in r), min(c for _, c in r)) for name, r in runs.items()}


def main():
    parser = argparse.ArgumentParser(description="stmoe explore: points/s on 1 and 2 workers")
    parser.add_argument("--buffers", type=int, default=20, help="buffer sizes in the grid (x 100 points)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each configuration; the best counts")
    args = parser.parse_args()
    spec = parse_spec(grid(args.buffers))
    n = len(spec.points)
    print(f"grid: {n} points ({', '.join(SYSTEMS)}) on {TRACE}, {spec.traces[TRACE].num_tokens} tokens")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs share them)")
    startup1, one = on_cluster(spec, 1, args.repeat, in_process(spec))
    startup2, two = on_cluster(spec, 2, args.repeat)
    (loop, loop_cpu), (rows, rows_cpu) = one["loop"], one["rows"]
    rates = {1: n / one["explore"][0], 2: n / two["explore"][0]}
    cpus = {1: one["explore"][1], 2: two["explore"][1]}
    print(f"plain loop calling simulate (tokens selected once): {n / loop:7.1f} points/s "
          f"({loop / n * 1e3:.1f} ms a point, {loop_cpu / n * 1e3:.1f} ms CPU)")
    print(f"the same rows explore writes, built in this process: {n / rows:7.1f} points/s "
          f"({rows / n * 1e3:.1f} ms a point, {rows_cpu / n * 1e3:.1f} ms CPU)")
    for workers, startup in ((1, startup1), (2, startup2)):
        print(f"explore, {workers} worker{'s' if workers > 1 else ' '}:     {rates[workers]:7.1f} points/s "
              f"({n / rates[workers]:.1f} s, {cpus[workers] / n * 1e3:.1f} ms CPU a point; cluster start-up "
              f"{startup:.1f} s, not counted)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    efficiency = rates[2] / (2 * rates[1])
    print(f"scaling efficiency (2-worker rate / 2 x 1-worker rate): {efficiency:.2f} (target >= 0.8)")
    print(f"per-point overhead of 1 worker against the plain loop, wall clock: {(n / rates[1] - loop) / loop:+.1%}; "
          f"CPU time of all processes: {(cpus[1] - loop_cpu) / loop_cpu:+.1%} (target < 10%)")
    print(f"of which building the rows in this process: wall {(rows - loop) / loop:+.1%}, CPU "
          f"{(rows_cpu - loop_cpu) / loop_cpu:+.1%}; Dask against those rows: wall "
          f"{(n / rates[1] - rows) / rows:+.1%}, CPU {(cpus[1] - rows_cpu) / rows_cpu:+.1%}")


if __name__ == "__main__":
    main()
