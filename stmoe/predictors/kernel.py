"""The one compiled loop behind every table-based predictor (popularity, previous-token, history,
cct, st-moe): walk the tokens in time order, score the E experts of every cell from the tables
as they stand, take the top m, then update the tables with the token just routed.

Why compiled: the tables change after every token, and the score of a cell depends on the
table state at that token, so the work is inherently sequential over tokens (numba, see
pyproject). Everything here is exact with respect to the causal contract of
`stmoe.predictors`: cell (t, l) sees the tables after tokens < t, plus the expert ids of its
*source* cell (the cell after whose routing the prediction is issued).

Tables, all counts in "raw" units: the true count is raw / scale, and every update adds
`scale`, which grows by 1/decay per token. That applies an exponential decay `decay ** age`
to every past observation without touching the whole table each token.

- ``pop[l, j]``: how often expert j was routed at layer l
- ``cross[l, i, j]``: how often j was routed at layer l when i was routed at the source cell
  of (t, l) (the layer `lookahead` above, possibly in the previous token)
- ``trans[l, i, j]``: how often j was routed at (t, l) when i was routed at (t-1, l)

Scores of one cell, with the smoothed prior p_j = (pop_j + beta) / (sum pop + E beta):

- spatial   S_j = mean over sources i of (cross_ij + alpha p_j) / (sum_j cross_ij + alpha)
- transition Q_j = the same with `trans` and the previous token's experts at this layer
- history   H_j = sum over the last `hist_len` tokens s of the sequence of
                  hist_decay ** (age - 1) * [j in R(s, l)], normalised to sum 1
- previous  V_j = 1 + (k - slot) / k if j was routed by the previous token at this layer

combined either linearly, w_prior p + w_sp S + w_tr Q + w_h H + w_prev V (mode LINEAR), or as a
product of experts in log space (mode LOG; mode PRODUCT ranks the same by its exponential,
faster when every weight is a multiple of 1/2),

    log p + w_sp (log S - log p) + w_tr (log Q - log p) + w_h (log H' - log p) + w_prev V,

where H' = (H_raw + alpha p) / (sum H_raw + alpha) smooths the history the same way.
Ties go to the lower expert id.

With `hedge` on (st-moe's default), that combination is one member of a pool (`POOL`) with
the four single tables, each ranked exactly as its own predictor ranks it (popularity,
previous-token, history at `pool_hist_len` / `pool_hist_decay`, cct). Each cell stages the
top m of one member, drawn from AdaHedge weights (de Rooij, van Erven, Grunwald & Koolen,
"Follow the leader if you can, hedge if you must", JMLR 15, 2014), one set per phase, updated
once per token with every member's share of that token's routed experts missed; a token's
draws read only tokens routed before it is issued. The guarantee and the draw's randomness:
`stmoe.predictors.tables.STMoE`.
"""

from __future__ import annotations

import numba
import numpy as np

_RENORMALISE_AT = 1e30  # well inside float32, the pair tables' type (half the memory traffic)
_HEDGE_BLOCK = 512  # tokens whose members are ranked before the hedge draws for them
LINEAR, LOG, PRODUCT = 0, 1, 2
TIE_BREAK = 1e-3  # a popularity term too small to reorder the main signal, only to rank ties and fill
# The hedged pool, in the order of the hedge state's last axis.
POOL = ("combination", "popularity", "previous-token", "history", "cct")
COMBINATION, POPULARITY, PREVIOUS, HISTORY, CCT = range(len(POOL))


