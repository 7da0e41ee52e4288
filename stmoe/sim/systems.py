"""The systems compared: what each fetches, keeps and predicts, and whether it
changes the model's routing (then its numbers are not for the same model output).

Each `System.plan(...)` turns a trace (the simulated tokens), a machine and knobs into the
arrays the timing kernel runs: the routing actually executed, the predictions issued
`lookahead` layers ahead, and the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.predictors.base import check_compatible, check_disjoint
from stmoe.sim.buffer import BufferSpec, experts_held
from stmoe.trace import DECODE

# Adaptive gating (Adap-Gating and AdapMoE below) lets a token skip its lower-ranked experts when
# the router is confident. Our rule: experts ranked 2..k whose gate weight is below a threshold
# are dropped, the threshold set per simulated trace so that this share of its expert requests
# is kept. 0.75 is AdapMoE's reported figure (25% fewer activated experts, Zhong et al., ICCAD
# 2024); Li et al. (EMNLP 2023) report training time saved (up to 22.5%), not a kept share we
# found, so Adap-Gating uses the same 75%: our choice, said in every result's note.
ADAPTIVE_KEPT_FRACTION = 0.75
# hot-set: the share of the buffer pinned to the profile's most used experts (the rest is an LRU
# cache). Our choice, in the middle of what we measured (gpu-pcie, Qwen3-sized experts, held-out
# halves of the three bundled traces): pinning more helps small buffers (at 10% of the experts
# buffered, 75% pinned is 1.50x / 1.71x over LRU on tiny-moe-code / -prose, 50% pinned 1.33x /
# 1.44x) and hurts large ones (at 50%, 0.93x and 0.98x on tiny-moe-code). Not tuned per trace.
HOT_SET_SHARE = 0.5


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
    """What a system fetches, keeps and predicts. prefetch: none | predictor | oracle | all.
    predictor: the predictor the system is defined by (stale-gate for speculative-gate and
    AdapMoE); None: the caller's `predictor` knob (st-moe by default). staging_share: the share
    of the buffer reserved for staging prefetches (0: prefetches land in the cache region).
    pinned_share: the share of the buffer pinned to the profile's most used experts."""

    name: str
    changes_routing: bool
    description: str
    prefetch: str = "none"
    policy: str = "lru"
    working_set_only: bool = False  # keeps only the current (and next) layer's experts
    preload: bool = False
    predictor: str | None = None
    staging_share: float = 0.0
    pinned_share: float = 0.0
    adaptive_gating: bool = False

    @property
    def tunable_predictor(self) -> bool:
        """Prefetches with the caller's predictor, so takes precomputed st-moe predictions."""
        return self.prefetch == "predictor" and self.predictor is None

    def plan(self, trace, hardware, dims, *, predictions=None, lookahead: int = 1, budget=None,
             profile=None, buffer: BufferSpec | None = None, threshold: float | None = None,
             kept_fraction: float | None = None, predictor: str = "st-moe", batch: int = 1) -> Plan:
        """The arrays the timing kernel runs for `trace`'s tokens, one token a row (the timing
        model batches them); batch: the tokens of a step, which widens the working set a
        default buffer is sized for to a step's experts (at most batch x k, and E)."""
        T, L, k = trace.expert_ids.shape
        missing = missing_input(self, trace, profile)
        if missing:
            raise ConfigError(missing)
        notes = []
        ids = trace.expert_ids
        if self.adaptive_gating:
            ids, note = adap_gate(trace, threshold, kept_fraction, system=self.name)
            notes.append(note)
        if self.name == "pre-gated":
            lookahead = 1
            notes.append("pre-gated: replayed on this trace's routing; Pre-gated MoE (Hwang et al., "
                         "ISCA 2024) needs a fine-tuned pre-gate, so its real routing differs")
        if self.predictor == "stale-gate" and lookahead != 1:
            notes.append(f"{self.name}: lookahead 1, not {lookahead}: the stale gate sees one layer ahead")
            lookahead = 1
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
            name = self.predictor or predictor
            pred = _check_predictions(predict(trace, name, budget=budget, profile=profile,
                                              lookahead=lookahead), trace)
            notes.append(predictions_note(name, budget, lookahead, profile))
        if buffer is None:
            step_k = min(k * batch, trace.num_experts)
            buffer = self._buffer(hardware, dims, step_k, trace.num_experts)
            notes += self._working_set_notes(hardware, dims, k, trace.num_experts, L, lookahead, batch)
        if self.pinned_share:
            buffer, note = self._pin_hot_set(buffer, profile, trace, dims)
            notes.append(note)
        return Plan(np.asarray(ids, np.int16), np.asarray(pred, np.int16), int(lookahead), buffer,
                    self.preload, notes)

    def _buffer(self, hardware, dims, k, E) -> BufferSpec:
        total = experts_held(hardware.buffer_bytes, dims.expert_bytes)
        if self.working_set_only:   # the current layer's k experts (+ the next layer's k)
            share = 0.5 if self.prefetch != "none" else 0.0
            return BufferSpec(max(min(k / (1 - share), total), 1), "experts", prefetch_share=share,
                              policy=self.policy)
        share = self.staging_share
        if self.prefetch == "all":  # staging must hold a whole layer, or prefetches evict each other
            share = min(E / total, 0.9) if total > 1 else 0.0
        return BufferSpec(hardware.buffer_bytes, "bytes", prefetch_share=share, policy=self.policy)

    def _working_set_notes(self, hardware, dims, k, E, L, lookahead, batch=1) -> list[str]:
        """A note when the machine's buffer holds fewer experts than this system needs at once
        (it then runs with what fits, as `_buffer` sizes it): the current layer's k (a step's
        batch x k, at most E), plus the layers staged ahead for a prefetching system; every
        expert for all-resident."""
        held = experts_held(hardware.buffer_bytes, dims.expert_bytes)
        step_k = min(k * batch, E)
        per = f"k={k}" if batch == 1 else f"{step_k} (k={k} for each of a step's {batch} tokens)"
        if self.preload:
            need, what = L * E, "every expert of the model"
        elif self.prefetch == "all":
            need, what = E + step_k, f"the next layer's {E} experts and this layer's {per}"
        elif self.prefetch == "none":
            need, what = step_k, f"one layer's {per} experts"
        else:
            ahead = 1 if self.working_set_only else lookahead
            need, what = step_k * (1 + ahead), f"{1 + ahead} layers' {per} experts"
        if held >= need:
            return []
        then = ("is assumed resident anyway (an upper bound)" if self.preload
                else f"runs with {max(held, 1)}")
        return [(f"{self.name}: the {hardware.name} buffer holds {held} experts, fewer than its working set of "
                 f"{need} ({what}); it {then}")]


    def _pin_hot_set(self, buffer: BufferSpec, profile, trace, dims) -> tuple[BufferSpec, str]:
        check_compatible(profile, trace)   # disjointness is the caller's (split_for_comparison checks it)
        total = int(buffer.slots(trace.num_layers, dims.expert_bytes)[:, 0].sum())
        hot = hot_set(profile, total, self.pinned_share)
        which = (f"{_counted(profile).size} decode tokens" if (profile.phase == DECODE).any()
                 else f"{profile.num_tokens} tokens (it has no decode tokens)")
        note = (f"{self.name}: the {hot.size} experts most used by the profile's {which} "
                f"({profile.label}, never simulated) pinned in {hot.size} of the buffer's {total} slots (each "
                "loaded on its first request, never evicted); the rest an LRU cache")
        return replace(buffer, pinned=tuple(int(o) for o in hot)), note


