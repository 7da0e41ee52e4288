"""The recall explorer of notebook 03: budget, history length and decay, mixing weight and
combine mode -> recall of each table predictor on held-out tokens.

Fast by construction: every predictor runs once per knob setting at the widest budget (a
smaller budget is a prefix of its ranking, see `stmoe.book.predictor_design`), results are cached
by knob values, and the explorer scores a bounded held-out slice of the trace (the readout
says how many tokens).
"""

from __future__ import annotations

from stmoe.book.predictor_design import chance, recall_by_budget, st_moe
from stmoe.charts.comparison import recall_bars_chart
from stmoe.predictors import make
from stmoe.splits import split
from stmoe.widgets.explorer import Explorer

FIXED = ("popularity", "previous-token", "cct")
MIX = "cct + history mix"
MAX_SCORED_TOKENS = 3072  # keeps a knob change (two predictor runs) near 150 ms on the bundled traces


class RecallModel:
    """Recall at every budget 1..max_budget for the fixed predictors (computed at once) and,
    on demand and cached, for history and the cct + history mix at given knobs."""

    def __init__(self, trace, *, max_scored_tokens: int | None = MAX_SCORED_TOKENS,
                 max_budget: int | None = None):
        self.trace = trace
        self.profile, self.scored = split(trace, max_scored_tokens=max_scored_tokens)
        self.max_budget = max_budget or min(trace.num_experts, 2 * trace.top_k)
        self.budgets = list(range(1, self.max_budget + 1))
        self.chance = chance(self.budgets, trace.num_experts)
        self._cache = {name: self._run(make(name)) for name in FIXED}
        # st-moe's weights fixed (not re-tuned per budget) so that one run serves every budget
        self._cache["st-moe"] = self._run(st_moe())

    def _run(self, predictor):
        return recall_by_budget(self.scored, predictor, self.budgets, profile=self.profile)

    def history(self, history_length: int, history_decay: float):
        key = ("history", history_length, history_decay)
        if key not in self._cache:
            self._cache[key] = self._run(make("history", history_length=history_length,
                                              history_decay=history_decay))
        return self._cache[key]

    def mix(self, history_length: int, history_decay: float, weight: float, combine: str):
        """The cross-layer table plus `weight` x the history table, combined linearly or as
        independent evidence (log-odds); see `stmoe.predictors.tables.STMoE`."""
        key = ("mix", history_length, history_decay, weight, combine)
        if key not in self._cache:
            self._cache[key] = self._run(st_moe(
                combine=combine, spatial_weight=1.0, transition_weight=0.0,
                history_weight=weight, history_length=history_length, history_decay=history_decay))
        return self._cache[key]

    def compute(self, budget, history_length, history_decay, weight, combine) -> dict:
        i = self.budgets.index(budget)
        history_decay, weight = round(float(history_decay), 3), round(float(weight), 3)
        curves = {name: self._cache[name] for name in ("popularity", "previous-token")}
        curves["history"] = self.history(history_length, history_decay)
        curves["cct"] = self._cache["cct"]
        curves["st-moe (fixed weights)"] = self._cache["st-moe"]
        curves[MIX] = self.mix(history_length, history_decay, weight, combine)
        return {"budget": budget, "history_length": history_length, "history_decay": history_decay,
                "weight": weight, "combine": combine, "chance": float(self.chance[i]),
                "rows": [{"predictor": n, "recall": float(c[i])} for n, c in curves.items()],
                "trace": self.trace.label, "scored_tokens": self.scored.num_tokens,
                "profile_tokens": self.profile.num_tokens}


def _recall(result, name):
    return next(r["recall"] for r in result["rows"] if r["predictor"] == name)


def _draw(result):
    title = (f"{MIX}: recall {_recall(result, MIX):.2f} at m = {result['budget']} "
             f"(cct alone {_recall(result, 'cct'):.2f})")
    return recall_bars_chart(result["rows"], title, chance=result["chance"])


def _describe(result) -> str:
    parts = ", ".join(f"{r['predictor']} {r['recall']:.3f}" for r in result["rows"])
    return (f"{result['trace']}, decode tokens of {result['scored_tokens']} held-out tokens "
            f"(profiled on {result['profile_tokens']} others), budget m = {result['budget']}: "
            f"{parts}; chance {result['chance']:.3f}")


def recall_explorer(trace, *, max_scored_tokens: int | None = MAX_SCORED_TOKENS) -> Explorer:
    """Sliders for budget, history length and decay, the history weight of the mix and the
    combine mode -> recall by predictor on held-out tokens of `trace`."""
    import ipywidgets as widgets

    model = RecallModel(trace, max_scored_tokens=max_scored_tokens)
    style = {"description_width": "initial"}
    controls = {
        "budget": widgets.IntSlider(value=trace.top_k, min=1, max=model.max_budget,
                                    description="budget m", style=style),
        "history_length": widgets.IntSlider(value=8, min=1, max=32, description="history length",
                                            style=style),
        "history_decay": widgets.FloatSlider(value=0.7, min=0.1, max=1.0, step=0.1,
                                             description="history decay", style=style),
        "weight": widgets.FloatSlider(value=0.5, min=0.0, max=2.0, step=0.25,
                                      description="history weight", style=style),
        "combine": widgets.ToggleButtons(options=["log-odds", "linear"], value="log-odds",
                                         description="combine", style=style),
    }
    explorer = Explorer(controls, model.compute, _draw, _describe,
                        title=f"Recall by predictor on held-out tokens of {trace.label}")
    explorer.model = model
    return explorer