@numba.njit(cache=True)
def run_tables(ids, prev, src_layer, src_prev, pop, cross, trans, weights, mode, alpha, beta,
               decay, hist_len, hist_decay, budget, start, stop, predict, update,
               phase, hedge, hedge_loss, hedge_gap, pool_hist_len, pool_hist_decay, seed):
    """Predict (if `predict`) and update (if `update`) over tokens start..stop-1 of `ids`
    [T, L, k] (earlier tokens are context: history, previous token, issuing cells).

    `prev[t]`: previous token of t's sequence or -1. Target layer l's source cell is
    (t, src_layer[l]) when src_prev[l] == 0, else (prev[t], src_layer[l]).
    `pop`, `cross`, `trans` are updated in place (raw units, scale 1 on entry and exit).
    A pair table of shape [L, 1, 1] is not kept (neither used nor updated).
    `weights[l]` = (w_prior, w_spatial, w_transition, w_history, w_previous) of layer l.
    With `hedge` (and `predict`), each cell stages one `POOL` member's prediction, drawn with
    the AdaHedge weights of copy t % C and phase[t] from `hedge_loss[C, 2, member]`
    (cumulative losses) and `hedge_gap[C, 2]` (cumulative mixability gaps), both updated in
    place; the draw's uniform number is a hash of (seed, t, l), so it is the same whatever
    the call's range. A cross table must then be kept (the cct member reads it).
    Returns the predictions [stop - start, L, budget] int16 (all -1 when not `predict`).
    """
    L = ids.shape[1]
    E = pop.shape[1]
    out = np.full((stop - start, L, budget), -1, np.int16)
    use_sp, use_tr = cross.shape[1] == E, trans.shape[1] == E
    p = np.empty(E)
    logp = np.zeros(E)
    S = np.empty(E)
    Q = np.empty(E)
    H = np.empty(E)
    score = np.empty(E)
    top_vals = np.empty(budget)
    pool = hedge and predict
    # Hedged, the members of a block of tokens are ranked first (layer-major), then the
    # hedge draws for those tokens in time order (token-major), each token's weights
    # learned from every layer of the tokens before it.
    block = min(_HEDGE_BLOCK, stop - start) if pool else stop - start
    tops = np.full((block if pool else 0, L, len(POOL), budget), -1, np.int16)
    ranked = np.full(min(budget + ids.shape[2], E), -1, np.int16)  # popularity's top m + k
    rank_vals = np.empty(ranked.shape[0])
    member_score = np.empty(E)
    # Hedged: each layer's experts kept sorted by count (`order`, `where` its inverse), and
    # the sparse history's scratch (see `_history_top`).
    order = np.empty((L if pool else 0, E), np.int64)
    where = np.empty((L if pool else 0, E), np.int64)
    moving = np.empty(ids.shape[2], np.int64)
    h_raw = np.zeros(E)
    touched = np.zeros(E, np.bool_)
    cand = np.empty(E, np.int64)
    cand_vals = np.empty(E)
    pop_sum = np.empty(L)
    cross_sum = np.zeros((L, E))
    trans_sum = np.zeros((L, E))
    scale = np.ones(L)
    for l in range(L):
        pop_sum[l] = pop[l].sum()
        cross_sum[l] = _row_sums(cross[l], use_sp, E)
        trans_sum[l] = _row_sums(trans[l], use_tr, E)
        if pool:
            _sort_by_count(order[l], where[l], pop[l])
    lo = start
    while lo < stop:
        hi = min(lo + block, stop)
        # Layer-major: the tables of target layer l change only with routing into layer l, so
        # running all tokens for one layer before the next gives the same result as
        # token-major order, while that layer's tables stay in cache.
        for l in range(L):
            w_prior, w_sp, w_tr, w_h, w_prev = weights[l, 0], weights[l, 1], weights[l, 2], weights[l, 3], \
                weights[l, 4]
            sl = src_layer[l]
            pop_l = pop[l]
            cross_l = cross[l]
            trans_l = trans[l]
            for t in range(lo, hi):
                pt = prev[t]
                st = t if src_prev[l] == 0 else pt
                inv = 1.0 / scale[l]
                if predict:
                    _prior(p, pop_l, pop_sum[l], inv, beta)
                    if pool:
                        _single_tables(tops[t - lo, l], ranked, rank_vals, member_score, H, S, p, pop_l,
                                       order[l], h_raw, touched, cand, cand_vals, cross_l, cross_sum[l], ids,
                                       prev, pt, st, sl, l, inv, alpha, pool_hist_len, pool_hist_decay, top_vals)
                    _prior_term(score, p, logp, w_prior, mode)
                    ref = logp if mode == LOG else p
                    if use_sp and w_sp != 0.0:
                        if not pool:  # else S holds it already
                            _mixture(S, p, cross_l, cross_sum[l], ids, st, sl, inv, alpha)
                        _combine(score, S, ref, w_sp, mode)
                    if use_tr and w_tr != 0.0:
                        _mixture(Q, p, trans_l, trans_sum[l], ids, pt, l, inv, alpha)
                        _combine(score, Q, ref, w_tr, mode)
                    if w_h != 0.0:
                        _history(H, p, ids, prev, pt, l, hist_len, hist_decay, alpha, mode)
                        _combine(score, H, ref, w_h, mode)
                    if w_prev != 0.0 and pt >= 0:
                        _previous_token_bonus(score, ids, pt, l, w_prev)
                    _top(score, tops[t - lo, l, COMBINATION] if pool else out[t - start, l], top_vals)
                if update:
                    pop_sum[l] = _update_tables(pop_l, pop_sum[l], cross_l, cross_sum[l], trans_l, trans_sum[l],
                                                use_sp, use_tr, ids, t, l, st, sl, pt, scale[l])
                    if pool:
                        _raise_routed(order[l], where[l], pop_l, ids, t, l, moving)
                    scale[l] /= decay
                    if scale[l] > _RENORMALISE_AT:
                        pop_sum[l] = _renormalise(pop_l, pop_sum[l], cross_l, cross_sum[l], trans_l, trans_sum[l],
                                                  scale[l])
                        scale[l] = 1.0
                        if pool:  # dividing may make distinct counts equal
                            _sort_by_count(order[l], where[l], pop_l)
        if pool:
            _hedge_block(out, tops, ids, phase, lo, hi, start, hedge_loss, hedge_gap, seed, np.zeros(E, np.bool_))
        lo = hi
    for l in range(L):
        if scale[l] != 1.0:
            _renormalise(pop[l], pop_sum[l], cross[l], cross_sum[l], trans[l], trans_sum[l], scale[l])
    return out


