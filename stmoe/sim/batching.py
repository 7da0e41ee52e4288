"""Decoding B sequences in lockstep: the steps, and the experts a step needs.

A step of batch B holds the j-th token of each of B sequences. At each MoE layer the step needs
the union of its tokens' experts: each expert of the union is read once and multiplies the
activations of the tokens routed to it (a GEMM with M = that many tokens), so a layer's cost
follows the union, not B x k. Chapter 08 (`stmoe.book.operating_regimes`) and the timing model
(`stmoe.sim.timing.simulate` with ``batch``) both build their steps and unions here.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError


def check_batch(batch) -> int:
    """`batch` as an int, or a ConfigError naming it."""
    if isinstance(batch, bool) or not float(batch).is_integer() or batch < 1:
        raise ConfigError(f"batch must be a positive whole number of sequences, got {batch!r}")
    return int(batch)


def lockstep_steps(runs: list[np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, group): the [W, batch] token indices of the steps of `batch` sequences decoding in
    lockstep, -1 where a step has no token of that sequence, and the group of each step. runs:
    each sequence's token indices in order. The
    sequences are grouped `batch` at a time in the order given; a group's step j holds each
    member's j-th token, and the group runs until its longest member ends (a member that ended
    leaves its place empty). When the count of sequences is not a multiple of `batch`, the last
    group is smaller (its extra places empty). Groups follow each other, first to last."""
    batch = check_batch(batch)
    out, group = [], []
    for g in range(0, len(runs), batch):
        members = runs[g:g + batch]
        n = max(len(idx) for idx in members)
        block = np.full((n, batch), -1, np.int64)
        for j, idx in enumerate(members):
            block[:len(idx), j] = idx
        out.append(block)
        group.append(np.full(n, g // batch, np.int64))
    if not out:
        return np.zeros((0, batch), np.int64), np.zeros(0, np.int64)
    return np.concatenate(out), np.concatenate(group)


def expert_counts(ids: np.ndarray, steps: np.ndarray, num_experts: int) -> np.ndarray:
    """[W, L, E]: how many of each step's tokens each layer routes to each expert. ids: the
    routing [T, L, k] (-1: not routed); steps: [W, B] token indices (-1: no token)."""
    W = steps.shape[0]
    L = ids.shape[1]
    E = num_experts
    cells = ids[np.maximum(steps, 0)].astype(np.int64)                   # [W, B, L, k]
    step = np.broadcast_to(np.arange(W)[:, None, None, None], cells.shape)
    layer = np.broadcast_to(np.arange(L)[None, None, :, None], cells.shape)
    keep = (cells >= 0) & (steps >= 0)[:, :, None, None]
    flat = (step[keep] * L + layer[keep]) * E + cells[keep]
    return np.bincount(flat, minlength=W * L * E).reshape(W, L, E)


def step_union(ids: np.ndarray, steps: np.ndarray, num_experts: int) -> np.ndarray:
    """[W, L, U] int16: per step and layer the union of the experts of `ids` [T, L, m] of its
    tokens, in the order they first appear (the step's first token's in rank order, then the new
    ones of the next token, ...), padded with -1 (not routed) to the widest union U. The union
    of identical tokens is one token's list, in its order."""
    W, B = steps.shape
    L, m = ids.shape[1], ids.shape[2]
    E = num_experts
    if m and ids.strides[0] == 0:   # the same list for every token (a broadcast view)
        return np.broadcast_to(ids[0], (W, L, m))
    width = B * m
    never = np.iinfo(np.int32).max
    first = np.full((W, L, E + 1), never, np.int32)          # E: the slot for -1
    cells = np.where((steps >= 0)[:, :, None, None], ids[np.maximum(steps, 0)], -1)   # [W, B, L, m]
    cells = cells.transpose(0, 2, 1, 3).reshape(W, L, width)
    w, l = np.meshgrid(np.arange(W), np.arange(L), indexing="ij")
    for p in range(width - 1, -1, -1):                        # the earliest position written last
        e = cells[:, :, p].astype(np.int64)
        first[w, l, np.where(e < 0, E, e)] = p
    first = first[:, :, :E]
    present = first < never
    U = int(present.sum(axis=2).max(initial=0))
    order = np.argsort(first, axis=2, kind="stable")[:, :, :U]
    union = np.where(np.take_along_axis(present, order, axis=2), order, -1)
    return union.astype(np.int16)


def batch_routing(ids: np.ndarray, steps: np.ndarray, num_experts: int) -> tuple[np.ndarray, np.ndarray]:
    """(union [W, L, U] int16 as `step_union` gives it, tokens [W, L, U] int16: how many of the
    step's tokens each expert of the union is routed to, 0 where the union is padded)."""
    union = step_union(ids, steps, num_experts)
    counts = expert_counts(ids, steps, num_experts)
    tokens = np.where(union >= 0, np.take_along_axis(counts, np.maximum(union, 0).astype(np.int64), axis=2), 0)
    return union, tokens.astype(np.int16)
