"""How predictable is a routing trace? Popularity, temporal reuse, cross-layer affinity,
domain comparison and a predictability ceiling, vectorised over tokens.

Notation: R(t, l) is the set of experts routed for token t at layer l (slots with -1 are not
routed and ignored); c_l(j) = #{t : j in R(t, l)}; E experts, k per token.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numba import njit

from stmoe.errors import ConfigError
from stmoe.predictors.base import check_budget, check_table_memory
from stmoe.trace import DECODE, PREFILL, Trace


def _multi_hot(trace: Trace, layer: int) -> np.ndarray:
    """[T, E] bool: M[t, j] = j in R(t, layer)."""
    ids = trace.expert_ids[:, layer]
    M = np.zeros((trace.num_tokens, trace.num_experts + 1), dtype=bool)
    M[np.arange(trace.num_tokens)[:, None], np.where(ids >= 0, ids, trace.num_experts)] = True
    return M[:, :-1]


def expert_counts(trace: Trace) -> np.ndarray:
    """c[l, j] = #{t : j in R(t, l)}, shape [L, E]."""
    L, E = trace.num_layers, trace.num_experts
    ids = trace.expert_ids.astype(np.int64)
    flat = (np.arange(L)[None, :, None] * E + ids)[ids >= 0]
    return np.bincount(flat, minlength=L * E).reshape(L, E)


def popularity(trace: Trace) -> dict:
    """Per layer, from p_l(j) = c_l(j) / sum_j c_l(j):

    - entropy_bits  H_l = -sum_j p_l(j) log2 p_l(j)  (log2 E for uniform use, log2 k minimum)
    - gini          G_l = sum_i (2 i - E - 1) x_(i) / (E sum_i x_(i)), x sorted ascending
                    (0 = every expert equally used, -> 1 = one expert takes all)
    - top10_share   share of requests taken by the ceil(E / 10) most used experts
    """
    c = expert_counts(trace).astype(np.float64)
    E = trace.num_experts
    total = np.maximum(c.sum(axis=1, keepdims=True), 1.0)
    p = c / total
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    x = np.sort(c, axis=1)
    i = np.arange(1, E + 1)
    gini = ((2 * i - E - 1) * x).sum(axis=1) / (E * total[:, 0])
    top = int(np.ceil(E / 10))
    top10 = np.sort(p, axis=1)[:, -top:].sum(axis=1)
    return {"entropy_bits": entropy, "max_entropy_bits": float(np.log2(E)), "gini": gini,
            "top10_share": top10, "counts": c.astype(np.int64)}


def temporal_reuse(trace: Trace, max_distance: int = 64) -> dict:
    """Temporal locality within each sequence.

    - reuse[l] = sum_t |R(t, l) ∩ R(t-1, l)| / sum_t |R(t, l)| over tokens t with a previous
      token t-1 in the same sequence (chance level: k / E)
    - distance_hist[d-1] for d = 1..max_distance: how many requests (t, l, j) were last made
      by the same expert at the same layer d tokens earlier in the sequence; `first_use`
      counts requests with no earlier use, `beyond` those further than max_distance
    """
    L = trace.num_layers
    prev = trace.previous_token()
    has = prev >= 0
    reuse = np.zeros(L)
    hist = np.zeros(max_distance, dtype=np.int64)
    first = beyond = 0
    tok = np.arange(trace.num_tokens)
    for l in range(L):
        M = _multi_hot(trace, l)
        reuse[l] = (M[has] & M[prev[has]]).sum() / max(M[has].sum(), 1)
        # Requests in (expert, token) order: consecutive entries of one expert and sequence
        # are the reuse distances.
        j, t = np.nonzero(M.T)
        same = (j[1:] == j[:-1]) & (trace.sequence[t[1:]] == trace.sequence[t[:-1]])
        d = (tok[t[1:]] - tok[t[:-1]])[same]
        hist += np.bincount(np.minimum(d, max_distance + 1), minlength=max_distance + 2)[1:max_distance + 1]
        beyond += int((d > max_distance).sum())
        first += int(len(t) - same.sum())
    return {"reuse": reuse, "chance": trace.top_k / trace.num_experts, "distance_hist": hist,
            "first_use": first, "beyond": beyond}


