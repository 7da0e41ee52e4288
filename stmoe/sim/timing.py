"""Event-driven timing and energy of MoE decoding with an expert buffer and one fetch link.

Per token and MoE layer: attention and router compute; the router's choice is then known and
(1) each chosen expert is looked up in the buffer, missing ones are fetched on demand, ahead of
any queued prefetch; (2) queued prefetches for this layer that the router did not choose are
cancelled (bytes already on the wire are wasted); (3) the predictor's experts for the layer
`lookahead` layers ahead are queued on the link (this is when the contract says a prediction is
issued); (4) the experts are computed in arrival order, so compute stalls on late data.

The link is one FIFO queue: latency + bytes / bandwidth per expert, demand fetches jumping the
queue of not-yet-started prefetches and preempting the prefetch on the wire. Compute is a
roofline (max of MACs / peak and weight bytes / bandwidth): experts are read from the buffer at
local bandwidth, attention and router weights at the hardware's dense bandwidth, over a path of
their own (a stated simplification: they never contend with the expert link). Energy: bytes over the link, bytes
written to and read from the buffer, MACs, and static power x time.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from numba import njit

from stmoe.errors import ConfigError
from stmoe.sim.buffer import (
    CACHE,
    CAP,
    CNT,
    HEAD,
    K_NEXT,
    K_SOON,
    NEVER,
    POLICIES,
    PREFETCHED,
    QPOS,
    STAGE,
    WHERE,
    BufferSpec,
    admit,
    new_state,
    next_request,
    request_stream,
    touch,
    unlink,
    victim,
)
from stmoe.sim.hardware import Hardware, ModelDims, model_dims, preset
from stmoe.sim.systems import get_system
from stmoe.trace import phase_code

# indices of the kernel's statistics vector
(S_REQ, S_HIT, S_LATE, S_MISS, S_ISSUED, S_USEFUL, S_WASTED, S_CANCELLED, S_PF_BYTES,
 S_USEFUL_BYTES, S_WASTED_BYTES, S_DEMAND_BYTES, S_LINK_BUSY, S_TIME, S_STALL, S_ATTN,
 S_EXPERT, S_PREEMPTED, S_DROPPED) = range(19)
N_STATS = 19
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
    if S[QPOS, v] >= 0:                   # queued, never started: no bytes moved
        queue[0, S[QPOS, v] % queue.shape[1]] = -1
        S[QPOS, v] = -1
        stats[S_CANCELLED] += 1
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


@njit(cache=True)
def run_kernel(ids, pred, first, lookahead, E, t_attn, t_exp, xfer, nbytes, latency,
               S, H, part, policy, next_req, first_req, preload):
    T, L, k = ids.shape
    N = L * E
    stats = np.zeros(N_STATS)
    ready = np.zeros(N)
    Q = (lookahead + 2) * max(pred.shape[2], 1) + 1
    queue = np.full((2, Q), -1, np.int64)    # expert, target cell; -1 expert = cancelled
    qissue = np.zeros(Q)
    qh, qt = 0, 0
    S[K_NEXT, :] = first_req
    if preload:
        for o in range(N):
            admit(S, H, o, CACHE, part[o], 0)
    rt = np.empty(k)
    now, link_free = 0.0, 0.0
    pf_obj = -1    # the expert whose prefetch started last (-1: the last transfer was a demand)
    i = 0
    for t in range(T):
        if first[t]:   # no earlier token of this sequence could have issued these cells
            for c in range(t * L, t * L + min(lookahead, L)):
                qt = _issue(S, H, t * L - 1, c, now, pred, L, E, part, policy, i, nbytes, ready, queue,
                            qissue, qh, qt, stats)
        for l in range(L):
            now += t_attn[l]
            stats[S_ATTN] += t_attn[l]
            g = t * L + l
            # start every queued prefetch the link reaches by now
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
            if (pf_obj >= 0 and link_free > now and S[WHERE, pf_obj] != 0 and S[PREFETCHED, pf_obj]
                    and S[QPOS, pf_obj] < 0 and S[K_SOON, pf_obj] <= g and not _routed(ids, t, l, pf_obj, E)):
                # the prefetch on the wire was for this layer (or earlier) and the router did not
                # choose it: demands preempt it, and its bytes so far are wasted
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
            nd = 0
            for s in range(k):
                e = ids[t, l, s]
                if e < 0:
                    continue
                o = l * E + e
                p = part[o]
                S[K_NEXT, o] = next_req[i]
                stats[S_REQ] += 1
                demand = False
                if S[WHERE, o] != 0:
                    if S[QPOS, o] >= 0:     # prefetch still queued: fetch it as a demand
                        queue[0, S[QPOS, o] % Q] = -1
                        S[QPOS, o] = -1
                        S[PREFETCHED, o] = 0
                        stats[S_CANCELLED] += 1
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
                if demand:
                    pf_obj = -1
                    stats[S_MISS] += 1
                    link_free = max(link_free, now) + xfer[l]
                    ready[o] = link_free + latency
                    stats[S_DEMAND_BYTES] += nbytes[l]
                    stats[S_LINK_BUSY] += xfer[l]
                rt[nd] = ready[o]
                nd += 1
                i += 1
            # prefetches for this layer that the router did not choose
            for jj in range(qh, qt):
                j = jj % Q
                q = queue[0, j]
                if q >= 0 and queue[1, j] == g:
                    queue[0, j] = -1
                    S[QPOS, q] = -1
                    S[PREFETCHED, q] = 0
                    unlink(S, H, q, part[q])
                    stats[S_CANCELLED] += 1
            # the new prediction (cell g + lookahead), and again those for nearer cells that a
            # full staging region made us drop: the prefetcher keeps staging the nearest cells
            for c in range(g + 1, g + lookahead + 1):
                tt = c // L
                if tt < T and (tt == t or not first[tt]):
                    qt = _issue(S, H, g, c, now, pred, L, E, part, policy, i, nbytes, ready, queue,
                                qissue, qh, qt, stats)
            for j in range(1, nd):           # arrival order (insertion sort: nd <= k is small)
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
                cur += t_exp[l]
            stats[S_EXPERT] += nd * t_exp[l]
            now = cur
    # fetched prefetches never used by the end count as wasted; queued ones never moved
    for o in range(N):
        if S[PREFETCHED, o]:
            if S[QPOS, o] >= 0:
                stats[S_CANCELLED] += 1
            else:
                stats[S_WASTED] += 1
                stats[S_WASTED_BYTES] += nbytes[o // E]
    stats[S_TIME] = now
    return stats


@dataclass
class SimulationResult:
    """What one system did on one trace and machine. Times in seconds, energy in joules."""

    system: str
    hardware: str
    changes_routing: bool
    tokens: int
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
    cancelled_prefetches: int
    dropped_prefetches: int
    preempted_prefetches: int
    energy_breakdown_j: dict = field(default_factory=dict)
    speedup_vs_on_demand: float | None = None
    energy_efficiency_vs_on_demand: float | None = None
    notes: list = field(default_factory=list)

    def relative_to(self, base: "SimulationResult") -> "SimulationResult":
        self.speedup_vs_on_demand = base.latency_per_token_s / self.latency_per_token_s
        self.energy_efficiency_vs_on_demand = base.energy_per_token_j / self.energy_per_token_j
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    def row(self) -> dict:
        """Every scalar result as one flat dict: what tables, JSON output, sweeps and charts read."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("energy_breakdown_j", "notes")}


