"""Explorer for notebook 06: st-moe's gains over the paper's three baselines, on a chosen
hardware preset and expert-link bandwidth, beside the gains ST-MoE reports, and over the cache
baselines the paper leaves out (lru-cache and hot-set)."""

from __future__ import annotations

from dataclasses import dataclass

from stmoe.book import DEFAULT_TRACE
from stmoe.book.reproduction import (
    BASELINES,
    PAPER_GAINS,
    cache_gains,
    cache_gains_text,
    compare,
    gains,
    st_moe_predictions,
)
from stmoe.charts.reproduction import paper_gap_chart
from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import dims_for, reference_dims
from stmoe.sim.hardware import PRESETS, preset
from stmoe.splits import split
from stmoe.widgets.explorer import Explorer

BANDWIDTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
# the scored sequences simulated per change: enough decode tokens for stable ratios, few
# enough that a change answers within 250 ms
EXPLORER_SEQUENCES = 6
# the cache baselines but speculative-gate, whose predictor reruns on every change (about 60 ms),
# past the 250 ms budget; the chapter's tables show it
EXPLORER_CACHES = ("lru-cache", "hot-set")
# expert sizes: the trace's own model, or Qwen3-30B-A3B's (a small model nearly fits on chip,
# which turns prefetching into caching; the large model's sizes keep it a prefetching problem)
OWN, REFERENCE = "own", "Qwen3-30B-A3B"


@dataclass
class GapResult:
    hardware: str
    link_bandwidth: float
    rows: list
    gains: list
    trace_label: str
    experts: str

    def gain(self, baseline: str, measure: str = "speedup") -> float:
        return next(g["measured"] for g in self.gains if g["baseline"] == baseline and g["measure"] == measure)


def paper_explorer(trace=None, *, dims=None, max_scored_sequences: int = EXPLORER_SEQUENCES,
                   experts: str = REFERENCE):
    """Link-bandwidth slider (a multiple of the preset's own), preset and expert-size dropdowns
    -> st-moe's speedup and energy efficiency over on-demand, adap-gating and pre-gated, beside
    the paper's. st-moe is profiled on one half of the trace's sequences and timed on (part of)
    the other. Expert size: the trace's own model (`dims`, default from the trace) or
    Qwen3-30B-A3B's (the routing stays the trace's; only the bytes per expert change)."""
    import ipywidgets as widgets


    if trace is None or isinstance(trace, str):
        trace = load_trace(trace or DEFAULT_TRACE)
    sizes = {OWN: dims or dims_for(trace)[0],
             REFERENCE: reference_dims(trace)}
    split(trace, max_scored_sequences=max_scored_sequences)     # fail here, not in a callback, on a trace too short
    predictions = st_moe_predictions(trace, max_scored_sequences)   # hardware-independent
    cache: dict = {}

    def compute(bandwidth: float, hardware: str, experts: str) -> GapResult:
        key = (hardware, bandwidth, experts)
        if key not in cache:
            hw = preset(hardware)
            hw = hw.with_(link_bandwidth=hw.link_bandwidth * bandwidth)
            rows, _ = compare(trace, hw, systems=("on-demand", *BASELINES[1:], *EXPLORER_CACHES, "st-moe"),
                              dims=sizes[experts], max_scored_sequences=max_scored_sequences,
                              predictions=predictions)
            cache[key] = GapResult(hardware, hw.link_bandwidth, rows, gains(rows), trace.label, experts)
        return cache[key]

    def draw(r: GapResult):
        title = (f"{r.hardware}, {r.experts} experts, link {r.link_bandwidth / 1e9:.3g} GB/s: st-moe {r.gain('on-demand'):.2f}x "
                 f"faster than on-demand (paper: {PAPER_GAINS['on-demand'][1]:g}x)")
        return paper_gap_chart(r.gains, title)

    def describe(r: GapResult) -> str:
        parts = [f"vs {g['baseline']} {g['measured']:.2f}x (paper {g['paper']:.1f}x)"
                 for g in r.gains if g["measure"] == "speedup"]
        eff = r.gain("on-demand", "energy efficiency")
        caches = cache_gains_text(cache_gains(r.rows), digits=2)
        return (f"{r.trace_label} on {r.hardware} with {r.experts} expert sizes, link {r.link_bandwidth / 1e9:.3g} GB/s. "
                f"st-moe speedup " + ", ".join(parts) + f"; energy efficiency vs on-demand {eff:.2f}x; "
                f"speedup over the cache baselines the paper leaves out: {caches}")

    controls = {
        "bandwidth": widgets.SelectionSlider(options=[(f"{s:g}x", s) for s in BANDWIDTH_SCALES], value=1.0,
                                             description="link bw", continuous_update=False),
        "hardware": widgets.Dropdown(options=list(PRESETS), value="accelerator", description="preset"),
        "experts": widgets.Dropdown(options=[OWN, REFERENCE], value=experts, description="expert size"),
    }
    return Explorer(controls, compute, draw, describe,
                    title=f"st-moe against the paper's baselines ({trace.label})")
