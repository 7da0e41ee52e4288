"""The predictor interface and the checks every predictor shares.

A predictor is profiled once (`fit`) on tokens other than the ones it will be scored on, then
`predict_trace` returns P(t, l) for every cell of a trace: the `budget` experts it would stage
for layer l of token t, best first, -1 padded. The causal contract (module docstring of
`stmoe.predictors`) says what a prediction may depend on; `issue_point` says when it exists.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.files import bytes_from_env
from stmoe.predictors.kernel import count_hits
from stmoe.trace import Trace


def issue_point(num_layers: int, lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """When the prediction for layer l is issued: right after the routing of layer
    ``layer[l]`` of token ``t + token_offset[l]`` (offset 0 = the same token, -1 = the previous
    token of the sequence). ``layer[l] = l - lookahead`` when that is >= 0, else
    ``num_layers + l - lookahead`` of the previous token."""
    check_lookahead(lookahead, num_layers)
    target = np.arange(num_layers)
    source = target - lookahead
    offset = np.where(source < 0, -1, 0)
    return offset.astype(np.int64), np.where(source < 0, source + num_layers, source).astype(np.int64)


# Bytes a predictor's or an analysis' tables may take. They grow as layers x experts^2: st-moe's
# take 13 MB at Qwen3-30B-A3B's 48 x 128 x 128, but 17 GB for one layer of 32,767 experts.
MAX_TABLE_BYTES = bytes_from_env("STMOE_MAX_TABLE_BYTES", 2 << 30)


def check_table_memory(trace: Trace, what: str, bytes_per_pair: float, extra: float = 0) -> None:
    """Refuse before allocating when `what` would hold more than MAX_TABLE_BYTES: about
    `bytes_per_pair` per (layer, expert, expert) of `trace`, plus `extra` bytes."""
    L, E = trace.num_layers, trace.num_experts
    estimate = int(L * E * E * bytes_per_pair + extra)
    if estimate > MAX_TABLE_BYTES:
        growth = "layers x experts^2" if bytes_per_pair else "layers x experts"
        raise ConfigError(f"{trace.label}: {what} needs about {estimate:,} bytes for {L} layer{'s' * (L != 1)} x "
                          f"{E} experts (tables grow as {growth}), over the "
                          f"{MAX_TABLE_BYTES:,}-byte limit (raise STMOE_MAX_TABLE_BYTES to run it)")


def cell_hits(pred: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(|P ∩ R|, |R|, |P|) per cell, each [T, L] int32, for predictions P and routed ids R."""
    return count_hits(pred, ids)


