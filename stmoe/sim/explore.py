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
`read_results(out)` concatenates the parts. One run writes into a folder at a time (a lock,
`OutputLock`).

Each row's speedup and energy efficiency are against on-demand on the same tokens, machine and
batch: each worker simulates on-demand once per trace and machine setting (batches keep a machine's
points together, on-demand first) and keeps it, as it keeps each predictor setting's
predictions, for the batches that follow.

Ctrl-C: the workers of the local cluster ignore SIGINT (forked from a fork server that ignores
it, `_starting`, and a Dask preload, `dask_setup`); the client closes the cluster quietly and
raises `ExploreInterrupted`, whose message says how many points are finished and how to
resume, also when the Ctrl-C came while the cluster was starting.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from stmoe.errors import ConfigError, StmoeError
from stmoe.predictors import predict
from stmoe.sim.comparison import dims_for
from stmoe.sim.explore_spec import (
    HARDWARE_PARAMETERS,
    MACHINE_SETTINGS,
    MAX_POINTS,
    Spec,
    read_spec,
    run_digest,
    run_point,
)
from stmoe.sim.hardware import buffer_area_mm2
from stmoe.sim.systems import get_system, predictions_note
from stmoe.sim.timing import decode_tokens
from stmoe.version import __version__

MAX_BATCH = 64          # points per task: at tens of ms a point, a few seconds of work
BATCHES_PER_WORKER = 4  # so that a slow batch does not leave the other workers idle at the end
PREDICTIONS_KEPT_BYTES = 256 << 20   # a worker's predictions kept for later batches, at most
ON_DEMAND_KEPT = 1 << 16             # on-demand results kept per worker (a few hundred bytes each)
LOCK_NAME = ".explore.lock"          # a dot: Parquet readers skip it when they read the folder
INSTALL_HINT = "pip install 'stmoe[explore]'"
# Dask settings of the local cluster (its scheduler in this process, its workers). Dask's
# housekeeping wakes each process tens of times a second (the event-loop tick every 20 ms, the
# worker's stack profiler every 10 ms, the memory monitor every 100 ms, the system monitor
# every 500 ms); each wake-up takes the GIL from the timing kernel. Measured with one worker on
# a 400-point grid (on-demand and lru-cache, ~24 ms of CPU a point) on a machine other jobs kept
# at a load of 8 on 2 cores: CPU outside the simulations fell from 2.1-2.3 to 0.3-0.6 ms a point
# in the worker and from 3.8 to 0.6-1.1 ms in this process. The cost: the dashboard's profile
# page stays empty and its system page updates every 2 s.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    # workers forked from a fork server that ignores SIGINT (`_starting`)
    "distributed.worker.multiprocessing-method": "forkserver",
    # A simulation allocates and frees numpy temporaries of hundreds of KiB to a few MiB. In a
    # worker, whose tasks run on a thread of their own (glibc gives it its own heap) and where
    # Dask sets MALLOC_TRIM_THRESHOLD_=64 KiB (which also fixes glibc's mmap threshold at 128
    # KiB), each free returned them to the kernel and the next point faulted them in again:
    # 430-880 page faults and 1.0-1.35 ms of system CPU a point (+5-6%), against none in one
    # process (measured on benchmarks/bench_explore.py's grids). Up to 32 MiB (glibc's own
    # ceiling for its adaptive mmap threshold) they now come from the heap, and a trim leaves
    # 64 MiB free at its top: 0-3 faults a point. Dask's trimming still returns what is beyond.
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 32 << 20,
    "distributed.nanny.pre-spawn-environ.MALLOC_TOP_PAD_": 64 << 20,
}
REFERENCE = "on-demand"


def max_workers() -> int:
    """More worker processes than this only queue for the cores (and time out heartbeats)."""
    return 4 * (os.cpu_count() or 1)


