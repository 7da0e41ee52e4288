"""The cache/prefetch split explorer of the expert-buffer chapter: buffer capacity and the share
of it staged for predictions -> hit rate, stall share and wasted bytes of st-moe, beside the same
buffer as a plain LRU cache and as the profile's pinned hot set."""

from __future__ import annotations

from functools import lru_cache

from stmoe.book.expert_buffer import split_outcomes
from stmoe.book.held_out import HeldOut, default_held_out
from stmoe.charts.expert_buffer import split_chart
from stmoe.widgets.explorer import Explorer

SHARES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7)
EXPLORER_SEQUENCES = 8   # held-out sequences simulated per change: keeps a change under 250 ms


def split_explorer(data: HeldOut | None = None, *, capacity: int | None = None, share: float = 0.25,
                   hardware: str = "accelerator", sequences: int = EXPLORER_SEQUENCES) -> Explorer:
    """Sliders for capacity (experts) and staging share over the first `sequences` held-out
    sequences of `data` (default: the bundled code trace)."""
    import ipywidgets as widgets

    data = (data or default_held_out()).subset(sequences)
    data.predictions_for(1)
    L, E, k = data.scored.num_layers, data.scored.num_experts, data.scored.top_k
    total = L * E
    step = max(total // 64, 1)
    lo = max(2 * k, step)
    capacity = capacity or max(total // 4 // step * step, lo)
    controls = {
        "capacity": widgets.IntSlider(value=capacity, min=lo, max=total, step=step,
                                      description="capacity", continuous_update=False),
        "share": widgets.SelectionSlider(options=[(f"{s:.0%}", s) for s in SHARES], value=share,
                                         description="staging", continuous_update=False),
    }

    @lru_cache(maxsize=256)
    def compute(capacity, share):
        return split_outcomes(data, capacity, share, hardware=hardware)

    def describe(rows):
        cache, hot, st = rows
        return (f"{data.scored.label}, {st['tokens']} held-out decode tokens: st-moe with "
                f"{st['share']:.0%} staging hits {st['hit_rate']:.3f} of requests (cache only "
                f"{cache['hit_rate']:.3f}, {hot['system']} {hot['hit_rate']:.3f}); "
                f"{st['late_prefetch_rate']:.3f} were still in flight; stall share {st['stall_share']:.3f} "
                f"(cache only {cache['stall_share']:.3f}, {hot['system']} {hot['stall_share']:.3f}); "
                f"{st['useful_prefetches']} useful and {st['wasted_prefetches']} wasted prefetches")

    return Explorer(controls, lambda capacity, share: compute(int(capacity), float(share)), split_chart,
                    describe, title=f"Cache/prefetch split ({data.scored.label}, {hardware})")
