"""The systems compared: what each fetches, keeps and predicts, and whether it
changes the model's routing (then its numbers are not for the same model output).

Each `System.plan(...)` turns a trace (the simulated tokens), a machine and knobs into the
arrays the timing kernel runs: the routing actually executed, the predictions issued
`lookahead` layers ahead, and the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.predictors.base import check_compatible, check_disjoint
from stmoe.sim.buffer import BufferSpec, experts_held

# Adap-Gating (Li, Jiang, Zhang, Lai, Zhou, Liu, "Adaptive Gating in Mixture-of-Experts based
# Language Models", EMNLP 2023) lets a token skip its lower-ranked experts when the router is
# confident. Its exact rule is tuned per model; ours: drop every expert after the first whose
# gate weight is below this threshold. 0.1 is our choice: for Qwen3 top-6 with renormalised
# weights the mean weight is 1/6, so this drops clearly weak experts only.
ADAP_GATING_THRESHOLD = 0.1


@dataclass
class Plan:
    ids: np.ndarray
    predictions: np.ndarray
    lookahead: int
    buffer: BufferSpec
    preload: bool = False
    notes: list = field(default_factory=list)


@dataclass(frozen=True)
class System:
    name: str
    changes_routing: bool
    description: str
    prefetch: str = "none"          # none | predictor | oracle | all
    policy: str = "lru"
    working_set_only: bool = False  # keeps only the current (and next) layer's experts
    preload: bool = False

    def plan(self, trace, hardware, dims, *, predictions=None, lookahead: int = 1, budget=None,
             profile=None, buffer: BufferSpec | None = None, threshold: float | None = None,
             predictor: str = "st-moe") -> Plan:
        T, L, k = trace.expert_ids.shape
        notes = []
        ids = trace.expert_ids
        if self.name == "adap-gating":
            ids, note = adap_gate(trace, ADAP_GATING_THRESHOLD if threshold is None else threshold)
            notes.append(note)
        if self.name == "pre-gated":
            lookahead = 1
            notes.append("pre-gated: replayed on this trace's routing; Pre-gated MoE (Hwang et al., "
                         "ISCA 2024) needs a fine-tuned pre-gate, so its real routing differs")
        if predictions is not None:
            pred = _check_predictions(predictions, trace)
        elif self.prefetch == "none":
            pred = np.full((T, L, 0), -1, np.int16)
        elif self.prefetch == "oracle":
            pred = ids
        elif self.prefetch == "all":
            pred = np.broadcast_to(np.arange(trace.num_experts, dtype=np.int16), (T, L, trace.num_experts))
        else:

            # budget=0 must reach predict (and be refused there), not silently become k
            budget = k if budget is None else budget
            if profile is not None:
                check_compatible(profile, trace)
                check_disjoint(profile, trace)
            pred = _check_predictions(predict(trace, predictor, budget=budget, profile=profile,
                                              lookahead=lookahead), trace)
            notes.append(predictions_note(predictor, budget, lookahead, profile))
        if buffer is None:
            buffer = self._buffer(hardware, dims, k, trace.num_experts, lookahead)
            notes += self._working_set_notes(hardware, dims, k, trace.num_experts, L, lookahead)
        return Plan(np.asarray(ids, np.int16), np.asarray(pred, np.int16), int(lookahead), buffer,
                    self.preload, notes)

    def _buffer(self, hardware, dims, k, E, lookahead) -> BufferSpec:
        total = experts_held(hardware.buffer_bytes, dims.expert_bytes)
        if self.working_set_only:   # the current layer's k experts (+ the next layer's k)
            share = 0.5 if self.prefetch != "none" else 0.0
            return BufferSpec(max(min(k / (1 - share), total), 1), "experts", prefetch_share=share,
                              policy=self.policy)
        if self.prefetch == "none":
            share = 0.0
        elif self.prefetch == "all":  # staging must hold a whole layer, or prefetches evict each other
            share = min(E / total, 0.9) if total > 1 else 0.0
        else:   # room for two layers of predictions in flight, up to half the buffer; measured:
            # a bigger staging region only shrinks the cache (see the prefetch_share sweep)
            share = min(0.5, 2 * k * lookahead / max(total, 1))
        return BufferSpec(hardware.buffer_bytes, "bytes", prefetch_share=share, policy=self.policy)

    def _working_set_notes(self, hardware, dims, k, E, L, lookahead) -> list[str]:
        """A note when the machine's buffer holds fewer experts than this system needs at once
        (it then runs with what fits, as `_buffer` sizes it): the current layer's k, plus the
        layers staged ahead for a prefetching system; every expert for all-resident."""
        held = experts_held(hardware.buffer_bytes, dims.expert_bytes)
        if self.preload:
            need, what = L * E, "every expert of the model"
        elif self.prefetch == "all":
            need, what = E + k, f"the next layer's {E} experts and this layer's k={k}"
        elif self.prefetch == "none":
            need, what = k, f"one layer's k={k} experts"
        else:
            ahead = 1 if self.working_set_only else lookahead
            need, what = k * (1 + ahead), f"{1 + ahead} layers' k={k} experts"
        if held >= need:
            return []
        then = ("is assumed resident anyway (an upper bound)" if self.preload
                else f"runs with {max(held, 1)}")
        return [(f"{self.name}: the {hardware.name} buffer holds {held} experts, fewer than its working set of "
                 f"{need} ({what}); it {then}")]


ADAP_GATING_SKIPPED = "adap-gating skipped: the trace has no gate weights"


def runnable(names, trace) -> tuple[list[str], list[str]]:
    """(the systems of `names` that can run on `trace`, a note for each left out): adap-gating
    needs gate weights."""
    if "adap-gating" in names and trace.weights is None:
        return [n for n in names if n != "adap-gating"], [ADAP_GATING_SKIPPED]
    return list(names), []


def predictions_note(predictor: str, budget: int, lookahead: int, profile) -> str:
    """How a system's predictions were made: the one wording every table and report uses."""
    fitted = f"profiled on {profile.label}" if profile is not None else "no profile"
    return f"predictions: {predictor}, budget {budget}, lookahead {lookahead}, {fitted}"


