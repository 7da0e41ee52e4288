"""The lesson of fitting versus held-out scoring (notebook 02): the same profiled table scored
on the tokens it was counted on and on tokens it never saw.

Both scores use one static table (``online=False``: no counting while scoring), profiled on
the same tokens, so the gap is only the optimism of scoring a table on its own data. It shrinks
as the profile grows relative to the table's E x E cells per layer pair.
"""

from __future__ import annotations

import numpy as np

from stmoe.bootstrap import describe, interval_fields, ratio_interval, resampling_units
from stmoe.errors import ConfigError
from stmoe.predictors import check_budget, make
from stmoe.predictors.base import cell_hits
from stmoe.splits import split
from stmoe.trace import Trace, phase_code


def recall_on(trace: Trace, pred: np.ndarray, phase: str = "decode") -> float:
    """Micro-averaged recall of predictions `pred` [T, L, m] on the routed `phase` cells."""
    hits, routed, _ = cell_hits(pred, trace.expert_ids)
    keep = (trace.phase == phase_code(phase))[:, None]
    if (routed * keep).sum() == 0:
        raise ConfigError(f"phase: {trace.label} has no routed {phase} cells to score")
    return float((hits * keep).sum() / (routed * keep).sum())


def recall_with_interval(trace: Trace, pred: np.ndarray, field: str, phase: str = "decode") -> dict:
    """{field: `recall_on`'s recall, field_ci_low, field_ci_high: its 95% bootstrap interval over
    the trace's sequences (blocks of tokens for a one-sequence trace; `stmoe.bootstrap`), field_units:
    what was resampled}."""
    hits, routed, _ = cell_hits(pred, trace.expert_ids)
    keep = (trace.phase == phase_code(phase))[:, None]
    unit, units = resampling_units(trace.sequence)
    h = np.bincount(unit, weights=(hits * keep).sum(axis=1))
    r = np.bincount(unit, weights=(routed * keep).sum(axis=1))
    if r.sum() == 0:
        raise ConfigError(f"phase: {trace.label} has no routed {phase} cells to score")
    scored = r > 0     # a unit with no routed cells of the phase has nothing to resample
    left_out = f" ({int((~scored).sum())} without routed {phase} cells left out)" if not scored.all() else ""
    return {field: float(h.sum() / r.sum()), **interval_fields(field, ratio_interval(h[scored], r[scored])),
            f"{field}_units": describe(units + left_out, count=int(scored.sum()))}


def _prefix(trace: Trace, n: int) -> Trace:
    """The first n sequences of a trace (the first n tokens of a one-sequence trace)."""
    seqs = trace.sequence_ids()
    if len(seqs) >= 2:
        return trace.select(sequences=seqs[:n])
    return trace.select(tokens=np.arange(trace.num_tokens) < n)


def fitting_gap(trace: Trace, predictor: str = "cct", *, budget: int | None = None,
                phase: str = "decode", profile_sizes=None) -> list[dict]:
    """Rows {profile_sequences or profile_tokens, in_sample, held_out, gap}: a static table
    profiled on the first half of the sequences (or tokens), or on its first n sequences
    (tokens) for each n in `profile_sizes`, scored on that profile (in-sample) and on the
    second half (held-out). Each score also has its interval (`recall_with_interval`:
    in_sample_ci_low, ..., held_out_ci_high, and the *_units they resampled); the two are
    drawn on different tokens, so each says how far its own score could move."""
    profile, scored = split(trace)
    m = check_budget(trace.top_k if budget is None else budget, trace.num_experts)
    one_sequence = len(trace.sequence_ids()) < 2
    unit = "profile_tokens" if one_sequence else "profile_sequences"
    full = profile.num_tokens if one_sequence else len(profile.sequence_ids())
    sizes = [full] if profile_sizes is None else list(profile_sizes)
    if not sizes or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= full
                        for n in sizes):
        raise ConfigError(f"profile_sizes: must be integers from 1 to {full} ({unit.split('_')[1]} in "
                          f"the profile half of {trace.label}), got {profile_sizes!r}")
    rows = []
    for n in sizes:
        part = _prefix(profile, int(n))
        table = make(predictor, online=False).fit(part)
        inside = recall_with_interval(part, table.predict_trace(part, m), "in_sample", phase)
        outside = recall_with_interval(scored, table.predict_trace(scored, m), "held_out", phase)
        rows.append({unit: int(n), "tokens": part.num_tokens, **inside, **outside,
                     "gap": inside["in_sample"] - outside["held_out"]})
    return rows
