"""Notebook 08 (operating regimes): what changes when the machine serves more than one decode
token at a time, prefills a prompt, holds quantised experts, or computes a missing expert on the
host CPU instead of fetching it.

The step model (`step_times`) is the simulator's timing of a step of M tokens
(`stmoe.sim.timing.layer_costs` and `expert_compute_time`: the PE array's cycles for M tokens,
never faster than the weight reads) without the buffer: per MoE layer, attention and router for
the M tokens, the KV-cache reads, and each expert the step routes to computed once for the
tokens routed to it; then the LM head for the M tokens. Its assumptions, which the notebook
states:

- a step of B tokens is B consecutive decode tokens of one sequence (as speculative decoding
  verifies B drafted tokens; the KV cache is read once a step: the one thing the simulator,
  whose steps are sequences, does not model), or the same position of B sequences decoding in
  lockstep (each reads its own KV cache); the routing is the trace's;
- "resident": every expert is in the buffer, `simulate`'s all-resident system;
  "streamed": every expert the step uses crosses the link on demand, `simulate`'s on-demand
  system when its buffer keeps no expert between steps (the union's experts one after another
  on the link, each computed once it has arrived). On steps of sequences in lockstep both equal
  the simulator's to rounding (tests/test_book_operating_regimes.py);
- the Fiddler comparison (`cpu_or_fetch`) is analytical: a host CPU's GEMV at an assumed
  bandwidth against a PCIe copy of the expert, both from the constants below.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stmoe.book.hardware_tuning import tuning_rows
from stmoe.book.held_out import gain
from stmoe.errors import ConfigError
from stmoe.sim import batching
from stmoe.sim.batching import lockstep_steps
from stmoe.sim.hardware import ModelDims, model_dims, preset
from stmoe.sim.systolic import dense_time, expert_time, head_time
from stmoe.sim.timing import expert_compute_time, layer_costs
from stmoe.trace import DECODE, PREFILL, Trace

SIZES_MODEL = "qwen3-30b-a3b"      # every trace is timed with this model's expert sizes
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MACHINES = ("accelerator", "gpu-pcie")
DTYPES = ("bfloat16", "int8", "int4")
QUANT_SYSTEMS = ("on-demand", "lru-cache", "st-moe")
ACROSS = {"tokens": "consecutive tokens of one sequence", "sequences": "sequences in lockstep"}
NEARLY_ALL = 0.9   # the share of a layer's experts a step touches at which "which" stops mattering

# The host CPU of the Fiddler comparison. ASSUMPTION: a server socket with 8 channels of
# DDR4-3200 (JEDEC JESD79-4: 3200 MT/s x 8 bytes = 25.6 GB/s a channel, 204.8 GB/s in all), of
# which a GEMV streams half (CPU_BANDWIDTH, about 100 GB/s). ASSUMPTION: 32 cores at 2 GHz, each
# issuing one AVX512_BF16 VDPBF16PS a cycle (32 bf16 multiply-accumulates, Intel's instruction
# reference; Fiddler's CPU kernel uses AVX512_BF16): 2.05 TMAC/s.
CPU_BANDWIDTH = 8 * 25.6e9 / 2
CPU_MACS = 32 * 2e9 * 32
ACTIVATION_BYTES = 2.0   # a token's hidden vector crosses PCIe in bf16, there and back


def sizes(trace: Trace, dtype: str = "bfloat16", model: str = SIZES_MODEL) -> ModelDims:
    """`trace`'s routing timed with `model`'s sizes at `dtype` (`stmoe.sim.hardware.model_dims`)."""
    return model_dims(trace, model=model, dtype=dtype)


def windows(trace: Trace, batch: int, phase: int = DECODE, across: str = "tokens") -> np.ndarray:
    """[W, batch] token indices of the steps of `batch` tokens of `phase`. across "tokens": each
    sequence's tokens cut into consecutive runs of `batch` (a sequence's last, shorter run left
    out); "sequences": `batch` consecutive sequences decoding in lockstep, step j holding each
    one's j-th token: the full steps of `stmoe.sim.batching.lockstep_steps` (a group stops at its
    shortest sequence; sequences left over are left out, where the simulator runs them as a
    smaller last batch)."""
    if isinstance(batch, bool) or not float(batch).is_integer() or batch < 1:
        raise ConfigError(f"batch must be a positive whole number of tokens, got {batch!r}")
    if across not in ACROSS:
        raise ConfigError(f"across must be one of {', '.join(ACROSS)}, got {across!r}")
    batch = int(batch)
    runs = [np.flatnonzero((trace.sequence == s) & (trace.phase == phase)) for s in trace.sequence_ids()]
    if across == "sequences":   # the simulator's lockstep steps, the full ones
        steps, _ = lockstep_steps(runs, batch)
        return steps[(steps >= 0).all(axis=1)]
    out = []
    for idx in runs:
        n = len(idx) // batch * batch
        if n:
            out.append(idx[:n].reshape(-1, batch))
    return np.concatenate(out) if out else np.zeros((0, batch), dtype=np.int64)


def step_routing(trace: Trace, steps: np.ndarray) -> np.ndarray:
    """[W, L, U]: per step and layer, how many of the step's tokens each expert of the union of
    their experts is routed to, in the order the simulator fetches them (0: padding after the
    union); `stmoe.sim.batching.batch_routing`, the simulator's own."""
    return batching.batch_routing(trace.expert_ids, steps, trace.num_experts)[1].astype(np.int64)


