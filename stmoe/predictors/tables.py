"""Predictors built from count tables (see `kernel` for the tables and the scores):
popularity, previous-token, history, cct, and st-moe, which combines the spatial and temporal
tables. All profile by replaying the profile trace through the tables, then keep updating them
online as each scored token is routed (knob ``online``)."""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors.base import Predictor, cell_hits, issue_point
from stmoe.predictors.kernel import LINEAR, LOG, POOL, PRODUCT, TIE_BREAK, hedge_weights, run_tables
from stmoe.trace import PHASE_NAMES, Trace

_NO_HEDGE = (np.zeros((1, 1, 1)), np.zeros((1, 1)))


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

    # ((w_prior, w_spatial, w_transition, w_history, w_previous), mode); the weights may be
    # one row per layer
    def _weights(self) -> tuple[tuple[float, ...] | np.ndarray, int]:
        raise NotImplementedError

    def _run(self, trace: Trace, tables, budget, lookahead, *, weights=None, start=0, stop=None,
             predict=True, update=True, hedge=None):
        """One kernel pass; `hedge` = the hedge's state (`_new_hedge`), which each cell's
        member is drawn from and which is updated in place; None stages the combination alone."""
        offset, layer = issue_point(trace.num_layers, lookahead)
        default, mode = self._weights()
        weights = np.broadcast_to(np.asarray(default if weights is None else weights, dtype=np.float64),
                                  (trace.num_layers, 5)).copy()
        if mode == LOG and (weights[:, 4] == 0).all() and (2 * weights == np.round(2 * weights)).all():
            mode = PRODUCT  # the same ranking without logarithms
        kn = self.knobs
        return run_tables(
            trace.expert_ids, trace.previous_token().astype(np.int64), layer, (offset < 0).astype(np.int64),
            *tables, weights, mode, float(kn["alpha"]), float(kn["prior_smoothing"]), float(kn["decay"]),
            int(kn.get("history_length", 0)), float(kn.get("history_decay", 1.0)), budget,
            start, trace.num_tokens if stop is None else stop, predict, update,
            trace.phase, hedge is not None, *(_NO_HEDGE if hedge is None else hedge),
            int(History.KNOBS["history_length"]), float(History.KNOBS["history_decay"]), int(kn.get("seed", 0)))

    def _empty_tables(self, L: int, E: int):
        weights = np.asarray(self._weights()[0]).reshape(-1, 5)
        pair = (L, E, E)
        return (np.zeros((L, E)), np.zeros(pair if weights[:, 1].any() else (L, 1, 1), np.float32),
                np.zeros(pair if weights[:, 2].any() else (L, 1, 1), np.float32))

    def _table_bytes(self, trace):
        # float32 pair tables, each held twice: profiled, and the copy the scored trace updates
        # (measured: st-moe 0.52 GB at 2 layers x 4,096 experts, estimated 0.54 GB); per (layer,
        # expert) the float64 counts, twice, and the kernel's two row sums (popularity peaked at
        # 3.3 GB under a 4 GiB limit at 4,096 layers x 32,767 experts, estimated 4.3 GB)
        pair = 4.0 * 2 * sum(t.ndim == 3 and t.shape[1] > 1 for t in self._empty_tables(1, 2))
        return pair, 32.0 * trace.num_layers * trace.num_experts

    def _profile_tables(self, L: int, E: int, budget: int, lookahead: int):
        """Tables after replaying the profile (updates only)."""
        tables = self._empty_tables(L, E)
        if self.profile is not None:
            self._run(self.profile, tables, 1, lookahead, predict=False)
        return tables

    def _tables(self, trace: Trace, budget: int, lookahead: int):
        """Fresh copies of the profiled tables for this lookahead and budget."""
        key = (lookahead, budget, trace.num_layers, trace.num_experts)
        if not hasattr(self, "_fitted"):
            self._fitted = {}
        if key not in self._fitted:
            self._fitted[key] = self._profile_tables(trace.num_layers, trace.num_experts, budget, lookahead)
        return tuple(a.copy() for a in self._fitted[key])

    def _predict(self, trace: Trace, budget: int, lookahead: int) -> np.ndarray:
        tables = self._tables(trace, budget, lookahead)
        return self._run(trace, tables, budget, lookahead, update=bool(self.knobs["online"]))


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
        return (TIE_BREAK, 0.0, 0.0, 0.0, 1.0), LINEAR


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
        return (TIE_BREAK, 0.0, 0.0, 1.0, 0.0), LINEAR