def _require(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ConfigError(f"stmoe explore needs {module.split('.')[0]}: {INSTALL_HINT}") from None


def _flat(fields: dict, prefix: str = "") -> dict:
    """Result fields as flat columns: a dict-valued field (a breakdown, an interval) gives one
    column per entry, `<field>_<entry>`; numpy scalars become Python ones."""
    out = {}
    for k, v in fields.items():
        name = f"{prefix}{str(k).replace(' ', '_')}"
        if isinstance(v, dict):
            out |= _flat(v, f"{name}_")
        else:
            out[name] = v.item() if hasattr(v, "item") else list(v) if isinstance(v, tuple) else v
    return out


def point_row(point: dict, result, reference, dims, notes) -> dict:
    """One point's row: its inputs, the model sizes used, every field of `SimulationResult`
    (dict fields flattened; the energy breakdown as energy_<part>_j, per token), the buffer's
    SRAM area, and the speedups against `reference` (on-demand on the same tokens and machine)."""
    result.relative_to(reference)
    row = dict(point)
    row |= {"stmoe_version": __version__, "buffer_area_mm2": buffer_area_mm2(point["buffer_bytes"]),
            "expert_bytes": float(dims.expert_bytes.mean()), "expert_macs": dims.expert_macs,
            "dense_bytes": float(dims.dense_bytes.mean()), "dense_macs": dims.dense_macs,
            "model_dims": dims.source}
    row |= _flat({k: v for k, v in result.row().items() if k not in row})
    row["notes"] = "; ".join(dict.fromkeys([*notes, *result.notes]))
    return _flat(row)


# A worker's memory of earlier batches (module state: one per worker process). Keys start with
# the run digest (trace content, and profile), so a trace never reads another's entries.
_PREDICTIONS: OrderedDict = OrderedDict()   # (digest, predictor, budget, lookahead) -> [T, L, m]
_ON_DEMAND: OrderedDict = OrderedDict()     # (digest, preset, machine settings) -> SimulationResult


def _keep(cache: OrderedDict, key, value, full) -> None:
    """Add an entry, then drop the oldest ones while `full(cache)` (the newest always stays)."""
    cache[key] = value
    while len(cache) > 1 and full(cache):
        cache.popitem(last=False)


def _predictions(decode, point: dict, profile, digest: str):
    key = (digest, point["predictor"], point["budget"], point["lookahead"])
    if key not in _PREDICTIONS:
        pred = predict(decode, point["predictor"], budget=point["budget"], lookahead=point["lookahead"],
                       profile=profile)
        _keep(_PREDICTIONS, key, pred, lambda c: sum(a.nbytes for a in c.values()) > PREDICTIONS_KEPT_BYTES)
    return _PREDICTIONS[key]


def _on_demand(decode, point: dict, dims, digest: str, result=None):
    """On-demand on the point's tokens and machine: `result` when the point is on-demand itself."""
    key = (digest, point["preset"], *(point[k] for k in MACHINE_SETTINGS))
    if key not in _ON_DEMAND:
        if result is None:
            ref = dict(point, system=REFERENCE, lookahead=None, budget=None, predictor=None)
            result = run_point(decode, ref, dims, phase=None)
        _keep(_ON_DEMAND, key, result, lambda c: len(c) > ON_DEMAND_KEPT)
    return _ON_DEMAND[key]


def run_batch(trace, points: list[dict], profile=None, digest: str | None = None,
              model: str | None = None) -> list[dict]:
    """The rows of a batch of points on one trace (`profile`: st-moe's, or None; `model`: the
    registry model whose sizes time it, when the spec gives one). `digest` names the trace,
    profile and model in the worker's kept predictions and on-demand results."""
    digest = digest or run_digest(trace, profile, model)
    dims, dims_notes = dims_for(trace, model=model)
    # the simulated tokens, selected once: simulate would select them again for every point
    decode = decode_tokens(trace, "decode")[0]
    rows = []
    for p in points:
        pred, notes = None, list(dims_notes)
        if get_system(p["system"]).tunable_predictor:
            pred = _predictions(decode, p, profile, digest)
            notes.append(predictions_note(p["predictor"], p["budget"], p["lookahead"], profile))
        r = run_point(decode, p, dims, pred, profile, phase=None)
        reference = _on_demand(decode, p, dims, digest, r if p["system"] == REFERENCE else None)
        rows.append(point_row(p, r, reference, dims, notes))
    return rows


def batches(points: list[dict], size: int) -> list[list[dict]]:
    """Points in batches of at most `size`, one trace per batch; a machine setting's points
    together, on-demand first (it is the others' reference), then by predictor setting."""
    def order(p):
        machine = tuple(-1.0 if p[k] is None else p[k] for k in HARDWARE_PARAMETERS) + (str(p["dataflow"]), p["batch"])
        return (p["trace"], p["preset"], machine, p["system"] != REFERENCE, str(p["predictor"]),
                p["budget"] or 0, p["lookahead"] or 0)
    out = []
    for p in sorted(points, key=order):
        if not out or len(out[-1]) >= size or out[-1][0]["trace"] != p["trace"]:
            out.append([])
        out[-1].append(p)
    return out


def part_name(rows: list[dict]) -> str:
    keys = "\n".join(sorted(r["key"] for r in rows))
    return f"part-{hashlib.sha256(keys.encode()).hexdigest()[:24]}.parquet"


# settings that some points lack (a predictor's knobs, a profile, a preset's optional constants),
# with their Arrow types
NULLABLE_COLUMNS = {"lookahead": "int64", "budget": "int64", "predictor": "string", "profile": "string",
                    "dataflow": "string",
                    **{k: "float64" for k in HARDWARE_PARAMETERS}}


def _scatter(client, named: dict) -> dict:
    """Each value sent once to every worker, under a fresh key: scattering a dict would use its
    names as the keys, and a second run on the same client then raced the release of the first
    run's data of the same name (its tasks came back cancelled)."""
    if not named:
        return {}
    futures = client.scatter(list(named.values()), broadcast=True, hash=False)
    return dict(zip(named, futures))


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


class OutputLock:
    """One run at a time writes into a results folder: an exclusive `flock` on
    `out/.explore.lock`, which holds the holder's pid for the message. The kernel releases the
    lock however its holder ends (killed included), so a lock left by a dead run is stale by
    construction and the next run takes it. POSIX only (fcntl)."""

    def __init__(self, out: Path):
        import fcntl

        self.path = out / LOCK_NAME
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise ConfigError(f"{out}: another stmoe explore (pid {holder}) is writing here; wait for "
                                  "it to end, or give another output folder") from None
            try:   # its last holder may have removed the file between our open and our lock
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        self.path.unlink(missing_ok=True)   # before closing: no one can lock a file then removed
        os.close(self.fd)


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


class ExploreInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what is finished and how to resume."""


class ExploreCancelled(StmoeError):
    """The cluster cancelled a batch (restarted by someone, or it lost the scattered traces with
    every worker that held them); the message says what is finished and how to resume."""


class TerminalProgress:
    """Points done, rate and time left: one line redrawn on a terminal at most twice a second;
    a new line every 10 s into a file or pipe, which cannot redraw."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.open = False

    def finish(self) -> None:
        """End a line left open on a terminal, so that what follows starts on its own line."""
        if self.tty and self.open:
            self.stream.write("\n")
            self.open = False

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
        self.open = not end
        self.stream.flush()


def dask_setup(worker) -> None:
    """Dask preload of the local cluster's workers: ignore SIGINT. Ctrl-C reaches every
    process of the terminal's group; the client alone answers it (closing the cluster), so no
    worker prints a traceback of its own. The worker's task log stays quiet below errors: a
    batch cancelled by that close is expected, and a batch that fails reaches the client as
    its exception, which the run reports. The scheduler lives in the client's process, so a
    heartbeat that cannot reach it is a worker being closed with it (after a Ctrl-C, the
    scheduler may close first): not said."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
    logging.getLogger("distributed.worker").addFilter(
        lambda record: not record.getMessage().startswith("Failed to communicate with scheduler during heartbeat"))


def check_workers(workers) -> None:
    top = max_workers()
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= top):
        raise ConfigError(f"workers: a whole number from 1 to {top} (4 per core), got {workers!r}")


def _remote(scheduler: str):
    """A client of the scheduler at `scheduler`."""
    try:
        return _require("distributed").Client(scheduler, timeout="5s")
    except (OSError, TimeoutError, ValueError) as exc:   # ValueError: a malformed address
        raise ConfigError(f"scheduler {scheduler!r} is unreachable ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})") from None


def _local_cluster(workers: int | None):
    with _require("dask").config.set(LOCAL_CLUSTER_CONFIG):
        return _require("distributed").LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                                    processes=True, dashboard_address=":0", preload=[__name__])


@contextlib.contextmanager
def _environ(values: dict):
    """os.environ with `values` while the block runs, as it was after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _starting():
    """While the local cluster starts, a Ctrl-C is noted and raised as KeyboardInterrupt once
    the cluster is assigned (so that the caller closes it), and the workers never see it. They
    fork from multiprocessing's fork server (`LOCAL_CLUSTER_CONFIG`), which is started here
    with SIGINT ignored: the server keeps the ignored signal (Python installs its handler only
    over the default) and gives it to every worker it forks, so that no worker breaks
    mid-import into a traceback. The server starts with the workers' environment
    (`distributed.nanny.pre-spawn-environ`), since a forked worker keeps the allocator its
    server set up from it: Dask's nanny sets those variables only when it spawns a worker, which
    is too late for a server already running. Only that start, milliseconds, ignores a Ctrl-C: ignoring it
    for the whole start-up would lose it, since Linux gives a process's signal to any thread
    that does not block it (numpy's BLAS threads, Dask's event loop), and an ignored one is
    dropped there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import multiprocessing.forkserver

    # before the Ctrl-C is ignored, since imports take seconds: the server's preloaded modules
    # (Dask imports them here to list them), and distributed before the settings, whose end
    # would drop the defaults it adds
    mp_context = _require("distributed.utils").get_mp_context
    with _require("dask").config.set(LOCAL_CLUSTER_CONFIG):
        mp_context()
        environ = {k: str(v) for k, v in _require("dask").config.get("distributed.nanny.pre-spawn-environ").items()}
    pressed = []
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _environ(environ):
            multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)   # signal() runs a pending handler first
    if pressed:
        raise KeyboardInterrupt


def dashboard_link(client) -> str | None:
    """The dashboard's address, where the scheduler serves one (it needs bokeh)."""
    services = client.scheduler_info().get("services", {})
    return client.dashboard_link if "dashboard" in services else None


class _Quiet:
    """While we close a cluster we started: Dask's loggers in this process, and those of
    tornado, its event loop, are silent (a worker that a loaded machine keeps from stopping
    within 4 s is killed, with a warning that tells the user nothing; a worker stopped
    mid-batch after Ctrl-C is expected, and so is the result it was sending failing), and
    after a Ctrl-C, a second one is ignored, so that it cannot break the shutdown into
    tracebacks."""

    def __init__(self, interrupted: bool):
        self.sigint = interrupted and threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self.sigint:
            self.handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "tornado.application")]
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(logging.CRITICAL + 1)

    def __exit__(self, *exc):
        for logger, level in zip(self.loggers, self.levels):
            logger.setLevel(level)
        if self.sigint:
            signal.signal(signal.SIGINT, self.handler)


