"""The hardware-tuning explorer: link bandwidth, buffer size, PE array and lookahead ->
latency and energy per token of each system."""

from __future__ import annotations

from functools import lru_cache

from stmoe.book.hardware_tuning import experts_mib, machine, tuning_rows
from stmoe.book.held_out import HeldOut, default_held_out
from stmoe.charts.hardware_tuning import tuning_chart
from stmoe.widgets.explorer import Explorer

LINK_GBPS = (16, 32, 64, 128, 256, 512, 1024, 2048)
BUFFER_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
PE_SIDES = (16, 32, 64, 128, 256)
EXPLORER_SEQUENCES = 4   # held-out sequences simulated per change: keeps a change under 250 ms
# The chapter's systems but speculative-gate: its predictor reruns on every change (about 60 ms
# on the bundled trace), past the 250 ms budget; the chapter's tables show it.
EXPLORER_SYSTEMS = ("on-demand", "lru-cache", "hot-set", "st-moe", "oracle")


def tuning_explorer(data: HeldOut | None = None, *, hardware: str = "accelerator",
                    sequences: int = EXPLORER_SEQUENCES) -> Explorer:
    """Sliders for the machine; the buffer is given as a share of all the model's experts."""
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

    @lru_cache(maxsize=512)
    def compute(link_gbps, buffer, pe_side, lookahead):
        hw = machine(hardware, link_gbps=link_gbps, buffer_mib=buffer * full, pe_side=pe_side)
        rows = tuning_rows(data, hw, lookahead=lookahead, systems=EXPLORER_SYSTEMS)
        return {"rows": rows, "buffer_mib": buffer * full, "link_gbps": link_gbps, "pe_side": pe_side,
                "lookahead": lookahead}

    def st(result):
        return next(r for r in result["rows"] if r["system"] == "st-moe")

    def draw(result):
        s = st(result)
        return tuning_chart(result["rows"], f"st-moe {s['latency_per_token_s'] * 1e6:.2f} µs/token, "
                                            f"{s['energy_per_token_j'] * 1e6:.1f} µJ/token, "
                                            f"{s['speedup_vs_on_demand']:.2f}x over on-demand")

    def describe(result):
        s = st(result)
        return (f"{data.scored.label}, {hardware} with a {result['link_gbps']} GB/s link, "
                f"{result['buffer_mib']:.1f} MiB buffer, {result['pe_side']}x{result['pe_side']} PEs, "
                f"lookahead {result['lookahead']}: st-moe {s['latency_per_token_s'] * 1e6:.2f} µs and "
                f"{s['energy_per_token_j'] * 1e6:.1f} µJ per token, link busy {s['link_utilisation']:.2f}, "
                f"speedup {s['speedup_vs_on_demand']:.2f}x over on-demand")

    return Explorer(controls, lambda **v: compute(v["link_gbps"], float(v["buffer"]), v["pe_side"],
                                                  int(v["lookahead"])),
                    draw, describe, title=f"Tuning the machine ({data.scored.label}, {hardware} preset)")
