"""What a design-space exploration runs: its TOML spec, validated, and the points it expands to.

A spec names traces, hardware presets and systems, and per parameter a list of values or a
range; the points are every system on every trace and preset crossed with the product of the
parameters' values, plus optional seeded random samples drawn from the same lists and ranges::

    traces = ["tiny-moe-code"]            # names (stmoe datasets) or files, relative to the spec
    presets = ["accelerator"]
    systems = ["on-demand", "lru-cache", "st-moe"]

    [parameters]
    buffer_bytes = [1048576, 4194304]
    link_bandwidth = { start = 32e9, stop = 512e9, num = 5, scale = "log" }
    lookahead = [1, 2]

    [samples]                             # optional
    count = 20
    seed = 0

Parameters: any numeric `Hardware` field (an override of the preset), `lookahead`, `budget`
and `predictor`. A system that does not use a knob (on-demand has no predictor) gets it as
None, and the points that then coincide are run once; the run says how many collapsed.

Each point has a key: the sha256 of the trace's content, the point's settings (the machine
resolved from its preset) and the package version, so a result is reused only for the same routing, settings and model code.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from stmoe.errors import ConfigError, StmoeError
from stmoe.files import read_regular
from stmoe.predictors import PREDICTORS
from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import dims_for
from stmoe.sim.hardware import Hardware, preset
from stmoe.sim.systems import get_system, missing_input
from stmoe.version import __version__

HARDWARE_PARAMETERS = tuple(f.name for f in fields(Hardware) if f.name not in ("name", "notes", "dataflow"))
PARAMETERS = HARDWARE_PARAMETERS + ("lookahead", "budget", "predictor")
INTEGER_PARAMETERS = ("lookahead", "budget")
SPEC_MAX_BYTES = 1 << 20
SPEC_FIELDS = ("traces", "presets", "systems", "parameters", "samples")
SAMPLE_FIELDS = ("count", "seed")
RANGE_FIELDS = ("start", "stop", "num", "scale")
DEFAULTS = {"lookahead": 1, "predictor": "st-moe"}   # budget: the trace's k


@dataclass
class Spec:
    """A validated spec: the loaded traces (by their name in the spec) and every point."""

    path: str
    traces: dict
    digests: dict               # trace name -> trace_digest
    points: list[dict]
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


def _values(where: str, name: str, given) -> list:
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
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ConfigError(f"{where}.{f}: a number, got {v!r}")
        if scale == "log" and (start <= 0 or stop <= 0):
            raise ConfigError(f"{where}: a log range needs positive start and stop, got {start!r}, {stop!r}")
        vals = (np.geomspace if scale == "log" else np.linspace)(start, stop, num)
        if name in INTEGER_PARAMETERS:
            return sorted({int(round(v)) for v in vals})
        return [float(v) for v in vals]
    if not isinstance(given, list):
        raise ConfigError(f"{where}: a list of values or a {{start, stop, num}} range, got {given!r}")
    if not given:
        raise ConfigError(f"{where}: an empty list, so the grid is empty")
    return list(given)


def _check_value(where: str, name: str, v, traces: dict, presets: list[str]) -> None:
    if name == "predictor":
        if v not in PREDICTORS:
            raise ConfigError(f"{where}: unknown predictor {v!r}; valid: {', '.join(PREDICTORS)}")
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}: a number, got {v!r}")
    if name in INTEGER_PARAMETERS:
        if not float(v).is_integer():
            raise ConfigError(f"{where}: a whole number, got {v!r}")
        for tname, t in traces.items():
            top = t.num_layers if name == "lookahead" else t.num_experts
            if not 1 <= v <= top:
                raise ConfigError(f"{where}: {v!r} is out of range 1..{top} for trace {tname!r}")
        return
    for p in presets:
        try:
            hw = preset(p, **{name: float(v)})
        except StmoeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if name == "buffer_bytes":
            for tname, t in traces.items():
                try:
                    hw.check_fits(dims_for(t)[0].expert_bytes)
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
    return int(round(v)) if name in INTEGER_PARAMETERS else v


def read_spec(path) -> Spec:
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
    return parse_spec(raw, path)


def parse_spec(raw: dict, path=Path("<spec>")) -> Spec:
    path = Path(path)
    unknown = sorted(set(raw) - set(SPEC_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown field {unknown[0]!r}; valid: {', '.join(SPEC_FIELDS)}")
    for f in ("traces", "presets", "systems"):
        if f not in raw:
            raise ConfigError(f"{path}: the field {f!r} is missing")
    names = _names(f"{path}: traces", raw["traces"], lambda g: None)
    traces = {}
    for n in names:
        local = path.parent / n
        try:
            traces[n] = load_trace(local if local.is_file() else n)
        except StmoeError as exc:
            raise ConfigError(f"{path}: traces: {exc}") from None
    presets = _names(f"{path}: presets", raw["presets"], preset)
    systems = _names(f"{path}: systems", raw["systems"], get_system)
    for system in systems:   # explored systems run with no profile
        for t in traces.values():
            missing = missing_input(system, t)
            if missing:
                raise ConfigError(f"{path}: systems: {missing}")

    params = raw.get("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: parameters: a table of name = values, got {params!r}")
    grid = {}
    for name, given in params.items():
        where = f"{path}: parameters.{name}"
        if name not in PARAMETERS:
            raise ConfigError(f"{where}: unknown parameter; valid: {', '.join(PARAMETERS)}")
        grid[name] = _values(where, name, given)
        for v in grid[name]:
            _check_value(where, name, v, traces, presets)

    samples = raw.get("samples", {})
    if not isinstance(samples, dict):
        raise ConfigError(f"{path}: samples: a table with count and seed, got {samples!r}")
    unknown = sorted(set(samples) - set(SAMPLE_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: samples: unknown field {unknown[0]!r}; valid: {', '.join(SAMPLE_FIELDS)}")
    count, seed = samples.get("count", 0), samples.get("seed")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ConfigError(f"{path}: samples.count: a whole number >= 0, got {count!r}")
    if count and not isinstance(seed, int):
        raise ConfigError(f"{path}: samples.seed: a whole number (sampling is seeded), got {seed!r}")

    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        drawn = {n: _sample(rng, n, params[n], grid[n]) for n in grid}
        for n, v in drawn.items():
            _check_value(f"{path}: samples: parameters.{n}", n, v, traces, presets)
        settings.append(drawn)

    digests = {n: trace_digest(t) for n, t in traces.items()}
    points, seen, collapsed = [], set(), 0
    for tname, p, s, setting in itertools.product(traces, presets, systems, settings):
        point = _point(tname, traces[tname], p, s, setting)
        key = point_key(digests[tname], point)
        if key in seen:
            collapsed += 1
            continue
        seen.add(key)
        points.append(point | {"key": key})
    notes = []
    if collapsed:
        notes.append(f"{collapsed} grid points collapsed into others: their systems ignore the knobs "
                     "that told them apart (e.g. on-demand has no lookahead, budget or predictor)")
    return Spec(str(path), traces, digests, points, collapsed, notes)


def _point(tname: str, trace, preset_name: str, system: str, setting: dict) -> dict:
    used = knobs_used(system)
    knobs = {"lookahead": DEFAULTS["lookahead"], "budget": trace.top_k, "predictor": DEFAULTS["predictor"]}
    knobs |= {k: v for k, v in setting.items() if k in knobs}
    # the resolved machine, not only the overrides: a preset constant changed in the code
    # changes the key, so its old results are not reused
    hw = preset(preset_name, **{k: float(v) for k, v in setting.items() if k in HARDWARE_PARAMETERS})
    return {"trace": tname, "preset": preset_name, "system": system,
            **{k: (int(v) if k in INTEGER_PARAMETERS else v) if k in used else None for k, v in knobs.items()},
            **{k: (None if getattr(hw, k) is None else float(getattr(hw, k))) for k in HARDWARE_PARAMETERS}}