@numba.njit(cache=True, inline="always")
def _hedge_block(out, tops, ids, phase, lo, hi, start, hedge_loss, hedge_gap, seed, routed):
    """Tokens lo..hi-1 in time order: draw each cell's member from the weights of (copy
    t % C, phase[t]), then, the token routed, add every member's loss on it to that copy.
    `routed`: an all-False scratch mask over the experts."""
    n_pool = tops.shape[2]
    w = np.empty(n_pool)
    loss = np.empty(n_pool)
    for t in range(lo, hi):
        c = t % hedge_loss.shape[0]
        ph = phase[t]
        hedge_weights(w, hedge_loss[c, ph], hedge_gap[c, ph])
        for l in range(ids.shape[1]):
            out[t - start, l] = tops[t - lo, l, _draw(w, _uniform(seed, t, l))]
        if _token_losses(loss, tops[t - lo], routed, ids, t):
            hedge_gap[c, ph] += _hedge_update(w, hedge_loss[c, ph], hedge_gap[c, ph], loss)


@numba.njit(cache=True, inline="always")
def _single_tables(tops, ranked, rank_vals, member_score, H, S, p, pop_l, order, h_raw, touched, cand, cand_vals,
                   cross_l, cross_sum, ids, prev, pt, st, sl, l, inv, alpha, hist_len, hist_decay, top_vals):
    """tops[member] for the four single-table members, each ranked as its predictor ranks it
    (the LINEAR scores of `tables.py`); leaves the spatial mixture in S. Popularity's top
    m + k (`ranked`, scratch) also gives previous-token's: below the previous token's experts
    (bonus > 1) every score is TIE_BREAK * p, so the rest of its ranking is popularity's.
    `order`: the layer's experts by count (`_sort_by_count`), which gives popularity's and
    history's rankings without scanning every expert, unless rounding tied two counts' scores
    (then the full scan decides, as the predictors do)."""
    m = tops.shape[1]
    if not _popularity_top(ranked, order, pop_l, p):
        _top(p, ranked, rank_vals)
    tops[POPULARITY] = ranked[:m]
    _previous_token_top(tops[PREVIOUS], ranked, ids, pt, l)
    if not _history_top(tops[HISTORY], h_raw, touched, cand, cand_vals, order, pop_l, p, ids, prev, pt, l,
                        hist_len, hist_decay, top_vals):
        _history(H, p, ids, prev, pt, l, hist_len, hist_decay, alpha, LINEAR)
        for j in range(p.shape[0]):
            member_score[j] = TIE_BREAK * p[j] + H[j]
        _top(member_score, tops[HISTORY], top_vals)
    _mixture(S, p, cross_l, cross_sum, ids, st, sl, inv, alpha)
    _top(S, tops[CCT], top_vals)