def check_budget(budget, num_experts: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not 1 <= budget <= num_experts:
        raise ConfigError(f"budget: must be an integer from 1 to the number of experts "
                          f"({num_experts}), got {budget!r}")
    return int(budget)


def check_lookahead(lookahead, num_layers: int) -> int:
    if isinstance(lookahead, bool) or not isinstance(lookahead, (int, np.integer)) \
            or not 1 <= lookahead <= num_layers:
        # lookahead L issues P(t, l) right after layer l of the previous token; more reaches
        # past that token's routing, which the tables do not model.
        raise ConfigError(f"lookahead: must be an integer from 1 to {num_layers} (the trace has "
                          f"{num_layers} layers), got {lookahead!r}")
    return int(lookahead)


def check_compatible(profile: Trace, trace: Trace, what: str = "profile") -> None:
    """A table profiled on one model's routing cannot score another's: the shapes must agree,
    and so must the training both traces record (``meta["training"]``: steps and final
    held-out loss), since one architecture trained differently routes differently (the bundled
    untrained control against the trained model). Traces that record no training (a recorded
    hub model) are compared by shape only; text of other domains from the same weights is fine."""
    if (profile.num_layers, profile.num_experts) != (trace.num_layers, trace.num_experts):
        raise ConfigError(f"{what}: {profile.label} has {profile.num_layers} layers x "
                          f"{profile.num_experts} experts but {trace.label} has "
                          f"{trace.num_layers} x {trace.num_experts}")
    mine, theirs = _training(profile), _training(trace)
    if mine is not None and theirs is not None and mine != theirs:
        key = "steps" if mine["steps"] != theirs["steps"] else "final_heldout_loss"
        raise ConfigError(f"{what}: {profile.label} and {trace.label} were routed by differently trained "
                          f"weights (meta.training.{key} {mine[key]!r} and {theirs[key]!r}); a profile must "
                          "come from the same weights")


def _training(trace: Trace) -> dict | None:
    """What identifies the weights a trace was routed by, when its meta records their training."""
    training = trace.meta.get("training")
    if not isinstance(training, dict):
        return None
    return {k: training.get(k) for k in ("steps", "final_heldout_loss")}


def _token_keys(trace: Trace) -> np.ndarray:
    """One key per token with a predecessor: its routing and its predecessor's, as bytes."""
    prev = trace.previous_token()
    rows = trace.expert_ids.reshape(trace.num_tokens, -1)
    pair = np.ascontiguousarray(np.concatenate([rows[prev[prev >= 0]], rows[prev >= 0]], axis=1))
    return pair.view(np.dtype((np.void, pair.shape[1] * pair.itemsize))).ravel()


# Share of scored tokens found in the profile above which the profile holds the scored tokens
# themselves; held-out halves of the bundled code trace share about 3% (repeated indentation).
OVERLAP_LIMIT = 0.25


def check_disjoint(profile: Trace, trace: Trace, what: str = "profile") -> None:
    """An explicit profile that holds the scored tokens would score tokens it was fitted on
    (recall silently inflated), e.g. `--profile` given the scored trace itself. Tokens are told
    apart by their routing and their predecessor's, so only scored tokens whose key is unique
    among them count: where routing repeats (a one-expert model routes every token alike),
    other tokens of the same model share keys too, and the check cannot tell, except that the
    very same tokens (routing and sequences alike) are refused whatever their routing."""
    scored = _token_keys(trace)
    if not scored.size:
        return
    _, inverse, counts = np.unique(scored, return_inverse=True, return_counts=True)
    distinct = scored[counts[inverse.reshape(-1)] == 1]
    share = float(np.isin(distinct, _token_keys(profile)).mean()) if distinct.size else 0.0
    if np.array_equal(profile.expert_ids, trace.expert_ids) and np.array_equal(profile.sequence, trace.sequence):
        share = 1.0
    if share > OVERLAP_LIMIT:
        raise ConfigError(f"{what}: {profile.label} holds {share:.0%} of the scored tokens of "
                          f"{trace.label}; give a profile of other tokens of the same model")


class Predictor:
    """Base class. Subclasses set `name`, `KNOBS` (knob -> default) and implement `_predict`."""

    name = "predictor"
    KNOBS: dict = {}
    trained = False  # True for predictors whose parameters are learned by optimisation

    def __init__(self, **knobs):
        unknown = sorted(set(knobs) - set(self.KNOBS))
        if unknown:
            valid = ", ".join(sorted(self.KNOBS)) or "none"
            raise ConfigError(f"predictor {self.name!r}: unknown knob {unknown[0]!r}; valid knobs: {valid}")
        self.knobs = {**self.KNOBS, **knobs}
        self._check_knobs()
        self.profile: Trace | None = None

    def _check_knobs(self) -> None:
        """Subclasses raise ConfigError naming a knob whose value is out of range."""

    def _knob_range(self, name, lo, hi, *, integer=False, lo_open=False) -> None:
        v = self.knobs[name]
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
            and np.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
        if integer:
            ok = ok and float(v) == int(v)
        if not ok:
            bound = f"{'(' if lo_open else '['}{lo}, {hi}]"
            raise ConfigError(f"predictor {self.name!r}: knob {name} must be "
                              f"{'an integer' if integer else 'a number'} in {bound}, got {v!r}")

    def fit(self, profile: Trace | None) -> "Predictor":
        """Profile on `profile` (tokens that will not be scored), or start empty with None."""
        if profile is not None and not isinstance(profile, Trace):
            raise ConfigError(f"profile: expected a Trace or None, got {type(profile).__name__}")
        self.profile = profile
        return self

    def predict_trace(self, trace: Trace, budget: int, lookahead: int = 1) -> np.ndarray:
        """P(t, l) for every cell: int16 [T, L, budget], best first, -1 padded."""
        if not isinstance(trace, Trace):
            raise ConfigError(f"trace: expected a Trace, got {type(trace).__name__}")
        budget = check_budget(budget, trace.num_experts)
        lookahead = check_lookahead(lookahead, trace.num_layers)
        if self.profile is not None:
            check_compatible(self.profile, trace)
        check_table_memory(trace, f"predictor {self.name!r}", *self._table_bytes(trace))
        out = self._predict(trace, budget, lookahead)
        assert out.shape == (trace.num_tokens, trace.num_layers, budget)
        return out.astype(np.int16, copy=False)

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        raise NotImplementedError

    def _table_bytes(self, trace: Trace) -> tuple[float, float]:
        """(bytes per (layer, expert, expert), other bytes) the prediction will hold at most."""
        return 0.0, 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.knobs.items())})"