def adap_gate(trace, threshold: float):
    """Routing after Adap-Gating: experts ranked 2..k whose gate weight < threshold are dropped."""
    if trace.weights is None:
        raise ConfigError(f"adap-gating needs gate weights, and trace {trace.name!r} has none")
    if not 0.0 <= threshold < 1.0:
        raise ConfigError(f"adap-gating threshold must be in [0, 1), got {threshold!r}")
    ids = trace.expert_ids.copy()
    drop = trace.weights < threshold
    drop[..., 0] = False
    ids[drop] = -1
    kept = (ids >= 0).sum() / max((trace.expert_ids >= 0).sum(), 1)
    return ids, f"adap-gating: threshold {threshold:g} keeps {kept:.1%} of expert requests"


def _check_predictions(pred, trace) -> np.ndarray:
    pred = np.asarray(pred)
    T, L = trace.num_tokens, trace.num_layers
    if pred.ndim != 3 or pred.shape[:2] != (T, L):
        raise ConfigError(f"predictions must have shape [{T}, {L}, budget] (the simulated tokens), "
                          f"got {pred.shape}")
    if pred.size and (pred.max() >= trace.num_experts or pred.min() < -1):
        raise ConfigError(f"predictions hold expert ids outside -1..{trace.num_experts - 1}")
    return pred.astype(np.int16)


SYSTEMS = {s.name: s for s in [
    System("on-demand", False, "GPU baseline: fetches each layer's experts when the router asks, "
           "keeps only that layer's", working_set_only=True),
    System("lru-cache", False, "the whole buffer as an LRU cache, no prefetching"),
    System("prefetch-all-next-layer", False, "stages every expert of the next layer", prefetch="all"),
    System("pre-gated", True, "Pre-gated MoE: the next layer's experts known exactly one layer "
           "ahead, only two layers' experts kept", prefetch="oracle", working_set_only=True),
    System("adap-gating", True, "Adap-Gating: on demand, weak lower-ranked experts skipped",
           working_set_only=True),
    System("st-moe", False, "predictor-driven prefetch into a staging region, prediction-aware "
           "cache", prefetch="predictor", policy="predictive"),
    System("oracle", False, "perfect predictions and Belady replacement", prefetch="oracle",
           policy="belady"),
    System("all-resident", False, "every expert already in the buffer (upper bound)", preload=True),
]}


def get_system(name) -> System:
    if isinstance(name, System):
        return name
    if name not in SYSTEMS:
        raise ConfigError(f"unknown system {name!r}; valid: {', '.join(SYSTEMS)}")
    return SYSTEMS[name]
