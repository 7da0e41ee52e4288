"""Notebook 04 (the expert buffer): replacement policies against capacity (and the profile's hot
set pinned), and what prediction-driven prefetching adds to the same buffer used as a cache, as
the cache/prefetch split varies.

Predictions are always held out (`stmoe.book.held_out`): profiled on one half of a trace's
sequences, the other half simulated.
"""

from __future__ import annotations

import numpy as np

from stmoe.book.held_out import HeldOut, gain
from stmoe.errors import ConfigError
from stmoe.sim.buffer import BufferSpec, replay, request_stream
from stmoe.sim.hardware import preset
from stmoe.sim.systems import HOT_SET_SHARE, hot_set
from stmoe.sim.timing import UnitTotals, simulate
from stmoe.trace import Trace

# the buffer's policies that need no prediction (stmoe.sim.buffer.POLICIES has them all)
DEMAND_POLICIES = ("lru", "lfu", "fifo", "belady")
CAPACITY_FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def capacities(trace: Trace, fractions=CAPACITY_FRACTIONS) -> list[int]:
    """Buffer capacities in experts, as fractions of all L x E experts (at least one)."""
    total = trace.num_layers * trace.num_experts
    return sorted({max(round(f * total), 1) for f in fractions})


def replacement_curves(trace: Trace, sizes=None, policies=DEMAND_POLICIES, phase: str = "decode", *,
                       per_layer: bool = False, profile: Trace | None = None) -> list[dict]:
    """Demand-only hit rate of each replacement policy at each capacity (in experts), over the
    requests of `phase` in time order. One buffer shared by all layers, or with `per_layer`
    the same total split evenly into one buffer per layer (capacity // L each). With a
    `profile` (other tokens), also the hot-set system's buffer ("hot-set": the profile's most
    used experts pinned in HOT_SET_SHARE of it, the rest LRU; shared buffer only)."""
    sel = trace.select(phase=phase) if phase else trace
    objs = request_stream(sel.expert_ids, sel.num_experts)
    if objs.size == 0:
        raise ConfigError(f"trace {trace.label} has no {phase} requests")
    if per_layer and profile is not None:
        raise ConfigError("replacement_curves: the hot set is pinned in one shared buffer, not per layer")
    L, E = sel.num_layers, sel.num_experts
    part = np.repeat(np.arange(L, dtype=np.int32), E) if per_layer else None
    rows = []
    for c in sizes or capacities(sel):
        each = int(c) // L if per_layer else int(c)
        if each < 1:
            raise ConfigError(f"capacity {c} is less than one expert per layer ({L} layers)")
        hits = {p: replay(objs, each, p, part=part, num_objects=L * E) for p in policies}
        if profile is not None:
            hits["hot-set"] = hot_set_hits(objs, each, hot_set(profile, each), L * E)
        rows += [{"policy": p, "capacity": int(c), "fraction": c / (L * E), "hit_rate": h / objs.size}
                 for p, h in hits.items()]
    return rows


def hot_set_hits(objs: np.ndarray, capacity: int, pinned: np.ndarray, num_objects: int) -> int:
    """Demand hits of a buffer of `capacity` whose `pinned` experts have slots of their own: a
    pinned expert misses on its first request only, the others share the rest as an LRU cache."""
    held = np.isin(objs, pinned)
    rest = objs[~held]
    cached = replay(rest, capacity - pinned.size, "lru", num_objects=num_objects) if rest.size else 0
    return int(held.sum()) - np.unique(objs[held]).size + cached


def hit_rate_at(rows: list[dict], policy: str, capacity: int) -> float:
    for r in rows:
        if r["policy"] == policy and r["capacity"] == capacity:
            return r["hit_rate"]
    raise KeyError(f"no row for policy {policy!r} at capacity {capacity}")


