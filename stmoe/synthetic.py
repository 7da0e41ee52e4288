"""A seeded synthetic routing generator whose structure can be dialled, for teaching and scale
tests. Its traces always say they are synthetic (``meta['synthetic'] = True``).

The model is a noisy router. At token t and layer l every expert j gets a logit

    z_j = log p_l(j)                              per-layer popularity (Zipf, exponent `popularity_skew`)
        + temporal_reuse       * [j in R(t-1, l)]  the previous token's experts at this layer
        + cross_layer_affinity * [j in A_l(R(t, l-1))]  experts "wired" to this token's picks one layer up
        + Gumbel noise

and the router takes the top-k logits (Gumbel top-k samples k experts without replacement in
proportion to exp(z)). A_l maps each expert of layer l-1 to `affinity_fanout` experts of layer
l, fixed per trace. All three knobs at 0 give uniform random routing (chance recall k/E).
"""

from __future__ import annotations

import numbers

import numpy as np

from stmoe.errors import StmoeError
from stmoe.trace import DECODE, PREFILL, Trace


def synthetic_trace(
    num_tokens: int = 4096,
    num_layers: int = 16,
    num_experts: int = 64,
    top_k: int = 4,
    *,
    popularity_skew: float = 0.8,
    temporal_reuse: float = 1.5,
    cross_layer_affinity: float = 2.0,
    affinity_fanout: int = 2,
    num_sequences: int = 8,
    prompt_tokens: int = 32,
    seed: int = 0,
    domain: str = "synthetic",
) -> Trace:
    """Generate a trace; the same arguments always give the same trace."""
    for name, value, lo in (("num_tokens", num_tokens, 1), ("num_layers", num_layers, 1),
                            ("num_experts", num_experts, 1), ("top_k", top_k, 1),
                            ("num_sequences", num_sequences, 1), ("affinity_fanout", affinity_fanout, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
            raise StmoeError(f"synthetic_trace: {name} must be an integer >= {lo}, got {value!r}")
    if top_k > num_experts:
        raise StmoeError(f"synthetic_trace: top_k {top_k} exceeds num_experts {num_experts}")
    if num_sequences > num_tokens:
        raise StmoeError(f"synthetic_trace: num_sequences {num_sequences} exceeds num_tokens {num_tokens}")
    for name, value in (("popularity_skew", popularity_skew), ("temporal_reuse", temporal_reuse),
                        ("cross_layer_affinity", cross_layer_affinity), ("prompt_tokens", prompt_tokens)):
        if not np.isfinite(value) or value < 0:
            raise StmoeError(f"synthetic_trace: {name} must be a finite value >= 0, got {value!r}")

    rng = np.random.default_rng(seed)
    T, L, E, k, S = int(num_tokens), int(num_layers), int(num_experts), int(top_k), int(num_sequences)
    fan = min(int(affinity_fanout), E)

    ranks = np.arange(1, E + 1, dtype=np.float64)
    base = -popularity_skew * np.log(ranks)
    log_pop = np.stack([rng.permutation(base) for _ in range(L)]).astype(np.float32)  # [L, E]
    affinity = np.stack([np.stack([rng.choice(E, fan, replace=False) for _ in range(E)])
                         for _ in range(L)])  # [L, E, fan]: row l maps layer l-1's experts to l's

    lengths = np.full(S, T // S)
    lengths[: T % S] += 1
    max_len = int(lengths.max())
    ids = np.full((S, max_len, L, k), -1, dtype=np.int16)
    weights = np.zeros((S, max_len, L, k), dtype=np.float32)
    rows = np.arange(S)[:, None]
    temporal = np.float32(temporal_reuse)
    spatial = np.float32(cross_layer_affinity)
    for pos in range(max_len):
        for layer in range(L):
            logits = np.broadcast_to(log_pop[layer], (S, E)).copy()
            if pos > 0 and temporal:
                logits[rows, ids[:, pos - 1, layer].astype(np.int64)] += temporal
            if layer > 0 and spatial:
                wired = affinity[layer][ids[:, pos, layer - 1].astype(np.int64)].reshape(S, -1)
                bonus = np.zeros((S, E), dtype=np.float32)
                bonus[rows, wired] = spatial  # an expert wired from several picks counts once
                logits += bonus
            noisy = logits + rng.gumbel(size=(S, E)).astype(np.float32)
            top = np.argpartition(-noisy, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(noisy, top, axis=1), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            chosen = np.take_along_axis(logits, top, axis=1)
            gate = np.exp(chosen - chosen.max(axis=1, keepdims=True))
            ids[:, pos, layer] = top
            weights[:, pos, layer] = gate / gate.sum(axis=1, keepdims=True)

    valid = np.arange(max_len)[None, :] < lengths[:, None]  # [S, max_len]
    phase = np.where(np.arange(max_len)[None, :] < prompt_tokens, PREFILL, DECODE)
    phase = np.broadcast_to(phase, (S, max_len))
    meta = {
        "name": f"synthetic-seed{seed}",
        "model": "synthetic router",
        "synthetic": True,
        "domain": domain,
        "source": "stmoe.synthetic_trace",
        "license": "generated data, no license needed",
        "generator": {
            "popularity_skew": popularity_skew, "temporal_reuse": temporal_reuse,
            "cross_layer_affinity": cross_layer_affinity, "affinity_fanout": fan,
            "num_sequences": S, "prompt_tokens": prompt_tokens, "seed": seed,
        },
        "caveats": ["synthetic: generated by stmoe.synthetic_trace, not recorded from a model"],
    }
    return Trace(ids[valid], num_experts=E, phase=phase[valid],
                 sequence=np.broadcast_to(np.arange(S)[:, None], (S, max_len))[valid],
                 weights=weights[valid], meta=meta, origin="synthetic")
