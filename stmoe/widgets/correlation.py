"""The transition explorer of notebook 02: a layer slider -> the heat map of
P(j at layer l+1 | i at layer l) with its mutual information in the title.

Everything is computed once in the factory (`stmoe.analysis.spatial_affinity` for every layer
pair, or passed in when the notebook has it already); a slider change only redraws.
"""

from __future__ import annotations

from stmoe.analysis import expert_counts, spatial_affinity
from stmoe.charts.base import MAX_ROWS
from stmoe.charts.correlation import heatmap_experts, transition_heatmap
from stmoe.errors import ConfigError
from stmoe.widgets.explorer import Explorer

BASELINE_PERMUTATIONS = 19  # enough for the shuffled baseline in the title; the notebook runs more


class TransitionModel:
    def __init__(self, trace, *, permutations: int = BASELINE_PERMUTATIONS, seed: int = 0, affinity: dict | None = None):
        self.trace = trace
        self.affinity = affinity or spatial_affinity(trace, permutations=permutations, seed=seed)
        self.counts = expert_counts(trace)

    def compute(self, layer: int) -> dict:
        rows, cols = heatmap_experts(self.counts[layer], self.counts[layer + 1], MAX_ROWS)
        a = self.affinity
        return {"layer": layer, "transition": a["transition"][layer], "rows": rows, "cols": cols,
                "mi_bits": float(a["mi_bits"][layer]), "baseline_bits": float(a["baseline_bits"][layer]),
                "p_value": float(a["p_value"][layer]), "permutations": a["permutations"],
                "trace": self.trace.label, "num_experts": self.trace.num_experts}


def _draw(result):
    shown = "" if len(result["rows"]) == result["num_experts"] else \
        f" ({len(result['rows'])} most used experts of each layer)"
    title = (f"layer {result['layer']} -> {result['layer'] + 1}: MI {result['mi_bits']:.2f} bits "
             f"(shuffled {result['baseline_bits']:.2f}){shown}")
    return transition_heatmap(result["transition"], title, rows=result["rows"], cols=result["cols"],
                              layer=result["layer"])


def _describe(result) -> str:
    return (f"{result['trace']}, layer {result['layer']} -> {result['layer'] + 1}: mutual information "
            f"{result['mi_bits']:.3f} bits, {result['baseline_bits']:.3f} with tokens shuffled; "
            f"permutation p-value {result['p_value']:.3f} ({result['permutations']} shuffles)")


def transition_explorer(trace, *, permutations: int = BASELINE_PERMUTATIONS, seed: int = 0,
                        affinity: dict | None = None) -> Explorer:
    """A layer slider -> transition heat map for layer l -> l+1 of `trace`, MI in the title.
    `affinity`: the result of `stmoe.analysis.spatial_affinity(trace, ...)` if already computed."""
    import ipywidgets as widgets

    if affinity is not None and len(affinity["mi_bits"]) != trace.num_layers - 1:
        raise ConfigError(f"affinity: has {len(affinity['mi_bits'])} layer pairs but {trace.label} has "
                          f"{trace.num_layers - 1}; pass spatial_affinity of this trace")
    model = TransitionModel(trace, permutations=permutations, seed=seed, affinity=affinity)
    controls = {"layer": widgets.IntSlider(value=0, min=0, max=trace.num_layers - 2, description="layer l")}
    explorer = Explorer(controls, model.compute, _draw, _describe,
                        title=f"Layer-to-layer transitions of {trace.label}")
    explorer.model = model
    return explorer
