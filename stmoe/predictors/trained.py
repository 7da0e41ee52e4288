"""A trained representative: per target layer, a logistic regression from the issuing layer's
experts (multi-hot, E inputs) to the target layer's (E independent sigmoids), fitted by full
batch Adam on binary cross-entropy with an L2 penalty. It stands in for the learned predictors
of the literature (which see hidden states; this one, like the tables, sees only expert ids).

Online like the tables, but refitted rarely (fitting is the expensive part): the model for a
block of `block` tokens starting at b is fitted on the profile plus the scored tokens before b,
refitted only once that training set has grown by the factor `refit_growth` since the last fit
(so O(log T) fits), on at most the `max_examples` most recent tokens. With no profile the first block has no model and is ranked by expert id
(chance level), which the per-layer results show.
"""

from __future__ import annotations

import numpy as np

from stmoe.predictors.base import Predictor, issue_point
from stmoe.trace import Trace


def _examples(trace: Trace, lookahead: int, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X [L, n, E] issuing-cell multi-hot, Y [L, n, E] target multi-hot, mask [L, n] routed."""
    T, L, k = trace.expert_ids.shape
    E = trace.num_experts
    offset, layer = issue_point(L, lookahead)
    prev = trace.previous_token()
    n = len(tokens)
    X = np.zeros((L, n, E), dtype=np.float32)
    Y = np.zeros((L, n, E), dtype=np.float32)
    rows = np.arange(n)
    for l in range(L):
        src_tok = tokens if offset[l] == 0 else prev[tokens]
        has = src_tok >= 0
        src = trace.expert_ids[src_tok[has], layer[l]]  # [n', k]
        r = np.repeat(rows[has], k)
        ok = src.ravel() >= 0
        X[l, r[ok], src.ravel()[ok]] = 1.0
        tgt = trace.expert_ids[tokens, l]
        ok = tgt.ravel() >= 0
        Y[l, np.repeat(rows, k)[ok], tgt.ravel()[ok]] = 1.0
    return X, Y, (trace.expert_ids[tokens, :, 0] >= 0).T.astype(np.float32)


def fit_logistic(X, Y, mask, *, steps: int, lr: float, l2: float):
    """Per-layer weights W [L, E, E] and biases b [L, E] minimising masked mean BCE + l2 |W|^2."""
    L, n, E = X.shape
    W = np.zeros((L, E, E), dtype=np.float32)
    b = np.zeros((L, E), dtype=np.float32)
    count = max(float(mask.sum(axis=1).max()), 1.0)
    mW, vW, mb, vb = (np.zeros_like(W), np.zeros_like(W), np.zeros_like(b), np.zeros_like(b))
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        z = X @ W + b[:, None, :]
        g = (1.0 / (1.0 + np.exp(-z)) - Y) * (mask[:, :, None] / count)
        gW = X.transpose(0, 2, 1) @ g + 2 * l2 * W
        gb = g.sum(axis=1)
        for param, grad, m, v in ((W, gW, mW, vW), (b, gb, mb, vb)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= lr * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + eps)
    return W, b


class Trained(Predictor):
    """Logistic regression, labelled "trained": see the module docstring."""

    name = "trained"
    trained = True
    KNOBS = {"steps": 40, "learning_rate": 0.1, "l2": 1e-4, "block": 32, "refit_growth": 2.0,
             "max_examples": 512}

    def _check_knobs(self):
        self._knob_range("steps", 1, 100_000, integer=True)
        self._knob_range("learning_rate", 0.0, 10.0, lo_open=True)
        self._knob_range("l2", 0.0, 100.0)
        self._knob_range("block", 1, 10**9, integer=True)
        self._knob_range("refit_growth", 1.0, 1e6, lo_open=True)
        self._knob_range("max_examples", 1, 10**9, integer=True)

    def _table_bytes(self, trace):
        # float32 W, its Adam moments, gradient and the update's temporaries: 8 per (layer, expert,
        # expert); examples X, Y, their logits and gradient: 8 per (layer, example, expert)
        # (measured: 1.05 GB at 2 layers x 4,096 experts, estimated 1.21 GB)
        n = min(int(self.knobs["max_examples"]), trace.num_tokens + (self.profile.num_tokens if self.profile else 0))
        return 4.0 * 8, 4.0 * 8 * trace.num_layers * n * trace.num_experts

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        # Examples are built only for the tokens a block scores and the `max_examples` it is fitted
        # on, never for the whole trace: (L, T, E) floats would need 5 GB at 200k tokens x 48 x 128.
        T, L, E = trace.num_tokens, trace.num_layers, trace.num_experts
        kn = self.knobs
        keep = int(kn["max_examples"])
        n_prof = 0 if self.profile is None else self.profile.num_tokens
        prof = (_examples(self.profile, lookahead, np.arange(max(0, n_prof - keep), n_prof))
                if self.profile is not None else None)
        out = np.empty((T, L, budget), dtype=np.int16)
        W, b = np.zeros((L, E, E), np.float32), np.zeros((L, E), np.float32)
        fitted_on = 0
        step = int(kn["block"])
        for lo in range(0, T, step):
            if n_prof + lo > 0 and n_prof + lo >= float(kn["refit_growth"]) * fitted_on:
                recent = _examples(trace, lookahead, np.arange(max(0, lo - keep), lo))
                parts = ([prof] if prof is not None else []) + [recent]
                # The most recent examples only: fitting cost grows with them, freshness matters more.
                X, Y, mask = (np.concatenate([p[i] for p in parts], axis=1)[:, -keep:] for i in range(3))
                W, b = fit_logistic(X, Y, mask, steps=int(kn["steps"]), lr=float(kn["learning_rate"]),
                                    l2=float(kn["l2"]))
                fitted_on = n_prof + lo
            X_block = _examples(trace, lookahead, np.arange(lo, min(lo + step, T)))[0]
            z = X_block @ W + b[:, None, :]  # [L, n, E]
            # Stable sort: ties (e.g. no model yet) go to the lower expert id.
            order = np.argsort(-z, axis=2, kind="stable")[:, :, :budget]
            out[lo:lo + step] = order.transpose(1, 0, 2)
        return out
