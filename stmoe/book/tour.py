"""Why expert loads stall decoding, in two computations the tour notebook is built on.

`layer_budget`: per hardware preset, the bytes of one expert, the time the link needs to bring the
k experts of one layer (as the timing model's link does: copies back to back, the link's fixed
latency overlapped, so paid once), and the time the layer's compute takes once they are there. When the
first is larger than the second, a token that finds its experts missing waits on the link.

`latency_grid`: latency per decode token of several systems over a grid of link bandwidths and
buffer sizes, simulated by `stmoe.sim.timing` through `stmoe.sim.sweeps`. The predictor runs once (its
predictions do not depend on the hardware), so the grid costs only buffer and timing runs and an
explorer can answer a slider by looking rows up.
"""

from __future__ import annotations

import numpy as np

from stmoe.book.held_out import HeldOut, gain
from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.sim.buffer import experts_held
from stmoe.sim.hardware import Hardware, ModelDims, model_dims, preset
from stmoe.sim.sweeps import sweep
from stmoe.sim.systems import get_system, runnable
from stmoe.sim.timing import layer_costs
from stmoe.trace import Trace

# the bounds, st-moe, and the cache baselines that show what its prediction adds over caching
TOUR_SYSTEMS = ("on-demand", "lru-cache", "hot-set", "speculative-gate", "st-moe", "oracle", "all-resident")


def layer_budget(trace: Trace, hardware: Hardware | str, dims: ModelDims | None = None) -> dict:
    """Load time against compute time for one MoE layer of one decode token (means over layers).

    load_layer_s: k experts over an idle link, as `stmoe.sim.timing` fetches them on demand: the
    copies go back to back (k x bytes / bandwidth) and each arrives the link's fixed latency after
    its bytes are sent, so the latency overlaps the next copies and is paid once, by the last;
    compute_layer_s: attention and router with the layer's KV-cache reads, then k experts read from
    fast memory (as `stmoe.sim.timing.layer_costs` times them); buffer_share: the fraction of all the model's experts the buffer can hold.
    """
    hw = preset(hardware)
    dims = dims or model_dims(trace)
    t_attn, t_kv, t_exp, _, t_link, _ = layer_costs(hw, dims)
    k = trace.top_k
    load = hw.link_latency + k * float(np.mean(t_link))
    compute = float(np.mean(t_attn + t_kv + k * t_exp))
    all_bytes = float(np.sum(dims.expert_bytes)) * trace.num_experts
    return {"hardware": hw.name, "expert_bytes": float(np.mean(dims.expert_bytes)),
            "link_bandwidth": hw.link_bandwidth, "load_layer_s": load, "compute_layer_s": compute,
            "load_to_compute": load / compute, "all_experts_bytes": all_bytes,
            "buffer_share": min(experts_held(hw.buffer_bytes, dims.expert_bytes) / (trace.num_layers * trace.num_experts),
                                1.0)}


def buffer_bytes(trace: Trace, dims: ModelDims, share: float) -> float:
    """The buffer that holds `share` of all the model's experts, in bytes; at least two layers'
    working sets (2k slots of the largest expert), so every system can stage one layer ahead."""
    return max(share * trace.num_layers * trace.num_experts, 4 * trace.top_k) * float(np.max(dims.expert_bytes))


def gain_at(trace: Trace, hardware: Hardware | str, buffer_share: float, *, system: str = "st-moe",
            baseline: str = "lru-cache", dims: ModelDims | None = None, profile: Trace | None = None,
            predictor: str = "st-moe") -> dict:
    """`system`'s speedup and energy efficiency over `baseline` at one point of `latency_grid`
    (the preset's link, the buffer of `buffer_share`), with paired bootstrap intervals
    (`stmoe.book.held_out.gain`): over lru-cache, what prediction adds to the same buffer."""
    dims = dims or model_dims(trace)
    hw = preset(hardware)
    hw = hw.with_(buffer_bytes=buffer_bytes(trace, dims, float(buffer_share)))
    data = HeldOut(profile, trace, dims, predictor, budget=trace.top_k)
    return gain(data, hw, system, baseline)


def tour_systems(trace: Trace, profile: Trace | None = None) -> tuple[list[str], list[str]]:
    """(the systems of TOUR_SYSTEMS that can run on `trace` with `profile`, a note for each left
    out: hot-set needs a profile, speculative-gate the trace's stale gate)."""
    return runnable(TOUR_SYSTEMS, trace, profile)


def latency_grid(trace: Trace, hardware: Hardware | str, *, bandwidths, buffer_shares,
                 systems=None, dims: ModelDims | None = None, profile: Trace | None = None,
                 predictor: str = "st-moe") -> list[dict]:
    """Rows of `stmoe.sim.sweeps.sweep` over `bandwidths` (bytes/s), one sweep per buffer size given
    as a share of all the model's experts, each row with its `buffer_share` added. Decode tokens
    only; the predictor and hot-set are profiled on `profile` when given (never on the simulated
    tokens). systems: by default `tour_systems(trace, profile)` (its notes name those left out)."""
    shares = [float(s) for s in buffer_shares]
    if not shares or any(not 0.0 < s <= 1.0 for s in shares):
        raise ConfigError(f"buffer_shares must be fractions in (0, 1], got {buffer_shares!r}")
    if systems is None:
        systems = tour_systems(trace, profile)[0]
    hw0 = preset(hardware)
    dims = dims or model_dims(trace)
    decode = trace.select(phase="decode")
    predictions = None
    if any(get_system(s).tunable_predictor for s in systems):
        predictions = predict(decode, predictor, budget=trace.top_k, profile=profile)
    rows = []
    for share in shares:
        hw = hw0.with_(buffer_bytes=buffer_bytes(trace, dims, share))
        for row in sweep(decode, "link_bandwidth", bandwidths, systems=systems, hardware=hw,
                         predictions=predictions, dims=dims, profile=profile):
            rows.append({**row, "buffer_share": share})
    return rows
