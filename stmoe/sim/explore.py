"""Design-space exploration on Dask: every point of a spec (`explore_spec`) simulated once,
results in Parquet, resumable.

`explore(spec, out)` runs the points whose keys are not already in `out` on a Dask cluster (a
`distributed.LocalCluster` of one single-threaded worker process per core by default: the
timing kernel holds the GIL, so threads would not run in parallel; or the scheduler at
`scheduler`). Each trace is scattered to every worker once; points go in batches, grouped by
trace and predictor settings so that a batch computes each predictor's output once.

The client writes each finished batch as one Parquet part file, `part-<hash of its keys>.parquet`,
through a temporary file and a rename, so a part is on disk whole or not at all. A rerun reads
the keys already written and skips them; an interrupted run loses only the batches in flight.
A worker that dies mid-batch wrote nothing (the client writes), and Dask reruns its batch on
another worker; the client receives each batch's result once, so nothing is written twice.
`read_results(out)` concatenates the parts.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.sim.comparison import dims_for
from stmoe.sim.explore_spec import HARDWARE_PARAMETERS, Spec, read_spec
from stmoe.sim.hardware import buffer_area_mm2, preset
from stmoe.sim.systems import get_system, predictions_note
from stmoe.sim.timing import decode_tokens, simulate
from stmoe.version import __version__

MAX_BATCH = 64          # points per task: at tens of ms a point, a few seconds of work
BATCHES_PER_WORKER = 4  # so that a slow batch does not leave the other workers idle at the end
INSTALL_HINT = "pip install 'stmoe[explore]'"


def _require(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ConfigError(f"stmoe explore needs {module.split('.')[0]}: {INSTALL_HINT}") from None


def simulate_point(trace, point: dict, dims, dims_notes, predictions=None) -> dict:
    """One point's row: its inputs, the model sizes used, every field of `SimulationResult.row()`,
    the energy breakdown flattened (energy_<part>_j, per token) and the buffer's SRAM area.
    The speedup columns stay empty: a point is one run, with no on-demand run beside it."""
    hw = preset(point["preset"], **{k: point[k] for k in HARDWARE_PARAMETERS if point[k] is not None})
    knobs = {}
    if get_system(point["system"]).tunable_predictor:
        knobs = dict(predictor=point["predictor"], budget=point["budget"], lookahead=point["lookahead"])
    elif point["lookahead"] is not None:
        knobs = dict(lookahead=point["lookahead"])
    r = simulate(trace, hw, point["system"], dims=dims, predictions=predictions, **knobs)
    notes = list(dims_notes) + r.notes
    if predictions is not None:
        notes.append(predictions_note(point["predictor"], point["budget"], point["lookahead"], None))
    row = dict(point)
    row |= {"stmoe_version": __version__, "buffer_area_mm2": buffer_area_mm2(hw.buffer_bytes),
            "expert_bytes": float(dims.expert_bytes.mean()), "expert_macs": dims.expert_macs,
            "dense_bytes": float(dims.dense_bytes.mean()), "dense_macs": dims.dense_macs,
            "model_dims": dims.source}
    row |= r.row()
    row["notes"] = "; ".join(dict.fromkeys(notes))
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def run_batch(trace, points: list[dict]) -> list[dict]:
    """The rows of a batch of points on one trace; each predictor setting is predicted once."""
    dims, dims_notes = dims_for(trace)
    decode = None
    cache = {}
    rows = []
    for p in points:
        pred = None
        if get_system(p["system"]).tunable_predictor:
            knob = (p["predictor"], p["budget"], p["lookahead"])
            if knob not in cache:
                if decode is None:
                    decode = decode_tokens(trace, "decode")[0]
                cache[knob] = predict(decode, p["predictor"], budget=p["budget"], lookahead=p["lookahead"])
            pred = cache[knob]
        rows.append(simulate_point(trace, p, dims, dims_notes, pred))
    return rows


def batches(points: list[dict], size: int) -> list[list[dict]]:
    """Points in batches of at most `size`, one trace per batch, same-predictor points together."""
    def order(p):
        return (p["trace"], str(p["predictor"]), p["budget"] or 0, p["lookahead"] or 0)
    out = []
    for p in sorted(points, key=order):
        if not out or len(out[-1]) >= size or out[-1][0]["trace"] != p["trace"]:
            out.append([])
        out[-1].append(p)
    return out


def part_name(rows: list[dict]) -> str:
    keys = "\n".join(sorted(r["key"] for r in rows))
    return f"part-{hashlib.sha256(keys.encode()).hexdigest()[:24]}.parquet"


# settings that only predictor-driven systems have (None for the others), with their Arrow types
NULLABLE_COLUMNS = {"lookahead": "int64", "budget": "int64", "predictor": "string"}


def write_part(out: Path, rows: list[dict]) -> Path:
    """Write rows as one Parquet part, atomically: a temporary file renamed into place."""
    pa, pq = _require("pyarrow"), _require("pyarrow.parquet")
    final = out / part_name(rows)
    tmp = out / f".{final.name}.{os.getpid()}.tmp"
    table = pa.Table.from_pylist(rows)
    # a batch of systems without a predictor holds only nulls in the predictor's columns; give
    # them their real types so that every part has one schema and any Parquet reader joins them
    for name, kind in NULLABLE_COLUMNS.items():
        i = table.schema.get_field_index(name)
        if i >= 0 and pa.types.is_null(table.schema.field(i).type):
            table = table.set_column(i, name, table.column(i).cast(getattr(pa, kind)()))
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def _parts(out) -> list[Path]:
    return sorted(Path(out).glob("part-*.parquet"))


def finished_keys(out) -> set[str]:
    pq = _require("pyarrow.parquet")
    keys = set()
    for p in _parts(out):
        keys.update(pq.read_table(p, columns=["key"]).column("key").to_pylist())
    return keys


def read_results(out) -> list[dict]:
    """Every row written to `out`, as dicts (parts in name order, rows in batch order)."""
    pa, pq = _require("pyarrow"), _require("pyarrow.parquet")
    parts = _parts(out)
    if not parts:
        raise ConfigError(f"{out}: no explore results (part-*.parquet) here")
    return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default").to_pylist()


def default_out(spec_path) -> Path:
    """A spec's results go beside it, in a folder of its name: data/explore/x.toml -> data/explore/x/."""
    p = Path(spec_path)
    return p.with_suffix("") if p.suffix == ".toml" else p.with_name(p.name + "-results")