@numba.njit(cache=True, inline="always")
def _sort_by_count(order, where, pop_l):
    """order = the experts by count pop_l, highest first, lower id first on ties (a stable
    sort); where[j] = j's position in it."""
    sorted_ = np.argsort(-pop_l, kind="mergesort")
    for r in range(sorted_.shape[0]):
        order[r] = sorted_[r]
        where[sorted_[r]] = r


@numba.njit(cache=True, inline="always")
def _raise_routed(order, where, pop_l, ids, t, l, moving):
    """Keep `order` sorted after token t's experts at layer l were counted. Counts only grow,
    so each of them moves up past the experts it now outranks, the highest placed first: the
    experts above each are then in order, and moving one leaves those below it in place.
    `moving`: scratch of k."""
    n = 0
    for s in range(ids.shape[2]):  # the routed experts by position (insertion sort, k is small)
        j = ids[t, l, s]
        if j < 0:
            continue
        r = n
        while r > 0 and where[moving[r - 1]] > where[j]:
            moving[r] = moving[r - 1]
            r -= 1
        moving[r] = j
        n += 1
    for a in range(n):
        j = moving[a]
        v = pop_l[j]
        r = where[j]
        while r > 0:
            i = order[r - 1]
            if pop_l[i] > v or (pop_l[i] == v and i < j):
                break
            order[r] = i
            where[i] = r
            r -= 1
        order[r] = j
        where[j] = r


@numba.njit(cache=True, inline="always")
def _popularity_top(ranked, order, pop_l, p):
    """ranked = the first len(ranked) of `order`, which is the top of p (highest first,
    lower id first on ties) because p rises with the count; False when rounding gave two
    different counts the same p there (a tie `_top` breaks by id, `order` by count)."""
    E = order.shape[0]
    for r in range(ranked.shape[0]):
        a = order[r]
        if r + 1 < E:
            b = order[r + 1]
            if pop_l[a] != pop_l[b] and p[a] == p[b]:
                return False
        ranked[r] = a
    return True


