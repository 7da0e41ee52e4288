"""Notebook 05 (hardware tuning): how the link, the buffer, the PE array and the lookahead change
latency and energy per token, what prefetching adds over the same buffer used as a cache, and
where the link saturates. Every simulation uses held-out predictions (`stmoe.book.held_out`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stmoe.book.held_out import HeldOut
from stmoe.errors import ConfigError
from stmoe.sim.hardware import preset
from stmoe.sim.sweeps import sweep
from stmoe.sim.timing import layer_costs


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