@dataclass
class ExploreRun:
    """What one call of `explore` did."""

    out: Path
    points: int
    skipped: int = 0          # already in `out`
    computed: int = 0
    seconds: float = 0.0
    workers: int = 0
    dashboard: str | None = None
    computed_keys: list = field(default_factory=list, repr=False)
    notes: list = field(default_factory=list)


class TerminalProgress:
    """Points done, rate and time left: one line redrawn on a terminal at most twice a second;
    a new line every 10 s into a file or pipe, which cannot redraw."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        now = time.monotonic()
        if done < total and now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate else math.inf
        eta = f"{left:.0f} s left" if math.isfinite(left) else "time left unknown"
        start, end = ("\r", "\n" if done == total else "") if self.tty else ("", "\n")
        self.stream.write(f"{start}{done}/{total} points, {rate:.1f} points/s, {eta}   {end}")
        self.stream.flush()


def _connect(scheduler: str | None, workers: int | None):
    """(client, cluster or None): the scheduler at `scheduler`, or a local cluster."""
    distributed = _require("distributed")
    if scheduler is not None:
        try:
            return distributed.Client(scheduler, timeout="5s"), None
        except (OSError, TimeoutError, ValueError) as exc:   # ValueError: a malformed address
            raise ConfigError(f"scheduler {scheduler!r} is unreachable ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})") from None
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers: a whole number >= 1, got {workers!r}")
    cluster = distributed.LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                       processes=True, dashboard_address=":0")
    return distributed.Client(cluster), cluster


def dashboard_link(client) -> str | None:
    """The dashboard's address, where the scheduler serves one (it needs bokeh)."""
    services = client.scheduler_info().get("services", {})
    return client.dashboard_link if "dashboard" in services else None


def explore(spec, out=None, *, scheduler: str | None = None, workers: int | None = None,
            batch_size: int | None = None, client=None, progress=None, log=None) -> ExploreRun:
    """Run every point of `spec` (a path or a `Spec`) not already in `out` (default: beside
    the spec, see `default_out`). `client`: an existing `distributed.Client` (then neither
    `scheduler` nor `workers`). progress(done, total, seconds): called as batches finish
    (default: a line on stderr). log(text): where the dashboard link and notes go (default print)."""
    spec = spec if isinstance(spec, Spec) else read_spec(spec)
    out = Path(out) if out is not None else default_out(spec.path)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size: a whole number >= 1, got {batch_size!r}")
    if client is not None and (scheduler is not None or workers is not None):
        raise ConfigError("explore: give a client, or a scheduler / workers, not both")
    if scheduler is not None and workers is not None:
        raise ConfigError(f"workers={workers!r} sizes a local cluster; the scheduler {scheduler!r} has its own workers")
    _require("pyarrow")
    log = log or print
    progress = progress or TerminalProgress()
    done_keys = finished_keys(out)
    todo = [p for p in spec.points if p["key"] not in done_keys]
    run = ExploreRun(out, len(spec.points), skipped=len(spec.points) - len(todo), notes=list(spec.notes))
    if run.skipped:
        run.notes.append(f"{run.skipped} of {run.points} points already in {out}: skipped")
    if not todo:
        return run
    own = client is None
    cluster = None
    if own:
        client, cluster = _connect(scheduler, workers)
    distributed = _require("distributed")
    futures = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        run.workers = len(client.scheduler_info()["workers"])
        run.dashboard = dashboard_link(client)
        if run.dashboard:
            log(f"dashboard: {run.dashboard}")
        size = batch_size or max(1, min(MAX_BATCH, math.ceil(len(todo) / (max(run.workers, 1) * BATCHES_PER_WORKER))))
        used = {p["trace"] for p in todo}
        traces = client.scatter({n: t for n, t in spec.traces.items() if n in used}, broadcast=True, hash=False)
        futures = [client.submit(run_batch, traces[b[0]["trace"]], b, pure=False) for b in batches(todo, size)]
        start = time.monotonic()
        for _, rows in distributed.as_completed(futures, with_results=True):
            write_part(out, rows)
            run.computed += len(rows)
            run.computed_keys += [r["key"] for r in rows]
            run.seconds = time.monotonic() - start
            progress(run.computed, len(todo), run.seconds)
    finally:
        if futures:
            client.cancel(futures)
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return run