@numba.njit(cache=True, inline="always")
def _history_top(dest, h_raw, touched, cand, cand_vals, order, pop_l, p, ids, prev, pt, l, hist_len, hist_decay,
                 vals):
    """The history member's top m (scores TIE_BREAK p + H, H as `_history` LINEAR makes it)
    from its candidates alone: the experts of the last `hist_len` tokens, and the first m
    others by count (their H is 0, so they rank as p does). False when rounding tied two of
    those others' scores across different counts (then `_top` over all experts decides).
    `h_raw` and `touched` are all-zero scratch, left so."""
    m = dest.shape[0]
    n = 0
    total = 0.0
    wgt = 1.0
    u = pt
    for _ in range(hist_len):  # the same sums, in the same order, as `_history`
        if u < 0:
            break
        for s in range(ids.shape[2]):
            j = ids[u, l, s]
            if j >= 0:
                if not touched[j]:
                    touched[j] = True
                    cand[n] = j
                    n += 1
                h_raw[j] += wgt
                total += wgt
        wgt *= hist_decay
        u = prev[u]
    for c in range(n):
        j = cand[c]
        h = h_raw[j] / total if total > 0.0 else h_raw[j]
        cand_vals[c] = TIE_BREAK * p[j] + h
    exact = True
    taken = 0
    last = -1
    for r in range(order.shape[0]):
        j = order[r]
        if touched[j]:
            continue
        v = TIE_BREAK * p[j]
        if taken > 0 and v == cand_vals[n - 1] and pop_l[j] != pop_l[last]:
            exact = False
            break
        if taken == m:
            break
        cand[n] = j
        cand_vals[n] = v
        n += 1
        taken += 1
        last = j
    if exact:
        _top_by_value(cand, cand_vals, n, dest, vals)
    for c in range(n):
        touched[cand[c]] = False
        h_raw[cand[c]] = 0.0
    return exact


@numba.njit(cache=True, inline="always")
def _top_by_value(items, values, n, dest, vals):
    """`_top` over the first n (item, value) pairs given in any order: the len(dest) highest
    values, best first, lower item first on ties."""
    m = dest.shape[0]
    dest[:] = -1
    for c in range(n):
        j = items[c]
        v = values[c]
        if dest[m - 1] >= 0 and (v < vals[m - 1] or (v == vals[m - 1] and j > dest[m - 1])):
            continue
        pos = m - 1
        while pos > 0 and (dest[pos - 1] < 0 or vals[pos - 1] < v or (vals[pos - 1] == v and dest[pos - 1] > j)):
            vals[pos] = vals[pos - 1]
            dest[pos] = dest[pos - 1]
            pos -= 1
        vals[pos] = v
        dest[pos] = j


@numba.njit(cache=True, inline="always")
def _previous_token_top(dest, ranked, ids, pt, l):
    """The previous token's experts at layer l in router order, then popularity's ranking."""
    m = dest.shape[0]
    k = ids.shape[2]
    dest[:] = -1
    n = 0
    if pt >= 0:
        for s in range(k):
            j = ids[pt, l, s]
            if j >= 0 and n < m:
                dest[n] = j
                n += 1
    for r in range(ranked.shape[0]):
        j = ranked[r]
        if n == m or j < 0:
            break
        fresh = True
        if pt >= 0:
            for s in range(k):
                if ids[pt, l, s] == j:
                    fresh = False
        if fresh:
            dest[n] = j
            n += 1


@numba.njit(cache=True, inline="always")
def hedge_weights(w, cum_loss, gap):
    """AdaHedge's weights: exp(-eta (L_i - min L)), eta = ln N / gap; with no gap yet
    (eta infinite) uniform over the leaders, i.e. follow the leader."""
    lead = cum_loss.min()
    if gap > 0.0:
        eta = np.log(w.shape[0]) / gap
        for i in range(w.shape[0]):
            w[i] = np.exp(-eta * (cum_loss[i] - lead))
    else:
        for i in range(w.shape[0]):
            w[i] = 1.0 if cum_loss[i] == lead else 0.0
    w /= w.sum()


