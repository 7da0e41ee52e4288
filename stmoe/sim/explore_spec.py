"""What a design-space exploration runs: its TOML spec, validated, and the points it expands to.

A spec names traces, hardware presets and systems, and per parameter a list of values or a
range; the points are every system on every trace and preset crossed with the product of the
parameters' values, plus optional seeded random samples drawn from the same lists and ranges::

    traces = ["tiny-moe-code"]            # names (stmoe datasets) or files, relative to the spec
    model = "qwen3-30b-a3b"               # optional: the sizes of the traces' model (see below)
    presets = ["accelerator"]
    systems = ["on-demand", "lru-cache", "st-moe"]

    [parameters]
    buffer_bytes = [1048576, 4194304]
    link_bandwidth = { start = 32e9, stop = 512e9, num = 5, scale = "log" }
    lookahead = [1, 2]

    [samples]                             # optional
    count = 20
    seed = 0

    [profiles]                            # optional: what st-moe's tables are profiled on
    "tiny-moe-code" = "split"             # or another trace (a name or a file)

Trace files are found relative to the spec's folder only (an absolute path stays absolute); a
name that is no file there is a stmoe dataset name. A trace whose model sizes are unknown (a
model the registry does not know and whose recorder stored no shape) needs `model`: a
`stmoe.sim.models` registry name for every trace, or a table of trace = name (`[model]`), as
`stmoe simulate --model` gives it; the model is part of each point's key.

Range points are rounded: whole numbers for `lookahead`, `budget`, `buffer_bytes` and
`macs_per_cycle`, 12 significant digits for the others (numpy's spacing leaves float noise,
4194304.000000004); a rounding that changes a value by more than that noise, or merges two
points, is said in the notes.

Profiles: without one, st-moe's tables learn online only, from the simulated trace's earlier
sequences, and hot-set, which pins the experts a profile uses most, cannot run. "split" applies `stmoe.splits.split`: st-moe is profiled on the trace's first half
and every system on that trace simulates the second half. A trace given as profile must hold
other tokens of the same model (checked as `stmoe simulate --profile` checks it). The row's
`profile` column says which (None, "split" or the trace's name).

Before any point runs, every value of every parameter is tried on a few tokens of each trace
with each preset and system, so that a value that would fail on a worker (a buffer of 1e300
bytes) is one line here; and a spec of more than `max_points` points (default 10^6) is refused
before its grid is built.

Parameters: any numeric `Hardware` field (an override of the preset), the PE array's
`dataflow` (os, ws or is: every value is tried before the run), `batch` (sequences decoded in
lockstep, `simulate(batch=)`: 1 to the number of sequences simulated; a row's speedups are
against on-demand at the same batch, and the explore command draws one front per batch, the
workload), `lookahead`, `budget` and `predictor`. The PE array's `pe_rows`, `pe_cols` and `macs_per_cycle` are checked together,
every combination the grid holds (rows x cols must equal macs_per_cycle); a point with pe_rows
or pe_cols and no macs_per_cycle of its own has macs_per_cycle = rows x cols (said in the notes). A system that does not use a knob (on-demand has no predictor) gets it as
None, and the points that then coincide are run once; the run says how many collapsed.

Each point has a key: the sha256 of the simulated trace's content (and its profile's), the
point's settings (the machine resolved from its preset) and the package version, so a result is
reused only for the same routing, settings and model code.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from stmoe.errors import ConfigError, StmoeError, one_line
from stmoe.files import read_regular
from stmoe.predictors import PREDICTORS
from stmoe.predictors.base import check_compatible, check_disjoint
from stmoe.readers.catalog import PUBLIC, bundled, load_trace
from stmoe.sim.comparison import dims_for
from stmoe.sim.hardware import DATAFLOWS, SIZE_FLAGS, Hardware, preset
from stmoe.sim.models import MODELS, find_model
from stmoe.sim.systems import get_system, missing_input
from stmoe.sim.timing import decode_tokens, simulate
from stmoe.splits import split
from stmoe.version import __version__

HARDWARE_PARAMETERS = tuple(f.name for f in fields(Hardware) if f.name not in ("name", "notes", "dataflow"))
# what a point's machine and workload are keyed by, beside its preset: the numeric overrides,
# the PE array's dataflow, and the sequences decoded in lockstep
MACHINE_SETTINGS = (*HARDWARE_PARAMETERS, "dataflow", "batch")
PARAMETERS = (*MACHINE_SETTINGS, "lookahead", "budget", "predictor")
CHOICE_PARAMETERS = ("dataflow", "predictor")   # names, not numbers: every value is tried
INTEGER_PARAMETERS = ("lookahead", "budget", "batch")
WHOLE_PARAMETERS = ("buffer_bytes", "macs_per_cycle")   # counts: a range's points are whole numbers
ARRAY_PARAMETERS = ("pe_rows", "pe_cols", "macs_per_cycle")   # valid only together: rows x cols = macs
SIGNIFICANT_DIGITS = 12
SPEC_MAX_BYTES = 1 << 20
MAX_POINTS = 10 ** 6        # a point's dict is ~2 KB before any work: 10^6 points are ~2 GB
TRIAL_TOKENS = 8            # decode tokens each parameter value is tried on before the run
SPLIT = "split"
SPEC_FIELDS = ("traces", "model", "presets", "systems", "parameters", "samples", "profiles")
SAMPLE_FIELDS = ("count", "seed")
RANGE_FIELDS = ("start", "stop", "num", "scale")
DEFAULTS = {"lookahead": 1, "predictor": "st-moe", "batch": 1}   # budget: the trace's k


@dataclass
class Spec:
    """A validated spec: the traces simulated (by their name in the spec; with the "split"
    profile, the trace's second half), their profiles, and every point."""

    path: str
    traces: dict
    digests: dict               # trace name -> trace_digest of what is simulated (and its profile)
    points: list[dict]
    profiles: dict = field(default_factory=dict)   # trace name -> profile Trace or None
    models: dict = field(default_factory=dict)     # trace name -> registry model name or None
    collapsed: int = 0          # grid points identical to another once unused knobs are dropped
    notes: list = field(default_factory=list)


def trace_digest(trace) -> str:
    """sha256 of what a simulation reads from a trace: routing, weights, phases, sequences and
    the metadata that decides the model's sizes."""
    h = hashlib.sha256()
    for a in (trace.expert_ids, trace.weights, trace.phase, trace.sequence):
        if a is not None:
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(trace.meta, sort_keys=True, default=str).encode())
    return h.hexdigest()