def transition_counts(trace: Trace, layer: int) -> np.ndarray:
    """C[i, j] = #{t : i in R(t, layer), j in R(t, layer + 1)}, shape [E, E]."""
    return _pair_counts(trace.expert_ids[:, layer], trace.expert_ids[:, layer + 1], trace.num_experts)


def _pair_counts(a: np.ndarray, b: np.ndarray, E: int) -> np.ndarray:
    a, b = a.astype(np.int64), b.astype(np.int64)
    ii = np.repeat(a, b.shape[1], axis=1)
    jj = np.tile(b, (1, a.shape[1]))
    ok = (ii >= 0) & (jj >= 0)
    return np.bincount((ii * E + jj)[ok], minlength=E * E).reshape(E, E)


@njit(cache=True)
def shuffle_within(perm, bounds):
    """Shuffle perm[bounds[s]:bounds[s + 1]] in place for each segment s (Fisher-Yates, with
    numba's generator): entries never leave their segment."""
    for s in range(len(bounds) - 1):
        lo = bounds[s]
        for i in range(bounds[s + 1] - 1, lo, -1):
            j = lo + np.random.randint(0, i - lo + 1)
            perm[i], perm[j] = perm[j], perm[i]


@njit(cache=True)
def _pair_mi(ids, l, perm, xlogx, C, rows, cols):
    """Mutual information (bits) of the (i at layer l of token p, j at layer l + 1 of token
    perm[p]) pairs, tokens indexed as in `ids` [L, T, k]: I = log2 n + (sum C log2 C - sum r
    log2 r - sum c log2 c) / n over the pair counts C, its row sums r and column sums c (xlogx[x]
    = x log2 x). C, rows and cols come in zero and are left zero."""
    k = ids.shape[2]
    for t in range(ids.shape[1]):
        u = perm[t]
        na, nb = 0, 0
        for s in range(k):
            na += ids[l, t, s] >= 0
            nb += ids[l + 1, u, s] >= 0
        for s in range(k):
            i = ids[l, t, s]
            if i >= 0:
                rows[i] += nb
                for r in range(k):
                    j = ids[l + 1, u, r]
                    if j >= 0:
                        C[i, j] += 1
            j = ids[l + 1, u, s]
            if j >= 0:
                cols[j] += na
    n = 0
    acc = 0.0
    for i in range(len(rows)):
        if rows[i]:       # only the rows counted into: E x E can be large
            n += rows[i]
            acc -= xlogx[rows[i]]
            rows[i] = 0
            for j in range(len(cols)):
                acc += xlogx[C[i, j]]
                C[i, j] = 0
    for j in range(len(cols)):
        acc -= xlogx[cols[j]]
        cols[j] = 0
    return np.log2(n) + acc / n if n else 0.0


@njit(cache=True)
def _affinity_shuffles(ids, bounds, E, permutations, seed, xlogx):
    """(observed MI, sum of shuffled MIs, shuffles reaching the observed MI) per layer pair of
    `ids` [L, T, k], whose tokens are grouped by sequence (sequence s holds tokens bounds[s] to
    bounds[s + 1]); each shuffle permutes the tokens of each sequence among themselves, once for
    all layer pairs. Grouped, a token's shuffled partner is near it in memory."""
    np.random.seed(seed)
    P = ids.shape[0] - 1
    C = np.zeros((E, E), np.int32)
    rows, cols = np.zeros(E, np.int64), np.zeros(E, np.int64)
    mi, total, reach = np.zeros(P), np.zeros(P), np.zeros(P, np.int64)
    perm = np.arange(ids.shape[1])
    for l in range(P):
        mi[l] = _pair_mi(ids, l, perm, xlogx, C, rows, cols)
    for _ in range(permutations):
        shuffle_within(perm, bounds)
        for l in range(P):
            m = _pair_mi(ids, l, perm, xlogx, C, rows, cols)
            total[l] += m
            reach[l] += m >= mi[l]
    return mi, total, reach


