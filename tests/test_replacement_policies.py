"""Each replacement policy in the registry evicts by its own rule (eviction key and hit rule)."""

import numpy as np

from stmoe.sim.buffer import CACHE, K_NEXT, K_SOON, NEVER, POLICIES, admit, new_state, touch, victim

CELL = 20   # the cell the room is made for
# The expert each policy evicts from the full region that `full_region` builds: FIFO the first
# admitted (1); LRU the least recently used (0: hit often, but long ago); LFU the least used (2,
# 3 and 4 used once each: the one used earliest); Belady the one never requested again (3); the
# prediction-aware policy the least recently used of those not predicted for CELL or later (4).
VICTIM = {"fifo": 1, "lru": 0, "lfu": 2, "belady": 3, "predictive": 4}


def full_region(policy):
    S, H = new_state(5, np.array([[5], [0]], np.int32))
    code = POLICIES[policy]
    admit(S, H, 1, CACHE, 0, 0)
    admit(S, H, 0, CACHE, 0, 1)
    for stamp in (2, 3, 4):
        touch(S, H, 0, 0, code, stamp)
    for o, stamp in ((2, 5), (3, 6), (4, 7)):
        admit(S, H, o, CACHE, 0, stamp)
    touch(S, H, 1, 0, code, 8)
    S[K_NEXT] = (10, 11, 12, NEVER, 13)
    S[K_SOON, [0, 2, 3]] = (CELL, CELL + 5, CELL + 1)
    return S, H


def test_every_registered_policy_evicts_by_its_own_rule():
    assert set(VICTIM) == set(POLICIES), "a new policy needs its expected victim here"
    for policy, expected in VICTIM.items():
        S, H = full_region(policy)
        assert victim(S, H, CACHE, 0, POLICIES[policy], CELL) == expected, policy


def test_compiled_timing_kernels_older_than_the_buffer_are_dropped(tmp_path):
    """numba keys a cached kernel on its own file; the timing kernels inline the buffer's
    helpers, so their cache must go when buffer.py is newer."""
    import os

    from stmoe.sim.timing import drop_stale_compilations

    cache = tmp_path / "__pycache__"
    cache.mkdir()
    old = [cache / n for n in ("timing.run_kernel-104.py311.nbi", "timing.run_kernel-104.py311.1.nbc")]
    fresh = [cache / n for n in ("timing._issue-90.py311.nbi", "timing._issue-90.py311.1.nbc")]
    other = cache / "buffer.admit-155.py311.nbi"
    for f in [*old, *fresh, other]:
        f.write_bytes(b"x")
    source = tmp_path / "buffer.py"
    source.write_text("# edited")
    edited = source.stat().st_mtime
    for f in [*old, other]:
        os.utime(f, (edited - 60, edited - 60))   # compiled before the edit
    for f in fresh:
        os.utime(f, (edited + 60, edited + 60))   # recompiled since
    gone = drop_stale_compilations(source, [cache], "timing.")
    assert sorted(gone) == sorted(old)
    assert all(f.exists() for f in [*fresh, other])