def explore(spec, out=None, *, scheduler: str | None = None, workers: int | None = None,
            batch_size: int | None = None, client=None, progress=None, log=None,
            max_points: int = MAX_POINTS) -> ExploreRun:
    """Run every point of `spec` (a path, read with `max_points`, or a `Spec`) not already in
    `out` (default: beside the spec, see `default_out`). `client`: an existing
    `distributed.Client` (then neither `scheduler` nor `workers`). progress(done, total,
    seconds): called as batches finish (default: a line on stderr). log(text): where the
    dashboard link goes (default print). Ctrl-C raises `ExploreInterrupted`."""
    spec = spec if isinstance(spec, Spec) else read_spec(spec, max_points=max_points)
    out = Path(out) if out is not None else default_out(spec.path)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size: a whole number >= 1, got {batch_size!r}")
    if client is not None and (scheduler is not None or workers is not None):
        raise ConfigError("explore: give a client, or a scheduler / workers, not both")
    if scheduler is not None and workers is not None:
        raise ConfigError(f"workers={workers!r} sizes a local cluster; the scheduler {scheduler!r} has its own workers")
    check_workers(workers)
    _require("pyarrow")
    log = log or print
    progress = progress or TerminalProgress()
    run = ExploreRun(out, len(spec.points), notes=list(spec.notes))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a folder; the results go in a folder of Parquet parts (give another --out)")
    if not {p["key"] for p in spec.points} - finished_keys(out):
        run.skipped = run.points
        run.notes.append(f"{run.skipped} of {run.points} points already in {out}: skipped")
        return run
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(out)
    own, cluster, futures, interrupted = client is None, None, [], False
    try:
        if own and scheduler is not None:
            client = _remote(scheduler)
        elif own:
            with _starting():
                cluster = _local_cluster(workers)
            client = _require("distributed").Client(cluster)
        done_keys = finished_keys(out)   # again, under the lock: an earlier run may have added some
        todo = [p for p in spec.points if p["key"] not in done_keys]
        run.skipped = len(spec.points) - len(todo)
        if run.skipped:
            run.notes.append(f"{run.skipped} of {run.points} points already in {out}: skipped")
        run.workers = len(client.scheduler_info()["workers"])
        run.dashboard = dashboard_link(client)
        if run.dashboard:
            log(f"dashboard: {run.dashboard}")
        size = batch_size or max(1, min(MAX_BATCH, math.ceil(len(todo) / (max(run.workers, 1) * BATCHES_PER_WORKER))))
        used = {p["trace"] for p in todo}
        traces = _scatter(client, {n: t for n, t in spec.traces.items() if n in used})
        profiles = _scatter(client, {n: p for n, p in spec.profiles.items() if n in used and p is not None})
        futures = [client.submit(run_batch, traces[b[0]["trace"]], b, profiles.get(b[0]["trace"]),
                                 spec.digests[b[0]["trace"]], spec.models.get(b[0]["trace"]), pure=False)
                   for b in batches(todo, size)]
        start = time.monotonic()
        for future, rows in _require("distributed").as_completed(futures, with_results=True):
            if not isinstance(rows, list):   # a cancelled batch comes back as its CancelledError
                why = getattr(rows, "reason", None) or type(rows).__name__
                raise ExploreCancelled(
                    f"{out}: the cluster cancelled a batch (reason: {why}; a restart, or its workers lost "
                    f"with the traces scattered to them); {run.skipped + run.computed} of "
                    f"{run.points} points are finished there; run again with the same spec and output "
                    "folder to resume (finished points are skipped)")
            write_part(out, rows)
            run.computed += len(rows)
            run.computed_keys += [r["key"] for r in rows]
            run.seconds = time.monotonic() - start
            progress(run.computed, len(todo), run.seconds)
    except KeyboardInterrupt:
        interrupted = True
        if isinstance(progress, TerminalProgress):
            progress.finish()
        raise ExploreInterrupted(f"{run.skipped + run.computed} of {run.points} points finished in {out}; "
                                 "run again with the same spec and output folder to resume (finished "
                                 "points are skipped)") from None
    finally:
        with _Quiet(interrupted) if own or interrupted else contextlib.nullcontext():
            if futures and not own:   # a cluster we do not own goes on serving others
                client.cancel(futures)
            if own and client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        lock.release()
        if created and not _parts(out):
            with contextlib.suppress(OSError):
                out.rmdir()
    return run