def run_digest(trace, profile, model: str | None = None) -> str:
    """The digest a point's key uses: the simulated trace's, and its profile's and the spec's
    model when it has them."""
    digest = trace_digest(trace)
    if profile is not None:
        digest = hashlib.sha256(f"{digest}:{trace_digest(profile)}".encode()).hexdigest()
    if model is not None:
        digest = hashlib.sha256(f"{digest}:model={model}".encode()).hexdigest()
    return digest


def point_key(digest: str, point: dict) -> str:
    settings = {k: v for k, v in point.items() if k != "trace"}
    text = json.dumps({"trace": digest, "point": settings, "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def knobs_used(system) -> set[str]:
    """The non-hardware knobs a system's result depends on."""
    s = get_system(system)
    if s.tunable_predictor:
        return {"lookahead", "budget", "predictor"}
    if s.prefetch == "predictor":    # its own predictor, one layer ahead (speculative-gate, adapmoe)
        return set()
    if s.prefetch in ("oracle", "all") and s.name != "pre-gated":   # pre-gated fixes lookahead 1
        return {"lookahead"}
    return set()


def uses_profile(system) -> bool:
    """Whether a system's result depends on the profile: st-moe's tables learn from it, and
    hot-set counts its pinned experts on it."""
    return "predictor" in knobs_used(system) or bool(get_system(system).pinned_share)


def _rounded(name: str, v: float):
    """A range point without numpy's float noise: a whole number for a count, else 12
    significant digits."""
    if name in INTEGER_PARAMETERS:
        return int(round(v))
    if name in WHOLE_PARAMETERS:
        return float(round(v))
    return float(f"{v:.{SIGNIFICANT_DIGITS}g}")


def _values(where: str, name: str, given, notes: list) -> list:
    """A parameter's grid values: a non-empty list, or a {start, stop, num, scale} range."""
    if isinstance(given, dict):
        unknown = sorted(set(given) - set(RANGE_FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown range field {unknown[0]!r}; valid: {', '.join(RANGE_FIELDS)}")
        missing = [f for f in ("start", "stop", "num") if f not in given]
        if missing:
            raise ConfigError(f"{where}: a range needs start, stop and num; {missing[0]} is missing")
        start, stop, num, scale = given["start"], given["stop"], given["num"], given.get("scale", "linear")
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"{where}.num: a positive whole number, got {num!r}")
        if scale not in ("linear", "log"):
            raise ConfigError(f"{where}.scale: 'linear' or 'log', got {scale!r}")
        for f, v in (("start", start), ("stop", stop)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v):
                raise ConfigError(f"{where}.{f}: a finite number, got {v!r}")
        if scale == "log" and (start <= 0 or stop <= 0):
            raise ConfigError(f"{where}: a log range needs positive start and stop, got {start!r}, {stop!r}")
        spaced = (np.geomspace if scale == "log" else np.linspace)(start, stop, num)
        rounded = [_rounded(name, float(v)) for v in spaced]
        values = list(dict.fromkeys(rounded))
        # 12 significant digits move a value by < 1e-11 of itself: noise, not worth a note
        if any(abs(r - v) > 1e-9 * abs(v) for r, v in zip(rounded, spaced)) or len(values) < num:
            merged = f"; {num - len(values)} duplicates merged" if len(values) < num else ""
            notes.append(f"{where.split(': ')[-1]}: the range's points rounded to whole numbers{merged}")
        return values
    if not isinstance(given, list):
        raise ConfigError(f"{where}: a list of values or a {{start, stop, num}} range, got {given!r}")
    if not given:
        raise ConfigError(f"{where}: an empty list, so the grid is empty")
    return list(given)


def _grid_size(path, params: dict, runs: int, samples: int, max_points: int) -> int:
    """The number of points before any is built (a range counts its `num`), refused above
    `max_points`: a range of 10^9 points would exhaust memory before the first simulation."""
    settings = 1
    for given in params.values():
        if isinstance(given, dict):
            num = given.get("num")
            settings *= num if isinstance(num, int) and not isinstance(num, bool) and num >= 1 else 1
        elif isinstance(given, list):
            settings *= max(len(given), 1)
    total = runs * (settings + samples)
    if total > max_points:
        raise ConfigError(f"{path}: the grid has {total:,} points ({runs} trace x preset x system runs of "
                          f"{settings:,} settings{f' + {samples:,} samples' if samples else ''}), more than "
                          f"the maximum of {max_points:,} (max_points; stmoe explore --max-points), counted before "
                          "the points of systems that ignore a knob are merged")
    return total


def machine(preset_name: str, setting: dict) -> Hardware:
    """A point's machine: the preset with the setting's hardware values. pe_rows or pe_cols
    without macs_per_cycle: the array has rows x cols PEs (the other side from the preset)."""
    over = {k: float(v) for k, v in setting.items() if k in HARDWARE_PARAMETERS}
    if "dataflow" in setting:
        over["dataflow"] = setting["dataflow"]
    if over.keys() & {"pe_rows", "pe_cols"} and "macs_per_cycle" not in over:
        base = preset(preset_name)
        rows, cols = over.get("pe_rows", base.pe_rows), over.get("pe_cols", base.pe_cols)
        if rows is not None and cols is not None:
            over["macs_per_cycle"] = float(rows) * float(cols)
    return preset(preset_name, **over)


def _check_machine(where: str, setting: dict, presets: list[str]) -> None:
    try:
        for p in presets:
            machine(p, setting)
    except StmoeError as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in setting.items())
        raise ConfigError(f"{where}: {given} with preset {p!r}: {exc}") from None


def _check_arrays(where: str, grid: dict, presets: list[str]) -> None:
    """Every combination of the PE array's values in the grid (`ARRAY_PARAMETERS`): a valid
    pe_rows needs its pe_cols, and rows x cols must equal macs_per_cycle."""
    names = [n for n in ARRAY_PARAMETERS if n in grid]
    for combo in itertools.product(*(grid[n] for n in names)):
        _check_machine(where, dict(zip(names, combo)), presets)


def _decode_sequences(trace) -> int:
    return len(decode_tokens(trace, "decode")[0].sequence_ids())


def _check_value(where: str, name: str, v, traces: dict, dims: dict, presets: list[str]) -> None:
    if name == "predictor":
        if v not in PREDICTORS:
            raise ConfigError(f"{where}: unknown predictor {v!r}; valid: {', '.join(PREDICTORS)}")
        return
    if name == "dataflow":
        if v not in DATAFLOWS:
            raise ConfigError(f"{where}: unknown dataflow {v!r}; valid: {', '.join(DATAFLOWS)}")
        for p in presets:
            if preset(p).pe_array is None:
                raise ConfigError(f"{where}: preset {p!r} has no PE array, so no dataflow to choose "
                                  "(give it pe_rows and pe_cols, or leave dataflow out)")
        _check_machine(where.rsplit(".", 1)[0], {name: v}, presets)
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}: a number, got {v!r}")
    if name in INTEGER_PARAMETERS:
        if not float(v).is_integer():
            raise ConfigError(f"{where}: a whole number, got {v!r}")
        for tname, t in traces.items():
            top = {"lookahead": t.num_layers, "budget": t.num_experts}.get(name) or _decode_sequences(t)
            if not 1 <= v <= top:
                raise ConfigError(f"{where}: {v!r} is out of range 1..{top} for trace {tname!r}")
        return
    if name in ARRAY_PARAMETERS:   # checked with the others of the array (`_check_arrays`)
        return
    for p in presets:
        try:
            hw = preset(p, **{name: float(v)})
        except StmoeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if name == "buffer_bytes":
            for tname in traces:
                try:
                    hw.check_fits(dims[tname].expert_bytes)
                except StmoeError as exc:
                    raise ConfigError(f"{where}: {v!r} on trace {tname!r}: {exc}") from None


def _names(where: str, given, check) -> list[str]:
    if not isinstance(given, list) or not given or not all(isinstance(g, str) for g in given):
        raise ConfigError(f"{where}: a non-empty list of names, got {given!r}")
    for g in given:
        try:
            check(g)
        except StmoeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return list(dict.fromkeys(given))


def _sample(rng, name: str, given, values: list):
    """One random value: uniform over a list, or within a range (log-uniform for a log range)."""
    if not isinstance(given, dict):
        return values[int(rng.integers(len(values)))]
    lo, hi = float(given["start"]), float(given["stop"])
    if given.get("scale", "linear") == "log":
        v = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    else:
        v = float(rng.uniform(lo, hi))
    return _rounded(name, v)


def read_spec(path, *, max_points: int = MAX_POINTS) -> Spec:
    """Parse and validate a spec file; every error names the file, the field and the value,
    and is raised before any simulation runs."""
    path = Path(path)
    try:
        # a regular file of at most 1 MiB (a spec is a few lines): never a pipe or /dev/zero
        raw = tomllib.loads(read_regular(path, limit=SPEC_MAX_BYTES).decode("utf-8"))
    except StmoeError as exc:
        raise ConfigError(str(exc).replace("trace file", "spec file")) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_spec(raw, path, max_points=max_points)


def _load(path: Path, where: str, name: str):
    """A trace file relative to the spec's folder (whatever it is: a pipe or a folder is refused
    as such by the reader), else a stmoe dataset name; never a path relative to the current one."""
    local = path.parent / name
    try:
        present = os.path.lexists(local)
    except (OSError, ValueError):   # a name the system cannot take: the reader says which
        present = True
    if not present and name not in bundled() and name not in PUBLIC:
        raise ConfigError(f"{path}: {where}: {name!r} is neither a stmoe trace name nor a file beside the "
                          f"spec ({local} does not exist; trace paths are relative to the spec's folder)")
    try:
        return load_trace(local if present else name)
    except StmoeError as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from None


def _models(path: Path, names: list[str], given) -> dict:
    """trace name -> the registry name of the model the spec gives it, or None."""
    if given is None:
        return dict.fromkeys(names)
    if isinstance(given, str):
        given = dict.fromkeys(names, given)
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: model: a model name for every trace, or a table of trace = model name, "
                          f"got {given!r}")
    models = {}
    for tname, name in given.items():
        if tname not in names:
            raise ConfigError(f"{path}: model.{tname}: not one of the spec's traces ({', '.join(names)})")
        cfg = find_model(name) if isinstance(name, str) else None
        if cfg is None:
            raise ConfigError(f"{path}: model: unknown model {name!r} for trace {tname!r}; known: {', '.join(MODELS)}")
        models[tname] = cfg.name
    return {n: models.get(n) for n in names}


