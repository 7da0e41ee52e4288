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

from stmoe.analysis import popularity, temporal_reuse
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


def training_summary(trace: Trace) -> dict:
    """How the model behind a bundled trace was trained, from its meta: steps, tokens seen, why
    training stopped, the final training loss (mean of the last 50 steps) and the held-out loss
    on the trace's own first sequences, in nats per token."""
    t = trace.meta.get("training")
    if not isinstance(t, dict) or "steps" not in t:
        raise ConfigError(f"trace {trace.label!r} records no training (only the project's bundled "
                          "traces do)")
    return {"steps": t["steps"], "tokens_seen": t.get("tokens_seen", 0), "stopped_by": t.get("stopped_by"),
            "final_training_loss": t.get("final_loss_last50"), "heldout_loss": t.get("heldout_loss")}


def trained_against_control(trained: Trace, control: Trace) -> list[dict]:
    """What training changed, on the very same tokens: for a trained model's trace and its
    untrained control, the held-out loss, how evenly experts are used (entropy over log2 E,
    top-10% share, means over layers of decode tokens) and next-token reuse (chance k / E)."""
    if trained.token_ids is None or control.token_ids is None \
            or not np.array_equal(trained.token_ids, control.token_ids):
        raise ConfigError(f"{trained.label} and {control.label} must hold the same tokens")
    rows = []
    for label, trace in (("trained", trained), ("untrained control", control)):
        pop = phase_popularity(trace, "decode")
        reuse = temporal_reuse(trace.select(phase="decode"))
        rows.append({"model": label, "trace": trace.label,
                     "heldout_loss": training_summary(trace)["heldout_loss"],
                     "normalised_entropy": float(np.nanmean(pop["normalised_entropy"])),
                     "top10_share": float(np.nanmean(pop["top10_share"])),
                     "reuse": float(reuse["reuse"].mean()), "chance": reuse["chance"]})
    return rows