@numba.njit(cache=True, inline="always")
def _hedge_update(w, cum_loss, gap, loss):
    """Add the members' losses to cum_loss; return the mixability gap delta = h - m >= 0
    (h = w.loss, the expected loss of the draw; m = the mix loss -ln(w.exp(-eta loss)) / eta,
    min of the leaders' losses when eta is infinite)."""
    h = 0.0
    for i in range(w.shape[0]):
        h += w[i] * loss[i]
    low = loss.min()
    if gap > 0.0:
        eta = np.log(w.shape[0]) / gap
        z = 0.0
        for i in range(w.shape[0]):
            z += w[i] * np.exp(-eta * (loss[i] - low))
        mix = low - np.log(z) / eta
    else:
        mix = np.inf
        for i in range(w.shape[0]):
            if w[i] > 0.0 and loss[i] < mix:
                mix = loss[i]
    cum_loss += loss
    return max(h - mix, 0.0)


@numba.njit(cache=True, inline="always")
def _token_losses(loss, tops, routed, ids, t):
    """loss[i] = the share of token t's routed slots that member i's predictions tops[l, i]
    missed, |R(t, l) - P_i(t, l)| summed over layers / (L k), in [0, 1]; False (no losses)
    when the token routed nothing. `routed` is an all-False scratch mask, left so."""
    L, k = ids.shape[1], ids.shape[2]
    loss[:] = 0.0
    n = 0
    for l in range(L):
        for s in range(k):
            j = ids[t, l, s]
            if j >= 0:
                routed[j] = True
                n += 1
        for i in range(tops.shape[1]):
            miss = 0
            for s in range(k):
                miss += ids[t, l, s] >= 0
            for a in range(tops.shape[2]):
                j = tops[l, i, a]
                if j >= 0 and routed[j]:
                    miss -= 1
            loss[i] += miss
        for s in range(k):
            j = ids[t, l, s]
            if j >= 0:
                routed[j] = False
    if n == 0:
        return False
    loss /= L * k
    return True


@numba.njit(cache=True, inline="always")
def _uniform(seed, t, l):
    """A uniform number in [0, 1) from (seed, t, l): splitmix64 (Steele, Lea & Flood, OOPSLA
    2014) of the three, so each cell's draw is fixed whatever else is computed."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(t) * np.uint64(0xBF58476D1CE4E5B9) \
        + np.uint64(l) * np.uint64(0x94D049BB133111EB) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, inline="always")
def _draw(w, u):
    """The member whose cumulative weight first exceeds u."""
    acc = 0.0
    for i in range(w.shape[0] - 1):
        acc += w[i]
        if u < acc:
            return i
    return w.shape[0] - 1


@numba.njit(cache=True, inline="always")
def _row_sums(table, kept, E):
    """sum_j table[i, j] for each source expert i; zeros for a table not kept."""
    sums = np.zeros(E)
    if kept:
        for i in range(E):
            sums[i] = table[i].sum()
    return sums


@numba.njit(cache=True, inline="always")
def _prior(p, pop_l, pop_sum, inv, beta):
    """p_j = (pop_j + beta) / (sum pop + E beta), the counts in true units (raw * inv)."""
    E = p.shape[0]
    norm = 1.0 / (pop_sum * inv + E * beta)
    for j in range(E):
        p[j] = (pop_l[j] * inv + beta) * norm


@numba.njit(cache=True, inline="always")
def _prior_term(score, p, logp, w_prior, mode):
    """Start the scores with the prior's term: w_prior p (LINEAR), log p (LOG; also into logp,
    the reference the other terms are taken against) or p (PRODUCT)."""
    if mode == LINEAR:
        for j in range(p.shape[0]):
            score[j] = w_prior * p[j]
    elif mode == LOG:
        _log(p, logp)
        score[:] = logp
    else:
        score[:] = p


@numba.njit(cache=True, inline="always")
def _history(dest, p, ids, prev, pt, l, hist_len, hist_decay, alpha, mode):
    """dest_j = sum over the last `hist_len` tokens of the sequence (pt, prev[pt], ...) of
    hist_decay ** (age - 1) * [j routed at layer l]: normalised to sum 1 (LINEAR), or smoothed
    towards p like a table row (LOG, PRODUCT)."""
    E = dest.shape[0]
    dest[:] = 0.0
    total = 0.0
    wgt = 1.0
    u = pt
    for _ in range(hist_len):
        if u < 0:
            break
        for s in range(ids.shape[2]):
            j = ids[u, l, s]
            if j >= 0:
                dest[j] += wgt
                total += wgt
        wgt *= hist_decay
        u = prev[u]
    if mode == LINEAR:
        if total > 0.0:
            for j in range(E):
                dest[j] /= total
    else:
        c = 1.0 / (total + alpha)
        for j in range(E):
            dest[j] = (dest[j] + alpha * p[j]) * c


@numba.njit(cache=True, inline="always")
def _previous_token_bonus(score, ids, pt, l, w_prev):
    """score_j += w_prev (1 + (k - slot) / k) for each expert j that token pt routed at layer l,
    in router slot `slot`: the previous token's experts first, in the router's order."""
    k = ids.shape[2]
    for s in range(k):
        j = ids[pt, l, s]
        if j >= 0:
            score[j] += w_prev * (1.0 + (k - s) / k)


@numba.njit(cache=True, inline="always")
def _update_tables(pop_l, pop_sum, cross_l, cross_sum, trans_l, trans_sum, use_sp, use_tr, ids, t, l,
                   st, sl, pt, scale):
    """Count token t's routing at layer l, `scale` per observation: its experts, the pairs from
    its source cell (st, sl) and from the previous token's experts at l. Returns pop_sum."""
    for s in range(ids.shape[2]):
        j = ids[t, l, s]
        if j >= 0:
            pop_l[j] += scale
            pop_sum += scale
    if use_sp:
        _count_pairs(cross_l, cross_sum, ids, st, sl, t, l, scale)
    if use_tr:
        _count_pairs(trans_l, trans_sum, ids, pt, l, t, l, scale)
    return pop_sum


