"""The cache/prefetch split explorer of the expert-buffer chapter: at a buffer capacity, st-moe's
latency per token as a curve over the share of the buffer reserved for staging prefetches,
beside the same buffer as a plain LRU cache and as the profile's pinned hot set, with a marker
at the chosen share.

Every (capacity, share) point is simulated once, when the explorer is built
(`stmoe.book.expert_buffer.split_grid`): a slider move only looks rows up. (Simulating the
eleven-share curve per move took 0.46-0.68 s on the bundled trace, over the explorers' 250 ms.)
"""

from __future__ import annotations

from stmoe.book.expert_buffer import split_grid
from stmoe.book.held_out import HeldOut, default_held_out
from stmoe.charts.expert_buffer import split_chart
from stmoe.errors import ConfigError
from stmoe.sim.systems import SYSTEMS
from stmoe.widgets.explorer import Explorer

SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
CAPACITY_FRACTIONS = (0.1, 0.15, 0.25, 0.35, 0.5, 0.75)   # of all L x E experts
EXPLORER_SEQUENCES = 8   # held-out sequences simulated: keeps building the grid to a few seconds


def split_explorer(data: HeldOut | None = None, *, capacity: int | None = None, share: float | None = None,
                   hardware: str = "gpu-pcie", sequences: int = EXPLORER_SEQUENCES,
                   capacity_fractions=CAPACITY_FRACTIONS, shares=SHARES) -> Explorer:
    """Sliders for the buffer's capacity (experts) and its staging share, over the first
    `sequences` held-out sequences of `data` (default: the bundled code trace). share: by
    default st-moe's own staging share (`SYSTEMS["st-moe"]`); capacity: by default the one
    nearest a quarter of all experts."""
    import ipywidgets as widgets

    data = (data or default_held_out()).subset(sequences)
    data.predictions_for(1)
    total = data.scored.num_layers * data.scored.num_experts
    floor = 2 * data.scored.top_k    # two layers' working sets: st-moe can stage one layer ahead
    capacities = sorted({max(round(f * total), floor) for f in capacity_fractions})
    share = SYSTEMS["st-moe"].staging_share if share is None else float(share)
    if share not in shares:
        raise ConfigError(f"split_explorer: share {share!r} is not one of the explorer's shares {list(shares)}")
    capacity = capacity if capacity is not None else min(capacities, key=lambda c: abs(c - total / 4))
    if capacity not in capacities:
        raise ConfigError(f"split_explorer: capacity {capacity!r} is not one of the explorer's capacities {capacities}")
    grid = split_grid(data, capacities, shares, hardware=hardware)
    controls = {
        "capacity": widgets.SelectionSlider(options=[(f"{c} ({c / total:.0%})", c) for c in capacities],
                                            value=capacity, description="capacity", continuous_update=False),
        "share": widgets.SelectionSlider(options=[(f"{s:.0%}", s) for s in shares], value=share,
                                         description="staging", continuous_update=False),
    }

    def compute(capacity, share):
        here = [r for r in grid if r["capacity"] == capacity]
        curve = [r for r in here if r["series"] == "st-moe"]
        cache, hot = (r for r in here if r["series"] != "st-moe")
        st = next(r for r in curve if r["share"] == share)
        best = min(curve, key=lambda r: r["latency_per_token_s"])
        return {"grid": grid, "capacity": capacity, "share": share, "cache": cache, "hot": hot, "st": st,
                "best": best}

    def title(res):
        st, best = res["st"], res["best"]
        return (f"capacity {res['capacity']} experts, staging {st['share']:.0%}: st-moe "
                f"{st['latency_per_token_s'] * 1e6:.1f} µs per token (fastest share here {best['share']:.0%})")

    def draw(res):
        return split_chart(res["grid"], res["capacity"], res["share"], title(res))

    def describe(res):
        cache, hot, st = res["cache"], res["hot"], res["st"]
        return (f"{data.scored.label} on {hardware}, {st['tokens']} held-out decode tokens: st-moe with "
                f"{st['share']:.0%} staging {st['latency_per_token_s'] * 1e6:.1f} µs per token, ready "
                f"{st['hit_rate']:.3f}, in flight {st['late_prefetch_rate']:.3f}, {st['useful_prefetches']} useful "
                f"and {st['wasted_prefetches']} wasted prefetches; cache only "
                f"{cache['latency_per_token_s'] * 1e6:.1f} µs (ready {cache['hit_rate']:.3f}), {hot['series']} "
                f"{hot['latency_per_token_s'] * 1e6:.1f} µs (ready {hot['hit_rate']:.3f})")

    explorer = Explorer(controls, compute, draw, describe,
                        title=f"Cache/prefetch split ({data.scored.label}, {hardware})")
    explorer.grid = grid
    return explorer