def sequence_segments(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(token order grouping each sequence's tokens together, segment bounds): the tokens of
    sequence s are order[bounds[s]:bounds[s + 1]]."""
    order = np.argsort(trace.sequence, kind="stable")
    cut = np.flatnonzero(np.diff(trace.sequence[order])) + 1
    return order.astype(np.int64), np.concatenate([[0], cut, [trace.num_tokens]]).astype(np.int64)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, Scandinavian Journal of Statistics 6(2), 1979):
    the i-th smallest of m p-values times (m - i + 1), made monotone and capped at 1. Rejecting
    where the adjusted p < alpha keeps the family-wise error rate at alpha under any dependence."""
    p = np.asarray(p_values, np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


SIGNIFICANCE_LEVEL = 0.05


def spatial_affinity(trace: Trace, *, permutations: int = 999, seed: int = 0,
                     progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Cross-layer affinity between layer l and l+1 (L-1 layer pairs).

    - transition[l] = C_l / row sums: P(j at l+1 | i at l), C_l from `transition_counts`
    - mi_bits[l]: mutual information of the (i, j) pairs, from C_l
    - baseline_bits[l]: its mean when layer l+1's tokens are shuffled, which keeps both layers'
      popularity but breaks the link (finite samples give MI > 0 even then)
    - p_value[l] = (1 + #{shuffles with MI >= observed}) / (1 + permutations): a permutation
      test of independence. Tokens, not pairs, are the unit shuffled, because the k x k pairs
      of one token are not independent samples; and only within a sequence (a token of layer
      l+1 is paired with a layer-l token of its own sequence), so what sequences share (their
      topic, their length) is kept and only the token-to-token link is broken. One shuffle
      serves all layer pairs.
    - p_holm[l]: p_value corrected for testing L-1 pairs (`holm`); significant_pairs: how many
      have p_holm < `SIGNIFICANCE_LEVEL`. With N shuffles the smallest p is 1 / (N + 1), so
      N + 1 >= (L - 1) / 0.05 shuffles are needed for every pair to be able to pass.

    `progress` hears when the shuffles start (a compiled loop: seconds for the bundled traces).
    """
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) or permutations < 0:
        raise ConfigError(f"permutations: must be an integer >= 0, got {permutations!r}")
    L, E = trace.num_layers, trace.num_experts
    trans = []
    for l in range(L - 1):
        C = transition_counts(trace, l)
        trans.append(C / np.maximum(C.sum(axis=1, keepdims=True), 1))
    progress(f"cross-layer affinity: {L - 1} layer pairs, {permutations} shuffles within sequences")
    order, bounds = sequence_segments(trace)
    n = trace.num_tokens * trace.top_k ** 2   # the most pairs a count can reach
    x = np.arange(n + 1, dtype=np.float64)
    xlogx = x * np.log2(np.maximum(x, 1))
    grouped = np.ascontiguousarray(trace.expert_ids[order].transpose(1, 0, 2))   # [L, T, k]
    mi, total, reach = _affinity_shuffles(grouped, bounds, E, int(permutations), int(seed), xlogx)
    pval = (1 + reach) / (1 + permutations)
    p_holm = holm(pval)
    return {"transition": np.array(trans), "mi_bits": mi,
            "baseline_bits": total / permutations if permutations else np.full(L - 1, np.nan),
            "p_value": pval, "p_holm": p_holm, "significant_pairs": int((p_holm < SIGNIFICANCE_LEVEL).sum()),
            "level": SIGNIFICANCE_LEVEL, "permutations": int(permutations), "shuffled": "within sequences"}


def compare_domains(a: Trace, b: Trace) -> dict:
    """Per layer, how far two traces' popularity distributions p, q are apart:

    - js_bits = JS(p, q) = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2, in bits (0..1)
    - total_variation = sum_j |p_j - q_j| / 2 (0..1)
    - top_overlap = |top-k(p) ∩ top-k(q)| / k for the k = top_k most used experts
    """
    if (a.num_layers, a.num_experts) != (b.num_layers, b.num_experts):
        raise ConfigError(f"compare_domains: {a.label} has {a.num_layers} layers x {a.num_experts} "
                          f"experts, {b.label} has {b.num_layers} x {b.num_experts}")
    p = expert_counts(a).astype(float)
    q = expert_counts(b).astype(float)
    p /= np.maximum(p.sum(axis=1, keepdims=True), 1)
    q /= np.maximum(q.sum(axis=1, keepdims=True), 1)
    m = (p + q) / 2

    def kl(x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log2(x / y), 0.0).sum(axis=1)

    k = a.top_k
    top_p = np.argsort(-p, axis=1, kind="stable")[:, :k]
    top_q = np.argsort(-q, axis=1, kind="stable")[:, :k]
    overlap = (top_p[:, :, None] == top_q[:, None, :]).any(axis=2).mean(axis=1)
    return {"js_bits": (kl(p, m) + kl(q, m)) / 2, "total_variation": np.abs(p - q).sum(axis=1) / 2,
            "top_overlap": overlap}


def keyed_ceiling(trace: Trace, budget: int | None = None, *, source: str = "spatial") -> dict:
    """An upper bound on the recall at budget m of any predictor whose prediction for (t, l)
    is a function of one key only: the top-ranked expert of R(t, l-1) (source="spatial") or
    of R(t-1, l) (source="temporal"), the same function for every token of the trace.

    For key i at layer l, the best fixed set is the m experts j with the largest counts
    N_l(i, j) = #{t : key = i, j in R(t, l)}, so

        ceiling = sum_l sum_i (sum of the m largest N_l(i, .)) / sum_{t,l} |R(t, l)|

    computed on the trace itself (the empirical distribution): no rule of that form, however
    and wherever fitted, scores higher on these tokens. Rules that see more (all k experts of
    the previous layer, several tokens, online updates) are not bounded by it.
    """
    if source not in ("spatial", "temporal"):
        raise ConfigError(f"keyed_ceiling: source must be 'spatial' or 'temporal', got {source!r}")
    m = check_budget(trace.top_k if budget is None else budget, trace.num_experts)
    E, L = trace.num_experts, trace.num_layers
    prev = trace.previous_token()
    best = total = 0
    for l in range(L):
        if source == "spatial":
            if l == 0:
                continue
            tok = np.arange(trace.num_tokens)
            key = trace.expert_ids[:, l - 1, 0].astype(np.int64)
        else:
            tok = np.flatnonzero(prev >= 0)
            key = trace.expert_ids[prev[tok], l, 0].astype(np.int64)
        tgt = trace.expert_ids[tok, l].astype(np.int64)
        ok = (key[:, None] >= 0) & (tgt >= 0)
        N = np.bincount((key[:, None] * E + tgt)[ok], minlength=E * E).reshape(E, E)
        best += np.sort(N, axis=1)[:, -m:].sum()
        total += int((tgt >= 0).sum())
    return {"ceiling": best / max(total, 1), "budget": m, "source": source,
            "bounds": f"any fixed function of the top-1 expert of "
                      f"{'R(t, l-1)' if source == 'spatial' else 'R(t-1, l)'}, scored on this trace"}


_BLOCK = 2048  # decode steps scored at once by the cross-layer rule


def _overlap_share(pred: np.ndarray, ids: np.ndarray) -> float:
    """Share of the routed experts `ids` [n, L', k] that the predictions `pred` [n, L', m] hold."""
    routed = ids >= 0
    hit = ((ids[..., :, None] == pred[..., None, :]) & routed[..., None]).any(axis=-1)
    return float(hit.sum() / max(routed.sum(), 1))


def _hottest(trace: Trace, tokens: np.ndarray, k: int) -> np.ndarray:
    """[L, k]: each layer's k most requested experts over `tokens` (lower id first on ties)."""
    return np.argsort(-expert_counts(trace.select(tokens=tokens)), axis=1, kind="stable")[:, :k]


def temporal_vs_static(trace: Trace, max_lag: int = 8) -> dict:
    """The simplest temporal and static rules side by side, each as the share of a decode step's
    routed experts it holds at budget k, over the trace's decode steps:

    - previous_token: the experts the previous decode step of the sequence used at the same layer;
    - hottest_in_sample: each layer's k most requested experts over these same decode steps
      (in-sample: fitted on the tokens it scores, an optimistic static rule);
    - hottest_prompt_only: each layer's k most requested experts over the prefill tokens only
      (None without prefill tokens);
    - random: k / E, the expected share of k experts drawn at random;
    - lag_overlap[d - 1]: the experts of the decode step d steps back in the sequence, d = 1..max_lag;
    - cross_layer_in_sample: ST-MoE's spatial rule on the same in-sample footing: the k experts
      j of layer l + 1 with the largest sum over the step's layer-l experts i of the count of
      (i at l, j at l + 1) over these decode steps (layers 1..L-1 scored).

    The first five are the table of BigMoeOnEdge's route-trace findings (github.com/Helldez/
    BigMoeOnEdge, docs/bench-data/2026-07-15-route-trace/findings.md, Apache-2.0), which on the
    Qwen3-30B-A3B trace reads 38.0%, 37.6%, 17.9%, 4.7% and 26.7% at lag 8, and concludes that a
    temporal rule adds nothing over popularity. The spatial rule looks one layer back, not one
    token back, which is why the two conclusions differ."""
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 1:
        raise ConfigError(f"max_lag: must be an integer >= 1, got {max_lag!r}")
    decode = trace.phase == DECODE
    if not decode.any():
        raise ConfigError(f"trace: {trace.label} has no decode tokens; temporal_vs_static scores decode steps")
    ids, k, L, E = trace.expert_ids, trace.top_k, trace.num_layers, trace.num_experts
    steps = np.flatnonzero(decode)
    prev = trace.previous_token()
    back = steps.copy()   # for each step, the token d steps back in its sequence (-1: none)
    lags = []
    for _ in range(max_lag):
        back = np.where(back >= 0, prev[np.maximum(back, 0)], -1)
        ok = back >= 0
        ok[ok] = decode[back[ok]]   # step against step, as the peer's table counts them
        lags.append(_overlap_share(ids[back[ok]], ids[steps[ok]]) if ok.any() else None)
    hot = _hottest(trace, decode, k)
    prompt = trace.phase == PREFILL
    cross = np.zeros((L - 1, E + 1, E), dtype=np.int64)   # row E collects unrouted slots
    for l in range(L - 1):
        src, dst = ids[steps, l].astype(np.int64), ids[steps, l + 1].astype(np.int64)
        pairs = (np.where(src >= 0, src, E)[:, :, None] * E + dst[:, None, :])[(dst >= 0)[:, None, :]
                                                                               .repeat(k, axis=1)]
        cross[l] = np.bincount(pairs, minlength=(E + 1) * E).reshape(E + 1, E)
    cross[:, E] = 0
    held = 0
    for lo in range(0, len(steps), _BLOCK):   # blocks: [n, L-1, E] scores of a whole trace are GBs
        block = steps[lo:lo + _BLOCK]
        src = np.where(ids[block, :-1] >= 0, ids[block, :-1], E).astype(np.int64)   # [n, L-1, k]
        score = cross[np.arange(L - 1)[None, :, None], src].sum(axis=2)             # [n, L-1, E]
        spatial = np.argsort(-score, axis=2, kind="stable")[:, :, :k]
        routed = ids[block, 1:] >= 0
        held += ((ids[block, 1:, :, None] == spatial[:, :, None, :]) & routed[..., None]).any(axis=-1).sum()
    cross_share = float(held / max((ids[steps, 1:] >= 0).sum(), 1))
    return {
        "decode_steps": int(len(steps)), "budget": k,
        "previous_token": lags[0],
        "hottest_in_sample": _overlap_share(np.broadcast_to(hot, (len(steps), L, k)), ids[steps]),
        "hottest_prompt_only": (_overlap_share(np.broadcast_to(_hottest(trace, prompt, k), (len(steps), L, k)),
                                               ids[steps]) if prompt.any() else None),
        "random": k / E,
        "lag_overlap": lags,
        "cross_layer_in_sample": cross_share if L > 1 else None,
        "definitions": "shares of a decode step's routed experts held by each rule at budget k; see "
                       "stmoe.analysis.temporal_vs_static",
    }


def analyze(trace: Trace, *, permutations: int = 999, seed: int = 0,
            progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Everything above for one trace, as JSON-ready numbers (what `stmoe analyze` prints);
    `progress` hears each measure as it starts."""
    # Without a layer pair or a token pair the spatial or temporal figures would read 0.000
    # (no reuse, no ceiling) instead of "not measurable".
    if trace.num_layers < 2:
        raise ConfigError(f"trace: {trace.label} has {trace.num_layers} layer; the cross-layer "
                          "measures need at least 2")
    if not (trace.previous_token() >= 0).any():
        raise ConfigError(f"trace: {trace.label} has no sequence of 2 or more tokens "
                          f"({trace.num_tokens} tokens); the temporal measures need one")
    # int64 and float64 [E, E] counts and transitions kept per layer pair, and one pair's
    # temporaries (measured: 0.68 GB at 2 layers x 4,096 experts, estimated 0.94 GB)
    check_table_memory(trace, "analyze", 16, 24 * trace.num_experts ** 2)
    progress("popularity")
    pop = popularity(trace)
    progress("temporal reuse")
    reuse = temporal_reuse(trace)
    aff = spatial_affinity(trace, permutations=permutations, seed=seed, progress=progress)
    progress("predictability ceilings")
    spatial = keyed_ceiling(trace, source="spatial")
    temporal = keyed_ceiling(trace, source="temporal")
    return {
        "trace": trace.label, "tokens": trace.num_tokens, "num_layers": trace.num_layers,
        "num_experts": trace.num_experts, "top_k": trace.top_k,
        "popularity": {"entropy_bits": pop["entropy_bits"].tolist(), "max_entropy_bits": pop["max_entropy_bits"],
                       "gini": pop["gini"].tolist(), "top10_share": pop["top10_share"].tolist()},
        "temporal": {"reuse": reuse["reuse"].tolist(), "chance": reuse["chance"],
                     "distance_hist": reuse["distance_hist"].tolist(), "first_use": reuse["first_use"],
                     "beyond": reuse["beyond"]},
        "spatial": {"mi_bits": aff["mi_bits"].tolist(), "baseline_bits": aff["baseline_bits"].tolist(),
                    "p_value": aff["p_value"].tolist(), "p_holm": aff["p_holm"].tolist(),
                    "significant_pairs": aff["significant_pairs"], "level": aff["level"],
                    "permutations": permutations, "shuffled": aff["shuffled"]},
        "ceiling": {"spatial_top1": spatial, "temporal_top1": temporal},
        "temporal_vs_static": temporal_vs_static(trace) if (trace.phase == DECODE).any() else None,
    }


def headline(a: dict) -> list[dict]:
    """The key numbers of `analyze(...)` as rows {measure, value, reference}: per-layer measures
    as their mean and range over layers."""

    def spread(values):
        v = np.asarray(values, dtype=float)
        return f"{np.nanmean(v):.3f} (layers {np.nanmin(v):.3f}..{np.nanmax(v):.3f})"

    pop, tem, spa, ceil = a["popularity"], a["temporal"], a["spatial"], a["ceiling"]
    return [
        {"measure": "entropy (bits)", "value": spread(pop["entropy_bits"]),
         "reference": f"uniform {pop['max_entropy_bits']:.2f}"},
        {"measure": "gini", "value": spread(pop["gini"]), "reference": "0 = even"},
        # the ceil(E / 10) most used experts: their share under even use is that count over E
        {"measure": "top-10% experts' share", "value": spread(pop["top10_share"]),
         "reference": f"{math.ceil(2 ** pop['max_entropy_bits'] / 10) / 2 ** pop['max_entropy_bits']:.3f} = even"},
        {"measure": "reuse of previous token's experts", "value": spread(tem["reuse"]),
         "reference": f"chance {tem['chance']:.3f}"},
        {"measure": "MI layer l -> l+1 (bits)", "value": spread(spa["mi_bits"]),
         "reference": f"shuffled {np.nanmean(spa['baseline_bits']):.3f}"},
        {"measure": "permutation p-value (max over layers)", "value": f"{max(spa['p_value'], default=1):.3f}",
         "reference": f"{spa['permutations']} shuffles {spa['shuffled']}"},
        {"measure": "layer pairs significant after Holm", "value": f"{spa['significant_pairs']} of {len(spa['p_holm'])}",
         "reference": f"Holm-adjusted p < {spa['level']}"},
        {"measure": "ceiling, top-1 of layer l-1", "value": f"{ceil['spatial_top1']['ceiling']:.3f}",
         "reference": f"budget {ceil['spatial_top1']['budget']}"},
        {"measure": "ceiling, top-1 of token t-1", "value": f"{ceil['temporal_top1']['ceiling']:.3f}",
         "reference": f"budget {ceil['temporal_top1']['budget']}"},
    ]
