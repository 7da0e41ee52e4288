"""Scoring predictors on a trace, never on tokens they were profiled on.

For a cell (t, l) with routed set R (|R| = the routed slots, cells with none are skipped) and
prediction P (|P| = its non-padding entries):

    recall    = sum |P ∩ R| / sum |R|        (micro-averaged over cells)
    precision = sum |P ∩ R| / sum |P|
    exact     = share of cells with R ⊆ P

Each recall carries a 95% bootstrap interval (`recall_ci_low`, `recall_ci_high`) over the
scored sequences, or blocks of tokens of a one-sequence trace (`stmoe.bootstrap`, which states
what the resampling assumes).

Protocols:

- ``"split"``: profile on tokens other than the scored ones. With an explicit ``profile``
  (e.g. another trace of the same model: cross-domain transfer) every token of ``trace`` is
  scored. Otherwise a trace of several sequences is split into two halves of its sequences,
  each half scored with the other as profile; a one-sequence trace is profiled on the first
  half of its tokens and scored on the second.
- ``"causal"``: no profile; tables start empty and learn online from the past only; every
  token is scored.

Either way the tables keep updating online over scored tokens after each is routed (the
causal contract of `stmoe.predictors`), which is what a deployed predictor does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from stmoe.bootstrap import describe, interval_fields, ratio_interval, resampling_units
from stmoe.errors import ConfigError
from stmoe.predictors import Predictor, check_budget, check_lookahead, make
from stmoe.predictors.base import cell_hits, check_compatible, check_disjoint
from stmoe.readers.catalog import load_trace
from stmoe.splits import folds
from stmoe.trace import PHASE_NAMES, Trace, phase_code

PROTOCOLS = ("split", "causal")


@dataclass
class EvaluationResult:
    """`rows`: one dict per (predictor, phase) with recall (and its interval), precision, exact
    and cells;
    `per_layer`: one dict per (predictor, phase) with `recall` a list over layers (None where
    a layer has no scored cell)."""

    rows: list[dict]
    per_layer: list[dict]
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"info": self.info, "results": self.rows, "per_layer": self.per_layer}

    def row(self, predictor: str, phase: str = "decode") -> dict:
        for r in self.rows:
            if r["predictor"] == predictor and r["phase"] == phase:
                return r
        raise KeyError(f"no result for predictor {predictor!r} in phase {phase!r}")


def scoring_folds(trace: Trace, protocol: str, profile: Trace | None):
    """(profile or None, boolean mask of scored tokens) pairs; scored tokens are never in
    their own profile (`stmoe.splits.folds` when no profile is given)."""
    T = trace.num_tokens
    if protocol == "causal":
        return [(None, np.ones(T, dtype=bool))]
    if profile is not None:
        return [(profile, np.ones(T, dtype=bool))]
    return folds(trace)


def _as_predictor(p) -> tuple[str, Predictor]:
    if isinstance(p, Predictor):
        changed = {k: v for k, v in p.knobs.items() if p.KNOBS.get(k) != v}
        label = p.name + ("[" + ",".join(f"{k}={v}" for k, v in changed.items()) + "]" if changed else "")
        return label, p
    if isinstance(p, str):
        return p, make(p)
    raise ConfigError(f"predictors: expected predictor names or Predictor objects, got {p!r}")


def evaluate(trace, predictors=("st-moe", "cct", "history", "previous-token", "popularity"), *,
             budget: int | None = None, protocol: str = "split", profile: Trace | None = None,
             lookahead: int = 1, phases=("decode", "prefill"),
             progress: Callable[[str], None] = lambda msg: None) -> EvaluationResult:
    """Score each predictor on `trace` under `protocol` (see the module docstring); `progress`
    hears which predictor is being scored."""
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    if profile is not None and not isinstance(profile, Trace):
        profile = load_trace(profile)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol: unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if protocol == "causal" and profile is not None:
        raise ConfigError("profile: the causal protocol learns from the past only; a profile needs the split protocol")
    if trace.num_tokens < 2:
        raise ConfigError(f"trace: {trace.label} has {trace.num_tokens} token; scoring needs at least 2 "
                          "(one to learn from, one to score)")
    if profile is not None:
        check_compatible(profile, trace)
        check_disjoint(profile, trace)
    budget = check_budget(trace.top_k if budget is None else budget, trace.num_experts)
    lookahead = check_lookahead(lookahead, trace.num_layers)
    if isinstance(predictors, (str, Predictor)):
        predictors = [predictors]
    named = [_as_predictor(p) for p in predictors]
    if not named:
        raise ConfigError("predictors: give at least one predictor")
    phase_list = [phases] if isinstance(phases, str) else list(phases)
    codes = [phase_code(ph) for ph in phase_list]

    splits = scoring_folds(trace, protocol, profile)
    L = trace.num_layers
    rows, per_layer, intervals = [], [], {}
    for i, (label, predictor) in enumerate(named, start=1):
        progress(f"scoring {label} ({i} of {len(named)})")
        # sums[phase] = [hits, routed, predicted, exact, cells] per layer
        sums = {c: np.zeros((5, L)) for c in codes}
        tokens = {c: [] for c in codes}   # per scored token of phase c: (hits, routed, sequence)
        for fold_profile, scored in splits:
            part = trace.select(tokens=scored) if not scored.all() else trace
            pred = predictor.fit(fold_profile).predict_trace(part, budget, lookahead)
            hits, routed, predicted = cell_hits(pred, part.expert_ids)
            valid = routed > 0
            for c in codes:
                sel = (part.phase == c)[:, None] & valid
                sums[c] += np.stack([(hits * sel).sum(0), (routed * sel).sum(0), (predicted * sel).sum(0),
                                     ((hits == routed) & sel).sum(0), sel.sum(0)])
                mine = part.phase == c
                tokens[c].append(((hits * sel).sum(1)[mine], (routed * sel).sum(1)[mine], part.sequence[mine]))
        for c in codes:
            h, r, p, ex, n = sums[c]
            if n.sum() == 0:
                continue
            interval, intervals[PHASE_NAMES[c]] = _recall_interval(tokens[c])
            rows.append({"predictor": label, "phase": PHASE_NAMES[c], "budget": budget,
                         "recall": float(h.sum() / r.sum()), **interval_fields("recall", interval),
                         "precision": float(h.sum() / max(p.sum(), 1)),
                         "exact": float(ex.sum() / n.sum()), "cells": int(n.sum())})
            per_layer.append({"predictor": label, "phase": PHASE_NAMES[c], "budget": budget,
                              "recall": [float(hl / rl) if nl else None for hl, rl, nl in zip(h, r, n)]})
    info = {"trace": trace.label, "protocol": protocol, "budget": budget, "lookahead": lookahead,
            "profile": profile.label if profile is not None else None,
            "synthetic": trace.is_synthetic, "top_k": trace.top_k, "num_experts": trace.num_experts,
            "intervals": intervals}
    return EvaluationResult(rows, per_layer, info)


def _recall_interval(tokens: list) -> tuple[tuple[float, float] | None, str]:
    """(the bootstrap interval of the recall, how it was made) from the scored tokens'
    (hits, routed, sequence) arrays of each fold; units with no routed expert are left out."""
    hits, routed, sequence = (np.concatenate(parts) for parts in zip(*tokens))
    unit, units = resampling_units(sequence)
    num, den = np.bincount(unit, hits), np.bincount(unit, routed)
    keep = den > 0
    return ratio_interval(num[keep], den[keep]), describe(units, count=int(keep.sum()))