def _counted(profile) -> np.ndarray:
    """The profile tokens hot-set counts (a token mask): its decode tokens, or all of them if it
    has none."""
    decode = profile.phase == DECODE
    return np.flatnonzero(decode) if decode.any() else np.arange(profile.num_tokens)


def hot_set(profile, slots: int, share: float = HOT_SET_SHARE) -> np.ndarray:
    """The experts (as layer * E + expert) hot-set pins in a buffer of `slots` experts: the
    `share` of the slots (leaving at least one to the cache) given to the experts the profile's
    decode tokens (all its tokens if it has none) route to most, most used first, the lower id
    on ties."""
    L, E = profile.num_layers, profile.num_experts
    n = max(min(int(slots * share), slots - 1, L * E), 0)
    ids = profile.expert_ids[_counted(profile)]
    objs = (np.arange(L)[None, :, None] * E + ids)[ids >= 0]
    counts = np.bincount(objs, minlength=L * E)
    return np.argsort(-counts, kind="stable")[:n]


def missing_input(system, trace, profile=None) -> str | None:
    """Why `system` cannot run on `trace` (with this profile), or None."""
    s = get_system(system)
    if s.adaptive_gating and trace.weights is None:
        return f"{s.name} needs gate weights, and trace {trace.label!r} has none"
    if s.predictor == "stale-gate" and trace.stale_gate is None:
        return (f"{s.name} needs the stale gate (the next layer's router applied one layer early), and "
                f"trace {trace.label!r} has no stale_gate field")
    if s.pinned_share and profile is None:
        return f"{s.name} needs a profile (other tokens than the simulated ones) to count its hot experts on"
    return None