class CrossLayerTable(TablePredictor):
    """The cross-layer correlation table (CCT): expert-id -> expert-id counts between the
    issuing layer and the target layer, profiled and updated online; the score of j is the
    mean over the issuing layer's experts i of the smoothed P(j | i)."""

    name = "cct"

    def _weights(self):
        return (0.0, 1.0, 0.0, 0.0, 0.0), LINEAR


class STMoE(History):
    """ST-MoE: the cross-layer table (spatial) and the temporal tables combined, hedged
    online against the single tables so that it is never worse than the best of them by more
    than a stated regret.

    The combination. combine="log-odds" (default) treats the tables as independent evidence
    about j, a product of experts around the popularity prior p:

        log p + spatial_weight (log S - log p) + transition_weight (log Q - log p)
              + history_weight (log H - log p)

    with S the cross-layer table's P(j | issuing layer's experts), Q the temporal transition
    table's P(j at t | experts of t-1 at this layer) and H the smoothed history of recent
    tokens. combine="linear" mixes the normalised scores instead:
    spatial_weight S + transition_weight Q + history_weight H (the naive mix, which lets a weak
    temporal signal dilute the spatial one).

    tune="global" (default) or "per-layer" picks the three weights from `TUNING_GRID`, per
    layer or for all layers, by recall on the last `tune_tokens` tokens of the *profile*
    (tables replayed on the profile before them, updated online over them, as in scoring);
    never on scored tokens. Without a profile (causal protocol) it starts with the knobs'
    weights and retunes on the trace's own past each time that past doubles (64, 128, ...
    tokens). With tune="none" the knobs' weights hold.

    The hedge (hedge=True, default; it costs time: on `benchmarks/bench_simulate.py` predicting
    takes 2.2x as long as hedge=False, 0.85 s against 0.38 s of CPU for 3 M requests, and it is what
    keeps st-moe level with its best member on the untrained control trace, 70.4% against the
    unhedged mix's 66.7% where history recalls 70.4%). Weights tuned on one stretch of routing can lose on
    another (on a profile of prefill, then scored on decode, the tuned mix recalled less than
    the cross-layer table alone). So each cell (t, l) stages the top m of one member of
    `POOL`: the combination above, popularity, previous-token, history (the `history`
    predictor's default knobs) or cct, each ranked exactly as its own predictor ranks it
    (same tables, same knobs). The member is drawn from AdaHedge weights (de Rooij, van Erven,
    Grunwald & Koolen, JMLR 15, 2014), a tuning of Hedge (Freund & Schapire, JCSS 55, 1997;
    weighted majority: Littlestone & Warmuth, Inf. Comput. 108, 1994; Cesa-Bianchi & Lugosi,
    "Prediction, Learning, and Games", 2006, ch. 2), one set per phase. A round is a token:
    every layer's draw uses that token's weights, and once the token is routed each member's
    loss is the share of its routed slots that member missed, over all layers, in [0, 1].
    Causal: token t's weights read only tokens routed before P(t, .) is issued (with
    lookahead 1 all of t-1; else two copies take alternate tokens, see `_new_hedge`). With a
    profile, the weights are warmed on its last `tune_tokens` (at most half), where the
    tuner scores the grid, at the weights it chose; without one they start uniform.

    The guarantee, per phase (and copy), over its T scored tokens with the best member's
    cumulative loss L* (AdaHedge, de Rooij et al. 2014, Theorem 8, as we read it):

        E[drawn members' losses] - L*  <=  2 sqrt(ln N L* (T - L*) / T) + (16/3) ln N + 2
                                        <=  sqrt(T ln N) + (16/3) ln N + 2,

    N = len(POOL) = 5; the expectation is over the draws only, the routing may be anything.
    On full cells (k routed) a member's loss summed over the phase's tokens is its misses /
    (L k), so the phase's recall is, in expectation, at least every member's recall on it
    minus bound / T (plus, when warmed, that member's lead over the hedge on the warm-up
    tokens, which are also rounds of the bound). The draws add noise: their sum stays within
    sqrt(2 ln(1/delta) / (T L)) of its expectation in recall with probability 1 - delta
    (Azuma-Hoeffding over the T L independent draws, each moving recall by at most 1 / (T L)).
    The bound is loose on short traces (0.19 of recall over 128 tokens); what is measured is
    in the report. The draws come from a hash of (seed, t, l) (knob `seed`), so the same
    inputs give the same predictions. hedge=False stages the combination alone. After
    `predict_trace`, `hedge_weights` holds the final weights, {phase: [copies, N]}.
    """

    name = "st-moe"
    # history_length 1 (the previous token, smoothed) and global tuning measured best on the
    # public Qwen3-30B-A3B and Granite traces and on synthetic ones; per-layer tuning overfits
    # short profiles.
    KNOBS = {**History.KNOBS, "history_length": 1, "combine": "log-odds", "spatial_weight": 1.0,
             "transition_weight": 0.5, "history_weight": 0.0, "tune": "global", "tune_tokens": 256, "hedge": True, "seed": 0}
    COMBINE = {"log-odds": LOG, "linear": LINEAR}
    TUNE = ("per-layer", "global", "none")
    FIRST_RETUNE = 64  # without a profile, first tuned on the trace's first 64 tokens
    TUNING_GRID = [(sp, tr, h) for sp in (1.0, 0.5) for tr in (0.5, 0.0, 1.0) for h in (0.0, 0.5, 1.0, 2.0)]

    def _check_knobs(self):
        super()._check_knobs()
        for knob, valid in (("combine", tuple(self.COMBINE)), ("tune", self.TUNE)):
            if self.knobs[knob] not in valid:
                raise ConfigError(f"predictor 'st-moe': knob {knob} must be one of "
                                  f"{', '.join(valid)}, got {self.knobs[knob]!r}")
        for name in ("spatial_weight", "transition_weight", "history_weight"):
            self._knob_range(name, 0.0, 100.0)
        self._knob_range("tune_tokens", 1, 10**9, integer=True)
        self._knob_range("seed", 0, 2**63 - 1, integer=True)
        if not isinstance(self.knobs["hedge"], (bool, np.bool_)):
            raise ConfigError(f"predictor 'st-moe': knob hedge must be True or False, "
                              f"got {self.knobs['hedge']!r}")

    def _row(self, spatial, transition, history):
        linear = self.COMBINE[self.knobs["combine"]] == LINEAR
        return (TIE_BREAK if linear else 0.0, spatial, transition, history, 0.0)

    def _weights(self):
        kn = self.knobs
        return (self._row(float(kn["spatial_weight"]), float(kn["transition_weight"]), float(kn["history_weight"])),
                self.COMBINE[kn["combine"]])

    def _tuning(self) -> bool:
        return self.knobs["tune"] != "none"

    def _hedged(self) -> bool:
        return bool(self.knobs["hedge"])

    def _empty_tables(self, L, E):
        if self._tuning():  # the tuner may pick any weights: keep every table
            return np.zeros((L, E)), np.zeros((L, E, E), np.float32), np.zeros((L, E, E), np.float32)
        pop, cross, trans = super()._empty_tables(L, E)
        if self._hedged() and cross.shape[1] != E:  # the cct member reads it
            cross = np.zeros((L, E, E), np.float32)
        return pop, cross, trans

    def _tuning_start(self, past: Trace) -> int:
        """The first token of `past`'s last `tune_tokens` (at most half of it)."""
        return past.num_tokens - min(int(self.knobs["tune_tokens"]), past.num_tokens // 2)

    def _grid_search(self, past: Trace, budget: int, lookahead: int, hedge=None):
        """(weights [L, 5], tables after replaying all of `past`): the grid's weights scored on
        the last `tune_tokens` (at most half) of `past`, tables replayed on the rest first.
        A `hedge` state is warmed over those last tokens at the weights chosen."""
        L, E = past.num_layers, past.num_experts
        split = self._tuning_start(past)
        tables = self._empty_tables(L, E)
        self._run(past, tables, 1, lookahead, stop=split, predict=False)
        routed = (past.expert_ids[split:] >= 0).sum(axis=(0, 2))
        recall = []  # [grid, L]
        for combo in self.TUNING_GRID:
            pred = self._run(past, tuple(a.copy() for a in tables), budget, lookahead,
                             weights=self._row(*combo), start=split)
            recall.append(cell_hits(pred, past.expert_ids[split:])[0].sum(axis=0) / np.maximum(routed, 1))
        recall = np.array(recall)
        # argmax takes the first best: the grid starts with the default weights.
        best = (recall.argmax(axis=0) if self.knobs["tune"] == "per-layer"
                else np.full(L, recall.sum(axis=1).argmax()))
        weights = np.array([self._row(*self.TUNING_GRID[b]) for b in best])
        self._run(past, tables, budget, lookahead, weights=weights, start=split, predict=hedge is not None,
                  hedge=hedge)
        return weights, tables

    def fit(self, profile):
        super().fit(profile)
        self.tuned_weights = {}  # weights tuned on an earlier profile must not leak into this one
        return self

    def _profile_tables(self, L, E, budget, lookahead):
        """The tables after the profile, then (hedged) the hedge's state warmed on the
        profile's last `tune_tokens` (at most half)."""
        self.tuned_weights = getattr(self, "tuned_weights", {})
        hedge = _new_hedge(lookahead) if self._hedged() else ()
        if self.profile is None or self.profile.num_tokens < 4:
            return super()._profile_tables(L, E, budget, lookahead) + hedge
        if self._tuning():
            self.tuned_weights[(lookahead, budget)], tables = self._grid_search(
                self.profile, budget, lookahead, hedge or None)
            return tables + hedge
        tables = self._empty_tables(L, E)
        split = self._tuning_start(self.profile)
        self._run(self.profile, tables, 1, lookahead, stop=split, predict=False)
        self._run(self.profile, tables, budget, lookahead, start=split, predict=bool(hedge), hedge=hedge or None)
        return tables + hedge

    def _predict(self, trace, budget, lookahead):
        tables = self._tables(trace, budget, lookahead)
        tables, hedge = tables[:3], (tables[3:] or None)
        online = bool(self.knobs["online"])
        pred = self._predict_with(trace, tables, budget, lookahead, online, hedge)
        self.hedge_weights = {} if hedge is None else _final_weights(trace, *hedge)
        return pred

    def _predict_with(self, trace, tables, budget, lookahead, online, hedge):
        if self.profile is not None or not self._tuning() or not online:
            weights = self.tuned_weights.get((lookahead, budget))
            if weights is not None:  # a table neither the tuned weights nor the hedge reads need not be kept
                kept = (weights[:, 1].any() or hedge is not None, weights[:, 2].any())
                tables = (tables[0],) + tuple(t if keep else np.zeros((t.shape[0], 1, 1), t.dtype)
                                              for t, keep in zip(tables[1:], kept))
            return self._run(trace, tables, budget, lookahead, weights=weights, update=online, hedge=hedge)
        # No profile: tune on the trace's own past, again each time it doubles (64, 128, ...
        # tokens); a segment's weights come only from tokens before it. The hedge's state runs
        # on through the segments.
        parts, weights, lo = [], None, 0
        while lo < trace.num_tokens:
            hi = min(max(2 * lo, self.FIRST_RETUNE), trace.num_tokens)
            parts.append(self._run(trace, tables, budget, lookahead, weights=weights, start=lo, stop=hi,
                                   hedge=hedge))
            if hi < trace.num_tokens:
                weights, _ = self._grid_search(trace.select(tokens=np.arange(hi)), budget, lookahead)
            lo = hi
        return np.concatenate(parts)


def _new_hedge(lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """The hedge's state, (cumulative losses [C, phases, members], mixability gaps [C, phases]),
    with C copies: one when P(t, .) is issued after all of token t-1 is routed (lookahead 1),
    else two, taking alternate tokens, so that each copy's last token is routed before it draws
    again (the delayed-feedback reduction of Weinberger & Ordentlich, IEEE Trans. Inf. Theory
    2002; Joulani, Gyorgy & Szepesvari, ICML 2013)."""
    copies = 1 if lookahead == 1 else 2
    return np.zeros((copies, len(PHASE_NAMES), len(POOL))), np.zeros((copies, len(PHASE_NAMES)))


def _final_weights(trace: Trace, losses: np.ndarray, gaps: np.ndarray) -> dict:
    """{phase name: [C, N] AdaHedge weights of each copy after the last scored token}."""
    out = {}
    for code, name in PHASE_NAMES.items():
        if (trace.phase == code).any():
            out[name] = np.empty((losses.shape[0], len(POOL)))
            for c in range(losses.shape[0]):
                hedge_weights(out[name][c], losses[c, code], gaps[c, code])
    return out
