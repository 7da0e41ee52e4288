"""The tour's explorer: link bandwidth and buffer size -> latency per token of on-demand, the
cache baselines, st-moe, oracle and all-resident, from a grid simulated once
(`stmoe.book.tour.latency_grid`)."""

from __future__ import annotations

import stmoe
from stmoe.book import DEFAULT_TRACE
from stmoe.book.tour import latency_grid, tour_systems
from stmoe.charts.tour import latency_chart, latency_rows
from stmoe.sim.comparison import REFERENCE_MODEL, reference_dims, reference_note
from stmoe.sim.hardware import preset
from stmoe.sim.models import MODELS, find_model
from stmoe.splits import split_leading
from stmoe.widgets.explorer import Explorer

BANDWIDTH_STEPS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16)
BUFFER_SHARES = (0.05, 0.1, 0.25, 0.5, 1.0)


def gbs(bandwidth: float) -> str:
    return f"{bandwidth / 1e9:.3g} GB/s"


def headline(grid: list[dict], buffer_share: float, bandwidth: float) -> tuple[str, dict]:
    """(chart title, {system: row}) at one grid point."""
    at = {r["system"]: r for r in latency_rows(grid, buffer_share)
          if abs(r["bandwidth_gbs"] - bandwidth / 1e9) < 1e-9}
    gains = ", ".join(f"{s} {at[s]['speedup']:.2f}x" for s in at if s != "on-demand")
    title = f"{gbs(bandwidth)}, {buffer_share:.0%} of experts buffered: {gains} over on-demand"
    return title, at


def latency_explorer(trace, hardware="gpu-pcie", *, dims=None, profile=None, systems=None,
                     steps=BANDWIDTH_STEPS, buffer_shares=BUFFER_SHARES, bandwidth=None,
                     buffer_share=None, note: str = "") -> Explorer:
    """Sliders for link bandwidth (multiples of the preset's) and buffer size (share of all
    experts). Everything is simulated here, once; a slider change only looks rows up. systems:
    by default the tour's that can run (`tour_systems`), the readout naming those left out."""
    import ipywidgets as widgets

    if systems is None:
        systems, skipped = tour_systems(trace, profile)
        note = "; ".join([n for n in (note, *skipped) if n])
    hw = preset(hardware)
    bandwidths = [float(hw.link_bandwidth * s) for s in steps]
    grid = latency_grid(trace, hw, bandwidths=bandwidths, buffer_shares=buffer_shares,
                        systems=systems, dims=dims, profile=profile)
    controls = {
        "bandwidth": widgets.SelectionSlider(
            options=[(gbs(b), b) for b in bandwidths],
            value=bandwidth if bandwidth is not None else float(hw.link_bandwidth),
            description="link"),
        "buffer_share": widgets.SelectionSlider(
            options=[(f"{s:.0%}", float(s)) for s in buffer_shares],
            value=buffer_share if buffer_share is not None else float(buffer_shares[len(buffer_shares) // 2]),
            description="buffer"),
    }

    def compute(bandwidth, buffer_share):
        title, at = headline(grid, buffer_share, bandwidth)
        return {"grid": grid, "bandwidth": bandwidth, "buffer_share": buffer_share, "title": title, "at": at}

    def draw(res):
        return latency_chart(res["grid"], res["buffer_share"], res["bandwidth"], res["title"])

    def describe(res):
        cells = "; ".join(f"{s} {r['latency_ms']:.3g} ms (hit rate {r['hit_rate']:.2f})"
                          for s, r in res["at"].items())
        return f"{trace.label} on {hw.name}, decode tokens: {cells}" + (f" ({note})" if note else "")

    explorer = Explorer(controls, compute, draw, describe,
                        title=f"Latency per decode token: {trace.label} on {hw.name}")
    explorer.grid = grid
    return explorer


def tour_explorer(trace=DEFAULT_TRACE, hardware="gpu-pcie", *, max_sequences: int = 8,
                  dims=None, **kw) -> Explorer:
    """The notebook's explorer: a trace by name or object, its first `max_sequences` sequences
    simulated with the predictor profiled on the rest (`stmoe.splits.split_leading`). Unless
    `dims` are given, experts have Qwen3-30B-A3B's sizes, so the bytes and times are those of a
    production-sized model whatever model the routing comes from."""
    trace = stmoe.load_trace(trace)
    profile, simulated = split_leading(trace, max_sequences)
    note = ""
    if dims is None:
        dims = reference_dims(trace)
        if find_model(trace.meta.get("model")) is not MODELS[REFERENCE_MODEL]:
            note = reference_note(trace)
    return latency_explorer(simulated, hardware, dims=dims, profile=profile, note=note, **kw)