def step_times(hw, dims: ModelDims, routing: np.ndarray, tokens: int, kv_reads: int = 1) -> dict:
    """Per step of `tokens` tokens ([W] arrays of seconds) routed as `routing` ([W, L, U],
    `step_routing`), the simulator's timing of the step (`stmoe.sim.timing`: `layer_costs` and
    `expert_compute_time` per layer, then the LM head) without its buffer:

    - `resident`: every expert in the buffer, as `simulate`'s all-resident system;
    - `streamed`: every expert of the union fetched on demand, as `simulate`'s on-demand system
      when its buffer keeps no expert from one step to the next: one after another over the
      link (link latency + bytes / bandwidth each, the latency overlapping the next transfer),
      each computed once it has arrived and the one before it is done;
    - `compute` (PE array cycles only) and `reads` (weight and KV reads only) of the resident
      step, whose larger part says whether it is compute- or load-bound.

    kv_reads: how many KV caches a step reads (1 for tokens of one sequence, B for B sequences;
    the simulator's steps are sequences, so it reads B)."""
    hw = preset(hw)
    bw = hw.dense_read_bandwidth
    t_attn, t_kv, _, t_head, xfer, _ = layer_costs(hw, dims, tokens, kv_reads)
    top = int(routing.max(initial=0))
    t_exp = np.zeros((len(xfer), top + 1))                                                  # [L, M]
    for m in range(1, top + 1):
        t_exp[:, m] = expert_compute_time(hw, dims, m)
    used = routing > 0                                                                      # [W, L, U]
    layer = np.arange(len(xfer))[None, :, None]
    work = t_exp[layer, routing]                                                            # 0 where unused
    # The j-th expert of the union arrives j transfers and one latency after the layer's router;
    # computing in arrival order, the layer ends at the latest of arrival_j + the compute from j on.
    after = np.cumsum(work[:, :, ::-1], axis=2)[:, :, ::-1]
    arrival = np.arange(1, routing.shape[2] + 1)[None, :] * xfer[:, None] + hw.link_latency   # [L, U]
    fetched = np.where(used, arrival[None] + after, 0.0).max(axis=2, initial=0.0)          # [W, L]
    fixed = t_attn + t_kv                                                                   # [L]
    resident = (fixed[None, :] + work.sum(axis=2)).sum(axis=1) + t_head
    streamed = (fixed[None, :] + fetched).sum(axis=1) + t_head
    cycles = np.array([0.0, *(expert_time(hw, dims, m) for m in range(1, top + 1))])     # [M]
    compute = cycles[routing].sum(axis=2)
    reads = used.sum(axis=2) * (dims.expert_bytes / hw.local_bandwidth)[None, :]
    return {"resident": resident, "streamed": streamed,
            "compute": (dense_time(hw, dims, tokens) + tokens * dims.kv_macs / hw.peak_macs + compute).sum(axis=1)
            + head_time(hw, dims, tokens),
            "reads": (dims.dense_bytes / bw + kv_reads * dims.kv_bytes / bw + reads).sum(axis=1)
            + dims.head_bytes / bw}


