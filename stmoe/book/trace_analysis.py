"""Expert popularity by phase, read against chance: what notebook 01 and its explorer show.

The statistics themselves (per layer entropy, Gini, top-10% share) are `stmoe.analysis.popularity`;
this module adds what reading them needs:

- the phase: the same statistics for prefill or decode tokens only;
- the normalised entropy, entropy / log2 E (1 = every expert equally used);
- `uniform_baseline`: short traces look concentrated by chance alone (a few hundred requests
  over 128 experts are uneven even when every expert is equally likely), so each statistic is
  also measured on uniformly random routing with the trace's shape.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from stmoe.analysis import popularity
from stmoe.errors import ConfigError
from stmoe.trace import Trace, phase_code

STATS = ("entropy_bits", "normalised_entropy", "gini", "top10_share")


def phase_tokens(trace: Trace, phase: str | None) -> Trace:
    """The tokens of one phase ("prefill", "decode"), or all of them for None / "all"."""
    if phase in (None, "all"):
        return trace
    if not np.any(trace.phase == phase_code(phase)):
        raise ConfigError(f"trace {trace.label!r} has no {phase} tokens")
    return trace.select(phase=phase)


def phase_popularity(trace: Trace, phase: str | None = "decode") -> dict:
    """`stmoe.analysis.popularity` of one phase's tokens, with `normalised_entropy` and
    `requests` (routed requests per layer) added; layers without requests hold NaN."""
    pop = popularity(phase_tokens(trace, phase))
    requests = pop["counts"].sum(axis=1)
    empty = requests == 0
    out = {"counts": pop["counts"], "requests": requests,
           "normalised_entropy": pop["entropy_bits"] / pop["max_entropy_bits"]}
    for s in ("entropy_bits", "gini", "top10_share"):
        out[s] = pop[s].astype(np.float64)
    for s in STATS:
        out[s] = np.where(empty, np.nan, out[s])
    return out


def layer_popularity(trace: Trace, phase: str | None = "decode") -> list[dict]:
    """One row per layer: {layer, requests, <STATS>}."""
    pop = phase_popularity(trace, phase)
    return [{"layer": l, "requests": int(pop["requests"][l]), **{s: float(pop[s][l]) for s in STATS}}
            for l in range(trace.num_layers)]


def mean_stats(rows: list[dict]) -> dict[str, float]:
    """The mean of each statistic over the rows of `layer_popularity`, skipping layers without
    requests (NaN when none has any)."""
    out = {}
    for s in STATS:
        values = np.array([r[s] for r in rows], dtype=np.float64)
        out[s] = float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")
    return out


def uniform_baseline(trace: Trace, phase: str | None = "decode", *, seed: int = 0,
                     repeats: int = 4) -> dict[str, float]:
    """The mean of each statistic over layers and `repeats` draws of uniformly random routing
    (k distinct experts per cell) with the phase's number of tokens, layers, E and k."""
    T = phase_tokens(trace, phase).num_tokens
    return dict(_uniform(T, trace.num_layers, trace.num_experts, trace.top_k, seed, repeats))


@lru_cache(maxsize=32)
def _uniform(T: int, L: int, E: int, k: int, seed: int, repeats: int) -> tuple:
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(repeats):
        keys = rng.random((T, L, E), dtype=np.float32)
        ids = np.argpartition(keys, k - 1, axis=2)[:, :, :k]   # the k smallest keys: k distinct experts
        draws.append(mean_stats(layer_popularity(Trace(ids, num_experts=E), None)))
    return tuple((s, float(np.mean([d[s] for d in draws]))) for s in STATS)
