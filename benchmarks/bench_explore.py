"""`stmoe explore` on Dask: a 2,000-point grid on the bundled tiny-moe-code trace with 1 and with
2 local worker processes, in points per second; the scaling efficiency (2-worker rate over
twice the 1-worker rate; target >= 0.8) and the per-point overhead against a plain loop calling
`simulate` on the same points in this process (target < 10%), split into what building explore's
rows costs (the same `run_batch` the workers call, run here) and what Dask adds on top of it.

    python benchmarks/bench_explore.py [--points-per-system N]

Each cluster is started and warmed (numba's cached kernels loaded) before its runs are timed;
the start-up is printed apart. Each figure is the best of `--repeat` runs (the least disturbed
by other jobs, as in timing_util.best_of). Wall-clock overhead on a busy machine mostly measures
the other jobs, so the overhead is also given in CPU seconds of every process involved (the
workers, the scheduler and client, against the loop's process), which they disturb less. The timed run includes scattering the trace, batching, moving the
rows back and writing the Parquet parts. On a machine whose cores other jobs share, the 2-worker
figure measures what the cores gave, not only Dask.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dask
from distributed import Client, LocalCluster

from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import dims_for
from stmoe.sim.explore import LOCAL_CLUSTER_CONFIG, explore, read_results, run_batch
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


def timed(fn, cpu, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of fn(), each the least of `repeat` runs; cpu() reads the CPU seconds
    of every process involved."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return min(walls), min(cpus)


def plain_loop(spec, repeat: int) -> tuple[float, float]:
    """The best plain loop: sizes and the simulated tokens found once, as the workers do, so the
    overhead measured is Dask's and the rows', not work the loop repeats."""
    trace = spec.traces[TRACE]
    dims, _ = dims_for(trace)
    decode = decode_tokens(trace, "decode")[0]
    simulate(decode, "accelerator", "on-demand", dims=dims, phase=None)     # compile / load the kernels

    def loop():
        for p in spec.points:
            hw = preset(p["preset"], **{k: p[k] for k in HARDWARE_PARAMETERS if p[k] is not None})
            simulate(decode, hw, p["system"], dims=dims, phase=None)
    return timed(loop, time.process_time, repeat)


def same_rows_loop(spec, repeat: int) -> tuple[float, float]:
    """The rows explore writes (speedups with their intervals, flattened fields), built in this
    process by the function the workers run: what is left between it and a worker is Dask's
    scheduling, moving rows and writing Parquet."""
    trace = spec.traces[TRACE]
    return timed(lambda: run_batch(trace, spec.points), time.process_time, repeat)


def on_cluster(spec, workers: int, repeat: int) -> tuple[float, float, float]:
    """(start-up seconds, run wall seconds, run CPU seconds of the workers, the scheduler and
    this client) of the spec on a fresh local cluster of `workers`, with the Dask settings
    `stmoe explore` gives its own local cluster."""
    start = time.perf_counter()
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
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
        return (startup, *timed(run_once, cpu, repeat))


def main():
    parser = argparse.ArgumentParser(description="stmoe explore: points/s on 1 and 2 workers")
    parser.add_argument("--buffers", type=int, default=20, help="buffer sizes in the grid (x 100 points)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each configuration; the best counts")
    args = parser.parse_args()
    spec = parse_spec(grid(args.buffers))
    n = len(spec.points)
    print(f"grid: {n} points ({', '.join(SYSTEMS)}) on {TRACE}, {spec.traces[TRACE].num_tokens} tokens")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs share them)")
    loop, loop_cpu = plain_loop(spec, args.repeat)
    print(f"plain loop calling simulate (tokens selected once): {n / loop:7.1f} points/s ({loop / n * 1e3:.1f} ms a point, "
          f"{loop_cpu / n * 1e3:.1f} ms CPU)")
    rows, rows_cpu = same_rows_loop(spec, args.repeat)
    print(f"the same rows built in this process:             {n / rows:7.1f} points/s ({rows / n * 1e3:.1f} ms a point, "
          f"{rows_cpu / n * 1e3:.1f} ms CPU)")
    rates, cpus = {}, {}
    for workers in (1, 2):
        startup, seconds, cpus[workers] = on_cluster(spec, workers, args.repeat)
        rates[workers] = n / seconds
        print(f"explore, {workers} worker{'s' if workers > 1 else ' '}:     {rates[workers]:7.1f} points/s "
              f"({seconds:.1f} s, {cpus[workers] / n * 1e3:.1f} ms CPU a point; cluster start-up {startup:.1f} s, "
              f"not counted)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    efficiency = rates[2] / (2 * rates[1])
    print(f"scaling efficiency (2-worker rate / 2 x 1-worker rate): {efficiency:.2f} (target >= 0.8)")
    print(f"per-point overhead of 1 worker against the plain loop, wall clock: {(n / rates[1] - loop) / loop:+.1%}; "
          f"CPU time of all processes: {(cpus[1] - loop_cpu) / loop_cpu:+.1%} (target < 10%)")
    print(f"of which building the rows (speedups with intervals) in this process: wall "
          f"{(rows - loop) / loop:+.1%}, CPU {(rows_cpu - loop_cpu) / loop_cpu:+.1%}; Dask itself against those rows: "
          f"wall {(n / rates[1] - rows) / rows:+.1%}, CPU {(cpus[1] - rows_cpu) / rows_cpu:+.1%}")

if __name__ == "__main__":
    main()
