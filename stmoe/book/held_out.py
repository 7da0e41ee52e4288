"""The evidence of the buffer and hardware-tuning chapters: a trace split into a profile half and
a scored half (`stmoe.splits.split`), with the predictor's choices over the scored decode tokens
computed once per lookahead and reused by every simulation of the same tokens; `gain` is one
system's gain over another on them with its paired bootstrap interval, for the checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stmoe.book import DEFAULT_TRACE
from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import gain_over
from stmoe.sim.hardware import ModelDims, model_dims
from stmoe.sim.systems import get_system
from stmoe.sim.timing import simulate
from stmoe.splits import split
from stmoe.trace import DECODE, Trace


@dataclass
class HeldOut:
    """A trace split for simulation: `profile` fits the predictor, `scored` is simulated, and
    `predictions[lookahead]` are the predictor's choices over `scored`'s decode tokens."""

    profile: Trace
    scored: Trace
    dims: ModelDims
    predictor: str = "st-moe"
    budget: int | None = None
    predictions: dict = field(default_factory=dict)

    def predictions_for(self, lookahead: int = 1) -> np.ndarray:
        if lookahead not in self.predictions:
            decode = self.scored.select(phase="decode")
            self.predictions[lookahead] = predict(decode, self.predictor, budget=self.budget,
                                                  profile=self.profile, lookahead=lookahead)
        return self.predictions[lookahead]

    def subset(self, num_sequences: int) -> HeldOut:
        """The first `num_sequences` scored sequences, with the predictions cut to match (the
        predictor is causal, so a prefix of sequences gets the same predictions)."""
        seqs = self.scored.sequence_ids()[:num_sequences]
        part = self.scored.select(sequences=seqs)
        n = int((part.phase == DECODE).sum())
        return HeldOut(self.profile, part, self.dims, self.predictor, self.budget,
                       {d: p[:n] for d, p in self.predictions.items()})


def held_out(trace: Trace, *, predictor: str = "st-moe", budget: int | None = None,
             lookaheads=(1,), dims: ModelDims | None = None) -> HeldOut:
    """Split `trace` into profile and scored halves and predict the scored decode tokens."""
    if not (trace.phase == DECODE).any():
        raise ConfigError(f"trace {trace.label} has no decode tokens to simulate")
    profile, scored = split(trace)
    if not (scored.phase == DECODE).any():
        raise ConfigError(f"trace {trace.label}: the scored half has no decode tokens")
    out = HeldOut(profile, scored, dims or model_dims(trace), predictor, budget)
    for d in lookaheads:
        out.predictions_for(int(d))
    return out



def default_held_out(name: str = DEFAULT_TRACE, lookaheads=(1,)) -> HeldOut:
    """The chapters' evidence: a bundled trace split into profile and scored halves."""
    return held_out(load_trace(name), lookaheads=lookaheads)


def gain(data: HeldOut, hardware, system: str = "st-moe", baseline: str = "lru-cache", *,
         lookahead: int = 1) -> dict:
    """`system`'s speedup and energy efficiency over `baseline` on the scored decode tokens, each
    with its paired bootstrap interval (`stmoe.bootstrap`; the two runs resampled alike):
    {system, baseline, speedup, speedup_ci_low, speedup_ci_high, energy_efficiency, ..._ci_low,
    ..._ci_high, intervals}. Over lru-cache, it is what prediction adds to the same buffer used
    as a cache, and how sure that is. A system that needs a profile (hot-set) gets `data.profile`."""
    runs = {}
    for name in (baseline, system):
        pred = data.predictions_for(lookahead) if get_system(name).prefetch == "predictor" else None
        runs[name] = simulate(data.scored, hardware, name, predictions=pred, dims=data.dims, lookahead=lookahead,
                              profile=data.profile)   # hot-set counts its experts on the profile
    rows = [r.row() | {"system": name, "per_unit": r.per_unit.as_dict()} for name, r in runs.items()]
    return {"system": system} | gain_over(rows, baseline, system)