@numba.njit(cache=True, inline="always")
def _renormalise(pop_l, pop_sum, cross_l, cross_sum, trans_l, trans_sum, scale):
    """Divide layer l's tables and their sums by `scale`, back to scale 1. Returns pop_sum."""
    pop_l /= scale
    cross_l /= scale
    cross_sum /= scale
    trans_l /= scale
    trans_sum /= scale
    return pop_sum / scale


@numba.njit(cache=True, inline="always")
def _mixture(dest, p, table, row_sum, ids, st, sl, inv, alpha):
    """dest_j = mean over routed source experts i of the smoothed row P(j | i); p if none.
    Accumulates sum_i c_i row_i first, so the smoothing costs one pass, not one per row."""
    E = p.shape[0]
    dest[:] = 0.0
    n = 0
    csum = 0.0
    if st >= 0:
        for s in range(ids.shape[2]):
            i = ids[st, sl, s]
            if i < 0:
                continue
            n += 1
            c = 1.0 / (row_sum[i] * inv + alpha)
            csum += c
            row = table[i]
            for j in range(E):
                dest[j] += c * row[j]
    if n == 0:
        dest[:] = p
    else:
        a = alpha * csum / n
        b = inv / n
        for j in range(E):
            dest[j] = dest[j] * b + a * p[j]


@numba.njit(cache=True, inline="always")
def _combine(score, comp, ref, w, mode):
    """LINEAR: score += w comp. LOG: score += w (log comp - ref), ref = log p, comp
    overwritten. PRODUCT (LOG's ranking, exp of it, when 2w is an integer, without logs):
    score *= (comp / ref) ** w, ref = p; comp overwritten."""
    E = comp.shape[0]
    if mode == LINEAR:
        for j in range(E):
            score[j] += w * comp[j]
    elif mode == LOG:
        _log(comp, comp)
        for j in range(E):
            score[j] += w * (comp[j] - ref[j])
    else:
        # Separate passes, each a plain loop over j, so every one vectorises.
        for j in range(E):
            comp[j] /= ref[j]
        if w - int(w) > 0.25:
            for j in range(E):
                score[j] *= np.sqrt(comp[j])
        for _ in range(int(w)):
            for j in range(E):
                score[j] *= comp[j]


