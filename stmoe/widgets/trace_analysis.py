"""The trace explorer of notebook 01: pick a trace, a phase and a layer -> how that layer's
requests spread over its experts. Counts are computed once per (trace, phase) in the factory."""

from __future__ import annotations

import stmoe
from stmoe.book.trace_analysis import STATS, phase_popularity
from stmoe.charts.trace_analysis import expert_share_chart
from stmoe.errors import ConfigError
from stmoe.widgets.explorer import Explorer

PHASES = ("decode", "prefill", "all")
ORDERS = ("by share", "by expert id")


def popularity_explorer(traces, *, trace: str | None = None, phase: str = "decode",
                        layer: int = 0, order: str = "by share") -> Explorer:
    """`traces`: names or Trace objects (loaded with `stmoe.load_trace`). The layer slider's
    range follows the chosen trace. order: bars "by share" (how skewed the layer is) or "by
    expert id" (whether the same experts are hot across phases and traces)."""
    import ipywidgets as widgets

    if order not in ORDERS:
        raise ConfigError(f"order: must be one of {', '.join(ORDERS)}, got {order!r}")
    loaded = {t.label: t for t in (stmoe.load_trace(x) for x in traces)}
    tables = {}
    for label, tr in loaded.items():
        for ph in PHASES:
            if ph == "all" or (tr.phase == stmoe.trace.phase_code(ph)).any():
                tables[label, ph] = phase_popularity(tr, ph)
    first = trace or next(iter(loaded))
    layer_slider = widgets.IntSlider(value=layer, min=0, max=loaded[first].num_layers - 1,
                                     description="layer")
    trace_menu = widgets.Dropdown(options=list(loaded), value=first, description="trace")

    def follow(change):   # registered before the explorer's own observer: range first
        layer_slider.max = loaded[change["new"]].num_layers - 1

    trace_menu.observe(follow, names="value")
    # the slider first: browser tests address sliders by position
    controls = {"layer": layer_slider, "trace": trace_menu,
                "phase": widgets.Dropdown(options=list(PHASES), value=phase, description="phase"),
                "order": widgets.Dropdown(options=list(ORDERS), value=order, description="bars")}

    def compute(layer, trace, phase, order):
        if (trace, phase) not in tables:
            return {"trace": trace, "phase": phase, "layer": layer, "missing": True}
        pop = tables[trace, phase]
        layer = min(layer, pop["counts"].shape[0] - 1)
        return {"trace": trace, "phase": phase, "layer": layer, "missing": False, "order": order,
                "counts": pop["counts"][layer], "requests": int(pop["requests"][layer]),
                **{s: float(pop[s][layer]) for s in STATS}}

    def draw(res):
        if res["missing"]:
            return expert_share_chart([0, 0], f"{res['trace']} has no {res['phase']} tokens")
        return expert_share_chart(res["counts"], f"{res['trace']}, layer {res['layer']} ({res['phase']}): "
                                  f"top 10% of experts take {res['top10_share']:.2f} of requests, "
                                  f"Gini {res['gini']:.2f}", by_id=res["order"] == "by expert id")

    def describe(res):
        if res["missing"]:
            return f"{res['trace']} has no {res['phase']} tokens"
        return (f"{res['requests']} requests; entropy {res['entropy_bits']:.2f} bits "
                f"(normalised {res['normalised_entropy']:.2f}); Gini {res['gini']:.2f}; "
                f"top-10% share {res['top10_share']:.2f}")

    return Explorer(controls, compute, draw, describe, title="Expert popularity of one layer")
