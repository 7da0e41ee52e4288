"""How much temporal and cross-layer structure a trace's decode-phase routing has, vs chance.

    PYTHONPATH=. python scripts/measure_structure.py                 # bundled traces + Qwen3-30B-A3B
    PYTHONPATH=. python scripts/measure_structure.py NAME_OR_PATH ... [--json]

Figures, each over (token, layer) cells of decode tokens, against chance k/E:
  reuse          share of a layer's k experts that the previous token of the sequence also used
                 at that layer
  cross-layer    recall at budget k of a static table P(expert j at layer l+1 | expert i at l),
                 summed over the token's layer-l experts; profiled on some tokens, scored on others
  popularity     recall of a static per-layer top-k from the same profile tokens (a baseline)
  stale gate     recall of the recorded stale gate (layer l's router on layer l-1's input),
                 where the trace has it
  entropy        per-layer expert-use entropy in bits (log2 E = perfectly balanced), mean over
                 layers, and the top-10% share: requests taken by the ceil(E/10) most used
                 experts of a layer, mean over layers (stmoe.analysis.popularity)
  predictors     decode recall at budget k of every predictor, `stmoe.evaluate`'s split protocol
Profile/score split: `stmoe.splits.profile_half`, the one every chapter uses: the first half of
the sequences profile and the second half is scored; a single-sequence trace is split in time
(first half of its tokens profile). Nothing is scored on tokens it was fitted on.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from stmoe import DECODE, StmoeError, Trace, evaluate, load_trace
from stmoe.analysis import popularity as use_statistics
from stmoe.splits import profile_half

PREDICTORS = ("popularity", "previous-token", "history", "cct", "st-moe", "stale-gate")


def overlap(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|pred ∩ truth| per cell (ignoring -1 slots)."""
    hit = (pred[..., :, None] == truth[..., None, :]) & (truth[..., None, :] >= 0)
    return hit.any(-2).sum(-1)


