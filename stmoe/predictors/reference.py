"""Reference points that need no tables: random (the floor), oracle (the ceiling, it reads
the answer), and stale-gate (the next layer's router applied one layer early, recorded in the
trace's stale_gate field)."""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors.base import Predictor
from stmoe.predictors.kernel import merge_cells
from stmoe.predictors.tables import Popularity
from stmoe.trace import Trace

_BLOCK = 1024  # tokens per block: bounds the [block, L, E] random keys in memory


class Random(Predictor):
    """m experts drawn uniformly without replacement per cell, seeded: expected recall m/E."""

    name = "random"
    KNOBS = {"seed": 0}

    def _check_knobs(self):
        self._knob_range("seed", 0, 2**63 - 1, integer=True)

    def _table_bytes(self, trace):
        # a block's float64 keys and their int64 argpartition, per (token, layer, expert)
        return 0.0, 16.0 * min(_BLOCK, trace.num_tokens) * trace.num_layers * trace.num_experts

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        rng = np.random.default_rng(int(self.knobs["seed"]))
        T, L, E = trace.num_tokens, trace.num_layers, trace.num_experts
        out = np.empty((T, L, budget), dtype=np.int16)
        for lo in range(0, T, _BLOCK):
            keys = rng.random((min(_BLOCK, T - lo), L, E))
            out[lo:lo + _BLOCK] = np.argpartition(keys, budget - 1, axis=2)[:, :, :budget]
        return out


class Oracle(Predictor):
    """The experts the router will pick (it reads the future): recall 1 whenever m >= k.
    Beyond k it predicts nothing more (-1), so its precision stays 1."""

    name = "oracle"

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        T, L, k = trace.expert_ids.shape
        out = np.full((T, L, budget), -1, dtype=np.int16)
        n = min(budget, k)
        out[:, :, :n] = trace.expert_ids[:, :, :n]
        return out


class StaleGate(Predictor):
    """The ranking recorded in ``trace.stale_gate``: layer l's router applied to the hidden
    state entering layer l-1, available one layer ahead only. Popularity (profiled and online)
    fills the budget beyond the recorded ranking and layer 0, which has none."""

    name = "stale-gate"

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        if trace.stale_gate is None:
            raise ConfigError(f"predictor 'stale-gate': trace {trace.label} has no stale_gate "
                              "field (it needs a recorder with access to hidden states)")
        if lookahead != 1:
            raise ConfigError(f"predictor 'stale-gate': the recorded gate looks 1 layer ahead; "
                              f"lookahead {lookahead} is not available")
        n = min(budget, trace.stale_gate.shape[2])
        out = np.full((trace.num_tokens, trace.num_layers, budget), -1, dtype=np.int16)
        out[:, :, :n] = trace.stale_gate[:, :, :n]
        if (out < 0).any():
            filler = Popularity().fit(self.profile).predict_trace(trace, budget, lookahead)
            out = merge_cells(out, filler)
        return out