def _dims(path: Path, traces: dict, models: dict) -> dict:
    """trace name -> the ModelDims its points are timed with."""
    out = {}
    for n, t in traces.items():
        try:
            out[n] = dims_for(t, model=models[n])[0]
        except StmoeError as exc:
            # the flags a command line would give, as a spec gives them
            spec_way = (f'model = "NAME" in the spec (for every trace) or a [model] table of trace = "NAME" '
                        f"(one of: {', '.join(MODELS)})")
            what = "traces" if models[n] is None else f"model.{n}"
            raise ConfigError(f"{path}: {what}: {str(exc).replace(SIZE_FLAGS.format(', '.join(MODELS)), spec_way)}") \
                from None
    return out


def _traces(path: Path, names: list[str], given) -> tuple[dict, dict, dict]:
    """(simulated trace, profile or None, the profile's spec value) by trace name."""
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: profiles: a table of trace = profile, got {given!r}")
    for tname, value in given.items():
        if tname not in names:
            raise ConfigError(f"{path}: profiles.{tname}: not one of the spec's traces ({', '.join(names)})")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: profiles.{tname}: {SPLIT!r} or a trace name or file, got {value!r}")
    traces, profiles = {}, {}
    for n in names:
        trace, value = _load(path, "traces", n), given.get(n)
        profile = None
        try:
            if value == SPLIT:
                profile, trace = split(trace)
            elif value is not None:
                profile = _load(path, f"profiles.{n}", value)
                check_compatible(profile, trace)
                check_disjoint(profile, trace)
        except StmoeError as exc:
            raise ConfigError(f"{path}: profiles.{n}: {exc}") from None
        traces[n], profiles[n] = trace, profile
    return traces, profiles, dict(given)


