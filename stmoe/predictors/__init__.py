"""Expert predictors: which experts to stage for layer l of token t before its router runs.

Every predictor is profiled with `fit(profile)` on tokens it will not be scored on (or `None`)
and returns, from `predict_trace(trace, budget, lookahead)`, an int16 array [T, L, budget] of
expert ids best first, -1 padded.

The causal contract. P(t, l) with lookahead D is *issued* right after layer l - D of token t is
routed (after layer L + l - D of the previous token of the sequence when l - D < 0; see
`issue_layer`). It depends only on (a) the profile, (b) all layers of every token routed
before t (earlier tokens of the trace: earlier sequences are complete before a later one
starts), and (c) layers <= l - D of token t. Online tables update after each token is routed.
A sequence's first token has no previous token: cells whose issuing layer would lie there are
predicted from the tables' popularity alone.

Names: popularity, previous-token, history, cct, st-moe, stale-gate, trained, random, oracle.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors.base import Predictor, check_budget, check_lookahead, issue_point
from stmoe.predictors.reference import Oracle, Random, StaleGate
from stmoe.predictors.tables import CrossLayerTable, History, Popularity, PreviousToken, STMoE
from stmoe.predictors.trained import Trained
from stmoe.trace import Trace

PREDICTORS: dict[str, type[Predictor]] = {
    cls.name: cls for cls in (Popularity, PreviousToken, History, CrossLayerTable, STMoE,
                              StaleGate, Trained, Random, Oracle)
}


def make(name: str, **knobs) -> Predictor:
    """A predictor by name with its knobs; unknown names and knobs raise ConfigError."""
    if name not in PREDICTORS:
        raise ConfigError(f"predictor: unknown predictor {name!r}; valid predictors: {', '.join(PREDICTORS)}")
    return PREDICTORS[name](**knobs)


def issue_layer(num_layers: int, lookahead: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(token_offset[L], layer[L]): P(t, l) exists once layer ``layer[l]`` of token
    ``t + token_offset[l]`` (0 = this token, -1 = the previous token) has been routed."""
    return issue_point(num_layers, lookahead)


def predict(trace: Trace, name: str, *, budget: int | None = None, profile: Trace | None = None,
            lookahead: int = 1, **knobs) -> np.ndarray:
    """`make(name, **knobs).fit(profile).predict_trace(trace, budget or k, lookahead)`."""
    return make(name, **knobs).fit(profile).predict_trace(
        trace, trace.top_k if budget is None else budget, lookahead)


__all__ = ["PREDICTORS", "Predictor", "check_budget", "check_lookahead", "issue_layer", "make", "predict"]