def runnable(names, trace, profile=None) -> tuple[list[str], list[str]]:
    """(the systems of `names` that can run on `trace` with `profile`, a note for each left
    out): adaptive gating needs gate weights, the stale-gate systems the trace's stale gate,
    hot-set a profile."""
    kept, notes = [], []
    for n in names:
        missing = missing_input(n, trace, profile)
        if missing:
            notes.append(f"{n} skipped: {missing}")
        else:
            kept.append(n)
    return kept, notes


def without_predictions(system="st-moe") -> System:
    """The ablation "same buffer, predictions off": `system` with its buffer (size, staging
    share, replacement policy) and no prefetching, named "<system>, predictions off". What the
    system gains over it is what its predictions add."""
    s = get_system(system)
    return replace(s, name=f"{s.name}, predictions off", prefetch="none", predictor=None,
                   description=f"{s.name}'s buffer (staging share {s.staging_share:g}, {s.policy} "
                               "policy) with no prefetching: the ablation of its predictions")


def predictions_note(predictor: str, budget: int, lookahead: int, profile) -> str:
    """How a system's predictions were made: the one wording every table and report uses."""
    fitted = f"profiled on {profile.label}" if profile is not None else "no profile"
    return f"predictions: {predictor}, budget {budget}, lookahead {lookahead}, {fitted}"


def calibrated_threshold(trace, kept_fraction: float) -> float:
    """The gate-weight threshold at which adaptive gating keeps `kept_fraction` of `trace`'s
    expert requests (as near as ties allow; at least the top-ranked expert of every token is
    kept, so a fraction below 1 / k cannot be reached)."""
    if not 0.0 < kept_fraction <= 1.0:
        raise ConfigError(f"adaptive gating: kept_fraction must be in (0, 1], got {kept_fraction!r}")
    valid = trace.expert_ids >= 0
    lower = trace.weights[..., 1:][valid[..., 1:]]
    drop = round((1.0 - kept_fraction) * int(valid.sum()))
    if drop <= 0 or lower.size == 0:
        return 0.0
    if drop >= lower.size:
        return float(np.nextafter(lower.max(), np.inf))
    return float(np.partition(lower, drop)[drop])