def split_tokens(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """Masks of profile and scored decode tokens (see module docstring)."""
    decode = trace.phase == DECODE
    first = profile_half(trace)
    return decode & first, decode & ~first


def temporal_reuse(trace: Trace, tokens: np.ndarray) -> float:
    prev = trace.previous_token()
    t = np.flatnonzero(tokens & (prev >= 0))
    now, before = trace.expert_ids[t], trace.expert_ids[prev[t]]
    both = (now[..., 0] >= 0) & (before[..., 0] >= 0)
    return float(overlap(before, now)[both].sum() / (now >= 0)[both].sum())


def transition_table(ids: np.ndarray, E: int) -> np.ndarray:
    """P[l, i, j]: share of layer-(l+1) picks that were j when layer l picked i."""
    T, L, k = ids.shape
    a = np.repeat(ids[:, :-1, :, None], k, axis=3)
    b = np.repeat(ids[:, 1:, None, :], k, axis=2)
    layer = np.broadcast_to(np.arange(L - 1)[None, :, None, None], a.shape)
    ok = (a >= 0) & (b >= 0)
    flat = ((layer[ok] * E + a[ok]) * E + b[ok]).astype(np.int64)
    counts = np.bincount(flat, minlength=(L - 1) * E * E).reshape(L - 1, E, E).astype(float)
    return counts / np.maximum(counts.sum(-1, keepdims=True), 1)


def popularity(ids: np.ndarray, E: int) -> np.ndarray:
    L = ids.shape[1]
    layer = np.broadcast_to(np.arange(L)[None, :, None], ids.shape)
    ok = ids >= 0
    return np.bincount((layer[ok] * E + ids[ok]).astype(np.int64),
                       minlength=L * E).reshape(L, E).astype(float)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def cross_layer_recall(trace: Trace, profile: np.ndarray, scored: np.ndarray) -> tuple[float, float]:
    """(cross-layer table recall, popularity recall) at budget k on the scored tokens."""
    E, k = trace.num_experts, trace.top_k
    fit, test = trace.expert_ids[profile], trace.expert_ids[scored]
    table, pop = transition_table(fit, E), popularity(fit, E)
    prior = pop / np.maximum(pop.sum(-1, keepdims=True), 1)
    hot = np.zeros(test.shape[:2] + (E + 1,))  # column E absorbs -1 slots
    np.put_along_axis(hot, np.where(test >= 0, test, E), 1.0, axis=-1)
    # score[t, l+1, j] = sum over i in R(t, l) of P[l, i, j]; the prior only breaks ties
    score = np.einsum("tli,lij->tlj", hot[:, :-1, :E], table) + 1e-6 * prior[None, 1:]
    truth = test[:, 1:]
    valid = (truth[..., 0] >= 0) & (test[:, :-1, 0] >= 0)
    cross = overlap(top_k(score, k), truth)[valid].sum() / (truth >= 0)[valid].sum()
    pop_pred = np.broadcast_to(top_k(pop, k)[None], test.shape)
    ok = test[..., 0] >= 0
    popular = overlap(pop_pred, test)[ok].sum() / (test >= 0)[ok].sum()
    return float(cross), float(popular)


def stale_gate_recall(trace: Trace, tokens: np.ndarray) -> float | None:
    if trace.stale_gate is None:
        return None
    ahead, ids = trace.stale_gate[tokens][:, 1:, :trace.top_k], trace.expert_ids[tokens][:, 1:]
    ok = (ahead[..., 0] >= 0) & (ids[..., 0] >= 0)
    return float(overlap(ahead, ids)[ok].sum() / (ids >= 0)[ok].sum())


def measure(trace: Trace) -> dict:
    if not (trace.phase == DECODE).any():
        raise StmoeError(f"{trace.name}: no decode tokens to measure")
    profile, scored = split_tokens(trace)
    cross, popular = cross_layer_recall(trace, profile, scored)
    use = use_statistics(trace.select(tokens=trace.phase == DECODE))
    names = [p for p in PREDICTORS if p != "stale-gate" or trace.stale_gate is not None]
    result = evaluate(trace, names, phases="decode")
    return {
        "trace": trace.name, "experts": trace.num_experts, "top_k": trace.top_k,
        "layers": trace.num_layers, "decode_tokens": int((trace.phase == DECODE).sum()),
        "profile_tokens": int(profile.sum()), "scored_tokens": int(scored.sum()),
        "chance": trace.top_k / trace.num_experts,
        "reuse": temporal_reuse(trace, trace.phase == DECODE),
        "cross_layer": cross, "popularity": popular,
        "stale_gate": stale_gate_recall(trace, scored),
        "entropy_bits": float(use["entropy_bits"].mean()), "max_entropy_bits": use["max_entropy_bits"],
        "top10_share": float(use["top10_share"].mean()),
        "recall_at_k": {r["predictor"]: r["recall"] for r in result.rows},
    }


def markdown(rows: list[dict]) -> str:
    """Two tables: the routing's structure, then every predictor's decode recall at budget k."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"
    lines = ["| trace | E | k | layers | decode tokens (profile / scored) | chance k/E | "
             "entropy (bits, of log2 E) | top-10% share | next-token reuse | cross-layer recall | "
             "popularity recall | stale-gate recall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['trace']} | {r['experts']} | {r['top_k']} | {r['layers']} | "
                     f"{r['decode_tokens']} ({r['profile_tokens']} / {r['scored_tokens']}) | "
                     f"{pct(r['chance'])} | {r['entropy_bits']:.2f} of {r['max_entropy_bits']:.2f} | "
                     f"{pct(r['top10_share'])} | {pct(r['reuse'])} | {pct(r['cross_layer'])} | "
                     f"{pct(r['popularity'])} | {pct(r['stale_gate'])} |")
    lines += ["", "| trace | " + " | ".join(PREDICTORS) + " |", "|---|" + "---|" * len(PREDICTORS)]
    for r in rows:
        lines.append(f"| {r['trace']} | " + " | ".join(pct(r["recall_at_k"].get(p)) for p in PREDICTORS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from stmoe.readers.catalog import bundled
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="*", help="trace names or files (default: bundled + qwen3-30b-a3b)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    names = args.traces or [*bundled(), "qwen3-30b-a3b"]
    rows = [measure(load_trace(n)) for n in names]
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