def split_outcomes(data: HeldOut, capacity: float, share: float, *, hardware="accelerator",
                   lookahead: int = 1) -> list[dict]:
    """Three systems with a buffer of `capacity` experts: the whole buffer as an LRU cache, the
    hot set (the profile's most used experts pinned in HOT_SET_SHARE of it, the rest LRU), and
    st-moe's held-out predictions staged in a `share` of it (prediction-aware cache in the
    rest; 0 puts them in the cache). One dict per system, st-moe last:
    `SimulationResult.row()` with `system` relabelled, `capacity`, `share`, `miss_rate` and the
    run's `per_unit` totals (`UnitTotals.as_dict()`, for `gain_between`)."""
    hw = preset(hardware)
    cache = BufferSpec(capacity, "experts", prefetch_share=0.0)
    return [_outcome(data, hw, "cache only (LRU)", "lru-cache", cache, capacity, 0.0, lookahead),
            _outcome(data, hw, f"hot-set ({HOT_SET_SHARE:.0%} pinned)", "hot-set", cache, capacity, 0.0, lookahead),
            _st_moe_outcome(data, hw, capacity, share, lookahead)]


def share_sweep(data: HeldOut, capacity: float, shares, *, hardware="accelerator", lookahead: int = 1) -> list[dict]:
    """st-moe's outcomes as its staging share varies at a fixed capacity (`split_outcomes`' last row)."""
    hw = preset(hardware)
    return [_st_moe_outcome(data, hw, capacity, s, lookahead) for s in shares]


def gain_at_capacity(data: HeldOut, capacity: float, baseline: str = "lru-cache", *, system: str = "st-moe",
                     hardware="accelerator", lookahead: int = 1) -> dict:
    """`system`'s speedup and energy efficiency over `baseline` with a buffer of `capacity` experts
    (slots sized for the largest expert, as `split_outcomes` counts them; each system with its
    own defaults: st-moe its staging share, the hot set its pinned share), with the paired
    bootstrap intervals of `stmoe.book.held_out.gain`."""
    hw = preset(hardware)
    sized = hw.with_(buffer_bytes=float(capacity) * float(np.max(data.dims.expert_bytes)))
    return gain(data, sized, system, baseline, lookahead=lookahead)


def gain_between(row: dict, base: dict) -> dict:
    """{speedup, energy_efficiency} of `row` over `base`, two rows of `split_outcomes`,
    `share_sweep` or `split_grid` over the same tokens (a staging share against another, say),
    each with its paired bootstrap interval (`UnitTotals.gain_intervals`)."""
    return {"speedup": base["latency_per_token_s"] / row["latency_per_token_s"],
            "energy_efficiency": base["energy_per_token_j"] / row["energy_per_token_j"],
            **UnitTotals.from_dict(row["per_unit"]).gain_intervals(UnitTotals.from_dict(base["per_unit"]))}


def split_grid(data: HeldOut, capacities, shares, *, hardware="accelerator", lookahead: int = 1) -> list[dict]:
    """`split_outcomes` at every capacity and st-moe at every staging share, simulated once (the
    split explorer looks rows up): per capacity, the cache-only and hot-set rows (no staging
    share: their `share` is None) and one st-moe row per share. Each row gains `series`: the
    system without its share ("cache only (LRU)", "hot-set (50% pinned)", "st-moe")."""
    shares = [float(s) for s in shares]
    if not shares:
        raise ConfigError("split_grid needs at least one staging share")
    hw = preset(hardware)
    rows = []
    for c in capacities:
        cache, hot, first = split_outcomes(data, c, shares[0], hardware=hw, lookahead=lookahead)
        rows += [{**cache, "share": None, "series": cache["system"]}, {**hot, "share": None, "series": hot["system"]}]
        rows += [{**r, "series": "st-moe"} for r in [first, *share_sweep(data, c, shares[1:], hardware=hw,
                                                                           lookahead=lookahead)]]
    return rows


def _st_moe_outcome(data: HeldOut, hw, capacity: float, share: float, lookahead: int) -> dict:
    spec = BufferSpec(capacity, "experts", prefetch_share=share, policy="predictive")
    return _outcome(data, hw, f"st-moe, {share:.0%} staging", "st-moe", spec, capacity, share, lookahead,
                    data.predictions_for(lookahead))


def _outcome(data: HeldOut, hw, label: str, system: str, spec: BufferSpec, capacity: float, share: float,
             lookahead: int, predictions=None) -> dict:
    r = simulate(data.scored, hw, system, predictions=predictions, buffer=spec, dims=data.dims,
                 lookahead=lookahead, profile=data.profile)
    row = {**r.row(), "system": label, "capacity": capacity, "share": share, "per_unit": r.per_unit.as_dict()}
    row["miss_rate"] = 1.0 - row["hit_rate"] - row["late_prefetch_rate"]
    return row
