"""How unevenly each layer's router spreads its requests over the experts.

Per layer, from the counts of routed requests per expert:

- entropy in bits (log2 E when every expert is asked equally often, 0 when one expert takes all)
  and the normalised entropy (entropy / log2 E);
- the Gini coefficient of the counts (0 = equal, towards 1 = concentrated);
- the top-10% share: the fraction of requests that go to the most requested tenth of the experts
  (0.1 when equal). This is what a static cache of the hottest experts would hit.

Short traces overstate concentration: a few hundred requests over 128 experts are uneven by
chance alone. `uniform_baseline` measures the same statistics on uniformly random routing with
the trace's shape, so every figure can be read against what chance gives.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.trace import Trace, phase_code

STATS = ("entropy_bits", "normalised_entropy", "gini", "top10_share")


def expert_counts(trace: Trace, phase: str | None = None) -> np.ndarray:
    """Routed requests per (layer, expert): int64 [L, E]; phase None or "all" counts every token."""
    ids = trace.expert_ids
    if phase not in (None, "all"):
        ids = ids[trace.phase == phase_code(phase)]
    L, E = trace.num_layers, trace.num_experts
    layer = np.broadcast_to(np.arange(L)[None, :, None], ids.shape)
    routed = ids >= 0
    flat = layer[routed].astype(np.int64) * E + ids[routed]
    return np.bincount(flat, minlength=L * E).reshape(L, E)


def layer_stats(counts: np.ndarray, top_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Each statistic of the module docstring, one value per layer (NaN for a layer without
    requests)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] < 2:
        raise ConfigError(f"counts must be [layers, experts] with at least 2 experts, got shape {counts.shape}")
    if not 0.0 < top_fraction <= 1.0:
        raise ConfigError(f"top_fraction must be in (0, 1], got {top_fraction!r}")
    E = counts.shape[1]
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / total
        entropy = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
        ranked = np.sort(counts, axis=1)                       # ascending
        i = np.arange(1, E + 1)
        gini = 2.0 * (ranked * i).sum(axis=1) / (E * total[:, 0]) - (E + 1) / E
        top = max(int(np.ceil(top_fraction * E)), 1)
        top_share = ranked[:, -top:].sum(axis=1) / total[:, 0]
    empty = total[:, 0] == 0
    entropy[empty] = np.nan
    return {"entropy_bits": entropy, "normalised_entropy": entropy / np.log2(E), "gini": gini,
            "top10_share": top_share}


def layer_popularity(trace: Trace, phase: str | None = "decode") -> list[dict]:
    """One row per layer: {layer, requests, <STATS>} for the tokens of `phase`."""
    counts = expert_counts(trace, phase)
    stats = layer_stats(counts)
    return [{"layer": l, "requests": int(counts[l].sum()), **{s: float(stats[s][l]) for s in STATS}}
            for l in range(trace.num_layers)]


def uniform_baseline(trace: Trace, phase: str | None = "decode", *, seed: int = 0,
                     repeats: int = 8) -> dict[str, float]:
    """The mean of each statistic over layers and `repeats` draws of uniformly random routing with
    the same number of tokens, layers and top-k (k distinct experts per cell)."""
    counts = expert_counts(trace, phase)
    T = int(counts.sum(axis=1).max() // trace.top_k)
    if T == 0:
        raise ConfigError(f"trace {trace.label!r} has no routed {phase} tokens")
    rng = np.random.default_rng(seed)
    L, E, k = trace.num_layers, trace.num_experts, trace.top_k
    out = {s: [] for s in STATS}
    for _ in range(repeats):
        # k distinct experts per cell: the k smallest of E random keys
        ids = np.argpartition(rng.random((T, L, E)), k - 1, axis=2)[:, :, :k]
        fake = Trace(ids, num_experts=E)
        stats = layer_stats(expert_counts(fake))
        for s in STATS:
            out[s].append(np.nanmean(stats[s]))
    return {s: float(np.mean(v)) for s, v in out.items()}


def mean_stats(rows: list[dict]) -> dict[str, float]:
    """The mean of each statistic over the rows of `layer_popularity` (layers with requests)."""
    return {s: float(np.nanmean([r[s] for r in rows])) for s in STATS}


def share_overlap(a: np.ndarray, b: np.ndarray, top_fraction: float = 0.1) -> np.ndarray:
    """Per layer, the fraction of `a`'s hottest experts (top `top_fraction`) that are also among
    `b`'s hottest: 1 = the same hot set (a cache profiled on one serves the other), about
    `top_fraction` for unrelated sets."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ConfigError(f"counts to compare must have the same shape, got {a.shape} and {b.shape}")
    top = max(int(np.ceil(top_fraction * a.shape[1])), 1)
    hot_a = np.argsort(-a, axis=1, kind="stable")[:, :top]
    hot_b = np.argsort(-b, axis=1, kind="stable")[:, :top]
    return (hot_a[:, :, None] == hot_b[:, None, :]).any(axis=2).mean(axis=1)