@numba.njit(cache=True, inline="always")
def _log(x, out):
    """Natural log of positive x, to about 1e-9 absolute: exponent from the bits, then the
    atanh series on the mantissa scaled into [0.707, 1.414]. Two alias-free passes so the
    compiler vectorises both; several times faster than np.log without a vector math
    library, and ranking needs no more precision."""
    n = x.shape[0]
    bits = x.view(np.int64)
    mant_bits = np.empty(n, np.int64)
    expo = np.empty(n)
    for j in range(n):
        b = bits[j]
        expo[j] = ((b >> 52) & 0x7FF) - 1023
        mant_bits[j] = (b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000
    mant = mant_bits.view(np.float64)
    for j in range(n):
        m = mant[j]
        big = m > 1.4142135623730951
        m = m * 0.5 if big else m
        t = (m - 1.0) / (m + 1.0)
        t2 = t * t
        out[j] = (expo[j] + (1.0 if big else 0.0)) * 0.6931471805599453 \
            + 2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0 + t2 / 9.0))))


@numba.njit(cache=True, inline="always")
def _count_pairs(table, row_sum, ids, st, sl, t, l, amount):
    if st < 0:
        return
    k = ids.shape[2]
    for a in range(k):
        i = ids[st, sl, a]
        if i < 0:
            continue
        for b in range(k):
            j = ids[t, l, b]
            if j >= 0:
                table[i, j] += amount
                row_sum[i] += amount


@numba.njit(cache=True, inline="always")
def _top(score, dest, vals):
    """Indices of the len(dest) highest scores, best first, lower index first on ties: one
    pass keeping a sorted buffer (`vals`, scratch), since most scores fail the first test."""
    m = min(dest.shape[0], score.shape[0])
    dest[:] = -1
    for j in range(score.shape[0]):
        v = score[j]
        if dest[m - 1] >= 0 and not v > vals[m - 1]:
            continue
        pos = m - 1
        while pos > 0 and (dest[pos - 1] < 0 or vals[pos - 1] < v):
            vals[pos] = vals[pos - 1]
            dest[pos] = dest[pos - 1]
            pos -= 1
        vals[pos] = v
        dest[pos] = j


@numba.njit(cache=True)
def merge_cells(primary, filler):
    """Per cell, primary's experts (-1 = none) first, then filler's in order, without repeats,
    up to primary's width m. Both [T, L, *]; returns a new [T, L, m] array."""
    T, L, m = primary.shape
    out = np.full((T, L, m), -1, np.int16)
    have = np.zeros(max(primary.max(), filler.max()) + 1, np.bool_)
    for t in range(T):
        for l in range(L):
            n = 0
            for src in (primary[t, l], filler[t, l]):
                for j in src:
                    if n < m and j >= 0 and not have[j]:
                        have[j] = True
                        out[t, l, n] = j
                        n += 1
            for r in range(n):
                have[out[t, l, r]] = False
    return out


@numba.njit(cache=True)
def count_hits(pred, ids):
    """Per cell of pred [T, L, m] and ids [T, L, k]: (|P ∩ R|, |R|, |P|), -1 entries ignored."""
    T, L, m = pred.shape
    k = ids.shape[2]
    hits = np.zeros((T, L), np.int32)
    routed = np.zeros((T, L), np.int32)
    issued = np.zeros((T, L), np.int32)
    for t in range(T):
        for l in range(L):
            for b in range(k):
                routed[t, l] += ids[t, l, b] >= 0
            for a in range(m):
                j = pred[t, l, a]
                if j < 0:
                    continue
                issued[t, l] += 1
                for b in range(k):
                    if ids[t, l, b] == j:
                        hits[t, l] += 1
                        break
    return hits, routed, issued
