"""Predictors built from count tables (see `kernel` for the tables and the scores):
popularity, previous-token, history, cct, and st-moe, which combines the spatial and temporal
tables. All profile by replaying the profile trace through the tables, then keep updating them
online as each scored token is routed (knob ``online``)."""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors.base import Predictor, issue_point
from stmoe.predictors.kernel import run_tables
from stmoe.trace import Trace

LINEAR, LOG = 0, 1
_TIE_BREAK = 1e-3  # a popularity term too small to reorder the main signal, only to rank ties and fill


class TablePredictor(Predictor):
    """Shared machinery: profile tables per lookahead (the cross-layer table's source layer
    depends on it), then one pass of the compiled kernel over the scored trace."""

    KNOBS = {"decay": 1.0, "online": True, "alpha": 1.0, "prior_smoothing": 0.5}

    def _check_knobs(self) -> None:
        self._knob_range("decay", 0.0, 1.0, lo_open=True)
        self._knob_range("alpha", 0.0, 1e6, lo_open=True)
        self._knob_range("prior_smoothing", 0.0, 1e6, lo_open=True)
        if not isinstance(self.knobs["online"], (bool, np.bool_)):
            raise ConfigError(f"predictor {self.name!r}: knob online must be True or False, "
                              f"got {self.knobs['online']!r}")

    def fit(self, profile: Trace | None) -> "TablePredictor":
        super().fit(profile)
        self._fitted: dict[tuple, tuple] = {}
        return self

    # (w_prior, w_spatial, w_transition, w_history, w_previous), mode
    def _weights(self) -> tuple[tuple[float, ...], int]:
        raise NotImplementedError

    def _run(self, trace: Trace, tables, budget, lookahead, *, predict, update):
        offset, layer = issue_point(trace.num_layers, lookahead)
        weights, mode = self._weights()
        kn = self.knobs
        return run_tables(
            trace.expert_ids, trace.previous_token().astype(np.int64), layer, (offset < 0).astype(np.int64),
            *tables, np.asarray(weights, dtype=np.float64), mode, float(kn["alpha"]),
            float(kn["prior_smoothing"]), float(kn["decay"]), int(kn.get("history_length", 0)),
            float(kn.get("history_decay", 1.0)), budget, predict, update)

    def _tables(self, trace: Trace, lookahead: int):
        """Fresh copies of the profiled tables for this lookahead."""
        L, E = trace.num_layers, trace.num_experts
        key = (lookahead, L, E)
        if not hasattr(self, "_fitted"):
            self._fitted = {}
        if key not in self._fitted:
            weights, _ = self._weights()
            pair_shape = (L, E, E)
            tables = (np.zeros((L, E)),
                      np.zeros(pair_shape if weights[1] else (L, 1, 1)),
                      np.zeros(pair_shape if weights[2] else (L, 1, 1)))
            if self.profile is not None:
                self._run(self.profile, tables, 1, lookahead, predict=False, update=True)
            self._fitted[key] = tables
        return tuple(a.copy() for a in self._fitted[key])

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        tables = self._tables(trace, lookahead)
        return self._run(trace, tables, budget, lookahead, predict=True, update=bool(self.knobs["online"]))


class Popularity(TablePredictor):
    """Per-layer top-m by how often each expert was routed (profile, then online counts)."""

    name = "popularity"

    def _weights(self):
        return (1.0, 0.0, 0.0, 0.0, 0.0), LINEAR


class PreviousToken(TablePredictor):
    """The previous token's experts at the same layer, in router rank order; popularity fills
    the rest of the budget (and the first token of a sequence)."""

    name = "previous-token"

    def _weights(self):
        return (_TIE_BREAK, 0.0, 0.0, 0.0, 1.0), LINEAR


class History(TablePredictor):
    """The temporal history table: recency-weighted counts of the experts that the last
    `history_length` tokens of the sequence used at this layer (weight history_decay ** age)."""

    name = "history"
    KNOBS = {**TablePredictor.KNOBS, "history_length": 8, "history_decay": 0.7}

    def _check_knobs(self):
        super()._check_knobs()
        self._knob_range("history_length", 1, 1_000_000, integer=True)
        self._knob_range("history_decay", 0.0, 1.0, lo_open=True)

    def _weights(self):
        return (_TIE_BREAK, 0.0, 0.0, 1.0, 0.0), LINEAR


class CrossLayerTable(TablePredictor):
    """The cross-layer correlation table (CCT): expert-id -> expert-id counts between the
    issuing layer and the target layer, profiled and updated online; the score of j is the
    mean over the issuing layer's experts i of the smoothed P(j | i)."""

    name = "cct"

    def _weights(self):
        return (0.0, 1.0, 0.0, 0.0, 0.0), LINEAR


class STMoE(History):
    """ST-MoE: the cross-layer table (spatial) and the temporal tables combined.

    combine="log-odds" (default) treats the tables as independent evidence about j, a product
    of experts around the popularity prior p:

        log p + spatial_weight (log S - log p) + transition_weight (log Q - log p)
              + history_weight (log H - log p)

    with S the cross-layer table's P(j | issuing layer's experts), Q the temporal transition
    table's P(j at t | experts of t-1 at this layer) and H the smoothed history of recent
    tokens. combine="linear" mixes the normalised scores instead:
    spatial_weight S + transition_weight Q + history_weight H (the naive mix of DESIGN.md).
    """

    name = "st-moe"
    KNOBS = {**History.KNOBS, "combine": "log-odds", "spatial_weight": 1.0,
             "transition_weight": 0.5, "history_weight": 0.0}
    COMBINE = {"log-odds": LOG, "linear": LINEAR}

    def _check_knobs(self):
        super()._check_knobs()
        if self.knobs["combine"] not in self.COMBINE:
            raise ConfigError(f"predictor 'st-moe': knob combine must be one of "
                              f"{', '.join(self.COMBINE)}, got {self.knobs['combine']!r}")
        for name in ("spatial_weight", "transition_weight", "history_weight"):
            self._knob_range(name, 0.0, 100.0)

    def _weights(self):
        kn = self.knobs
        w = (_TIE_BREAK if self.COMBINE[kn["combine"]] == LINEAR else 0.0, float(kn["spatial_weight"]),
             float(kn["transition_weight"]), float(kn["history_weight"]), 0.0)
        return w, self.COMBINE[kn["combine"]]
