"""The buffer's replacement policies against libCacheSim on the same request streams."""

import numpy as np
import pytest

import stmoe
from stmoe.sim.buffer import NEVER, BufferSpec, next_request, replay, request_stream
from stmoe.errors import ConfigError, HardwareError

lcs = pytest.importorskip("libcachesim")

LCS = {"lru": "LRU", "fifo": "FIFO", "lfu": "LFU", "belady": "Belady"}


def expert_stream(trace):
    return request_stream(trace.expert_ids, trace.num_experts)


def libcachesim_hits(objs, capacity, policy, tmp_path):
    nxt = next_request(objs)
    rec = np.zeros(objs.size, np.dtype([("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")]))
    rec["t"], rec["id"], rec["size"] = np.arange(objs.size), objs.astype(np.uint64) + 1, 1
    rec["next"] = np.where(nxt == NEVER, -1, nxt)
    path = tmp_path / f"stream-{objs.size}.oracleGeneral"
    rec.tofile(path)
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio, _ = getattr(lcs, LCS[policy])(capacity).process_trace(reader)
    return round((1 - miss_ratio) * objs.size)


@pytest.mark.parametrize("policy", list(LCS))
def test_hit_ratios_equal_libcachesim_on_real_routing(qwen, policy, tmp_path):
    objs = expert_stream(stmoe.load_trace(qwen).select(phase="decode"))
    for capacity in (6, 100, 1000):
        assert replay(objs, capacity, policy) == libcachesim_hits(objs, capacity, policy, tmp_path), capacity


@pytest.mark.parametrize("policy", list(LCS))
def test_hit_ratios_equal_libcachesim_on_synthetic_routing(policy, tmp_path):
    tr = stmoe.synthetic_trace(800, 12, 32, 4, seed=3)
    objs = expert_stream(tr)
    for capacity in (3, 40, 200):
        assert replay(objs, capacity, policy) == libcachesim_hits(objs, capacity, policy, tmp_path)


def test_per_layer_partitions_are_independent_caches(tmp_path):
    tr = stmoe.synthetic_trace(400, 6, 16, 3, seed=5)
    objs = expert_stream(tr)
    part = (np.arange(6 * 16) // 16).astype(np.int32)
    together = replay(objs, 5, "lru", part=part, num_objects=96)
    separate = sum(libcachesim_hits(objs[objs // 16 == layer], 5, "lru", tmp_path) for layer in range(6))
    assert together == separate


def test_belady_is_an_upper_bound():
    objs = expert_stream(stmoe.synthetic_trace(500, 8, 32, 4, seed=2))
    best = replay(objs, 50, "belady")
    assert all(replay(objs, 50, p) <= best for p in ("lru", "fifo", "lfu", "predictive"))


def test_spec_slots_split_and_errors():
    s = BufferSpec(100, prefetch_share=0.25).slots(4, [10.0] * 4)
    assert s[:, 0].tolist() == [75, 25]
    assert BufferSpec(1000, "bytes", per_layer=True, prefetch_share=0).slots(3, [100.0] * 3).shape == (2, 3)
    with pytest.raises(HardwareError, match="smaller than one expert"):
        BufferSpec(50, "bytes").slots(2, [100.0, 100.0])
    with pytest.raises(ConfigError, match="unknown buffer policy 'mru'"):
        BufferSpec(10, policy="mru")
    with pytest.raises(ConfigError, match="prefetch_share"):
        BufferSpec(10, prefetch_share=1.0)
    with pytest.raises(HardwareError, match="positive"):
        BufferSpec(0)


def test_pinned_experts_have_a_partition_of_their_own():
    spec = BufferSpec(100, prefetch_share=0.25, pinned=(3, 17, 40))
    # the pinned slots come out of the capacity first, the staging share of the rest
    assert spec.slots(4, [10.0] * 4).tolist() == [[73, 3], [24, 0]]
    part = spec.partition(4, 16)
    assert part[[3, 17, 40]].tolist() == [1, 1, 1] and (np.delete(part, [3, 17, 40]) == 0).all()
    with pytest.raises(HardwareError, match="3 pinned experts leave no cache slot"):
        BufferSpec(3, pinned=(0, 1, 2)).slots(1, [10.0])
    with pytest.raises(ConfigError, match="distinct ids in 0..63"):
        BufferSpec(10, pinned=(0, 0)).partition(4, 16)
    with pytest.raises(ConfigError, match="distinct ids in 0..63"):
        BufferSpec(10, pinned=(64,)).partition(4, 16)
    with pytest.raises(ConfigError, match="per_layer=False"):
        BufferSpec(10, per_layer=True, pinned=(1,)).slots(4, [10.0] * 4)
