"""The computations behind the buffer and hardware-tuning chapters: replacement policies against
capacity, what prediction-driven prefetching adds, how the cache/prefetch split and the machine
change latency and energy, and where the link saturates.

Predictions are always held out: the tables are profiled on one half of a trace's sequences
(the first half of its tokens when it has one sequence) and the other half is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.readers.catalog import load_trace
from stmoe.sim.buffer import BufferSpec, replay, request_stream
from stmoe.sim.hardware import ModelDims, model_dims, preset
from stmoe.sim.sweeps import sweep
from stmoe.sim.timing import layer_costs, simulate
from stmoe.trace import Trace

POLICIES = ("lru", "lfu", "fifo", "belady")
CAPACITY_FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass
class HeldOut:
    """A trace split for simulation: `profile` fits the predictor, `scored` is simulated, and
    `predictions[lookahead]` are the predictor's choices over `scored`'s decode tokens."""

    profile: Trace
    scored: Trace
    dims: ModelDims
    predictor: str = "st-moe"
    budget: int | None = None
    predictions: dict = field(default_factory=dict)

    def predictions_for(self, lookahead: int = 1) -> np.ndarray:
        if lookahead not in self.predictions:
            decode = self.scored.select(phase="decode")
            self.predictions[lookahead] = predict(decode, self.predictor, budget=self.budget,
                                                  profile=self.profile, lookahead=lookahead)
        return self.predictions[lookahead]

    def subset(self, num_sequences: int) -> "HeldOut":
        """The first `num_sequences` scored sequences, with the predictions cut to match (the
        predictor is causal, so a prefix of sequences gets the same predictions)."""
        seqs = self.scored.sequence_ids()[:num_sequences]
        part = self.scored.select(sequences=seqs)
        n = int((part.phase == 1).sum())
        return HeldOut(self.profile, part, self.dims, self.predictor, self.budget,
                       {d: p[:n] for d, p in self.predictions.items()})


def held_out(trace: Trace, *, predictor: str = "st-moe", budget: int | None = None,
             lookaheads=(1,), dims: ModelDims | None = None) -> HeldOut:
    """Split `trace` into profile and scored halves and predict the scored decode tokens."""
    if not (trace.phase == 1).any():
        raise ConfigError(f"trace {trace.label} has no decode tokens to simulate")
    seqs = trace.sequence_ids()
    if len(seqs) >= 2:
        first = np.isin(trace.sequence, seqs[: len(seqs) // 2])
    else:
        first = np.arange(trace.num_tokens) < trace.num_tokens // 2
    scored = trace.select(tokens=~first)
    if not (scored.phase == 1).any():
        raise ConfigError(f"trace {trace.label}: the scored half has no decode tokens")
    out = HeldOut(trace.select(tokens=first), scored, dims or model_dims(trace), predictor, budget)
    for d in lookaheads:
        out.predictions_for(int(d))
    return out


def capacities(trace: Trace, fractions=CAPACITY_FRACTIONS) -> list[int]:
    """Buffer capacities in experts, as fractions of all L x E experts (at least one)."""
    total = trace.num_layers * trace.num_experts
    return sorted({max(int(round(f * total)), 1) for f in fractions})


def replacement_curves(trace: Trace, sizes=None, policies=POLICIES, phase: str = "decode", *,
                       per_layer: bool = False) -> list[dict]:
    """Demand-only hit rate of each replacement policy at each capacity (in experts), over the
    requests of `phase` in time order. One buffer shared by all layers, or with `per_layer`
    the same total split evenly into one buffer per layer (capacity // L each)."""
    sel = trace.select(phase=phase) if phase else trace
    objs = request_stream(sel.expert_ids, sel.num_experts)
    if objs.size == 0:
        raise ConfigError(f"trace {trace.label} has no {phase} requests")
    L, E = sel.num_layers, sel.num_experts
    part = np.repeat(np.arange(L, dtype=np.int32), E) if per_layer else None
    rows = []
    for c in sizes or capacities(sel):
        each = int(c) // L if per_layer else int(c)
        if each < 1:
            raise ConfigError(f"capacity {c} is less than one expert per layer ({L} layers)")
        for p in policies:
            hits = replay(objs, each, p, part=part, num_objects=L * E)
            rows.append({"policy": p, "capacity": int(c), "fraction": c / (L * E),
                         "hit_rate": hits / objs.size})
    return rows


def hit_rate_at(rows: list[dict], policy: str, capacity: int) -> float:
    for r in rows:
        if r["policy"] == policy and r["capacity"] == capacity:
            return r["hit_rate"]
    raise KeyError(f"no row for policy {policy!r} at capacity {capacity}")


OUTCOME_FIELDS = ("hit_rate", "late_prefetch_rate", "stall_share", "latency_per_token_s",
                  "wasted_bytes", "useful_bytes", "prefetches_issued", "useful_prefetches",
                  "wasted_prefetches", "cancelled_prefetches", "link_utilisation")


def split_outcomes(data: HeldOut, capacity: float, share: float, *, hardware="accelerator",
                   lookahead: int = 1) -> list[dict]:
    """Two systems with a buffer of `capacity` experts: the whole buffer as an LRU cache, and
    st-moe's held-out predictions staged in a `share` of it (prediction-aware cache in the
    rest). One dict per system with OUTCOME_FIELDS, `miss_rate` and `tokens`."""
    hw = preset(hardware)
    runs = [("cache only (LRU)", "lru-cache", BufferSpec(capacity, "experts", prefetch_share=0.0), None),
            (f"st-moe, {share:.0%} staging", "st-moe",
             BufferSpec(capacity, "experts", prefetch_share=share, policy="predictive"),
             data.predictions_for(lookahead))]
    rows = []
    for label, system, spec, pred in runs:
        r = simulate(data.scored, hw, system, predictions=pred, buffer=spec, dims=data.dims,
                     lookahead=lookahead)
        row = {"system": label, "capacity": capacity, "share": share if pred is not None else 0.0,
               "tokens": r.tokens, **{f: getattr(r, f) for f in OUTCOME_FIELDS}}
        row["miss_rate"] = 1.0 - row["hit_rate"] - row["late_prefetch_rate"]
        rows.append(row)
    return rows


def share_sweep(data: HeldOut, capacity: float, shares, *, hardware="accelerator", lookahead: int = 1) -> list[dict]:
    """st-moe's outcomes as its staging share varies at a fixed capacity."""
    return [split_outcomes(data, capacity, s, hardware=hardware, lookahead=lookahead)[1] for s in shares]


def layer_times(data: HeldOut, hardware) -> dict:
    """Per MoE layer, in microseconds (layer means): attention + router compute, one expert's
    compute, and one expert's transfer over the link (latency included)."""
    hw = preset(hardware)
    t_attn, t_exp, xfer, _ = layer_costs(hw, data.dims)
    return {"attention_us": float(np.mean(t_attn)) * 1e6, "expert_compute_us": float(np.mean(t_exp)) * 1e6,
            "expert_load_us": (float(np.mean(xfer)) + hw.link_latency) * 1e6}


def balanced_pe_side(data: HeldOut, hardware) -> dict:
    """The square PE array side at which compute time equals weight-read time (the roofline's
    ridge) for one expert and for the attention + router of a layer, at one token per step:
    a larger array cannot make that part faster, a smaller one makes it compute-bound."""
    hw = preset(hardware)
    d = data.dims
    expert = d.expert_macs * hw.local_bandwidth / (float(np.mean(d.expert_bytes)) * hw.clock_hz)
    dense = d.dense_macs * hw.dense_read_bandwidth / (float(np.mean(d.dense_bytes)) * hw.clock_hz)
    return {"expert": float(np.sqrt(expert)), "attention": float(np.sqrt(dense))}


def machine(hardware="accelerator", *, link_gbps=None, buffer_mib=None, pe_side=None):
    """A preset with the tuning chapter's knobs: link bandwidth in GB/s, buffer in MiB, and a
    square PE array of pe_side x pe_side MACs per cycle."""
    changes = {}
    if link_gbps is not None:
        changes["link_bandwidth"] = float(link_gbps) * 1e9
    if buffer_mib is not None:
        changes["buffer_bytes"] = float(buffer_mib) * 2 ** 20
    if pe_side is not None:
        changes["macs_per_cycle"] = float(pe_side) ** 2
    return preset(hardware, **changes)


def tuning_rows(data: HeldOut, hardware, *, lookahead: int = 1,
                systems=("on-demand", "lru-cache", "st-moe", "oracle")) -> list[dict]:
    """Latency and energy per token of each system on one machine (a `sweep` of one point)."""
    return sweep(data.scored, "lookahead", [lookahead], systems=systems, hardware=hardware,
                 predictions={lookahead: data.predictions_for(lookahead)}, dims=data.dims)


def lookahead_rows(data: HeldOut, hardware, lookaheads=(1, 2, 3),
                   systems=("on-demand", "st-moe", "oracle")) -> list[dict]:
    """A lookahead sweep with each depth's own held-out predictions."""
    return sweep(data.scored, "lookahead", [int(d) for d in lookaheads], systems=systems, hardware=hardware,
                 predictions={int(d): data.predictions_for(int(d)) for d in lookaheads}, dims=data.dims)


def bandwidth_rows(data: HeldOut, hardware, bandwidths, *, lookahead: int = 1,
                   systems=("lru-cache", "st-moe", "oracle")) -> list[dict]:
    """A link-bandwidth sweep with the held-out predictions."""
    return sweep(data.scored, "link_bandwidth", list(bandwidths), systems=systems, hardware=hardware,
                 predictions=data.predictions_for(lookahead), dims=data.dims, lookahead=lookahead)


def gain_rows(rows: list[dict], baseline: str = "lru-cache") -> list[dict]:
    """What prefetching adds on top of caching: each system's speedup over `baseline` (the
    same buffer used as a plain cache) at each swept value, with its link utilisation."""
    base = {r["value"]: r["latency_per_token_s"] for r in rows if r["system"] == baseline}
    if not base:
        raise ConfigError(f"gain_rows: no rows for the baseline system {baseline!r}")
    return [{"value": r["value"], "system": r["system"], "gain": base[r["value"]] / r["latency_per_token_s"],
             "link_utilisation": r["link_utilisation"]} for r in rows if r["system"] != baseline]


@dataclass
class Knee:
    """Where prefetching stops helping as the link slows. `peak_bandwidth` gives the system its
    largest gain over the cache-only baseline; at `saturated_below` and every slower link the
    system keeps the link busy at least `threshold` of the time, and its gain there is
    `gain_at_saturation` (below 1: prefetching costs more than it hides)."""

    peak_bandwidth: float
    peak_gain: float
    peak_utilisation: float
    saturated_below: float | None
    gain_at_saturation: float | None
    threshold: float


def bandwidth_knee(rows: list[dict], system: str = "st-moe", baseline: str = "lru-cache",
                   threshold: float = 0.95) -> Knee:
    """The knee of a link-bandwidth sweep (rows from `bandwidth_rows` including `baseline`)."""
    mine = sorted((g for g in gain_rows(rows, baseline) if g["system"] == system), key=lambda g: g["value"])
    if not mine:
        raise ConfigError(f"bandwidth_knee: no rows for system {system!r}")
    peak = max(mine, key=lambda g: g["gain"])
    saturated = None
    for g in mine:   # the fastest link of the saturated run that starts at the slowest link
        if g["link_utilisation"] < threshold:
            break
        saturated = g
    return Knee(peak["value"], peak["gain"], peak["link_utilisation"],
                saturated["value"] if saturated else None, saturated["gain"] if saturated else None,
                threshold)


def experts_mib(data: HeldOut) -> float:
    """The weights of all L x E experts of the model, in MiB: the buffer size that holds them all."""
    return float(np.sum(data.dims.expert_bytes)) * data.scored.num_experts / 2 ** 20


DEFAULT_TRACE = "tiny-moe-code"


def default_held_out(name: str = DEFAULT_TRACE, lookaheads=(1,)) -> HeldOut:
    """The chapters' evidence: a bundled trace split into profile and scored halves."""
    return held_out(load_trace(name), lookaheads=lookaheads)
