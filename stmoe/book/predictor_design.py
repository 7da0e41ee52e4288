"""Recall against budget for the table predictors, from one run per predictor: what notebook
03 (predictor design) and its explorer show.

A table predictor scores every expert and stages the top m, best first, so its prediction at
budget m is the first m entries of its prediction at any larger budget. One run at the largest
budget therefore gives the recall at every smaller one, exactly as `stmoe.evaluate` would
score each budget separately (the tests check this). Two exceptions: random draws are not
prefix-stable (its expected recall m / E is `chance`), and an st-moe that tunes its weights on
the profile, or hedges (its hedge learns from hits at the budget asked), is run once per budget.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.evaluation import scoring_folds
from stmoe.predictors import Predictor, check_budget, make
from stmoe.predictors.base import cell_hits
from stmoe.trace import Trace, phase_code

_BLOCK = 2048  # tokens compared at once: bounds the [block, L, m, k] comparison
PREFIX_STABLE = ("popularity", "previous-token", "history", "cct", "st-moe")
WEIGHTS = ("spatial_weight", "transition_weight", "history_weight")
# st-moe knobs that keep the weights as given and stage the combination alone (no hedge)
AS_GIVEN = {"tune": "none", "hedge": False}


def st_moe(**knobs) -> Predictor:
    """An st-moe predictor whose weights stay as given (never re-tuned on the profile) and whose
    combination is staged in every cell (not hedged)."""
    return make("st-moe", **{**AS_GIVEN, **knobs})


def _tuned_per_budget(p: Predictor) -> bool:
    return p.knobs.get("tune", "none") != "none" or bool(p.knobs.get("hedge", False))


def check_budgets(budgets, num_experts: int) -> list[int]:
    budgets = [check_budget(b, num_experts) for b in np.atleast_1d(budgets).tolist()]
    if not budgets:
        raise ConfigError("budgets: give at least one budget")
    return budgets


def recall_by_budget(trace: Trace, predictor, budgets, *, profile: Trace | None = None,
                     phase: str = "decode", lookahead: int = 1) -> np.ndarray:
    """Recall of `predictor` (name or Predictor) at each budget, under the "split" protocol of
    `stmoe.evaluate`: profiled on `profile` when given, else on the other half of the
    sequences (or of the tokens, for a one-sequence trace). Cells of `phase` only."""
    p = make(predictor) if isinstance(predictor, str) else predictor
    if not isinstance(p, Predictor):
        raise ConfigError(f"predictor: expected a name or a Predictor, got {predictor!r}")
    if p.name not in PREFIX_STABLE:
        raise ConfigError(f"predictor: {p.name!r} is not a table predictor; recall by budget "
                          f"needs one of {', '.join(PREFIX_STABLE)}")
    budgets = check_budgets(budgets, trace.num_experts)
    code = phase_code(phase)
    widest = max(budgets)
    hits = np.zeros(len(budgets))
    routed = 0
    for fold_profile, scored in scoring_folds(trace, "split", profile):
        part = trace if scored.all() else trace.select(tokens=scored)
        p.fit(fold_profile)
        pred = p.predict_trace(part, widest, lookahead)
        keep = (part.phase == code)[:, None] & (part.expert_ids >= 0).any(axis=2)
        routed += int(((part.expert_ids >= 0).sum(axis=2) * keep).sum())
        if _tuned_per_budget(p):
            for b, m in enumerate(budgets):
                own = pred if m == widest else p.predict_trace(part, m, lookahead)
                hits[b] += (cell_hits(own, part.expert_ids)[0] * keep).sum()
        else:
            ranks = np.bincount(_ranks(pred, part.expert_ids)[keep[..., None] & (part.expert_ids >= 0)],
                                minlength=widest + 1)
            hits += np.cumsum(ranks)[np.asarray(budgets) - 1]
    if routed == 0:
        raise ConfigError(f"phase: {trace.label} has no routed {phase} cells to score")
    return hits / routed


def _ranks(pred: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """[T, L, k]: where each routed expert stands in the ranked prediction (0 = first),
    len(prediction) when it is not predicted at all."""
    M = pred.shape[2]
    out = np.full(ids.shape, M, dtype=np.int64)
    for lo in range(0, ids.shape[0], _BLOCK):
        match = pred[lo:lo + _BLOCK, :, :, None] == ids[lo:lo + _BLOCK, :, None, :]
        found = match.any(axis=2)
        out[lo:lo + _BLOCK][found] = match.argmax(axis=2)[found]
    return out


def chance(budgets, num_experts: int) -> np.ndarray:
    """Expected recall of m experts drawn at random: m / E."""
    return np.asarray(check_budgets(budgets, num_experts), dtype=float) / num_experts


def budget_curves(trace: Trace, predictors, budgets, *, profile: Trace | None = None,
                  phase: str = "decode") -> list[dict]:
    """Rows {series, budget, recall} for each predictor (name or Predictor, labelled by name
    or by its entry in a {label: predictor} dict) and for chance, ready to chart."""
    named = predictors.items() if isinstance(predictors, dict) else \
        [(p if isinstance(p, str) else p.name, p) for p in predictors]
    budgets = check_budgets(budgets, trace.num_experts)
    rows = []
    for label, p in named:
        recall = recall_by_budget(trace, p, budgets, profile=profile, phase=phase)
        rows += [{"series": label, "budget": m, "recall": float(r)} for m, r in zip(budgets, recall)]
    rows += [{"series": "chance (m / E)", "budget": m, "recall": float(r)}
             for m, r in zip(budgets, chance(budgets, trace.num_experts))]
    return rows


def knob_curve(trace: Trace, name: str, knob: str, values, *, budget: int, series: str | None = None,
               phase: str = "decode", **fixed) -> list[dict]:
    """Rows {series, <knob>, recall}: predictor `name` with `fixed` knobs and `knob` set to
    each of `values`, scored at `budget` under the split protocol. An st-moe whose weights are
    set here keeps them (`st_moe`) unless `tune` is given."""
    build = st_moe if name == "st-moe" and ({knob, *fixed} & set(WEIGHTS)) else \
        (lambda **kn: make(name, **kn))
    rows = []
    for v in values:
        recall = recall_by_budget(trace, build(**fixed, **{knob: v}), [budget], phase=phase)[0]
        rows.append({"series": series or name, knob: v, "recall": float(recall)})
    return rows


def budget_for_recall(trace: Trace, predictor, target: float, *, phase: str = "decode") -> int | None:
    """The smallest budget m at which `predictor` reaches recall `target` (None if even m = E
    does not)."""
    if not 0 < target <= 1:
        raise ConfigError(f"target: a recall must be in (0, 1], got {target!r}")
    budgets = list(range(1, trace.num_experts + 1))
    recall = recall_by_budget(trace, predictor, budgets, phase=phase)
    reached = np.flatnonzero(recall >= target - 1e-12)
    return budgets[reached[0]] if reached.size else None
