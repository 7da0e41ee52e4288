"""`stmoe explore SPEC [--out DIR] [--scheduler ADDRESS | --workers N] [--batch-size N]
[--max-points N] [--tolerance FRACTION]`: every point of a design-space spec on Dask, results in
Parquet (resumable), then the Pareto front over latency, energy and buffer area, objectives within
the relative tolerance counting as equal (`stmoe.sim.pareto`). Ctrl-C exits 130 with one line:
how many points are finished and how to resume."""

from __future__ import annotations

import errno
import sys
import threading
from pathlib import Path

from stmoe.cli.output import format_table
from stmoe.errors import ConfigError, StmoeError
from stmoe.sim.comparison import marked
from stmoe.sim.explore import check_workers, default_out, explore, max_workers, read_results
from stmoe.sim.explore_spec import MAX_POINTS, read_spec
from stmoe.sim.pareto import OBJECTIVES, TOLERANCE, pareto_front, tolerance_note


def register(sub) -> None:
    p = sub.add_parser("explore", help="a design-space grid on Dask, resumable, with its Pareto front")
    p.add_argument("spec", metavar="SPEC", help="a TOML spec (traces, presets, systems, parameters, samples)")
    p.add_argument("--out", metavar="DIR", help="results folder (default: beside SPEC, named like it)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786 "
                   "(default: a local cluster, one worker process per core)")
    p.add_argument("--workers", type=int, metavar="N",
                   help=f"worker processes of the local cluster, 1 to {max_workers()} (4 per core)")
    p.add_argument("--batch-size", type=int, metavar="N", help="points per task (default: sized to the grid)")
    p.add_argument("--max-points", type=int, default=MAX_POINTS, metavar="N",
                   help=f"refuse a spec of more points than this, before building it (default {MAX_POINTS:,})")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, metavar="FRACTION",
                   help="objectives within this relative difference count as equal on the front; "
                   f"0 is the strict front (default {TOLERANCE:g}, i.e. {TOLERANCE * 100:.1f}%%)")
    p.set_defaults(run=run)


# Settings shown in human units in the front's table: field -> (column, divisor)
_UNITS = {"buffer_bytes": ("buffer MiB", 2 ** 20), "link_bandwidth": ("link GB/s", 1e9),
          "local_bandwidth": ("local GB/s", 1e9), "dense_bandwidth": ("dense GB/s", 1e9),
          "clock_hz": ("clock GHz", 1e9), "link_latency": ("link latency ns", 1e-9)}


def _setting(name: str, value):
    column, divisor = _UNITS.get(name, (name, None))
    return column, (value / divisor if divisor is not None and value is not None else value)


# Errors of a write that the writer (pyarrow) reports with its errno but no file name
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def run(args) -> int:
    check_workers(args.workers)
    # every argument is checked before anything is printed
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size: a whole number >= 1, got {args.batch_size}")
    if not 0 <= args.tolerance < 1:   # also refuses nan
        raise ConfigError(f"--tolerance: a relative difference, 0 <= FRACTION < 1, got {args.tolerance}")
    if args.out is not None and not args.out.strip():
        raise ConfigError(f"--out: an empty folder name ({args.out!r})")
    if args.out is not None:   # the folder, or the first of its parents that exists, must be a folder
        there = next((p for p in (Path(args.out), *Path(args.out).parents) if p.exists()), Path("."))
        if not there.is_dir():
            raise ConfigError(f"--out: {there} is not a folder; the results go in a folder of Parquet parts")
    if args.scheduler is not None and args.workers is not None:
        raise ConfigError(f"--workers {args.workers} sizes a local cluster; the scheduler {args.scheduler!r} has its own workers")
    # trying the parameters' extremes is seconds, but a fresh install first compiles the
    # simulator's kernels (about 40 s on two cores): say so rather than seem to hang
    slow = threading.Timer(2.0, lambda: print(
        f"{args.spec}: checking each parameter's extremes on a few tokens (on a fresh install this "
        "also compiles the simulator, about a minute)", file=sys.stderr, flush=True))
    slow.daemon = True
    slow.start()
    try:
        spec = read_spec(args.spec, max_points=args.max_points)
    except RecursionError:   # tomllib recurses once per level of nesting
        raise ConfigError(f"{args.spec}: nested too deeply to read (deeper than Python's recursion "
                          "limit; a spec is a few flat tables)") from None
    finally:
        slow.cancel()
    out = args.out or default_out(args.spec)
    print(f"{args.spec}: {len(spec.points)} points on {', '.join(spec.traces)}; results in {out}", flush=True)
    try:
        result = explore(spec, out, scheduler=args.scheduler, workers=args.workers, batch_size=args.batch_size)
    except OSError as exc:
        if exc.filename is not None or exc.errno not in _WRITE_ERRNOS:
            raise
        raise StmoeError(f"{out}: cannot write the results ({exc.strerror or exc}); the points "
                         "already written are kept, and a rerun resumes from them") from None
    for note in result.notes:
        print(f"note: {note}")
    if result.computed:
        print(f"computed {result.computed} points in {result.seconds:.1f} s on {result.workers} "
              f"worker{'s' if result.workers != 1 else ''} "
              f"({result.computed / max(result.seconds, 1e-9):.1f} points/s)")
    keys = {p["key"] for p in spec.points}
    rows = [r for r in read_results(out) if r["key"] in keys]
    settings = [k for k in spec.points[0] if k not in ("key", "trace", "preset", "system", "batch")] if spec.points else []
    # a front compares designs on one workload: one per trace, preset and batch (the sequences
    # decoded together are the workload, not a design choice of the machine)
    for trace, preset, batch in sorted({(r["trace"], r["preset"], r["batch"]) for r in rows}):
        group = [r for r in rows if (r["trace"], r["preset"], r["batch"]) == (trace, preset, batch)]
        front = pareto_front(group, OBJECTIVES, args.tolerance)
        # the settings that tell this table's designs apart (a preset's constants do not)
        varied = [k for k in settings if len({repr(r.get(k)) for r in group}) > 1
                  and any(r.get(k) is not None for r in front)]
        named = batch != 1 or len({r["batch"] for r in rows}) > 1
        print(f"\n{trace} on {preset}{f', batch {batch}' if named else ''}: Pareto front over "
              f"latency, energy and buffer area, {len(front)} of {len(group)} points "
              f"({tolerance_note(args.tolerance)})")
        print(format_table([{"system": marked(r), **dict(_setting(k, r.get(k)) for k in varied),
                             "µs / token": r["latency_per_token_s"] * 1e6,
                             "µJ / token": r["energy_per_token_j"] * 1e6, "area mm²": r["buffer_area_mm2"]}
                            for r in front]))
        if any(r["changes_routing"] for r in front):
            print("* changes the model's routing (replayed here on the trace's routing): not the same model "
                  "output as the others")
    return 0
