"""The Pareto front of explored designs: the points no other point beats on every objective.

Objectives are minimised: latency and energy per token, and buffer area (the cost of a bigger
buffer, `stmoe.sim.hardware.buffer_area_mm2`). Any subset of them can be asked for, e.g. latency
and area alone.

Values within a relative tolerance (`TOLERANCE`, 0.1% by default) count as equal. The simulator is
deterministic, so it separates designs by any margin, down to a millionth of a microsecond; but
differences far below what its model or any measurement resolves mean nothing (chapter 05's
bootstrap intervals over held-out tokens are about a percent wide, and its assumed constants move
results by a few percent), and a strict front is decided by them: a design 0.0006 µs faster while
spending five times the energy would be "on the front", one 0.006 µs slower "off it".
"""

from __future__ import annotations

import math

import numpy as np

from stmoe.errors import ConfigError

OBJECTIVES = ("latency_per_token_s", "energy_per_token_j", "buffer_area_mm2")

# Relative differences below this count as ties: a tenth of the ~1% width of chapter 05's
# bootstrap intervals, so only differences no analysis here could resolve are collapsed
TOLERANCE = 1e-3


def _check_tolerance(tolerance) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
            or not math.isfinite(tolerance) or not 0 <= tolerance < 1:
        raise ConfigError(f"pareto: tolerance is a relative difference, 0 <= tolerance < 1, got {tolerance!r}")
    return float(tolerance)


def _strict_mask(v: np.ndarray) -> np.ndarray:
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


def pareto_mask(values, tolerance: float = TOLERANCE) -> np.ndarray:
    """For an [n, d] array of objectives to minimise, whether each row is on the front: no other
    row is no worse than it beyond `tolerance` in every column and better beyond it in one (b is
    dominated by a when a <= b + tolerance * |b| in every column and a < b - tolerance * |b| in
    one). Values within the tolerance are ties, and ties are all kept; tolerance 0 is the strict
    front (<= in every column and < in one). With a tolerance, beating is not transitive: a row
    can be beaten by one that is itself off the front (c within the tolerance of b, b of a, but
    not c of a), so steps each smaller than the tolerance are all dropped."""
    tolerance = _check_tolerance(tolerance)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ConfigError(f"pareto: objectives must be an [n, d] array, got shape {v.shape}")
    if np.isnan(v).any():
        raise ConfigError("pareto: an objective is NaN")
    strict = _strict_mask(v)
    if tolerance == 0 or not len(v):
        return strict
    # If a beats b beyond the tolerance, so does any point of the strict front that is <= a in
    # every column, and one always is: testing the strict front's points is enough (O(n * front)).
    f = v[strict]
    slack = tolerance * np.abs(v)
    keep = np.ones(len(v), bool)
    for i in range(len(v)):
        no_worse = np.all(f <= v[i] + slack[i], axis=1)
        better = np.any(f < v[i] - slack[i], axis=1)
        keep[i] = not np.any(no_worse & better)
    return keep


def tolerance_note(tolerance: float = TOLERANCE) -> str:
    """The tolerance a front was computed with, in the one wording headlines, tables and charts
    say it in."""
    tolerance = _check_tolerance(tolerance)
    return f"objectives within {tolerance:.2%} of each other count as equal" if tolerance else "strict: no tolerance"


def pareto_front(rows: list[dict], objectives=OBJECTIVES, tolerance: float = TOLERANCE) -> list[dict]:
    """The rows on the Pareto front over `objectives` (fields of the rows, all minimised), values
    within a relative `tolerance` counting as equal (see `pareto_mask`), in increasing order of the
    first objective."""
    objectives = tuple(objectives)
    if len(objectives) < 2 or len(set(objectives)) != len(objectives):
        raise ConfigError(f"pareto: at least two different objectives, got {objectives!r}")
    if not rows:
        _check_tolerance(tolerance)
        return []
    missing = [o for o in objectives if o not in rows[0]]
    if missing:
        raise ConfigError(f"pareto: the rows have no field {missing[0]!r}")
    mask = pareto_mask([[r[o] for o in objectives] for r in rows], tolerance)
    return sorted((r for r, m in zip(rows, mask) if m), key=lambda r: tuple(r[o] for o in objectives))
