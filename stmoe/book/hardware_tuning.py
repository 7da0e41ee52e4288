"""Notebook 05 (hardware tuning): how the link, the buffer, the PE array and the lookahead change
latency and energy per token, what prefetching adds over the same buffer used as a cache, and
where the link saturates. Every simulation uses held-out predictions (`stmoe.book.held_out`),
except the design-space section's, which reads the shipped `stmoe explore` results
(`explored_designs`; its st-moe predicts online, with no profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stmoe.book.held_out import HeldOut
from stmoe.errors import ConfigError
from stmoe.readers.catalog import DATA_DIR
from stmoe.sim.explore import default_out, read_results
from stmoe.sim.explore_spec import read_spec
from stmoe.sim.hardware import preset
from stmoe.sim.pareto import TOLERANCE, pareto_front, tolerance_note
from stmoe.sim.sensitivity import Sensitivity, sensitivity
from stmoe.sim.sweeps import sweep
from stmoe.sim.systems import CACHE_BASELINES, predictions_note, runnable
from stmoe.sim.timing import layer_costs


def layer_times(data: HeldOut, hardware) -> dict:
    """Per MoE layer, in microseconds (layer means): attention + router compute with the layer's
    KV-cache reads, one expert's compute, and one expert's transfer over the link (latency
    included)."""
    hw = preset(hardware)
    t_attn, t_kv, t_exp, _, xfer, _ = layer_costs(hw, data.dims)
    return {"attention_us": float(np.mean(t_attn) + t_kv) * 1e6, "expert_compute_us": float(np.mean(t_exp)) * 1e6,
            "expert_load_us": (float(np.mean(xfer)) + hw.link_latency) * 1e6}


def balanced_pe_side(data: HeldOut, hardware) -> dict:
    """The square PE array side at which compute time equals weight-read time (the roofline's
    ridge) for one expert and for the attention + router of a layer, at one token per step, on
    a roofline (MACs at peak): a larger array cannot make that part faster, a smaller one makes
    it compute-bound. A hardware with a dataflow computes by `stmoe.sim.systolic`'s fold count
    instead, whose fill and drain this ridge does not see."""
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


# the systems the chapter compares: the bounds, st-moe and the cache baselines beside it
TUNING_SYSTEMS = ("on-demand", *CACHE_BASELINES, "st-moe", "oracle")


def tuning_rows(data: HeldOut, hardware, *, lookahead: int = 1, systems=TUNING_SYSTEMS) -> list[dict]:
    """Latency and energy per token of each system on one machine (a `sweep` of one point);
    hot-set is profiled on the held-out profile. speculative-gate sees one layer ahead whatever
    `lookahead` is (its rows' notes say so)."""
    return sweep(data.scored, "lookahead", [lookahead], systems=runnable(systems, data.scored, data.profile)[0],
                 hardware=hardware, predictions={lookahead: data.predictions_for(lookahead)}, dims=data.dims,
                 profile=data.profile)


def lookahead_rows(data: HeldOut, hardware, lookaheads=(1, 2, 3),
                   systems=("on-demand", "st-moe", "oracle")) -> list[dict]:
    """A lookahead sweep with each depth's own held-out predictions."""
    return sweep(data.scored, "lookahead", [int(d) for d in lookaheads], systems=systems, hardware=hardware,
                 predictions={int(d): data.predictions_for(int(d)) for d in lookaheads}, dims=data.dims)


def bandwidth_rows(data: HeldOut, hardware, bandwidths, *, lookahead: int = 1,
                   systems=(*CACHE_BASELINES, "st-moe", "oracle")) -> list[dict]:
    """A link-bandwidth sweep with the held-out predictions (and profile, for hot-set)."""
    return sweep(data.scored, "link_bandwidth", list(bandwidths),
                 systems=runnable(systems, data.scored, data.profile)[0], hardware=hardware,
                 predictions=data.predictions_for(lookahead), dims=data.dims, lookahead=lookahead,
                 profile=data.profile)


def assumption_sensitivity(data: HeldOut, hardware="accelerator", *, lookahead: int = 1) -> Sensitivity:
    """Each constant the preset marks ASSUMPTION, varied alone over its cited range
    (`stmoe.sim.sensitivity.RANGES`), with st-moe's held-out predictions; its rows, largest swing
    first, are what `stmoe.charts.sensitivity.tornado_chart` draws."""
    result = sensitivity(data.scored, hardware, predictions=data.predictions_for(lookahead), dims=data.dims)
    result.notes.append(predictions_note(data.predictor, data.budget or data.scored.top_k, lookahead, data.profile))
    return result


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


# The chapter's design space, shipped with its results (scripts/build_explore_results.py).
EXPLORE_SPEC = DATA_DIR / "explore" / "chapter05.toml"


def explored_designs(spec=EXPLORE_SPEC) -> list[dict]:
    """The rows of the spec's shipped results, one per point in the spec's order (the parts'
    order depends on how many workers built them); refused when any point is missing (results
    built from another spec or by another stmoe version, whose keys differ)."""
    order = {p["key"]: i for i, p in enumerate(read_spec(spec).points)}
    out = default_out(spec)
    rows = sorted((r for r in read_results(out) if r["key"] in order), key=lambda r: order[r["key"]])
    if len(rows) != len(order):
        raise ConfigError(f"{out}: {len(order) - len(rows)} of the {len(order)} points of {spec} are missing "
                          "(built by another spec or stmoe version?); rebuild with "
                          "python scripts/build_explore_results.py")
    return rows


def front_headline(rows: list[dict], objectives=("buffer_area_mm2", "latency_per_token_s"),
                   tolerance: float = TOLERANCE) -> str:
    """Who is on the Pareto front (`stmoe.sim.pareto.pareto_front`, objectives within the
    relative `tolerance` counting as equal; the headline says which). Over two objectives, along
    the first: each run of one system with the buffer sizes it spans. Over more, where the front
    has no order: each system with the sizes it spans and how many of its designs are there
    (designs that differ in settings other than the buffer would repeat a size)."""
    front = pareto_front(rows, objectives, tolerance)
    runs: list[list[dict]] = []
    for r in front:
        if len(objectives) == 2 and runs and runs[-1][0]["system"] == r["system"]:
            runs[-1].append(r)
        elif len(objectives) != 2 and any(run[0]["system"] == r["system"] for run in runs):
            next(run for run in runs if run[0]["system"] == r["system"]).append(r)
        else:
            runs.append([r])
    parts = []
    for run in runs:
        sizes = sorted({r["buffer_bytes"] / 2 ** 20 for r in run})
        span = f"{sizes[0]:.3g} MiB" if len(sizes) == 1 else f"{sizes[0]:.3g}-{sizes[-1]:.3g} MiB"
        count = f" ({len(run)} design{'s' if len(run) > 1 else ''})" if len(objectives) != 2 else ""
        parts.append(f"{run[0]['system']} {span}{count}")
    return f"{len(front)} of {len(rows)} designs on the front ({tolerance_note(tolerance)}): " + ", ".join(parts)
