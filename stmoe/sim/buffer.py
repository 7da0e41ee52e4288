"""The expert buffer: a cache region plus a prefetch staging region, per layer or shared.

Capacity is given in experts or bytes. A share of it (``prefetch_share``, the reconfigurable
knob) is reserved for staging prefetched experts; the rest caches experts that were used.
Experts listed in ``pinned`` hold slots of their own (a partition no other expert maps to): each
enters on its first request, like any miss, and is never evicted.
Replacement in the cache region is one of LRU, FIFO, LFU, Belady (offline optimum: evicts
the expert whose next request is farthest away) or prediction-aware (evicts, among experts
not predicted for an upcoming layer, the least recently used). The staging region is FIFO.

Each region keeps its experts in a list, oldest first. A policy is two rules, kept together in
the section "Replacement policies" below: its eviction key (`_eviction_key`: a full region
evicts the expert with the smallest key, the oldest on ties) and whether a hit moves the expert
to the newest end of the list (a column of the registry `_RULES`). LRU and FIFO need no key:
they evict the oldest, and differ only in the hit rule. To add a policy: its code constant and
its row in `_RULES` (name, whether a hit moves it to the newest end, whether it evicts simply
the oldest, whether its list runs in the order of its second key so the search may stop at the
first expert whose first key is 0), and, unless it evicts the oldest, its branch in
`_eviction_key`. `POLICIES`, `BufferSpec`,
`replay` and the timing model pick it up from there, once numba recompiles them: its cache
checks only a kernel's own file, so after editing this one delete the cached kernels of
``stmoe/sim/__pycache__`` (``*.nbi``, ``*.nbc``), or the timing model keeps the old rules.

The state lives in plain numpy arrays handled by numba kernels (the timing model in
``stmoe.sim.timing`` calls the same helpers), because a Python object per request is two orders
of magnitude too slow for sweeps over real traces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from stmoe.errors import ConfigError, HardwareError

CACHE, STAGE = 0, 1          # region index; `where` stores region + 1 (0 = absent)
NEVER = np.int64(2 ** 62)    # "next request" of an expert that is never requested again
# rows of the per-expert state S and of the per-region state H (see new_state)
WHERE, PRV, NXT, K_LAST, K_FREQ, K_FTIME, K_NEXT, K_SOON, PREFETCHED, QPOS = range(10)
N_ROWS = 10
HEAD, TAIL, CNT, CAP = range(4)

# Replacement policies: the registry, then the eviction key, side by side (module docstring).
LRU, FIFO, LFU, BELADY, PREDICTIVE = range(5)
_RULES = (
    # code        name          a hit moves it    evicts the oldest     the list is in k2 order: the
    #                           to the newest     (no key to compare)   first with k1 = 0 goes
    (LRU,         "lru",        True,             True,                 False),
    (FIFO,        "fifo",       False,            True,                 False),
    (LFU,         "lfu",        False,            False,                False),
    (BELADY,      "belady",     False,            False,                False),
    (PREDICTIVE,  "predictive", True,             False,                True),
)
POLICIES = {name: code for code, name, *_ in _RULES}
# Tuples indexed by code, as numba compiles module-level tuples in as constants.
_MOVES_ON_HIT = tuple(row[2] for row in sorted(_RULES))
_EVICTS_OLDEST = tuple(row[3] for row in sorted(_RULES))
# The prediction-aware policy's k2 is the last use, and a hit moves an expert to the newest end,
# so its list runs oldest use first: the victim search stops at the first unpredicted expert
# instead of reading the whole region (the search runs on every prefetch into a full cache).
_FIRST_ZERO_WINS = tuple(row[4] for row in sorted(_RULES))


@njit(cache=True, inline="always")
def _eviction_key(S, o, policy, cell):
    """(k1, k2) of expert o: a full cache region evicts the smallest, the oldest on ties.
    `cell` is the cell the room is made for: the prediction-aware policy keeps the experts
    predicted for it or a later cell longest."""
    if policy == LFU:
        return S[K_FREQ, o], S[K_FTIME, o]
    if policy == BELADY:
        return -S[K_NEXT, o], np.int64(0)
    if policy == PREDICTIVE:
        return np.int64(1) if S[K_SOON, o] >= cell else np.int64(0), S[K_LAST, o]
    return np.int64(0), np.int64(0)   # LRU, FIFO: all equal, so the oldest goes


@njit(cache=True, inline="always")
def _moves_to_newest_on_hit(policy):
    return _MOVES_ON_HIT[policy]


@njit(cache=True, inline="always")
def _evicts_oldest(policy):
    return _EVICTS_OLDEST[policy]


@dataclass(frozen=True)
class BufferSpec:
    """How big the buffer is and how it is managed.

    capacity: total size, in experts (``unit="experts"``) or bytes (``unit="bytes"``; a slot is
    sized for the largest expert). per_layer: the capacity is per MoE layer rather than shared.
    prefetch_share: fraction of the slots reserved for staging prefetches (0 = prefetches are
    inserted straight into the cache region). pinned: experts (as layer * E + expert) with slots
    of their own, never evicted once loaded, taken out of the capacity before the staging share.
    """

    capacity: float
    unit: str = "experts"
    per_layer: bool = False
    prefetch_share: float = 0.25
    policy: str = "lru"
    pinned: tuple = ()

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
        """Slots per region and partition: int32 [2, P] (row 0 cache, row 1 staging); with
        pinned experts, the last partition holds them (cache slots only)."""
        largest = float(np.max(expert_bytes))
        total = int(np.floor(self.capacity + 1e-9)) if self.unit == "experts" else \
            experts_held(self.capacity, expert_bytes)
        if total > np.iinfo(np.int32).max:
            raise HardwareError(f"buffer of {self.capacity:g} {self.unit} holds {total:.3g} experts, more "
                                f"than the {np.iinfo(np.int32).max} slots the model counts (a buffer holding "
                                "every expert is the all-resident system)")
        if total < 1:
            raise HardwareError(f"buffer of {self.capacity:g} {self.unit} is smaller than one expert "
                                f"({largest:.0f} bytes)")
        pinned = len(self.pinned)
        if self.per_layer and pinned:
            raise ConfigError("pinned experts need one buffer shared by all layers (per_layer=False)")
        if total - pinned < 1:
            raise HardwareError(f"{pinned} pinned experts leave no cache slot in a buffer of {total} experts")
        stage = int(np.floor((total - pinned) * self.prefetch_share))
        if total - pinned - stage < 1:
            raise HardwareError(f"prefetch_share={self.prefetch_share} leaves no cache slot in a "
                                f"buffer of {total} experts")
        parts = num_layers if self.per_layer else 1
        out = np.zeros((2, parts + (1 if pinned else 0)), np.int32)
        out[0, :parts], out[1, :parts] = total - pinned - stage, stage
        if pinned:
            out[0, parts] = pinned
        return out

    def partition(self, num_layers: int, num_experts: int) -> np.ndarray:
        """int32 [L * E]: the partition of `slots` each expert lives in."""
        objects = np.arange(num_layers * num_experts, dtype=np.int32)
        part = objects // num_experts if self.per_layer else np.zeros_like(objects)
        if self.pinned:
            pins = np.asarray(self.pinned, np.int64)
            if pins.min() < 0 or pins.max() >= objects.size or np.unique(pins).size != pins.size:
                raise ConfigError(f"pinned experts must be distinct ids in 0..{objects.size - 1}")
            part[pins] = part.max() + 1
        return part


def experts_held(buffer_bytes: float, expert_bytes) -> int:
    """How many experts a buffer of `buffer_bytes` holds: every slot is sized for the largest
    expert, so experts of any layer can share the slots (the 1e-9 absorbs rounding in sizes
    given as a multiple of one expert)."""
    return int(np.floor(buffer_bytes / float(np.max(expert_bytes)) + 1e-9))


def new_state(num_objects: int, slots: np.ndarray):
    """Empty buffer state for objects 0..num_objects-1: (S, H) used by the kernels.

    S int64 [N_ROWS, N]: per expert, its region (0 absent, 1 cache, 2 staging), the neighbours in its
    region's list (oldest first), the policy keys, and for the timing model whether it was
    prefetched and not yet used and its place in the link queue. H int64 [4, 2, P]: per region
    and partition, list head and tail, occupancy and capacity. Two arrays rather than many:
    each array handed to a numba helper costs reference counting on every call.
    """
    S = np.zeros((N_ROWS, num_objects), np.int64)
    S[PRV], S[NXT], S[K_NEXT], S[K_SOON], S[QPOS] = -1, -1, NEVER, -1, -1
    H = np.zeros((4, 2, slots.shape[1]), np.int64)
    H[HEAD], H[TAIL], H[CAP] = -1, -1, slots
    return S, H


@njit(cache=True)
def unlink(S, H, o, p):
    r = S[WHERE, o] - 1
    a, b = S[PRV, o], S[NXT, o]
    if a >= 0:
        S[NXT, a] = b
    else:
        H[HEAD, r, p] = b
    if b >= 0:
        S[PRV, b] = a
    else:
        H[TAIL, r, p] = a
    H[CNT, r, p] -= 1
    S[WHERE, o] = 0


@njit(cache=True)
def append(S, H, o, r, p):
    t = H[TAIL, r, p]
    S[PRV, o], S[NXT, o] = t, -1
    if t >= 0:
        S[NXT, t] = o
    else:
        H[HEAD, r, p] = o
    H[TAIL, r, p] = o
    H[CNT, r, p] += 1
    S[WHERE, o] = r + 1


@njit(cache=True)
def victim(S, H, r, p, policy, cell):
    """The expert to evict from region r of partition p (the region is full, so non-empty)."""
    o = H[HEAD, r, p]
    if r == STAGE or _evicts_oldest(policy):
        return o
    best, bk1, bk2 = o, np.int64(0), np.int64(0)
    first = True
    while o >= 0:
        k1, k2 = _eviction_key(S, o, policy, cell)
        if first or k1 < bk1 or (k1 == bk1 and k2 < bk2):
            best, bk1, bk2, first = o, k1, k2, False
            if k1 == 0 and _FIRST_ZERO_WINS[policy]:
                break
        o = S[NXT, o]
    return best


@njit(cache=True)
def touch(S, H, o, p, policy, stamp):
    """A demand request hit expert o in the cache region."""
    S[K_LAST, o] = stamp
    S[K_FREQ, o] += 1
    S[K_FTIME, o] = stamp
    if _moves_to_newest_on_hit(policy) and H[TAIL, CACHE, p] != o:
        unlink(S, H, o, p)
        append(S, H, o, CACHE, p)


@njit(cache=True)
def admit(S, H, o, r, p, stamp):
    """Place expert o (absent) at the newest end of region r; the caller made room."""
    S[K_LAST, o] = stamp
    S[K_FREQ, o] = 1
    S[K_FTIME, o] = stamp
    append(S, H, o, r, p)


@njit(cache=True)
def replay_kernel(S, H, objs, next_req, part, policy):
    """Demand-only replay of a request stream through the cache region; returns the hits."""
    hits = 0
    for i in range(objs.shape[0]):
        o = objs[i]
        p = part[o]
        S[K_NEXT, o] = next_req[i]
        if S[WHERE, o] != 0:
            hits += 1
            touch(S, H, o, p, policy, i)
        else:
            if H[CNT, CACHE, p] >= H[CAP, CACHE, p]:
                unlink(S, H, victim(S, H, CACHE, p, policy, 0), p)
            admit(S, H, o, CACHE, p, i)
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
    # only Belady looks at the future; the others skip the O(n log n) look-ahead
    nxt = next_request(objs) if policy == "belady" else np.zeros(objs.size, np.int64)
    return int(replay_kernel(*new_state(n, slots), objs, nxt, part, POLICIES[policy]))


def request_stream(expert_ids: np.ndarray, num_experts: int) -> np.ndarray:
    """Expert requests [T, L, k] in time order as object ids layer * E + expert (-1 skipped)."""
    L = expert_ids.shape[1]
    objs = np.arange(L, dtype=np.int32)[None, :, None] * num_experts + expert_ids.astype(np.int32)
    return objs[expert_ids >= 0]


def next_request(objs: np.ndarray) -> np.ndarray:
    """For each request i, the index of the next request to the same object (or NEVER)."""
    return next_and_first_request(objs, int(objs.max()) + 1 if objs.size else 0)[0]


@njit(cache=True)
def next_and_first_request(objs, num_objects):
    """(next, first): for each request, the index of the next request to its object (or NEVER);
    for each object, the index of its first request (or NEVER). One backward pass, no sort: a
    sort-based version needs several int64 copies of the stream (gigabytes at production sizes)."""
    nxt = np.empty(objs.shape[0], np.int64)
    last = np.full(num_objects, NEVER, np.int64)
    for i in range(objs.shape[0] - 1, -1, -1):
        nxt[i] = last[objs[i]]
        last[objs[i]] = i
    return nxt, last