def parse_spec(raw: dict, path=Path("<spec>"), *, max_points: int = MAX_POINTS) -> Spec:
    path = Path(path)
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise ConfigError(f"max_points: a whole number >= 1, got {max_points!r}")
    unknown = sorted(set(raw) - set(SPEC_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown field {unknown[0]!r}; valid: {', '.join(SPEC_FIELDS)}")
    for f in ("traces", "presets", "systems"):
        if f not in raw:
            raise ConfigError(f"{path}: the field {f!r} is missing")
    names = _names(f"{path}: traces", raw["traces"], lambda g: None)
    presets = _names(f"{path}: presets", raw["presets"], preset)
    systems = _names(f"{path}: systems", raw["systems"], get_system)

    params = raw.get("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: parameters: a table of name = values, got {params!r}")
    for name in params:
        if name not in PARAMETERS:
            raise ConfigError(f"{path}: parameters.{name}: unknown parameter; valid: {', '.join(PARAMETERS)}")
    samples = raw.get("samples", {})
    if not isinstance(samples, dict):
        raise ConfigError(f"{path}: samples: a table with count and seed, got {samples!r}")
    unknown = sorted(set(samples) - set(SAMPLE_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: samples: unknown field {unknown[0]!r}; valid: {', '.join(SAMPLE_FIELDS)}")
    count, seed = samples.get("count", 0), samples.get("seed")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ConfigError(f"{path}: samples.count: a whole number >= 0, got {count!r}")
    if count and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"{path}: samples.seed: a whole number >= 0 (sampling is seeded), got {seed!r}")
    _grid_size(path, params, len(names) * len(presets) * len(systems), count, max_points)

    traces, profiles, profile_names = _traces(path, names, raw.get("profiles", {}))
    models = _models(path, names, raw.get("model"))
    dims = _dims(path, traces, models)
    for system in systems:
        for n, t in traces.items():
            missing = missing_input(system, t, profiles.get(n))
            if missing:
                hint = "; give one in the spec's [profiles] table" if "profile" in missing else ""
                raise ConfigError(f"{path}: systems: {missing} (trace {n}){hint}")
    no_weights = [n for n, t in traces.items() if t.weights is None]
    if "adap-gating" in systems and no_weights:
        raise ConfigError(f"{path}: systems: adap-gating needs gate weights, and trace {no_weights[0]!r} has none")

    notes: list[str] = []
    grid = {}
    for name, given in params.items():
        where = f"{path}: parameters.{name}"
        grid[name] = _values(where, name, given, notes)
        for v in grid[name]:
            _check_value(where, name, v, traces, dims, presets)
    _check_arrays(f"{path}: parameters", grid, presets)
    if grid.keys() & {"pe_rows", "pe_cols"} and "macs_per_cycle" not in grid:
        notes.append("parameters: each point's macs_per_cycle is its pe_rows x pe_cols (the PE array's size)")
    _try_values(path, grid, traces, dims, profiles, profile_names, presets, systems)

    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        drawn = {n: _sample(rng, n, params[n], grid[n]) for n in grid}
        for n, v in drawn.items():
            _check_value(f"{path}: samples: parameters.{n}", n, v, traces, dims, presets)
        _check_machine(f"{path}: samples: parameters", {n: v for n, v in drawn.items() if n in ARRAY_PARAMETERS},
                       presets)
        settings.append(drawn)

    digests = {n: run_digest(traces[n], profiles[n], models[n]) for n in traces}
    plain = {n: run_digest(traces[n], None, models[n]) for n in traces}
    points, seen, collapsed = [], set(), 0
    for tname, p, s, setting in itertools.product(traces, presets, systems, settings):
        point = _point(tname, traces[tname], p, s, setting, profile_names.get(tname))
        key = point_key(digests[tname] if uses_profile(s) else plain[tname], point)
        if key in seen:
            collapsed += 1
            continue
        seen.add(key)
        points.append(point | {"key": key})
    if collapsed:
        notes.append(f"{collapsed} grid points collapsed into others: their systems ignore the knobs "
                     "that told them apart (e.g. on-demand has no lookahead, budget or predictor)")
    for n, value in profile_names.items():
        if value == SPLIT:
            notes.append(f"profiles.{n}: split (stmoe.splits.split): the profile is "
                         f"{profiles[n].num_tokens} tokens, every system simulated on the other "
                         f"{traces[n].num_tokens}")
    return Spec(str(path), traces, digests, points, profiles=profiles, models=models, collapsed=collapsed,
                notes=notes)


def _tried(grid: dict) -> list[dict]:
    """The settings `_try_values` runs: each parameter's smallest and largest value alone (each
    predictor), and for the PE array, which is valid only whole, the combinations that hold
    each of its parameters' smallest and largest values."""
    tried = [{n: v} for n, values in grid.items() if n not in ARRAY_PARAMETERS
             for v in (values if n in CHOICE_PARAMETERS else dict.fromkeys([min(values), max(values)]))]
    names = [n for n in ARRAY_PARAMETERS if n in grid]
    combos = [dict(zip(names, c)) for c in itertools.product(*(grid[n] for n in names))] if names else []
    for n in names:
        for end in dict.fromkeys([min(grid[n]), max(grid[n])]):
            combo = next(c for c in combos if c[n] == end)
            if combo not in tried:
                tried.append(combo)
    return tried or [{}]


def _try_values(path, grid: dict, traces: dict, dims: dict, profiles: dict, profile_names: dict, presets,
                systems) -> None:
    """Run the smallest and the largest value of each parameter (and each predictor) on a few
    decode tokens of each trace, with each preset and system and the other parameters at
    their defaults: a value that would fail on a worker fails here, in one line, before the
    run. Values in between, and samples (drawn between a range's ends), pass if both ends do."""
    sequences = max(grid.get("batch", [1]))
    for tname, trace in traces.items():
        few, prof = _first(trace, sequences), None if profiles[tname] is None else _first(profiles[tname])
        for p, s in itertools.product(presets, systems):
            for setting in _tried(grid):
                point = _point(tname, trace, p, s, setting, profile_names.get(tname))
                try:
                    run_point(few, point, dims[tname], profile=prof)
                except Exception as exc:   # whatever would fail on a worker: one line, now
                    what = ", ".join(f"parameters.{n}: {v!r}" for n, v in setting.items()) or "the presets' defaults"
                    raise ConfigError(f"{path}: {what} fails with preset {p!r}, system {s!r} on trace "
                                      f"{tname!r}: {one_line(exc)}") from None


def _first(trace, sequences: int = 1):
    """The first few decode tokens of the first `sequences` sequences of a trace (as many as the
    largest batch decodes in lockstep): enough to exercise a point's whole setup."""
    decode = decode_tokens(trace, "decode")[0]
    first = decode.sequence_ids()[:sequences]
    starts = {s: int(np.flatnonzero(decode.sequence == s)[0]) for s in first}
    position = np.arange(decode.num_tokens) - np.array([starts.get(s, 0) for s in decode.sequence])
    return decode.select(tokens=np.isin(decode.sequence, first) & (position < TRIAL_TOKENS))


def run_point(trace, point: dict, dims, predictions=None, profile=None, phase: str | None = "decode"):
    """The `SimulationResult` of one point on its (simulated) trace; `predictions`: the
    predictor's output for it, when the caller computed it already; `phase`: simulate's (None
    for a trace of decode tokens already selected)."""
    hw = machine(point["preset"], {k: point[k] for k in (*HARDWARE_PARAMETERS, "dataflow") if point[k] is not None})
    knobs = {}
    if get_system(point["system"]).prefetch == "predictor":
        knobs = dict(predictor=point["predictor"], budget=point["budget"], lookahead=point["lookahead"],
                     profile=profile)
    elif point["lookahead"] is not None:
        knobs = dict(lookahead=point["lookahead"])
    if get_system(point["system"]).pinned_share:   # hot-set counts its experts on the profile
        knobs["profile"] = profile
    return simulate(trace, hw, point["system"], dims=dims, predictions=predictions, phase=phase,
                    batch=point["batch"], **knobs)


def _point(tname: str, trace, preset_name: str, system: str, setting: dict, profile: str | None) -> dict:
    used = knobs_used(system)
    knobs = {"lookahead": DEFAULTS["lookahead"], "budget": trace.top_k, "predictor": DEFAULTS["predictor"]}
    knobs |= {k: v for k, v in setting.items() if k in knobs}
    # the resolved machine, not only the overrides: a preset constant changed in the code
    # changes the key, so its old results are not reused
    hw = machine(preset_name, setting)
    # "split" changes what every system simulates; a profile trace only what a predictor learns
    # and which experts hot-set pins
    profile = profile if profile == SPLIT or uses_profile(system) else None
    return {"trace": tname, "preset": preset_name, "system": system, "profile": profile,
            **{k: (int(v) if k in INTEGER_PARAMETERS else v) if k in used else None for k, v in knobs.items()},
            **{k: (None if getattr(hw, k) is None else float(getattr(hw, k))) for k in HARDWARE_PARAMETERS},
            "dataflow": hw.dataflow, "batch": int(setting.get("batch", DEFAULTS["batch"]))}