def decode_tokens(trace, phase: str | None):
    """The tokens simulated, and which of them start a sequence."""
    if phase not in (None, "all"):
        if not np.any(trace.phase == phase_code(phase)):
            raise ConfigError(f"trace {trace.name!r} has no {phase} tokens to simulate")
        trace = trace.select(phase=phase)
    sel = trace
    seq = sel.sequence
    first = np.ones(sel.num_tokens, np.bool_)
    first[1:] = seq[1:] != seq[:-1]
    return sel, first


def run(ids, pred, first, *, num_experts: int, lookahead: int, hardware: Hardware, dims: ModelDims,
        buffer: BufferSpec, preload: bool = False) -> np.ndarray:
    """The kernel on prepared arrays; returns the raw statistics vector."""
    T, L, _ = ids.shape
    if not 1 <= lookahead <= L:
        raise ConfigError(f"lookahead must be between 1 and the number of layers ({L}), got {lookahead!r}")
    hardware.check_fits(dims.expert_bytes)
    E = num_experts
    slots = buffer.slots(L, dims.expert_bytes)
    if preload:
        slots[CACHE], slots[STAGE] = L * E, 0
    part = (np.arange(L * E, dtype=np.int32) // E) if buffer.per_layer else np.zeros(L * E, np.int32)
    first_req = np.full(L * E, NEVER, np.int64)
    if buffer.policy == "belady":    # only Belady looks at the future
        objs = request_stream(ids, E)
        nreq = next_request(objs)
        first_seen, where_first = np.unique(objs, return_index=True)
        first_req[first_seen] = where_first
    else:
        nreq = np.zeros(int((ids >= 0).sum()), np.int64)
    return run_kernel(np.ascontiguousarray(ids, np.int16), np.ascontiguousarray(pred, np.int16),
                      first, int(lookahead), E, *layer_costs(hardware, dims), hardware.link_latency,
                      *new_state(L * E, slots), part, POLICIES[buffer.policy], nreq, first_req, preload)


def layer_costs(hw: Hardware, dims: ModelDims):
    """Per layer (seconds, seconds, seconds, bytes): attention + router time, one expert's
    compute time, one expert's transfer time over the link, and one expert's bytes."""
    t_attn = np.maximum(dims.dense_macs / hw.peak_macs, dims.dense_bytes / hw.dense_read_bandwidth)
    t_exp = np.maximum(dims.expert_macs / hw.peak_macs, dims.expert_bytes / hw.local_bandwidth)
    return t_attn, t_exp, dims.expert_bytes / hw.link_bandwidth, dims.expert_bytes.astype(np.float64)


def summarise(stats: np.ndarray, *, system: str, hardware: Hardware, dims: ModelDims, tokens: int,
              num_layers: int, changes_routing: bool, notes=()) -> SimulationResult:
    s = stats
    moved = s[S_DEMAND_BYTES] + s[S_PF_BYTES]
    uses = s[S_REQ]
    expert_read = uses * float(np.mean(dims.expert_bytes))
    dense_read = tokens * float(np.sum(dims.dense_bytes))
    macs = uses * dims.expert_macs + tokens * num_layers * dims.dense_macs
    pj = 1e-12
    energy = {
        "link": moved * hardware.link_pj_per_byte * pj,
        "buffer": (moved + expert_read) * hardware.buffer_pj_per_byte * pj,
        "dense weights": dense_read * hardware.dense_read_pj_per_byte * pj,
        "compute": macs * hardware.mac_pj * pj,
        "static": s[S_TIME] * hardware.static_w,
    }
    total_time = s[S_TIME]
    return SimulationResult(
        system=system, hardware=hardware.name, changes_routing=changes_routing, tokens=tokens,
        requests=int(uses), latency_per_token_s=total_time / tokens,
        energy_per_token_j=sum(energy.values()) / tokens,
        hit_rate=s[S_HIT] / uses if uses else 0.0,
        late_prefetch_rate=s[S_LATE] / uses if uses else 0.0,
        stall_share=s[S_STALL] / total_time if total_time else 0.0,
        link_utilisation=min(s[S_LINK_BUSY] / total_time, 1.0) if total_time else 0.0,
        moved_bytes=moved, demand_bytes=s[S_DEMAND_BYTES], prefetch_bytes=s[S_PF_BYTES],
        useful_bytes=s[S_USEFUL_BYTES], wasted_bytes=s[S_WASTED_BYTES],
        prefetches_issued=int(s[S_ISSUED]), useful_prefetches=int(s[S_USEFUL]),
        wasted_prefetches=int(s[S_WASTED]), cancelled_prefetches=int(s[S_CANCELLED]),
        dropped_prefetches=int(s[S_DROPPED]), preempted_prefetches=int(s[S_PREEMPTED]),
        energy_breakdown_j={k: float(v) / tokens for k, v in energy.items()}, notes=list(notes))


def simulate(trace, hardware: Hardware | str = "accelerator", system="st-moe", *, predictions=None,
             lookahead: int = 1, budget: int | None = None, profile=None, buffer: BufferSpec | None = None,
             phase: str | None = "decode", dims: ModelDims | None = None, **system_knobs) -> SimulationResult:
    """Simulate one system (a name from `stmoe.sim.systems.SYSTEMS` or a `System`) on a trace.

    predictions: an int16 [T, L, m] array over the simulated tokens (the trace's tokens of
    `phase`), overriding the system's own predictor (use it to test with your own predictions).
    buffer: defaults to the hardware's whole buffer, in bytes, with the system's policy.
    """
    hw = preset(hardware)
    sysm = get_system(system)
    # plan's keyword-only parameters that simulate does not name itself (threshold, predictor)
    knobs = [n for n, p in inspect.signature(sysm.plan).parameters.items()
             if p.kind is p.KEYWORD_ONLY and n not in inspect.signature(simulate).parameters]
    unknown = sorted(set(system_knobs) - set(knobs))
    if unknown:
        raise ConfigError(f"simulate: unknown argument {unknown[0]!r}; system knobs: {', '.join(knobs)}")
    sel, first = decode_tokens(trace, phase)
    dims = dims or model_dims(trace)
    plan = sysm.plan(sel, hw, dims, predictions=predictions, lookahead=lookahead, budget=budget,
                     profile=profile, buffer=buffer, **system_knobs)
    stats = run(plan.ids, plan.predictions, first, num_experts=sel.num_experts,
                lookahead=plan.lookahead, hardware=hw, dims=dims, buffer=plan.buffer,
                preload=plan.preload)
    return summarise(stats, system=sysm.name, hardware=hw, dims=dims, tokens=sel.num_tokens,
                     num_layers=sel.num_layers, changes_routing=sysm.changes_routing, notes=plan.notes)
