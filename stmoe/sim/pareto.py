"""The Pareto front of explored designs: the points no other point beats on every objective.

Objectives are minimised: latency and energy per token, and buffer area (the cost of a bigger
buffer, `stmoe.sim.hardware.buffer_area_mm2`). Any subset of them can be asked for, e.g. latency
and area alone.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError

OBJECTIVES = ("latency_per_token_s", "energy_per_token_j", "buffer_area_mm2")


def pareto_mask(values) -> np.ndarray:
    """For an [n, d] array of objectives to minimise, whether each row is on the front: no other
    row is <= in every column and < in one. Exact ties are all kept."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ConfigError(f"pareto: objectives must be an [n, d] array, got shape {v.shape}")
    if np.isnan(v).any():
        raise ConfigError("pareto: an objective is NaN")
    keep = np.ones(len(v), bool)
    # sweep in lexicographic order: a point can only be dominated by one before it
    order = np.lexsort(v.T[::-1])
    front: list[int] = []
    for i in order:
        f = v[front]
        if front and np.any(np.all(f <= v[i], axis=1) & np.any(f < v[i], axis=1)):
            keep[i] = False
        else:
            front.append(i)
    return keep


def pareto_front(rows: list[dict], objectives=OBJECTIVES) -> list[dict]:
    """The rows on the Pareto front over `objectives` (fields of the rows, all minimised), in
    increasing order of the first objective."""
    objectives = tuple(objectives)
    if len(objectives) < 2 or len(set(objectives)) != len(objectives):
        raise ConfigError(f"pareto: at least two different objectives, got {objectives!r}")
    if not rows:
        return []
    missing = [o for o in objectives if o not in rows[0]]
    if missing:
        raise ConfigError(f"pareto: the rows have no field {missing[0]!r}")
    mask = pareto_mask([[r[o] for o in objectives] for r in rows])
    return sorted((r for r, m in zip(rows, mask) if m), key=lambda r: tuple(r[o] for o in objectives))