def adap_gate(trace, threshold: float | None = None, kept_fraction: float | None = None, *,
              system: str = "adap-gating"):
    """(routing after adaptive gating, its note): experts ranked 2..k whose gate weight is below
    `threshold` are dropped; with no threshold, the one keeping `kept_fraction` (default
    ADAPTIVE_KEPT_FRACTION) of the trace's expert requests."""
    if trace.weights is None:
        raise ConfigError(f"{system} needs gate weights, and trace {trace.name!r} has none")
    if threshold is None:
        kept_fraction = ADAPTIVE_KEPT_FRACTION if kept_fraction is None else kept_fraction
        threshold = calibrated_threshold(trace, kept_fraction)
        how = f"set on the simulated tokens' gate weights to keep {kept_fraction:.0%}"
    elif kept_fraction is not None:
        raise ConfigError(f"{system}: give a threshold or a kept_fraction, not both")
    else:
        if not 0.0 <= threshold < 1.0:
            raise ConfigError(f"{system} threshold must be in [0, 1), got {threshold!r}")
        how = "given"
    ids = trace.expert_ids.copy()
    drop = trace.weights < threshold
    drop[..., 0] = False
    ids[drop] = -1
    kept = (ids >= 0).sum() / max((trace.expert_ids >= 0).sum(), 1)
    return ids, f"{system}: threshold {threshold:.4g} ({how}) keeps {kept:.1%} of expert requests"


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
    System("hot-set", False, f"the profile's most used experts pinned in {HOT_SET_SHARE:.0%} of the "
           "buffer, the rest an LRU cache, no prefetching: static placement by popularity (our "
           "baseline, no paper)", pinned_share=HOT_SET_SHARE),
    System("speculative-gate", False, "mixtral-offloading (Eliseev & Mazur, \"Fast Inference of "
           "Mixture-of-Experts Language Models with Offloading\", arXiv 2312.17238, 2023): an LRU "
           "cache plus a prefetch of the next layer's experts as its router ranks this layer's "
           "hidden state (the trace's stale gate)", prefetch="predictor", predictor="stale-gate"),
    System("prefetch-all-next-layer", False, "stages every expert of the next layer", prefetch="all"),
    System("pre-gated", True, "Pre-gated MoE: the next layer's experts known exactly one layer "
           "ahead, only two layers' experts kept", prefetch="oracle", working_set_only=True),
    System("adap-gating", True, "Adap-Gating (Li, Su, Yang, Jiang, Wang, Xu, \"Adaptive Gating in "
           "Mixture-of-Experts based Language Models\", EMNLP 2023): on demand, weak lower-ranked "
           f"experts skipped ({ADAPTIVE_KEPT_FRACTION:.0%} of requests kept)", working_set_only=True,
           adaptive_gating=True),
    System("adapmoe", True, "AdapMoE (Zhong, Liang, Wang, Wang, Huang, Li, \"AdapMoE: Adaptive "
           "Sensitivity-based Expert Gating and Management for Efficient MoE Inference\", ICCAD 2024): "
           f"adaptive gating ({ADAPTIVE_KEPT_FRACTION:.0%} of requests kept), stale-gate prefetch and "
           "an LRU cache (its per-layer cache sizing is not modelled)", prefetch="predictor",
           predictor="stale-gate", adaptive_gating=True),
    # Prefetches land in the cache region (staging share 0), which the prediction-aware policy
    # protects: measured, reserved staging slots only shrink the cache, and made st-moe slower
    # than lru-cache on slow links (issue 12; tests/test_timing.py holds it to lru-cache).
    System("st-moe", False, "predictor-driven prefetch into a prediction-aware cache",
           prefetch="predictor", policy="predictive"),
    System("oracle", False, "perfect predictions and Belady replacement", prefetch="oracle",
           policy="belady"),
    System("all-resident", False, "every expert already in the buffer (upper bound)", preload=True),
]}

# The systems that keep experts without predicting a router's future from the past: what
# prediction must beat. The pure caches prefetch nothing; speculative-gate prefetches by reading
# the next router early (the trace's stale gate), so it is another prefetcher, compared apart.
PURE_CACHES = ("lru-cache", "hot-set")
OTHER_PREFETCHERS = ("speculative-gate",)
CACHE_BASELINES = (*PURE_CACHES, *OTHER_PREFETCHERS)


def get_system(name) -> System:
    if isinstance(name, System):
        return name
    if name not in SYSTEMS:
        raise ConfigError(f"unknown system {name!r}; valid: {', '.join(SYSTEMS)}")
    return SYSTEMS[name]
