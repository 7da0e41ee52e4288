"""The whole study on one trace: what it holds, how predictable it is, and what each system
gains on each hardware preset. Plain data out (JSON-serialisable), for the report and the CLI."""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable

from stmoe.analysis import analyze, headline
from stmoe.errors import ConfigError
from stmoe.evaluation import evaluate
from stmoe.predictors import predict
from stmoe.sim.comparison import (
    REFERENCE_MODEL,
    compare_systems,
    dims_for,
    over_best,
    reference_dims,
    reference_note,
    split_for_comparison,
)
from stmoe.sim.conditions import PAPER_GAINS, conditions_summary, search_conditions
from stmoe.sim.sensitivity import sensitivity
from stmoe.sim.systems import OTHER_PREFETCHERS, predictions_note
from stmoe.trace import DECODE, Trace

# `trained` (logistic regression) is left out: minutes per trace; the notes say so.
STUDY_PREDICTORS = ("popularity", "previous-token", "history", "cct", "st-moe", "stale-gate", "random", "oracle")
STUDY_PRESETS = ("accelerator", "gpu-pcie", "edge-flash")
SIGNIFICANCE_PERMUTATIONS = 999  # shuffles in the spatial-affinity significance test (smallest p = 0.001)
# Where the paper's gains would hold: the accelerator's buffer and attention bandwidth from the
# preset's value to the largest the sensitivity ranges consider, the baselines on the same
# machine or on the GPU (as offloading papers run them), and one or 8 sequences decoded in
# lockstep (`paper_grid` keeps the batches the simulated half has sequences for). Each batch
# value costs a bundled trace about 12 s (measured: its 18 points at batch 8 in 12.9 s, batch 16
# in 11.7 s, on tiny-moe-code on a loaded machine); 32 is more sequences than the bundled
# traces' simulated halves hold (24).
PAPER_GRID = {"buffer_bytes": [64 * 2 ** 20, 2 ** 30, 8 * 2 ** 30],
              "dense_bandwidth": [256e9, 1e12, 4e12],
              "baseline_hardware": ["accelerator", "gpu-pcie"],
              "batch": [1, 8]}


def paper_grid(simulated: Trace) -> tuple[dict, list[str]]:
    """(PAPER_GRID with the batches `simulated` has enough sequences for, a note per batch left
    out)."""
    n = len(simulated.sequence_ids())
    fits = [b for b in PAPER_GRID["batch"] if b <= n]
    return dict(PAPER_GRID, batch=fits), [f"batch {b} left out of the grid: the simulated half holds {n} "
                                          "sequence(s)" for b in PAPER_GRID["batch"] if b > n]


def over_baselines(rows: list[dict]) -> dict:
    """st-moe against the fastest pure cache (no prefetching: what its prediction adds over
    caching) and, apart, against the fastest other prefetcher (`stmoe.sim.comparison.over_best`;
    None where the comparison has no such system)."""
    return {"over_best_cache": over_best(rows), "over_best_prefetcher": over_best(rows, OTHER_PREFETCHERS)}


def study(trace: Trace, *, presets=STUDY_PRESETS, predictors=STUDY_PREDICTORS,
          progress: Callable[[str], None] = lambda msg: None) -> dict:
    out: dict = {"summary": trace.summary(), "label": trace.label, "meta": trace.meta}
    progress(f"{trace.label}: analysing routing structure")
    scope = trace.select(phase="decode") if (trace.phase == DECODE).any() else trace
    out["analysis"] = {"phase": "decode" if scope is not trace else "all",
                       "rows": headline(analyze(scope, permutations=SIGNIFICANCE_PERMUTATIONS))}
    progress(f"{trace.label}: scoring {len(predictors)} predictors")
    phases = ("decode",) if (trace.phase == DECODE).any() else ("prefill",)
    scored = [p for p in predictors if p != "stale-gate" or trace.stale_gate is not None]
    result = evaluate(trace, scored, protocol="split", phases=phases)
    out["prediction"] = {"protocol": result.info, "rows": result.rows, "per_layer": result.per_layer,
                         "notes": (["stale-gate not scored: the trace has no stale_gate field"]
                                   if len(scored) < len(predictors) else [])
                         + (["trained (logistic regression) not scored here: it takes minutes per "
                             "trace; `stmoe predict TRACE --predictor trained` scores it"]
                            if "trained" not in predictors else [])}
    profile, simulated, split_notes = split_for_comparison(trace)
    if (simulated.phase == DECODE).any():
        # The predictions do not depend on the machine: compute them once for every preset.
        predictions = predict(simulated.select(phase="decode"), "st-moe", profile=profile)
        predicted = predictions_note("st-moe", trace.top_k, 1, profile)
        out["systems"] = {}
        try:
            own, own_notes = dims_for(trace)
        except ConfigError:   # synthetic routing, or a model with no sizes: the reference model's, said
            own, own_notes = None, [reference_note(trace) + ": the trace's own model sizes are unknown"]
        dims = own if own is not None else reference_dims(trace)
        for name in presets:
            progress(f"{trace.label}: simulating systems on {name}")
            rows, notes = compare_systems(simulated, name, dims=dims, predictions=predictions, profile=profile)
            out["systems"][name] = {"rows": rows, **over_baselines(rows),
                                    "notes": own_notes + split_notes + notes + [predicted]}
            progress(f"{trace.label}: varying {name}'s assumed constants")
            result = sensitivity(simulated, name, predictions=predictions, dims=dims)
            result.notes[:0] = own_notes + split_notes
            result.notes.append(predicted)
            out.setdefault("sensitivity", {})[name] = asdict(result)
        if simulated.weights is not None:   # adap-gating, one of the paper's baselines, needs them
            progress(f"{trace.label}: searching where the paper's gains would hold")
            grid, grid_notes = paper_grid(simulated)
            rows, _ = search_conditions(simulated, grid, dims=dims, profile=profile)
            out["paper_conditions"] = {
                "grid": {k: list(v) for k, v in grid.items()}, "targets": {k: list(v) for k, v in PAPER_GAINS.items()},
                "summary": {k: {"points": v["points"], "of": v["of"], "needs": v["needs"]}
                            for k, v in conditions_summary(rows, grid).items()},
                "notes": [*own_notes, *split_notes, predicted, *grid_notes,
                          ("the baselines on the machine named by baseline_hardware, st-moe on the "
                           "accelerator with the grid's buffer and attention bandwidth, both at the grid's "
                           "batch (sequences decoded in lockstep)")]}
        if own is not None and own.model != REFERENCE_MODEL:
            progress(f"{trace.label}: simulating systems with {REFERENCE_MODEL}-sized experts")
            rows, notes = compare_systems(simulated, "accelerator", dims=reference_dims(trace),
                                          predictions=predictions, profile=profile)
            out["systems"][f"accelerator, {REFERENCE_MODEL}-sized experts"] = {
                "rows": rows, **over_baselines(rows), "notes": [reference_note(trace) + ": what the same pattern costs at "
                                        "production scale"] + split_notes + notes + [predicted]}
    else:
        out["systems"] = {}
        out.setdefault("notes", []).append("no decode tokens in the simulated half: systems are "
                                           "simulated on decode only")
    return out
