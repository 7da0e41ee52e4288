"""The expert buffer: a cache region plus a prefetch staging region, per layer or shared.

Capacity is given in experts or bytes. A share of it (``prefetch_share``, the reconfigurable
knob) is reserved for staging prefetched experts; the rest caches experts that were used.
Replacement in the cache region is one of LRU, FIFO, LFU, Belady (offline optimum: evicts
the expert whose next request is farthest away) or prediction-aware (evicts, among experts
not predicted for an upcoming layer, the least recently used). The staging region is FIFO.

The state lives in plain numpy arrays handled by numba kernels (the timing model in
``stmoe.timing`` calls the same helpers), because a Python object per request is two orders
of magnitude too slow for sweeps over real traces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from stmoe.errors import ConfigError, HardwareError

POLICIES = {"lru": 0, "fifo": 1, "lfu": 2, "belady": 3, "predictive": 4}
LRU, FIFO, LFU, BELADY, PREDICTIVE = range(5)
CACHE, STAGE = 0, 1          # region index; `where` stores region + 1 (0 = absent)
NEVER = np.int64(2 ** 62)    # "next request" of an expert that is never requested again
# rows of the int64 key array kept per expert
K_LAST, K_FREQ, K_FTIME, K_NEXT, K_SOON = range(5)


@dataclass(frozen=True)
class BufferSpec:
    """How big the buffer is and how it is managed.

    capacity: total size, in experts (``unit="experts"``) or bytes (``unit="bytes"``; a slot is
    sized for the largest expert). per_layer: the capacity is per MoE layer rather than shared.
    prefetch_share: fraction of the slots reserved for staging prefetches (0 = prefetches are
    inserted straight into the cache region).
    """

    capacity: float
    unit: str = "experts"
    per_layer: bool = False
    prefetch_share: float = 0.25
    policy: str = "lru"

    def __post_init__(self):
        if self.unit not in ("experts", "bytes"):
            raise ConfigError(f"buffer unit must be 'experts' or 'bytes', got {self.unit!r}")
        if self.policy not in POLICIES:
            raise ConfigError(f"unknown buffer policy {self.policy!r}; valid: {', '.join(POLICIES)}")
        if not 0.0 <= self.prefetch_share < 1.0:
            raise ConfigError(f"prefetch_share must be in [0, 1), got {self.prefetch_share!r}")
        if not np.isfinite(self.capacity) or self.capacity <= 0:
            raise HardwareError(f"buffer capacity must be positive and finite, got {self.capacity!r}")

    def slots(self, num_layers: int, expert_bytes) -> np.ndarray:
        """Slots per region and partition: int32 [2, P] (row 0 cache, row 1 staging)."""
        largest = float(np.max(expert_bytes))
        total = self.capacity if self.unit == "experts" else self.capacity / largest
        total = int(np.floor(total + 1e-9))
        if total < 1:
            raise HardwareError(f"buffer of {self.capacity:g} {self.unit} is smaller than one expert "
                                f"({largest:.0f} bytes)")
        stage = int(np.floor(total * self.prefetch_share))
        if total - stage < 1:
            raise HardwareError(f"prefetch_share={self.prefetch_share} leaves no cache slot in a "
                                f"buffer of {total} experts")
        parts = num_layers if self.per_layer else 1
        out = np.empty((2, parts), np.int32)
        out[0], out[1] = total - stage, stage
        return out


def new_state(num_objects: int, slots: np.ndarray):
    """Empty buffer state for objects 0..num_objects-1 (tuple of arrays used by the kernels)."""
    parts = slots.shape[1]
    keys = np.zeros((5, num_objects), np.int64)
    keys[K_NEXT] = NEVER
    keys[K_SOON] = -1
    return (np.zeros(num_objects, np.int8),            # where: 0 absent, 1 cache, 2 staging
            np.full(num_objects, -1, np.int32),        # prev in its region's list
            np.full(num_objects, -1, np.int32),        # next in its region's list
            np.full((2, parts), -1, np.int32),         # list heads (oldest)
            np.full((2, parts), -1, np.int32),         # list tails (newest)
            np.zeros((2, parts), np.int32),            # occupancy
            slots.astype(np.int32),                    # capacity
            keys)


@njit(cache=True)
def unlink(st, o, p):
    where, prv, nxt, head, tail, cnt = st[0], st[1], st[2], st[3], st[4], st[5]
    r = where[o] - 1
    a, b = prv[o], nxt[o]
    if a >= 0:
        nxt[a] = b
    else:
        head[r, p] = b
    if b >= 0:
        prv[b] = a
    else:
        tail[r, p] = a
    cnt[r, p] -= 1
    where[o] = 0


@njit(cache=True)
def append(st, o, r, p):
    where, prv, nxt, head, tail, cnt = st[0], st[1], st[2], st[3], st[4], st[5]
    t = tail[r, p]
    prv[o], nxt[o] = t, -1
    if t >= 0:
        nxt[t] = o
    else:
        head[r, p] = o
    tail[r, p] = o
    cnt[r, p] += 1
    where[o] = r + 1


@njit(cache=True)
def victim(st, r, p, policy, cell):
    """The expert to evict from region r of partition p (the region is full, so non-empty)."""
    nxt, head, keys = st[2], st[3], st[7]
    o = head[r, p]
    if r == STAGE or policy == LRU or policy == FIFO:
        return o
    best, bk1, bk2 = o, np.int64(0), np.int64(0)
    first = True
    while o >= 0:
        if policy == LFU:
            k1, k2 = keys[K_FREQ, o], keys[K_FTIME, o]
        elif policy == BELADY:
            k1, k2 = -keys[K_NEXT, o], np.int64(0)
        else:  # PREDICTIVE: experts predicted for a layer not yet run are kept longest
            k1 = np.int64(1) if keys[K_SOON, o] >= cell else np.int64(0)
            k2 = keys[K_LAST, o]
        if first or k1 < bk1 or (k1 == bk1 and k2 < bk2):
            best, bk1, bk2, first = o, k1, k2, False
        o = nxt[o]
    return best


@njit(cache=True)
def touch(st, o, p, policy, stamp):
    """A demand request hit expert o in the cache region."""
    keys = st[7]
    keys[K_LAST, o] = stamp
    keys[K_FREQ, o] += 1
    keys[K_FTIME, o] = stamp
    if policy == LRU or policy == PREDICTIVE:
        unlink(st, o, p)
        append(st, o, CACHE, p)


@njit(cache=True)
def admit(st, o, r, p, stamp):
    """Place expert o (absent) at the newest end of region r; the caller made room."""
    keys = st[7]
    keys[K_LAST, o] = stamp
    keys[K_FREQ, o] = 1
    keys[K_FTIME, o] = stamp
    append(st, o, r, p)


@njit(cache=True)
def replay_kernel(st, objs, next_req, part, policy):
    """Demand-only replay of a request stream through the cache region; returns the hits."""
    where, cnt, cap, keys = st[0], st[5], st[6], st[7]
    hits = 0
    for i in range(objs.shape[0]):
        o = objs[i]
        p = part[o]
        keys[K_NEXT, o] = next_req[i]
        if where[o] != 0:
            hits += 1
            touch(st, o, p, policy, i)
        else:
            if cnt[CACHE, p] >= cap[CACHE, p]:
                unlink(st, victim(st, CACHE, p, policy, 0), p)
            admit(st, o, CACHE, p, i)
    return hits


def replay(objs, capacity: int, policy: str = "lru", *, part=None, num_objects=None) -> int:
    """Hits of a demand-only request stream (object ids >= 0) through a cache of `capacity`
    objects per partition (`part[o]` gives an object's partition; one shared one by default)."""
    objs = np.ascontiguousarray(objs, dtype=np.int32)
    if objs.size and objs.min() < 0:
        raise ConfigError("request stream holds a negative object id")
    n = int(num_objects or (int(objs.max()) + 1 if objs.size else 1))
    part = np.zeros(n, np.int32) if part is None else np.ascontiguousarray(part, dtype=np.int32)
    if policy not in POLICIES:
        raise ConfigError(f"unknown buffer policy {policy!r}; valid: {', '.join(POLICIES)}")
    if capacity < 1:
        raise HardwareError(f"buffer capacity must be at least one object, got {capacity!r}")
    slots = np.zeros((2, int(part.max()) + 1), np.int32)
    slots[CACHE] = capacity
    return int(replay_kernel(new_state(n, slots), objs, next_request(objs), part, POLICIES[policy]))


def request_stream(expert_ids: np.ndarray, num_experts: int) -> np.ndarray:
    """Expert requests [T, L, k] in time order as object ids layer * E + expert (-1 skipped)."""
    L = expert_ids.shape[1]
    objs = np.arange(L, dtype=np.int32)[None, :, None] * num_experts + expert_ids.astype(np.int32)
    return objs[expert_ids >= 0]


def next_request(objs: np.ndarray) -> np.ndarray:
    """For each request i, the index of the next request to the same object (or NEVER)."""
    n = objs.shape[0]
    order = np.lexsort((np.arange(n), objs))
    nxt = np.full(n, NEVER, np.int64)
    same = objs[order[1:]] == objs[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt
