"""The evidence of the buffer and hardware-tuning chapters: a trace split into a profile half and
a scored half (`stmoe.splits.split`), with the predictor's choices over the scored decode tokens
computed once per lookahead and reused by every simulation of the same tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stmoe.book import DEFAULT_TRACE
from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.readers.catalog import load_trace
from stmoe.sim.hardware import ModelDims, model_dims
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

    def subset(self, num_sequences: int) -> "HeldOut":
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