def batch_rows(trace: Trace, hardware=MACHINES, dtypes=("bfloat16",), batches=BATCHES,
               model: str = SIZES_MODEL, across: str = "tokens") -> tuple[list[dict], list[str]]:
    """(rows, notes): per machine, expert dtype and batch size B with at least one full step
    (`windows`, `across` tokens or sequences), the steps timed, the mean union of experts per
    layer, its share of the layer's experts (and what independent uniform routing would give,
    `uniform_share`), the experts per token, and the time per token of a
    resident and a streamed step (µs). A B with no full step is left out, said in the notes."""
    machines = (hardware,) if isinstance(hardware, str) else tuple(hardware)
    dims = {d: sizes(trace, d, model) for d in dtypes}
    rows, notes = [], []
    for b in batches:
        steps = windows(trace, b, across=across)
        if not len(steps):
            notes.append(f"batch {b}: {trace.label} has no step of {b} {ACROSS[across]}; left out")
            continue
        routing = step_routing(trace, steps)
        union = float((routing > 0).sum(axis=2).mean())
        for hw in machines:
            for dtype, d in dims.items():
                t = step_times(hw, d, routing, b, kv_reads=b if across == "sequences" else 1)
                rows.append({"trace": trace.label, "across": across, "hardware": preset(hw).name, "dtype": dtype,
                             "batch": int(b), "steps": len(steps), "union_per_layer": union,
                             "share_touched": union / trace.num_experts,
                             "uniform_share_touched": uniform_share(trace.num_experts, trace.top_k, b),
                             "experts_per_token": union / b,
                             "resident_us_per_token": float(t["resident"].mean() / b * 1e6),
                             "streamed_us_per_token": float(t["streamed"].mean() / b * 1e6)})
    return rows, notes


def uniform_share(num_experts: int, k: int, batch: int) -> float:
    """The expected share of a layer's E experts that B tokens touch if each picked its k experts
    independently and uniformly: each expert is missed by one token with probability 1 - k/E,
    by all B with (1 - k/E)^B."""
    return 1.0 - (1.0 - k / num_experts) ** batch


def nearly_all(rows: list[dict], share: float = NEARLY_ALL, field: str = "share_touched") -> int | None:
    """The smallest batch whose steps touch at least `share` of each layer's experts on average
    (None if no batch does): from there on, nearly every expert is needed every step. field:
    "uniform_share_touched" for independent uniform routing."""
    return next((r["batch"] for r in rows if r[field] >= share), None)


def prefill_decode(trace: Trace, hardware="accelerator", dims: ModelDims | None = None) -> list[dict]:
    """Per phase, all experts resident: the tokens a step holds (for prefill the shortest prompt's
    length, longer prompts cut into steps of that many; one token for decode), the time per token (µs) and the share of the step that compute and that
    reads alone would take, and which of the two bounds it."""
    dims = dims or sizes(trace)
    out = []
    for name, phase in (("prefill", PREFILL), ("decode", DECODE)):
        lengths = [int(((trace.sequence == s) & (trace.phase == phase)).sum()) for s in trace.sequence_ids()]
        m = min(x for x in lengths if x) if name == "prefill" and any(lengths) else 1
        steps = windows(trace, m, phase)
        if not len(steps):
            raise ConfigError(f"trace {trace.label} has no {name} tokens")
        t = step_times(hardware, dims, step_routing(trace, steps), m)
        res, comp, reads = t["resident"].mean(), t["compute"].mean(), t["reads"].mean()
        out.append({"trace": trace.label, "phase": name, "tokens_per_step": m, "steps": len(steps),
                    "us_per_token": float(res / m * 1e6), "compute_us_per_token": float(comp / m * 1e6),
                    "reads_us_per_token": float(reads / m * 1e6),
                    "bound": "compute" if comp >= reads else "weight reads"})
    return out


