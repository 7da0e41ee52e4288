"""The paper's headline numbers as conditions, not a verdict: over a grid of the machine model's
stated assumptions, where does st-moe reach the ST-MoE paper's gains over on-demand, adap-gating
and pre-gated, and which assumptions does each such region need?

`search_conditions` simulates every grid point (every combination of the values given per
assumption) and returns one row per point with st-moe's speedup and energy efficiency over each
baseline and whether each of the paper's six numbers is reached; `conditions_summary` says, per
target, which values of each assumption the points reaching it take. As in every comparison
(`stmoe.sim.comparison.split_for_comparison`), st-moe's predictor is profiled on the first half
of the trace's sequences and every system simulated on the other half.
"""

from __future__ import annotations

import itertools

from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.sim.comparison import compare_systems, dims_for, split_for_comparison
from stmoe.sim.hardware import preset
from stmoe.trace import Trace

# The ST-MoE paper's gains of st-moe over each baseline: (speedup, energy efficiency).
PAPER_GAINS = {"on-demand": (2.5, 2.5), "adap-gating": (2.2, 1.8), "pre-gated": (1.5, 2.0)}
# What a grid may vary: any numeric field of the st-moe machine's preset, plus these.
SPECIAL = ("k", "context", "batch", "baseline_hardware")


def top_k_trace(trace: Trace, k: int) -> Trace:
    """The trace routed to its first k experts per layer (router rank order): the same router at
    a smaller k."""
    if not 1 <= k <= trace.top_k:
        raise ConfigError(f"k must be between 1 and the trace's top_k ({trace.top_k}), got {k!r}")
    if k == trace.top_k:
        return trace
    return Trace(trace.expert_ids[:, :, :k], num_experts=trace.num_experts, phase=trace.phase,
                 sequence=trace.sequence, weights=None if trace.weights is None else trace.weights[:, :, :k],
                 token_ids=trace.token_ids, stale_gate=trace.stale_gate,
                 meta=dict(trace.meta, top_k=k), origin=trace.origin)


def search_conditions(trace: Trace, grid: dict, *, hardware="accelerator", dims=None,
                      profile: Trace | None = None) -> tuple[list[dict], list[str]]:
    """(rows, notes): one row per combination of `grid`'s values ({assumption: [values]}): an
    assumption is a numeric field of `hardware` (buffer_bytes, dense_bandwidth, link_bandwidth,
    ...) or its ``dataflow`` (os, ws, is: how its PE array computes), ``k`` (the first k experts
    of the trace's routing), ``context`` (KV-cache tokens), ``batch`` (sequences decoded in
    lockstep, `stmoe.sim.timing.simulate`) or ``baseline_hardware`` (the preset the baselines
    run on; default: st-moe's own). Each row holds the point, st-moe's speedup and energy
    efficiency over each baseline (``speedup_vs_X``, ``energy_vs_X``) and whether the paper's
    number is reached (``meets_speedup_vs_X``, ...). profile: the tokens st-moe's predictor is
    profiled on, other than `trace`'s, which are then all simulated; default: the first half of
    `trace`'s sequences, the other half simulated (`split_for_comparison`, whose note is in
    `notes`)."""
    hw0 = preset(hardware)
    names = list(grid)
    fields = set(hw0.__dataclass_fields__) - {"name", "notes"}
    for n in names:
        if n not in fields and n not in SPECIAL:
            raise ConfigError(f"cannot vary {n!r}; valid: {', '.join(sorted(fields | set(SPECIAL)))}")
    if trace.weights is None:
        raise ConfigError(f"adap-gating needs gate weights, and trace {trace.label} has none")
    whole = trace    # the model sizes (its mean context, say) are read from all of it, as the CLI does
    profile, trace, notes = split_for_comparison(trace, profile)
    given_dims = dims
    cached: dict = {}
    rows = []
    for values in itertools.product(*(list(grid[n]) for n in names)):
        point = dict(zip(names, values))
        k = int(point.get("k", trace.top_k))
        context = point.get("context")
        if k not in cached:
            t = top_k_trace(trace, k)
            cached[k] = (t, predict(t.select(phase="decode"), "st-moe", profile=top_k_trace(profile, k)))
        t, pred = cached[k]
        dims = given_dims if given_dims is not None and context is None else dims_for(
            top_k_trace(whole, k), **({"context": context} if context is not None else {}))[0]
        hw = hw0.with_(**{n: (v if n == "dataflow" else float(v)) for n, v in point.items() if n in fields})
        base_hw = point.get("baseline_hardware")
        base_hw = hw if base_hw is None else preset(base_hw)
        batch = int(point.get("batch", 1))
        st = _run(t, hw, ("st-moe",), dims, pred, batch)["st-moe"]
        base = _run(t, base_hw, tuple(PAPER_GAINS), dims, pred, batch)
        row = dict(point)
        for name, (speed, energy) in PAPER_GAINS.items():
            row[f"speedup_vs_{name}"] = float(base[name]["latency_per_token_s"] / st["latency_per_token_s"])
            row[f"energy_vs_{name}"] = float(base[name]["energy_per_token_j"] / st["energy_per_token_j"])
            row[f"meets_speedup_vs_{name}"] = row[f"speedup_vs_{name}"] >= speed
            row[f"meets_energy_vs_{name}"] = row[f"energy_vs_{name}"] >= energy
        row["meets_all"] = all(v for key, v in row.items() if key.startswith("meets_"))
        rows.append(row)
    return rows, notes


def _run(trace, hw, systems, dims, predictions, batch) -> dict:
    rows, _ = compare_systems(trace, hw, list(systems), dims=dims, predictions=predictions, batch=batch)
    return {r["system"]: r for r in rows}


def conditions_summary(rows: list[dict], grid: dict) -> dict:
    """Per paper target (and ``all``): how many grid points reach it, the values of each
    assumption those points are confined to (``needs``: an assumption whose every grid value
    appears among them is left out), and the points themselves (``where``: their assumptions)."""
    targets = [key for key in rows[0] if key.startswith("meets_")] if rows else []
    out = {}
    for target in targets:
        hits = [r for r in rows if r[target]]
        out[target.removeprefix("meets_")] = {
            "points": len(hits), "of": len(rows),
            "needs": {n: sorted({r[n] for r in hits}, key=str) for n in grid
                      if hits and len({r[n] for r in hits}) < len(set(grid[n]))},
            "where": [{n: r[n] for n in grid} for r in hits]}
    return out
