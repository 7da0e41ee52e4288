"""Notebook 04 (the expert buffer): replacement policies against capacity, and what
prediction-driven prefetching adds to the same buffer used as a cache, as the cache/prefetch
split varies.

Predictions are always held out (`stmoe.book.held_out`): profiled on one half of a trace's
sequences, the other half simulated.
"""

from __future__ import annotations

import numpy as np

from stmoe.book.held_out import HeldOut
from stmoe.errors import ConfigError
from stmoe.sim.buffer import BufferSpec, replay, request_stream
from stmoe.sim.hardware import preset
from stmoe.sim.timing import simulate
from stmoe.trace import Trace

# the buffer's policies that need no prediction (stmoe.sim.buffer.POLICIES has them all)
DEMAND_POLICIES = ("lru", "lfu", "fifo", "belady")
CAPACITY_FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def capacities(trace: Trace, fractions=CAPACITY_FRACTIONS) -> list[int]:
    """Buffer capacities in experts, as fractions of all L x E experts (at least one)."""
    total = trace.num_layers * trace.num_experts
    return sorted({max(int(round(f * total)), 1) for f in fractions})


def replacement_curves(trace: Trace, sizes=None, policies=DEMAND_POLICIES, phase: str = "decode", *,
                       per_layer: bool = False) -> list[dict]:
    """Demand-only hit rate of each replacement policy at each capacity (in experts), over the
    requests of `phase` in time order. One buffer shared by all layers, or with `per_layer`
    the same total split evenly into one buffer per layer (capacity // L each)."""
    sel = trace.select(phase=phase) if phase else trace
    objs = request_stream(sel.expert_ids, sel.num_experts)
    if objs.size == 0:
        raise ConfigError(f"trace {trace.label} has no {phase} requests")
    L, E = sel.num_layers, sel.num_experts
    part = np.repeat(np.arange(L, dtype=np.int32), E) if per_layer else None
    rows = []
    for c in sizes or capacities(sel):
        each = int(c) // L if per_layer else int(c)
        if each < 1:
            raise ConfigError(f"capacity {c} is less than one expert per layer ({L} layers)")
        for p in policies:
            hits = replay(objs, each, p, part=part, num_objects=L * E)
            rows.append({"policy": p, "capacity": int(c), "fraction": c / (L * E),
                         "hit_rate": hits / objs.size})
    return rows


def hit_rate_at(rows: list[dict], policy: str, capacity: int) -> float:
    for r in rows:
        if r["policy"] == policy and r["capacity"] == capacity:
            return r["hit_rate"]
    raise KeyError(f"no row for policy {policy!r} at capacity {capacity}")


def split_outcomes(data: HeldOut, capacity: float, share: float, *, hardware="accelerator",
                   lookahead: int = 1) -> list[dict]:
    """Two systems with a buffer of `capacity` experts: the whole buffer as an LRU cache, and
    st-moe's held-out predictions staged in a `share` of it (prediction-aware cache in the
    rest). One dict per system: `SimulationResult.row()` with `system` relabelled, `capacity`, `share`
    and `miss_rate`."""
    hw = preset(hardware)
    runs = [("cache only (LRU)", "lru-cache", BufferSpec(capacity, "experts", prefetch_share=0.0), None),
            (f"st-moe, {share:.0%} staging", "st-moe",
             BufferSpec(capacity, "experts", prefetch_share=share, policy="predictive"),
             data.predictions_for(lookahead))]
    rows = []
    for label, system, spec, pred in runs:
        r = simulate(data.scored, hw, system, predictions=pred, buffer=spec, dims=data.dims,
                     lookahead=lookahead)
        row = {**r.row(), "system": label, "capacity": capacity, "share": share if pred is not None else 0.0}
        row["miss_rate"] = 1.0 - row["hit_rate"] - row["late_prefetch_rate"]
        rows.append(row)
    return rows


def share_sweep(data: HeldOut, capacity: float, shares, *, hardware="accelerator", lookahead: int = 1) -> list[dict]:
    """st-moe's outcomes as its staging share varies at a fixed capacity."""
    return [split_outcomes(data, capacity, s, hardware=hardware, lookahead=lookahead)[1] for s in shares]


