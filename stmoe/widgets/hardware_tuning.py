"""The hardware-tuning explorer: latency and energy per token of each system against link
bandwidth, with the chosen link marked; the buffer size, the PE array and the lookahead pick the
machine the curves are drawn for."""

from __future__ import annotations

from functools import lru_cache

from stmoe.book.hardware_tuning import bandwidth_rows, experts_mib, machine
from stmoe.book.held_out import HeldOut, default_held_out
from stmoe.charts.hardware_tuning import tuning_curve_chart
from stmoe.widgets.explorer import Explorer

LINK_GBPS = (8, 16, 32, 64, 128, 256, 512, 1024)
BUFFER_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
PE_SIDES = (16, 32, 64, 128, 256)
# Held-out sequences simulated per curve: a buffer, PE or lookahead change simulates the curve's
# len(LINK_GBPS) links x the systems below, which must stay within a fraction of a second.
EXPLORER_SEQUENCES = 2
# The bounds, the cache and st-moe: hot-set (its pinned set is profiled again on every run) and
# speculative-gate (its predictor reruns on every change) would double a curve's time; the
# chapter's tables show them.
EXPLORER_SYSTEMS = ("on-demand", "lru-cache", "st-moe", "oracle")


def tuning_explorer(data: HeldOut | None = None, *, hardware: str = "accelerator",
                    sequences: int = EXPLORER_SEQUENCES) -> Explorer:
    """Sliders for the machine; the buffer is given as a share of all the model's experts. The
    link slider moves the marker along curves already simulated; the others simulate a new
    curve once (each is kept, so returning to a setting is a look-up)."""
    import ipywidgets as widgets

    data = (data or default_held_out(lookaheads=(1, 2, 3))).subset(sequences)
    for d in (1, 2, 3):
        data.predictions_for(d)
    full = experts_mib(data)
    controls = {
        "link_gbps": widgets.SelectionSlider(options=list(LINK_GBPS), value=256, description="link GB/s",
                                             continuous_update=False),
        "buffer": widgets.SelectionSlider(options=[(f"{f:.0%}", f) for f in BUFFER_FRACTIONS], value=0.25,
                                          description="buffer", continuous_update=False),
        "pe_side": widgets.SelectionSlider(options=list(PE_SIDES), value=128, description="PE side",
                                           continuous_update=False),
        "lookahead": widgets.IntSlider(value=1, min=1, max=3, description="lookahead", continuous_update=False),
    }

    @lru_cache(maxsize=256)
    def curve(buffer, pe_side, lookahead):
        hw = machine(hardware, buffer_mib=buffer * full, pe_side=pe_side)
        return bandwidth_rows(data, hw, [g * 1e9 for g in LINK_GBPS], lookahead=lookahead,
                              systems=EXPLORER_SYSTEMS)

    def compute(link_gbps, buffer, pe_side, lookahead):
        rows = curve(float(buffer), int(pe_side), int(lookahead))
        at = {r["system"]: r for r in rows if r["value"] == link_gbps * 1e9}
        return {"rows": rows, "at": at, "buffer_mib": buffer * full, "link_gbps": link_gbps,
                "pe_side": pe_side, "lookahead": lookahead}

    def draw(result):
        s = result["at"]["st-moe"]
        return tuning_curve_chart(result["rows"], result["link_gbps"] * 1e9,
                                  f"st-moe at {result['link_gbps']} GB/s: {s['latency_per_token_s'] * 1e6:.2f} µs/token, "
                                  f"{s['energy_per_token_j'] * 1e6:.1f} µJ/token, "
                                  f"{s['speedup_vs_on_demand']:.2f}x over on-demand")

    def describe(result):
        s = result["at"]["st-moe"]
        return (f"{data.scored.label}, {hardware} with a {result['link_gbps']} GB/s link, "
                f"{result['buffer_mib']:.1f} MiB buffer, {result['pe_side']}x{result['pe_side']} PEs, "
                f"lookahead {result['lookahead']}: st-moe {s['latency_per_token_s'] * 1e6:.2f} µs and "
                f"{s['energy_per_token_j'] * 1e6:.1f} µJ per token, link busy {s['link_utilisation']:.2f}, "
                f"speedup {s['speedup_vs_on_demand']:.2f}x over on-demand")

    return Explorer(controls, lambda **v: compute(v["link_gbps"], float(v["buffer"]), v["pe_side"],
                                                  int(v["lookahead"])),
                    draw, describe, title=f"Tuning the machine ({data.scored.label}, {hardware} preset)")