def quantised_rows(data, hardware="accelerator", dtypes=DTYPES, systems=QUANT_SYSTEMS,
                   model: str = SIZES_MODEL) -> list[dict]:
    """Latency per token of `systems` on the held-out tokens of `data` (`stmoe.book.held_out`)
    with experts at each dtype (`model`'s sizes), from the simulator; `vs_bfloat16` is the
    speedup over the same system with bf16 experts."""
    out = []
    for dtype in dtypes:
        at = dataclasses.replace(data, dims=sizes(data.scored, dtype, model))
        for r in tuning_rows(at, hardware, systems=systems):
            out.append({"dtype": dtype, "system": r["system"], "hardware": r["hardware"],
                        "expert_mib": float(np.mean(at.dims.expert_bytes)) / 2 ** 20,
                        "latency_us": float(r["latency_per_token_s"]) * 1e6, "hit_rate": float(r["hit_rate"]),
                        "stall_share": float(r["stall_share"])})
    base = {r["system"]: r["latency_us"] for r in out if r["dtype"] == "bfloat16"}
    for r in out:
        r["vs_bfloat16"] = base[r["system"]] / r["latency_us"] if r["system"] in base else float("nan")
    return out


def quantised_gain(data, hardware="accelerator", dtype: str = "bfloat16", system: str = "st-moe",
                   baseline: str = "lru-cache", model: str = SIZES_MODEL) -> dict:
    """`system`'s speedup and energy efficiency over `baseline` on the held-out tokens of `data`
    with experts at `dtype` (`model`'s sizes), each with its paired bootstrap interval
    (`stmoe.book.held_out.gain`): over lru-cache, what prediction adds at that precision."""
    return gain(dataclasses.replace(data, dims=sizes(data.scored, dtype, model)), hardware, system, baseline)


def cpu_or_fetch(dims: ModelDims, hardware="gpu-pcie", tokens=(1,), *, cpu_bandwidth: float = CPU_BANDWIDTH,
                 cpu_macs: float = CPU_MACS) -> list[dict]:
    """Fiddler's choice for one missing expert (Kamahori et al., "Fiddler: CPU-GPU Orchestration
    for Fast Inference of Mixture-of-Experts Models", arXiv 2402.07033, 2024; ICLR 2025), as an
    analytical comparison per number of tokens routed to it in a step:

    fetch: the expert's weights over the link (latency + bytes / bandwidth), then computed on
    the GPU (the roofline of `hardware`, no faster than reading the weights from its HBM);
    cpu: the tokens' activations to the host and back (two link latencies + bytes), and a CPU
    GEMM at max(bytes / cpu_bandwidth, MACs / cpu_macs). Times in µs."""
    hw = preset(hardware)
    if cpu_bandwidth <= 0 or cpu_macs <= 0:
        raise ConfigError(f"cpu_bandwidth and cpu_macs must be positive, got {cpu_bandwidth!r}, {cpu_macs!r}")
    nbytes = float(np.mean(dims.expert_bytes))
    hidden = dims.expert_matrices[0][0]
    out = []
    for m in tokens:
        gpu = max(expert_time(hw, dims, int(m)), nbytes / hw.local_bandwidth)
        fetch = hw.link_latency + nbytes / hw.link_bandwidth + gpu
        moves = 2 * (hw.link_latency + m * hidden * ACTIVATION_BYTES / hw.link_bandwidth)
        cpu = moves + max(nbytes / cpu_bandwidth, m * dims.expert_macs / cpu_macs)
        out.append({"tokens": int(m), "expert_mib": nbytes / 2 ** 20, "fetch_us": fetch * 1e6, "cpu_us": cpu * 1e6,
                    "faster": "cpu" if cpu < fetch else "fetch"})
    return out


def cpu_crossover(rows: list[dict]) -> int | None:
    """The fewest tokens at which fetching the expert beats computing it on the CPU (None if
    the CPU wins at every count in `rows`)."""
    return next((r["tokens"] for r in rows if r["faster"] == "fetch"), None)


def table(rows: list[dict], columns) -> str:
    """`rows` as a plain-text table: columns are (field, header, format spec) triples."""
    widths = [max(len(h), *(len(format(r[f], spec)) for r in rows)) for f, h, spec in columns]
    lines = ["  ".join(h.rjust(w) for (_, h, _), w in zip(columns, widths))]
    lines += ["  ".join(format(r[f], spec).rjust(w) for (f, _, spec), w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)
