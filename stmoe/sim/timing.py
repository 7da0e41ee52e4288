"""Event-driven timing and energy of MoE decoding with an expert buffer and one fetch link.

`run_kernel` walks the steps (`_run_phases`): one token each, or with `simulate`'s batch the
j-th tokens of B sequences decoding in lockstep, routed to the union of their experts
(`stmoe.sim.batching`). The first step of a sequence (of a group) first queues the prefetches
for its first `lookahead` layers, which no earlier step could issue (`_issue_sequence_start`).
Then per MoE layer, one helper per phase:

1. attention and router compute, while the link starts the queued prefetches it reaches
   by their end (`_start_due_prefetches`);
2. the router's choice is now known: a prefetch still on the wire for this layer (or an earlier
   one) that it did not choose is pre-empted, its bytes so far wasted
   (`_preempt_unrouted_prefetch`);
3. each chosen expert is looked up in the buffer (hit, late prefetch, or miss), missing ones
   are fetched on demand, ahead of any queued prefetch (`_serve_routed_experts`); a prefetch
   of a chosen expert that the link has not started yet is cancelled and fetched on demand
   instead, a miss (a right prediction issued too late: demanded_unstarted_prefetches);
4. queued prefetches for this layer that the router did not choose are cancelled, before a
   byte of them moved (`_cancel_unchosen_prefetches`; unneeded_unstarted_prefetches);
5. the predictor's experts for the layer `lookahead` layers ahead are queued on the link (this
   is when the contract says a prediction is issued; `_issue_predictions`);
6. the experts are computed in arrival order, so compute stalls on late data
   (`_compute_in_arrival_order`).

After its last layer a token computes its LM head (with its embedding row and the model's
non-MoE layers, `ModelDims.head_*`) while the link keeps moving queued prefetches.

At the end, prefetches never used count as wasted, or as unneeded unstarted ones if they never
left the queue (`_count_unused_prefetches`); so does a prefetched expert evicted before its use
(`_evict_for`).

The link is one FIFO queue: latency + bytes / bandwidth per expert, demand fetches jumping the
queue of not-yet-started prefetches (they wait for the prefetch on the wire, unless phase 2
pre-empted it). Each part takes the slower of its arithmetic and reading its weights: the
arithmetic is the PE array's fold cycles by dataflow for the tokens of a step (one, or up to
`simulate`'s batch of sequences decoding in lockstep; `stmoe.sim.systolic`;
attention over the KV cache at peak MACs), or MACs / peak on hardware without a dataflow;
experts are read from the buffer at local bandwidth (`expert_compute_time`), attention and
router weights, the KV cache and the LM head at the hardware's dense bandwidth, over a path of
their own (a stated simplification: they never contend with the expert link). Energy
(`energy_breakdown_j`): bytes over the link, bytes written to and read from the buffer, bytes
read over the dense path, MACs, and static power x time.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

import numba
import numpy as np
from numba import njit

from stmoe.bootstrap import describe, interval_fields, ratio_interval, resampling_units
from stmoe.errors import ConfigError
from stmoe.files import bytes_from_env
from stmoe.sim.batching import batch_routing, check_batch, lockstep_steps, step_union
from stmoe.sim.buffer import (
    CACHE,
    CAP,
    CNT,
    HEAD,
    K_NEXT,
    K_SOON,
    N_ROWS,
    NEVER,
    POLICIES,
    PREFETCHED,
    QPOS,
    STAGE,
    WHERE,
    BufferSpec,
    admit,
    new_state,
    next_and_first_request,
    request_stream,
    touch,
    unlink,
    victim,
)
from stmoe.sim.hardware import Hardware, ModelDims, model_dims, preset
from stmoe.sim.systems import get_system
from stmoe.sim.systolic import compute_note, dense_time, expert_time, head_time
from stmoe.trace import phase_code


def drop_stale_compilations(source: Path, roots, prefix: str) -> list[Path]:
    """Delete numba's cached machine code of the kernels named `prefix*` in the folders `roots`
    when it is older than `source`, and return what was deleted. numba checks a cached kernel
    against its own file only, but the timing kernels inline the buffer's helpers, so after an
    edit of the buffer (a new replacement policy, say) they would run the old rules."""
    changed = source.stat().st_mtime
    gone = []
    for root in roots:
        for index in (Path(root).rglob(f"{prefix}*.nbi") if Path(root).is_dir() else []):
            if index.stat().st_mtime < changed:
                for f in index.parent.glob(index.name[:-len("nbi")] + "*"):   # the index and its .nbc files
                    f.unlink(missing_ok=True)
                    gone.append(f)
    return gone


drop_stale_compilations(Path(__file__).with_name("buffer.py"),
                        [Path(__file__).parent / "__pycache__", *([numba.config.CACHE_DIR] if numba.config.CACHE_DIR else [])],
                        "timing.")

# indices of the kernel's statistics vector
(S_REQ, S_HIT, S_LATE, S_MISS, S_ISSUED, S_USEFUL, S_WASTED, S_UNNEEDED_UNSTARTED, S_PF_BYTES,
 S_USEFUL_BYTES, S_WASTED_BYTES, S_DEMAND_BYTES, S_LINK_BUSY, S_TIME, S_STALL, S_ATTN,
 S_EXPERT, S_PREEMPTED, S_DROPPED, S_DEMANDED_UNSTARTED) = range(20)
N_STATS = 20
INF = np.inf


@njit(cache=True)
def _routed(ids, t, l, o, E):
    if o // E != l:
        return False
    for s in range(ids.shape[2]):
        if ids[t, l, s] == o % E:
            return True
    return False


@njit(cache=True)
def _evict_for(S, H, r, p, policy, cell, E, nbytes, queue, stats):
    """Make room in region r of partition p, accounting for what the evicted expert was."""
    if H[CNT, r, p] < H[CAP, r, p]:
        return
    v = victim(S, H, r, p, policy, cell)
    if S[QPOS, v] >= 0:                   # queued, never started, not needed yet: no bytes moved
        queue[0, S[QPOS, v] % queue.shape[1]] = -1
        S[QPOS, v] = -1
        stats[S_UNNEEDED_UNSTARTED] += 1
    elif S[PREFETCHED, v]:                # fetched but never used
        stats[S_WASTED] += 1
        stats[S_WASTED_BYTES] += nbytes[v // E]
    S[PREFETCHED, v] = 0
    unlink(S, H, v, p)


@njit(cache=True)
def _issue(S, H, g, c, now, pred, L, E, part, policy, stamp, nbytes, ready, queue, qissue, qh, qt, stats):
    """Queue the prefetches predicted for cell c (token c // L, layer c % L) right after cell g
    was routed; returns the new queue tail."""
    Q = queue.shape[1]
    tt, ll = c // L, c % L
    for s in range(pred.shape[2]):
        e = pred[tt, ll, s]
        if e < 0:
            continue
        o = ll * E + e
        S[K_SOON, o] = c
        if S[WHERE, o] != 0:
            continue
        p = part[o]
        r = STAGE if H[CAP, STAGE, p] > 0 else CACHE
        if r == STAGE and H[CNT, STAGE, p] >= H[CAP, STAGE, p] and S[K_SOON, H[HEAD, STAGE, p]] > g:
            stats[S_DROPPED] += 1   # staging is full of prefetches for nearer layers: keep those
            continue
        _evict_for(S, H, r, p, policy, c, E, nbytes, queue, stats)
        admit(S, H, o, r, p, stamp)
        S[PREFETCHED, o] = 1
        ready[o] = INF
        if qt - qh >= Q:
            raise RuntimeError("prefetch queue overflow")
        queue[0, qt % Q], queue[1, qt % Q] = o, c
        qissue[qt % Q] = now
        S[QPOS, o] = qt
        qt += 1
        stats[S_ISSUED] += 1
    return qt


@njit(cache=True, inline="always")
def _issue_sequence_start(S, H, t, now, pred, lookahead, L, E, part, policy, stamp, nbytes, ready,
                          queue, qissue, qh, qt, stats):
    """Queue the prefetches for the first `lookahead` cells of token t, which starts a sequence:
    no earlier token of it was routed to issue them. Returns the new queue tail."""
    for c in range(t * L, t * L + min(lookahead, L)):
        qt = _issue(S, H, t * L - 1, c, now, pred, L, E, part, policy, stamp, nbytes, ready, queue,
                    qissue, qh, qt, stats)
    return qt


@njit(cache=True, inline="always")
def _start_due_prefetches(S, queue, qissue, qh, qt, now, link_free, pf_obj, E, xfer, nbytes, latency,
                          ready, stats):
    """Start, in queue order, every queued prefetch the link reaches by `now`.
    Returns (queue head, link_free, pf_obj)."""
    Q = queue.shape[1]
    while qh < qt:
        j = qh % Q
        q = queue[0, j]
        if q >= 0:
            start = max(link_free, qissue[j])
            if start > now:
                break
            link_free = start + xfer[q // E]
            ready[q] = link_free + latency
            S[QPOS, q] = -1
            stats[S_PF_BYTES] += nbytes[q // E]
            stats[S_LINK_BUSY] += xfer[q // E]
            pf_obj = q
        qh += 1
    return qh, link_free, pf_obj


@njit(cache=True, inline="always")
def _preempt_unrouted_prefetch(S, H, ids, t, l, g, now, link_free, pf_obj, part, E, xfer, nbytes, stats):
    """If the prefetch on the wire was for this layer (or earlier) and the router did not choose
    it, stop it: demands would wait behind it for nothing, and its bytes so far are wasted.
    Returns (link_free, pf_obj)."""
    if (pf_obj >= 0 and link_free > now and S[WHERE, pf_obj] != 0 and S[PREFETCHED, pf_obj]
            and S[QPOS, pf_obj] < 0 and S[K_SOON, pf_obj] <= g and not _routed(ids, t, l, pf_obj, E)):
        q = pf_obj
        unsent = link_free - now
        unsent_bytes = unsent / xfer[q // E] * nbytes[q // E]
        stats[S_PF_BYTES] -= unsent_bytes
        stats[S_LINK_BUSY] -= unsent
        stats[S_WASTED] += 1
        stats[S_WASTED_BYTES] += nbytes[q // E] - unsent_bytes
        stats[S_PREEMPTED] += 1
        link_free = now
        S[PREFETCHED, q] = 0
        unlink(S, H, q, part[q])
        pf_obj = -1
    return link_free, pf_obj


@njit(cache=True, inline="always")
def _look_up(S, H, o, l, g, i, now, part, policy, next_req, E, nbytes, ready, queue, stats):
    """Request i, for expert o of layer l (cell g), meets the buffer: a hit, a prefetch still in
    flight (late), or a miss. A staged expert moves to the cache region on its first use.
    Returns whether o must be fetched on demand."""
    p = part[o]
    S[K_NEXT, o] = next_req[i]
    stats[S_REQ] += 1
    demand = False
    if S[WHERE, o] != 0:
        if S[QPOS, o] >= 0:     # a right prediction the link has not started: fetch it as a demand
            queue[0, S[QPOS, o] % queue.shape[1]] = -1
            S[QPOS, o] = -1
            S[PREFETCHED, o] = 0
            stats[S_DEMANDED_UNSTARTED] += 1
            demand = True
        elif ready[o] <= now:
            stats[S_HIT] += 1
        else:
            stats[S_LATE] += 1
        if S[PREFETCHED, o]:
            stats[S_USEFUL] += 1
            stats[S_USEFUL_BYTES] += nbytes[l]
            S[PREFETCHED, o] = 0
        if S[WHERE, o] == STAGE + 1:
            unlink(S, H, o, p)
            _evict_for(S, H, CACHE, p, policy, g, E, nbytes, queue, stats)
            admit(S, H, o, CACHE, p, i)
        else:
            touch(S, H, o, p, policy, i)
    else:
        demand = True
        _evict_for(S, H, CACHE, p, policy, g, E, nbytes, queue, stats)
        admit(S, H, o, CACHE, p, i)
    return demand


@njit(cache=True, inline="always")
def _fetch_on_demand(o, l, now, link_free, latency, xfer, nbytes, ready, stats):
    """Fetch expert o of layer l ahead of the queued prefetches (behind the transfer on the
    wire, if any). Returns link_free."""
    stats[S_MISS] += 1
    link_free = max(link_free, now) + xfer[l]
    ready[o] = link_free + latency
    stats[S_DEMAND_BYTES] += nbytes[l]
    stats[S_LINK_BUSY] += xfer[l]
    return link_free


@njit(cache=True, inline="always")
def _serve_routed_experts(ids, t, l, g, i, now, link_free, pf_obj, S, H, part, policy, next_req, E,
                          latency, xfer, nbytes, ready, queue, rt, stats):
    """Look up each expert the router chose for (t, l), fetching the missing ones on demand;
    their ready times go to rt[:nd]. Returns (nd, i, link_free, pf_obj)."""
    nd = 0
    for s in range(ids.shape[2]):
        e = ids[t, l, s]
        if e < 0:
            continue
        o = l * E + e
        if _look_up(S, H, o, l, g, i, now, part, policy, next_req, E, nbytes, ready, queue, stats):
            pf_obj = -1
            link_free = _fetch_on_demand(o, l, now, link_free, latency, xfer, nbytes, ready, stats)
        rt[nd] = ready[o]
        nd += 1
        i += 1
    return nd, i, link_free, pf_obj


@njit(cache=True, inline="always")
def _cancel_unchosen_prefetches(S, H, queue, qh, qt, g, part, stats):
    """Drop the prefetches for cell g still queued: the chosen ones left the queue when looked
    up, so these are the ones the router did not choose, and none of their bytes moved."""
    Q = queue.shape[1]
    for jj in range(qh, qt):
        j = jj % Q
        q = queue[0, j]
        if q >= 0 and queue[1, j] == g:
            queue[0, j] = -1
            S[QPOS, q] = -1
            S[PREFETCHED, q] = 0
            unlink(S, H, q, part[q])
            stats[S_UNNEEDED_UNSTARTED] += 1


@njit(cache=True, inline="always")
def _issue_predictions(S, H, t, g, T, L, lookahead, first, now, pred, E, part, policy, stamp, nbytes,
                       ready, queue, qissue, qh, qt, stats):
    """Queue the new prediction, for cell g + lookahead, right after cell g was routed. Returns
    the new queue tail."""
    # The nearer cells again too: those a full staging region made us drop, as the prefetcher
    # keeps staging the nearest cells. Not across a sequence start: that token's first cells
    # are issued when it starts.
    for c in range(g + 1, g + lookahead + 1):
        tt = c // L
        if tt < T and (tt == t or not first[tt]):
            qt = _issue(S, H, g, c, now, pred, L, E, part, policy, stamp, nbytes, ready, queue,
                        qissue, qh, qt, stats)
    return qt


@njit(cache=True, inline="always")
def _compute_in_arrival_order(rt, nd, now, t_exp, stats):
    """Compute the layer's nd experts in the order their weights arrive (ready times rt[:nd]),
    stalling for late ones. Returns the time the layer ends."""
    for j in range(1, nd):           # insertion sort: nd <= k is small
        x, m = rt[j], j - 1
        while m >= 0 and rt[m] > x:
            rt[m + 1] = rt[m]
            m -= 1
        rt[m + 1] = x
    cur = now
    for j in range(nd):
        if rt[j] > cur:
            stats[S_STALL] += rt[j] - cur
            cur = rt[j]
        cur += t_exp
    stats[S_EXPERT] += nd * t_exp
    return cur


@njit(cache=True, inline="always")
def _compute_batched(ids, tokens, t, l, rt, ct, nd, now, t_exp, stats):
    """`_compute_in_arrival_order` for a step of several tokens: the expert in place s of
    ids[t, l] computes for the tokens[t, l, s] tokens routed to it (t_exp[l, M]: one expert's
    time for M tokens). Returns the time the layer ends."""
    n = 0
    for s in range(ids.shape[2]):
        if ids[t, l, s] >= 0:
            ct[n] = t_exp[l, tokens[t, l, s]]
            n += 1
    for j in range(1, nd):           # insertion sort by arrival, the compute times alongside
        x, c, m = rt[j], ct[j], j - 1
        while m >= 0 and rt[m] > x:
            rt[m + 1], ct[m + 1] = rt[m], ct[m]
            m -= 1
        rt[m + 1], ct[m + 1] = x, c
    cur = now
    for j in range(nd):
        if rt[j] > cur:
            stats[S_STALL] += rt[j] - cur
            cur = rt[j]
        cur += ct[j]
        stats[S_EXPERT] += ct[j]
    return cur


@njit(cache=True, inline="always")
def _count_unused_prefetches(S, E, nbytes, stats):
    """At the end: prefetched experts never used are wasted, or unneeded unstarted ones if still
    queued (then they never moved a byte)."""
    for o in range(S.shape[1]):
        if S[PREFETCHED, o]:
            if S[QPOS, o] >= 0:
                stats[S_UNNEEDED_UNSTARTED] += 1
            else:
                stats[S_WASTED] += 1
                stats[S_WASTED_BYTES] += nbytes[o // E]


@njit(cache=True, inline="always")
def _close_unit(per_unit, u, stats, mark, now, since):
    """Add what `stats` gained since `mark`, and the time since `since`, to unit u's row; move
    the mark up. Returns now (the next run of tokens starts then)."""
    for j in range(stats.shape[0]):
        per_unit[u, j] += stats[j] - mark[j]
        mark[j] = stats[j]
    per_unit[u, S_TIME] += now - since
    return now


@njit(cache=True)
def run_kernel(ids, pred, first, lookahead, E, t_attn, t_exp, t_head, xfer, nbytes, latency,
               S, H, part, policy, next_req, first_req, preload, unit, per_unit, width, tokens):
    """The statistics vector of decoding the steps of `ids` [T, L, k] (the module docstring
    says how); `per_unit[u]` receives the share of it of the steps t with unit[t] = u. Step t
    holds width[t] tokens: its attention and router take t_attn[width[t], l] (with the KV
    cache), its LM head t_head[width[t]]; expert s of layer l computes for tokens[t, l, s] of
    them (t_exp[l, M]), or for one when `tokens` is empty (one token a step: the routing as
    recorded). `_run_phases` runs them and cannot allocate, so the scratch arrays are made here."""
    T, L, k = ids.shape
    N = L * E
    stats = np.zeros(N_STATS)
    mark = np.zeros(N_STATS)
    ready = np.zeros(N)
    Q = (lookahead + 2) * max(pred.shape[2], 1) + 1
    queue = np.full((2, Q), -1, np.int64)    # expert, target cell; -1 expert = cancelled
    qissue = np.zeros(Q)
    S[K_NEXT, :] = first_req
    if preload:
        for o in range(N):
            admit(S, H, o, CACHE, part[o], 0)
    rt = np.empty(k)
    ct = np.empty(k)
    stats[S_TIME] = _run_phases(ids, pred, first, lookahead, E, t_attn, t_exp, t_head, xfer, nbytes, latency,
                                S, H, part, policy, next_req, ready, queue, qissue, rt, ct, stats, unit, per_unit,
                                mark, width, tokens)
    return stats


def _without_refcounting() -> dict:
    """numba's private `_nrt=False` option where this numba has it, else nothing. Each phase
    helper takes several arrays, and numba cannot prune the reference counting of an inlined
    helper's array arguments around its branches: counted, the phase loop ran 2.6 times slower
    than when it was one function. The loop allocates nothing, so it needs no counting; a numba
    without the option compiles it with counting (same numbers, slower)."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return {}
    return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


@njit(cache=True, **_without_refcounting())
def _run_phases(ids, pred, first, lookahead, E, t_attn, t_exp, t_head, xfer, nbytes, latency,
                S, H, part, policy, next_req, ready, queue, qissue, rt, ct, stats, unit, per_unit, mark,
                width, tokens):
    """Run the phases for every token and layer; returns the time decoding ends. The statistics
    and time of each run of tokens of one unit are added to its row of `per_unit` when the unit
    changes (the bootstrap's totals; a check per token, not a copy); the prefetches found
    unused at the end go to the last token's unit."""
    T, L, _ = ids.shape
    qh, qt = 0, 0
    now, link_free = 0.0, 0.0
    pf_obj = -1    # the expert whose prefetch started last (-1: the last transfer was a demand)
    i = 0          # requests served so far: the buffer's time stamp
    since = 0.0    # when the current run of tokens of one unit started
    batched = tokens.shape[0] > 0
    for t in range(T):
        w = width[t]
        if t > 0 and unit[t] != unit[t - 1]:
            since = _close_unit(per_unit, unit[t - 1], stats, mark, now, since)
        if first[t]:
            qt = _issue_sequence_start(S, H, t, now, pred, lookahead, L, E, part, policy, i, nbytes,
                                       ready, queue, qissue, qh, qt, stats)
        for l in range(L):
            g = t * L + l
            now += t_attn[w, l]
            stats[S_ATTN] += t_attn[w, l]
            qh, link_free, pf_obj = _start_due_prefetches(S, queue, qissue, qh, qt, now, link_free, pf_obj,
                                                          E, xfer, nbytes, latency, ready, stats)
            link_free, pf_obj = _preempt_unrouted_prefetch(S, H, ids, t, l, g, now, link_free, pf_obj,
                                                           part, E, xfer, nbytes, stats)
            nd, i, link_free, pf_obj = _serve_routed_experts(ids, t, l, g, i, now, link_free, pf_obj, S, H,
                                                             part, policy, next_req, E, latency, xfer,
                                                             nbytes, ready, queue, rt, stats)
            _cancel_unchosen_prefetches(S, H, queue, qh, qt, g, part, stats)
            qt = _issue_predictions(S, H, t, g, T, L, lookahead, first, now, pred, E, part, policy, i,
                                    nbytes, ready, queue, qissue, qh, qt, stats)
            if batched:
                now = _compute_batched(ids, tokens, t, l, rt, ct, nd, now, t_exp, stats)
            else:
                now = _compute_in_arrival_order(rt, nd, now, t_exp[l, 1], stats)
        now += t_head[w]    # LM head, embedding and non-MoE layers; queued prefetches keep moving
    _count_unused_prefetches(S, E, nbytes, stats)
    if T > 0:
        _close_unit(per_unit, unit[T - 1], stats, mark, now, since)
    return now


@dataclass
class UnitTotals:
    """Latency and energy of each resampling unit of the simulated tokens (its sequences, or
    blocks of a one-sequence trace; `stmoe.bootstrap`): what the interval of a ratio to another
    run over the same tokens is drawn from. `units` says what the units are."""

    units: str
    latency_s: np.ndarray
    energy_j: np.ndarray

    def as_dict(self) -> dict:
        """The totals as plain lists (JSON), as comparison rows carry them."""
        return {"units": self.units, "latency_s": self.latency_s.tolist(), "energy_j": self.energy_j.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> UnitTotals:
        return cls(d["units"], np.asarray(d["latency_s"], np.float64), np.asarray(d["energy_j"], np.float64))

    def describe(self) -> str:
        """How an interval over these units is made (`stmoe.bootstrap.describe`), resting on
        as many units as there are totals."""
        return describe(self.units, count=len(self.latency_s))

    def gain_intervals(self, base: UnitTotals, suffix: str = "") -> dict:
        """{speedup{suffix}_ci_low, _ci_high, energy_efficiency{suffix}_ci_low, _ci_high}: the
        paired bootstrap intervals (`stmoe.bootstrap.ratio_interval`, both runs' units
        resampled alike) of this run's speedup and energy efficiency over `base`, a run over
        the same tokens and units."""
        if len(self.latency_s) != len(base.latency_s):
            raise ConfigError(f"intervals: the two runs have different units ({self.units}; {base.units})")
        return (interval_fields(f"speedup{suffix}", ratio_interval(base.latency_s, self.latency_s))
                | interval_fields(f"energy_efficiency{suffix}", ratio_interval(base.energy_j, self.energy_j)))


@dataclass
class SimulationResult:
    """What one system did on one trace and machine. Times in seconds, energy in joules.

    Per token: energy_breakdown_j by where it is spent (link, buffer, dense: attention, KV-cache
    and LM-head reads over the dense path, compute: every MAC, static); energy_by_work_j the same
    total by the work it serves (attention_router, kv_cache, lm_head, experts, static);
    time_breakdown_s the latency by phase (attention_router, kv_cache, lm_head, experts, stalls:
    waiting for expert weights). lm_head is the once-per-token work: the LM head, the token's
    embedding row and the model's non-MoE layers. Each sums to its total. dims:
    `ModelDims.as_dict()`.

    Each expert request has one of three outcomes, shares of `requests`: hit_rate, in the
    buffer with its weights arrived; late_prefetch_rate, its prefetch still on the link (not a
    hit: the layer waits for the rest of the transfer); and the rest (1 - both) misses, fetched
    on demand: never prefetched, or prefetched but not yet started when the router chose it. So
    a system whose link cannot bring the next layer's experts during one layer (pre-gated, which
    keeps no expert beyond two layers, on gpu-pcie) hits nothing although every request was
    prefetched: `late_note` says so in the notes.

    Each issued prefetch (prefetches_issued) ends one of four ways: useful_prefetches, used
    (hit or late); demanded_unstarted_prefetches, a right prediction the link had not started
    when the router chose its expert (cancelled and fetched on demand: a miss); wasted_prefetches,
    moved over the link (wholly, or partly for preempted_prefetches, stopped on the wire) and
    never used; unneeded_unstarted_prefetches, dropped before the link started them and never
    needed (their layer routed without them, evicted to make room, or still queued at the end:
    no byte moved). dropped_prefetches were never issued: staging was full of nearer ones.

    batch: the sequences decoded in lockstep (`simulate`), steps: the steps they took (tokens
    when batch is 1). requests count each expert of a step's union once (one load, one read
    from the buffer), and hit_rate, late_prefetch_rate are shares of them; every per-token
    figure is the run's total over its tokens."""

    system: str
    hardware: str
    changes_routing: bool
    tokens: int
    batch: int
    steps: int
    requests: int
    latency_per_token_s: float
    energy_per_token_j: float
    hit_rate: float
    late_prefetch_rate: float
    stall_share: float
    link_utilisation: float
    moved_bytes: float
    demand_bytes: float
    prefetch_bytes: float
    useful_bytes: float
    wasted_bytes: float
    prefetches_issued: int
    useful_prefetches: int
    wasted_prefetches: int
    demanded_unstarted_prefetches: int
    unneeded_unstarted_prefetches: int
    dropped_prefetches: int
    preempted_prefetches: int
    energy_breakdown_j: dict = field(default_factory=dict)
    energy_by_work_j: dict = field(default_factory=dict)
    time_breakdown_s: dict = field(default_factory=dict)
    dims: dict = field(default_factory=dict)
    speedup_vs_on_demand: float | None = None
    energy_efficiency_vs_on_demand: float | None = None
    speedup_vs_on_demand_ci_low: float | None = None
    speedup_vs_on_demand_ci_high: float | None = None
    energy_efficiency_vs_on_demand_ci_low: float | None = None
    energy_efficiency_vs_on_demand_ci_high: float | None = None
    baseline: str | None = None
    speedup_vs_baseline: float | None = None
    energy_efficiency_vs_baseline: float | None = None
    speedup_vs_baseline_ci_low: float | None = None
    speedup_vs_baseline_ci_high: float | None = None
    energy_efficiency_vs_baseline_ci_low: float | None = None
    energy_efficiency_vs_baseline_ci_high: float | None = None
    notes: list = field(default_factory=list)
    per_unit: UnitTotals | None = None

    def relative_to(self, base: SimulationResult) -> SimulationResult:
        """The ratios to `base` (on-demand over the same tokens), each with its paired bootstrap
        interval over the units of `per_unit` (`stmoe.bootstrap`) when both runs have them."""
        self.speedup_vs_on_demand = base.latency_per_token_s / self.latency_per_token_s
        self.energy_efficiency_vs_on_demand = base.energy_per_token_j / self.energy_per_token_j
        return self._intervals(base, "vs_on_demand")

    def relative_to_baseline(self, base: SimulationResult) -> SimulationResult:
        """Speed and energy efficiency over `base`, a run on any machine (``system@hardware``)
        over the same tokens, with paired intervals as `relative_to` gives them."""
        self.baseline = f"{base.system}@{base.hardware}"
        self.speedup_vs_baseline = base.latency_per_token_s / self.latency_per_token_s
        self.energy_efficiency_vs_baseline = base.energy_per_token_j / self.energy_per_token_j
        return self._intervals(base, "vs_baseline")

    def _intervals(self, base: SimulationResult, suffix: str) -> SimulationResult:
        """Set speedup_SUFFIX_ci_* and energy_efficiency_SUFFIX_ci_*: both runs' units resampled
        alike (paired), when both have per-unit totals."""
        if self.per_unit is None or base.per_unit is None:
            return self
        for f, v in self.per_unit.gain_intervals(base.per_unit, f"_{suffix}").items():
            setattr(self, f, v)
        return self

    def row(self) -> dict:
        """Every scalar result as one flat dict: what tables, JSON output, sweeps and charts read;
        the energy and time breakdowns flattened as ``energy_PART_j`` and ``time_PART_s``."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in (*NESTED, "per_unit")}
        flat |= {f"energy_{k}_j": v for k, v in self.energy_breakdown_j.items()}
        return flat | {f"time_{k}_s": v for k, v in self.time_breakdown_s.items()}

    def record(self) -> dict:
        """`row()` with the breakdowns, the model sizes and the notes as they are: the JSON output."""
        return self.row() | {name: getattr(self, name) for name in NESTED}


NESTED = ("energy_breakdown_j", "energy_by_work_j", "time_breakdown_s", "dims", "notes")


def decode_tokens(trace, phase: str | None):
    """The tokens simulated, and which of them start a sequence."""
    if phase not in (None, "all"):
        of_phase = trace.phase == phase_code(phase)
        if not np.any(of_phase):
            raise ConfigError(f"trace {trace.name!r} has no {phase} tokens to simulate")
        if not np.all(of_phase):   # a trace of that phase alone is used as it is (no copy)
            trace = trace.select(phase=phase)
    sel = trace
    seq = sel.sequence
    first = np.ones(sel.num_tokens, np.bool_)
    first[1:] = seq[1:] != seq[:-1]
    return sel, first


# Bytes a simulation holds per (layer, expert) of the model: the buffer state's rows (`new_state`),
# each expert's first request and arrival time (int64, float64) and its partition (int32, built
# from an int32 range). 4,096 layers x 32,767 experts would take 14 GB; Qwen3-30B-A3B's 48 x 128, 0.6 MB.
STATE_BYTES_PER_EXPERT = 8 * N_ROWS + 8 + 8 + 4 + 4
MAX_STATE_BYTES = bytes_from_env("STMOE_MAX_STATE_BYTES", 2 << 30)


def check_state_memory(trace) -> None:
    """Refuse before allocating when simulating `trace` would hold more than MAX_STATE_BYTES of
    buffer state (it grows as layers x experts, whatever the number of tokens)."""
    L, E = trace.num_layers, trace.num_experts
    estimate = L * E * STATE_BYTES_PER_EXPERT
    if estimate > MAX_STATE_BYTES:
        raise ConfigError(f"{trace.label}: simulating needs about {estimate:,} bytes of buffer state for "
                          f"{L} layer{'s' * (L != 1)} x {E} experts ({STATE_BYTES_PER_EXPERT} bytes each), over the "
                          f"{MAX_STATE_BYTES:,}-byte limit (raise STMOE_MAX_STATE_BYTES to run it)")


def run(ids, pred, first, *, num_experts: int, lookahead: int, hardware: Hardware, dims: ModelDims,
        buffer: BufferSpec, preload: bool = False, unit: np.ndarray | None = None,
        width: np.ndarray | None = None, tokens: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The kernel on prepared arrays; returns the raw statistics vector and its split over the
    units of `unit` (the resampling unit 0..U-1 of each step; default: one unit), [U, N_STATS].
    Each row of `ids` is a step of width[t] tokens; tokens: how many of them each expert of ids
    is routed to (`batch_routing`). None for both: one token a step."""
    T, L, _ = ids.shape
    if not 1 <= lookahead <= L:
        raise ConfigError(f"lookahead must be between 1 and the number of layers ({L}), got {lookahead!r}")
    hardware.check_fits(dims.expert_bytes)
    E = num_experts
    slots = buffer.slots(L, dims.expert_bytes)
    if preload:
        slots[CACHE], slots[STAGE] = L * E, 0
    part = buffer.partition(L, E)
    first_req = np.full(L * E, NEVER, np.int64)
    if buffer.policy == "belady":    # only Belady looks at the future
        nreq, first_req = next_and_first_request(request_stream(ids, E), L * E)
    else:
        nreq = np.zeros(int((ids >= 0).sum()), np.int64)
    # pred may be a broadcast view (prefetch-all-next-layer: every expert, every token): copying it
    # contiguous would make (T, L, E) int16, 2.4 GB at 200k tokens x 48 layers x 128 experts.
    if tokens is None:
        width, tokens = np.ones(T, np.int64), np.zeros((0, 0, 0), np.int16)
    width = np.asarray(width, np.int64)
    t_attn, t_exp, t_head, xfer, nbytes = step_costs(hardware, dims, int(width.max(initial=1)))
    unit = np.zeros(T, np.int64) if unit is None else np.asarray(unit, np.int64)
    per_unit = np.zeros((int(unit.max(initial=0)) + 1, N_STATS))
    stats = run_kernel(np.ascontiguousarray(ids, np.int16), np.asarray(pred, np.int16),
                       first, int(lookahead), E, t_attn, t_exp, t_head, xfer, nbytes, hardware.link_latency,
                       *new_state(L * E, slots), part, POLICIES[buffer.policy], nreq, first_req, preload,
                       unit, per_unit, width, np.ascontiguousarray(tokens, np.int16))
    return stats, per_unit


def roofline(macs, nbytes, hw: Hardware, bandwidth: float):
    """Time of work that is either compute- or bandwidth-bound: max(MACs / peak, bytes / bandwidth)."""
    return np.maximum(macs / hw.peak_macs, nbytes / bandwidth)


def expert_compute_time(hw: Hardware, dims: ModelDims, tokens: int = 1) -> np.ndarray:
    """Per layer, the time to compute one routed expert for `tokens` tokens once its weights are
    in the buffer: the PE array's (or the roofline's MACs at peak), never faster than reading the
    weights (once) at the buffer's local bandwidth."""
    return np.maximum(expert_time(hw, dims, tokens), dims.expert_bytes / hw.local_bandwidth)


def layer_costs(hw: Hardware, dims: ModelDims, tokens: int = 1, kv_reads: int | None = None):
    """(t_attn[L], t_kv, t_exp[L], t_head, xfer[L], nbytes[L]) of a step of `tokens` tokens of
    as many sequences: per layer the attention and router time (weights read once for them all),
    the KV-cache time (each token reads its sequence's cache), one expert's compute time for all
    of them, one expert's transfer time over the link and its bytes; t_head once per step (LM
    head, embedding rows, non-MoE layers). kv_reads: how many KV caches the step reads (default
    `tokens`, one a sequence; chapter 08's steps of consecutive tokens of one sequence read 1)."""
    bw = hw.dense_read_bandwidth
    kv_reads = tokens if kv_reads is None else kv_reads
    t_attn = np.maximum(dense_time(hw, dims, tokens), dims.dense_bytes / bw)
    t_kv = float(roofline(tokens * dims.kv_macs, kv_reads * dims.kv_bytes, hw, bw))
    t_head = max(head_time(hw, dims, tokens), dims.head_bytes / bw)
    return (t_attn, t_kv, expert_compute_time(hw, dims, tokens), t_head, dims.expert_bytes / hw.link_bandwidth,
            dims.expert_bytes.astype(np.float64))


# A late share below this would not show in a hit rate printed to 3 decimals.
LATE_NOTE_SHARE = 0.0005


def late_note(system: str, hit: float, late: float, link_utilisation: float, issued: int, requests: int) -> str:
    """What a late share of `LATE_NOTE_SHARE` or more does to the hit rate, in the one wording
    results use."""
    return (f"{system}: {late:.1%} of expert requests found their prefetch still on the link (late, not "
            f"counted as hits: the layer waits for the rest of the transfer) and {1 - hit - late:.1%} were "
            f"misses, fetched on demand (never prefetched, or prefetched but not yet started); "
            f"{issued} prefetches issued for {requests} requests, the link busy {link_utilisation:.0%} of the time")


def step_costs(hw: Hardware, dims: ModelDims, most: int):
    """The kernel's tables for steps of 1..`most` tokens: (t_attn[most + 1, L] with the KV cache,
    t_exp[L, most + 1], t_head[most + 1], xfer[L], nbytes[L]), row or column M for M tokens
    (`layer_costs`; M = 0 unused)."""
    L = len(dims.expert_bytes)
    t_attn, t_exp, t_head = np.zeros((most + 1, L)), np.zeros((L, most + 1)), np.zeros(most + 1)
    for m in range(1, most + 1):
        attn, kv, exp, head, xfer, nbytes = layer_costs(hw, dims, m)
        t_attn[m], t_exp[:, m], t_head[m] = attn + kv, exp, head
    return t_attn, t_exp, t_head, xfer, nbytes


def summarise(stats: np.ndarray, *, system: str, hardware: Hardware, dims: ModelDims, num_layers: int,
              changes_routing: bool, widths: np.ndarray, token_requests: float | None = None, batch: int = 1,
              notes=()) -> SimulationResult:
    """The result of the statistics `stats` of a run whose steps held widths[M] steps of M tokens
    each (one token a step: [0, tokens]); token_requests: the expert requests of its tokens
    (default: the requests, one token a step)."""
    s = stats
    moved = s[S_DEMAND_BYTES] + s[S_PF_BYTES]
    uses = s[S_REQ]
    total_time = s[S_TIME]
    tokens = int(np.dot(np.arange(len(widths)), widths))
    steps = int(np.sum(widths))
    pj = 1e-12 / tokens    # per token
    share = [(n / tokens, layer_costs(hardware, dims, m)) for m, n in enumerate(widths) if n]
    per_step = steps / tokens   # a token's share of what a step reads once
    # what each token reads over the dense path and computes outside the experts
    work = {"attention_router": (per_step * float(np.sum(dims.dense_bytes)), num_layers * dims.dense_macs),
            "kv_cache": (num_layers * dims.kv_bytes, num_layers * dims.kv_macs),
            "lm_head": (per_step * dims.head_bytes, dims.head_macs)}
    dense_pj = hardware.dense_read_pj_per_byte
    expert_read = uses * float(np.mean(dims.expert_bytes))
    expert_macs = (uses if token_requests is None else token_requests) * dims.expert_macs
    static = total_time * hardware.static_power_w / tokens
    energy = {
        "link": moved * hardware.link_pj_per_byte * pj,
        "buffer": (moved + expert_read) * hardware.buffer_pj_per_byte * pj,
        "dense": sum(b for b, _ in work.values()) * dense_pj * 1e-12,
        "compute": (expert_macs * pj + sum(m for _, m in work.values()) * 1e-12) * hardware.mac_pj,
        "static": static,
    }
    by_work = {k: (b * dense_pj + m * hardware.mac_pj) * 1e-12 for k, (b, m) in work.items()}
    by_work["experts"] = energy["link"] + energy["buffer"] + expert_macs * hardware.mac_pj * pj
    by_work["static"] = static
    times = {"attention_router": sum(w * float(np.sum(c[0])) for w, c in share),
             "kv_cache": sum(w * (num_layers * c[1]) for w, c in share), "lm_head": sum(w * c[3] for w, c in share),
             "experts": s[S_EXPERT] / tokens, "stalls": s[S_STALL] / tokens}
    hit, late = (s[S_HIT] / uses, s[S_LATE] / uses) if uses else (0.0, 0.0)
    link = min(s[S_LINK_BUSY] / total_time, 1.0) if total_time else 0.0
    if late >= LATE_NOTE_SHARE:
        notes = [*notes, late_note(system, hit, late, link, int(s[S_ISSUED]), int(uses))]
    return SimulationResult(
        system=system, hardware=hardware.name, changes_routing=changes_routing, tokens=tokens, batch=batch,
        steps=steps, requests=int(uses), latency_per_token_s=total_time / tokens,
        energy_per_token_j=sum(energy.values()),
        hit_rate=hit, late_prefetch_rate=late,
        stall_share=s[S_STALL] / total_time if total_time else 0.0, link_utilisation=link,
        moved_bytes=moved, demand_bytes=s[S_DEMAND_BYTES], prefetch_bytes=s[S_PF_BYTES],
        useful_bytes=s[S_USEFUL_BYTES], wasted_bytes=s[S_WASTED_BYTES],
        prefetches_issued=int(s[S_ISSUED]), useful_prefetches=int(s[S_USEFUL]),
        wasted_prefetches=int(s[S_WASTED]), demanded_unstarted_prefetches=int(s[S_DEMANDED_UNSTARTED]),
        unneeded_unstarted_prefetches=int(s[S_UNNEEDED_UNSTARTED]),
        dropped_prefetches=int(s[S_DROPPED]), preempted_prefetches=int(s[S_PREEMPTED]),
        energy_breakdown_j={k: float(v) for k, v in energy.items()},
        energy_by_work_j={k: float(v) for k, v in by_work.items()},
        time_breakdown_s={k: float(v) for k, v in times.items()}, dims=dims.as_dict(),
        notes=list(dims.notes) + list(notes))


@cache
def _system_knobs(plan) -> tuple[str, ...]:
    """plan's keyword-only parameters that simulate does not name itself (threshold, predictor);
    cached, since reading a signature costs more than a small simulation's kernel."""
    return tuple(n for n, p in inspect.signature(plan).parameters.items()
                 if p.kind is p.KEYWORD_ONLY and n not in inspect.signature(simulate).parameters)


def simulate(trace, hardware: Hardware | str = "accelerator", system="st-moe", *, predictions=None,
             lookahead: int = 1, budget: int | None = None, profile=None, buffer: BufferSpec | None = None,
             phase: str | None = "decode", dims: ModelDims | None = None, batch: int = 1,
             **system_knobs) -> SimulationResult:
    """Simulate one system (a name from `stmoe.sim.systems.SYSTEMS` or a `System`) on a trace.

    predictions: an int16 [T, L, m] array over the simulated tokens (the trace's tokens of
    `phase`), overriding the system's own predictor (use it to test with your own predictions).
    buffer: defaults to the hardware's whole buffer, in bytes, with the system's policy.
    batch: B sequences decode in lockstep (`stmoe.sim.batching.lockstep_steps`: B at a time in
    trace order, the last group smaller when B does not divide their count, a group running
    until its longest sequence ends). At each step and layer the step needs the union of its
    tokens' experts; each is loaded once and computes a GEMM whose M is the number of the step's
    tokens routed to it (`stmoe.sim.systolic`); attention, router and LM head compute with M =
    the step's tokens, reading their weights once; each token reads its own KV cache. The
    predictions for a step are the union of its tokens' predicted sets. Latency and energy per
    token are the run's divided by its tokens; the notes say all this.
    """
    batch = check_batch(batch)
    hw = preset(hardware)
    sysm = get_system(system)
    knobs = _system_knobs(type(sysm).plan)
    unknown = sorted(set(system_knobs) - set(knobs))
    if unknown:
        raise ConfigError(f"simulate: unknown argument {unknown[0]!r}; system knobs: {', '.join(knobs)}")
    sel, first = decode_tokens(trace, phase)
    check_state_memory(sel)
    dims = dims or model_dims(trace)
    plan = sysm.plan(sel, hw, dims, predictions=predictions, lookahead=lookahead, budget=budget,
                     profile=profile, buffer=buffer, batch=batch, **system_knobs)
    steps, group, unit, units = lockstep(sel, batch)
    if batch == 1:
        ids, pred, width, tokens, token_requests = plan.ids, plan.predictions, None, None, None
        batch_notes = []
    else:
        ids, tokens = batch_routing(plan.ids, steps, sel.num_experts)
        pred = step_union(plan.predictions, steps, sel.num_experts)
        first = np.ones(len(steps), np.bool_)
        first[1:] = group[1:] != group[:-1]
        width = (steps >= 0).sum(axis=1)
        token_requests = np.bincount(unit, weights=tokens.sum(axis=(1, 2), dtype=np.int64))
        batch_notes = [*lockstep_notes(sel, batch, steps),
                       (f"batch {batch}: a step's layer needs {float((ids >= 0).sum(axis=2).mean()):.2f} experts "
                        f"on average: the union of the experts its {batch} tokens route to (k={sel.top_k} each), "
                        + (f"under {sysm.name}'s routing" if sysm.changes_routing
                           else "the same for every system that keeps the trace's routing"))]
        if pred.shape[2]:
            batch_notes.append(f"batch {batch}: a step's predictions are the union of its tokens' predicted sets")
    stats, per_unit = run(ids, pred, first, num_experts=sel.num_experts, lookahead=plan.lookahead, hardware=hw,
                          dims=dims, buffer=plan.buffer, preload=plan.preload, unit=unit, width=width, tokens=tokens)
    same = {"system": sysm.name, "hardware": hw, "dims": dims, "num_layers": sel.num_layers,
            "changes_routing": sysm.changes_routing, "batch": batch}
    step_width = np.ones(len(unit), np.int64) if width is None else width
    result = summarise(stats, widths=np.bincount(step_width),
                       notes=[*plan.notes, *batch_notes, compute_note(hw, dims, batch)],
                       token_requests=None if token_requests is None else float(token_requests.sum()), **same)
    # energy per unit from the same accounting as the whole run's: summarise each unit's share
    most = int(step_width.max(initial=1)) + 1
    widths = np.bincount(unit * most + step_width, minlength=len(per_unit) * most).reshape(len(per_unit), most)
    result.per_unit = UnitTotals(units, per_unit[:, S_TIME].copy(), np.array(
        [(r := summarise(part, widths=w, token_requests=None if token_requests is None else token_requests[u],
                         **same)).energy_per_token_j * r.tokens for u, (part, w) in enumerate(zip(per_unit, widths))]))
    return result


def lockstep(sel, batch: int) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, str]:
    """(steps [W, batch], the group of each step, the bootstrap's resampling unit of each step,
    what the units are) of `sel`'s tokens (the simulated ones) decoding `batch` sequences at a
    time in lockstep (`lockstep_steps`): the groups of sequences are the units (blocks of steps
    when there is one group). batch 1: no steps (each token is one), the units of
    `resampling_units`. A ConfigError when `sel` has fewer sequences than `batch`."""
    if batch == 1:
        return None, None, *resampling_units(sel.sequence)
    runs = [np.flatnonzero(sel.sequence == s) for s in sel.sequence_ids()]
    if len(runs) < batch:
        raise ConfigError(f"batch {batch} decodes {batch} sequences in lockstep; trace {sel.label!r} has "
                          f"{len(runs)} to simulate")
    steps, group = lockstep_steps(runs, batch)
    unit, _ = resampling_units(group)
    if group[-1] >= 1:
        return steps, group, unit, f"{group[-1] + 1} groups of up to {batch} sequences decoded in lockstep"
    return steps, group, unit, (f"{unit[-1] + 1} blocks of up to {np.bincount(unit).max()} consecutive steps "
                                f"(one group of {len(runs)} sequences decoded in lockstep)")


def lockstep_notes(sel, batch: int, steps: np.ndarray) -> list[str]:
    """What decoding `sel`'s sequences `batch` at a time in lockstep means, in the one wording
    every result uses."""
    n = len(sel.sequence_ids())
    groups, last = -(-n // batch), n % batch
    tokens = int((steps >= 0).sum())
    layout = (f"batch {batch}: {n} sequences decode in lockstep, {groups} group(s) of {batch}"
              + (f", the last of {last} (a smaller last batch)" if last else "")
              + f"; a group runs until its longest sequence ends: {len(steps)} steps of "
                f"{tokens / len(steps):.2f} tokens on average")
    work = (f"batch {batch}: each step and layer loads the union of its tokens' experts once and computes "
            "each for the tokens routed to it; attention, router and LM head compute for the step's tokens, "
            "each token reads its own KV cache; latency and energy per token are the run's divided by its "
            f"{tokens} tokens")
    return [layout, work]
