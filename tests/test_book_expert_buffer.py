"""Replacement curves, held-out predictions for simulation, the split and the bandwidth knee."""

import numpy as np
import pytest

import stmoe
from stmoe.book import expert_buffer as eb
from stmoe.book import hardware_tuning as ht
from stmoe.book import held_out as ho
from stmoe.errors import ConfigError
from stmoe.sim.buffer import BufferSpec, request_stream
from stmoe.predictors import predict
from stmoe.sim.systems import SYSTEMS
from stmoe.sim.timing import simulate
from tests.prefetch_data import small_held_out, small_trace


def test_belady_bounds_every_policy_and_full_capacity_leaves_compulsory_misses():
    tr = small_trace()
    rows = eb.replacement_curves(tr)
    caps = sorted({r["capacity"] for r in rows})
    for c in caps:
        best = eb.hit_rate_at(rows, "belady", c)
        assert all(eb.hit_rate_at(rows, p, c) <= best + 1e-12 for p in ("lru", "lfu", "fifo"))
    lru = [eb.hit_rate_at(rows, "lru", c) for c in caps]
    assert lru == sorted(lru)            # LRU is a stack algorithm: more room never hurts
    objs = request_stream(tr.select(phase="decode").expert_ids, tr.num_experts)
    compulsory = 1 - np.unique(objs).size / objs.size
    assert caps[-1] == tr.num_layers * tr.num_experts
    for p in eb.DEMAND_POLICIES:
        assert eb.hit_rate_at(rows, p, caps[-1]) == pytest.approx(compulsory)
    assert eb.hit_rate_at(rows, "belady", caps[2]) > eb.hit_rate_at(rows, "lru", caps[2])


def test_held_out_never_scores_profiled_sequences_and_subset_is_causal():
    data = small_held_out()
    assert not set(data.profile.sequence_ids()) & set(data.scored.sequence_ids())
    decode = data.scored.select(phase="decode")
    assert data.predictions_for(2).shape == (decode.num_tokens, 8, 4)
    part = data.subset(2)
    again = predict(part.scored.select(phase="decode"), "st-moe", profile=data.profile, lookahead=1)
    assert np.array_equal(part.predictions[1], again)


def test_one_sequence_trace_splits_by_tokens():
    tr = stmoe.synthetic_trace(200, 4, 16, 2, num_sequences=1, prompt_tokens=10, seed=1)
    dims = stmoe.sim.hardware.model_dims(tr, hidden=64, ffn=32)
    data = ho.held_out(tr, dims=dims)
    assert data.profile.num_tokens == 100 and data.scored.num_tokens == 100
    with pytest.raises(stmoe.ConfigError, match="no decode tokens"):
        ho.held_out(tr.select(phase="prefill"), dims=dims)


def test_split_outcomes_add_up_and_match_the_simulator():
    data = small_held_out()
    cache, hot, st = eb.split_outcomes(data, 48, 0.25)
    for r in (cache, hot, st):
        assert r["hit_rate"] + r["late_prefetch_rate"] + r["miss_rate"] == pytest.approx(1.0)
    for r in (cache, hot):
        assert r["prefetches_issued"] == 0 and r["share"] == 0.0
    pinned = simulate(data.scored, "accelerator", "hot-set", buffer=BufferSpec(48, "experts", prefetch_share=0),
                      dims=data.dims, profile=data.profile)
    assert hot["system"] == "hot-set (50% pinned)" and hot["hit_rate"] == pinned.hit_rate
    direct = simulate(data.scored, "accelerator", "st-moe", predictions=data.predictions_for(1),
                      buffer=BufferSpec(48, "experts", prefetch_share=0.25, policy="predictive"), dims=data.dims)
    assert st["hit_rate"] == direct.hit_rate and st["wasted_bytes"] == direct.wasted_bytes
    assert st["useful_prefetches"] > 0
    sweep = eb.share_sweep(data, 48, [0.1, 0.5])
    assert [r["share"] for r in sweep] == [0.1, 0.5] and sweep[0]["hit_rate"] != sweep[1]["hit_rate"]
    # a share against another, paired over the same sequences
    g = eb.gain_between(sweep[0], sweep[1])
    assert g["speedup"] == pytest.approx(sweep[1]["latency_per_token_s"] / sweep[0]["latency_per_token_s"])
    assert g["speedup_ci_low"] <= g["speedup"] <= g["speedup_ci_high"]
    assert eb.gain_between(st, st)["speedup_ci_low"] == pytest.approx(1.0)


def test_gain_at_capacity_is_the_ratio_of_the_split_outcomes_latencies():
    data = small_held_out()
    assert SYSTEMS["st-moe"].staging_share == 0.0   # so split_outcomes at share 0 is st-moe's default
    cache, hot, st = eb.split_outcomes(data, 48, 0.0, hardware="gpu-pcie")
    for baseline, row in (("lru-cache", cache), ("hot-set", hot)):
        g = eb.gain_at_capacity(data, 48, baseline, hardware="gpu-pcie")
        assert g["speedup"] == pytest.approx(row["latency_per_token_s"] / st["latency_per_token_s"])
        assert g["speedup_ci_low"] <= g["speedup"] <= g["speedup_ci_high"]


def test_split_grid_is_split_outcomes_at_every_point():
    data = small_held_out()
    grid = eb.split_grid(data, [48, 64], [0.0, 0.5], hardware="gpu-pcie")
    assert [(r["capacity"], r["series"], r["share"]) for r in grid] == [
        (c, s, sh) for c in (48, 64) for s, sh in (("cache only (LRU)", None), ("hot-set (50% pinned)", None),
                                                   ("st-moe", 0.0), ("st-moe", 0.5))]
    cache, hot, st = eb.split_outcomes(data, 64, 0.5, hardware="gpu-pcie")
    at = {(r["capacity"], r["series"], r["share"]): r for r in grid}
    assert at[64, "st-moe", 0.5]["latency_per_token_s"] == st["latency_per_token_s"]
    assert at[64, "cache only (LRU)", None]["hit_rate"] == cache["hit_rate"]
    assert at[64, "hot-set (50% pinned)", None]["latency_per_token_s"] == hot["latency_per_token_s"]
    with pytest.raises(ConfigError, match="at least one staging share"):
        eb.split_grid(data, [48], [])


def _row(bw, system, lat, util):
    return {"parameter": "link_bandwidth", "value": bw, "system": system, "latency_per_token_s": lat,
            "link_utilisation": util}


def test_bandwidth_knee_finds_the_peak_and_the_saturated_run():
    rows = []
    for bw, cache_lat, st_lat, util in [(1, 10, 11, 1.0), (2, 6, 6.2, 0.97), (4, 4, 3, 0.8), (8, 2, 1.8, 0.5)]:
        rows += [_row(bw, "lru-cache", cache_lat, 0.9), _row(bw, "st-moe", st_lat, util)]
    knee = ht.bandwidth_knee(rows)
    assert knee.peak_bandwidth == 4 and knee.peak_gain == pytest.approx(4 / 3)
    assert knee.saturated_below == 2 and knee.gain_at_saturation == pytest.approx(6 / 6.2)
    with pytest.raises(stmoe.ConfigError, match="baseline system 'on-demand'"):
        ht.gain_rows(rows, "on-demand")


def test_real_sweeps_use_the_held_out_predictions():
    data = small_held_out()
    hw = ht.machine("accelerator", link_gbps=64, buffer_mib=2, pe_side=32)
    assert hw.link_bandwidth == 64e9 and hw.buffer_bytes == 2 * 2 ** 20 and hw.macs_per_cycle == 1024
    rows = ht.bandwidth_rows(data, hw, [16e9, 1e12])
    st = {r["value"]: r for r in rows if r["system"] == "st-moe"}
    assert st[16e9]["link_utilisation"] > st[1e12]["link_utilisation"]
    ahead = ht.lookahead_rows(data, hw, (1, 3), systems=("st-moe",))
    assert [r["value"] for r in ahead] == [1, 3]
    direct = simulate(data.scored, hw, "st-moe", predictions=data.predictions_for(3), lookahead=3, dims=data.dims)
    assert ahead[1]["latency_per_token_s"] == direct.latency_per_token_s
    assert ht.experts_mib(data) == pytest.approx(8 * 32 * 3 * 192 * 128 * 4 / 2 ** 20)


def test_per_layer_buffers_and_layer_times():
    tr = small_trace()
    shared = eb.replacement_curves(tr, sizes=[16], policies=("lru",))
    split = eb.replacement_curves(tr, sizes=[16], policies=("lru",), per_layer=True)
    assert shared[0]["hit_rate"] == 0.0        # 16 < 8 layers x 4 experts: a cyclic scan evicts all
    assert split[0]["hit_rate"] > 0.0          # 2 slots per layer keep some of the previous token's
    with pytest.raises(stmoe.ConfigError, match="less than one expert per layer"):
        eb.replacement_curves(tr, sizes=[4], per_layer=True)
    data = small_held_out()
    t = ht.layer_times(data, ht.machine("accelerator", link_gbps=100))
    assert t["expert_load_us"] == pytest.approx(3 * 192 * 128 * 4 / 100e9 * 1e6 + 0.1)


def test_lru_and_fifo_never_hit_at_one_cycle_of_other_layers():
    """Between two requests for an expert of layer l, the other L-1 layers request (L-1) x k
    distinct experts: recency-based replacement with that many slots evicts it every time."""
    tr = small_trace()
    cycle = (tr.num_layers - 1) * tr.top_k
    rows = eb.replacement_curves(tr, sizes=[cycle, cycle + tr.top_k])
    assert eb.hit_rate_at(rows, "lru", cycle) == 0.0 and eb.hit_rate_at(rows, "fifo", cycle) == 0.0
    assert eb.hit_rate_at(rows, "lru", cycle + tr.top_k) > 0.0 and eb.hit_rate_at(rows, "belady", cycle) > 0.0


def test_balanced_pe_side_is_the_roofline_ridge():
    data = small_held_out()
    hw = ht.machine("accelerator").with_(dataflow=None)     # the roofline, not the PE array's folds
    side = ht.balanced_pe_side(data, hw)["expert"]
    for s, bound in ((side * 0.9, "compute"), (side * 1.1, "memory")):
        t = ht.layer_times(data, ht.machine(hw, pe_side=s))["expert_compute_us"] * 1e-6
        read = data.dims.expert_bytes[0] / hw.local_bandwidth
        assert (t > read * 1.0001) == (bound == "compute")


def test_hot_set_curve_is_the_hot_set_systems_buffer():
    """The hot-set rows of the replacement curves count, without the timing model, the hits the
    timing model's hot-set system gets on a demand-only buffer of the same size."""
    data = small_held_out()
    rows = eb.replacement_curves(data.scored, sizes=[16, 48, 128], profile=data.profile)
    for c in (16, 48, 128):
        r = simulate(data.scored, "accelerator", "hot-set", buffer=BufferSpec(c, "experts", prefetch_share=0),
                     dims=data.dims, profile=data.profile)
        assert eb.hit_rate_at(rows, "hot-set", c) == pytest.approx(r.hit_rate, abs=1e-12)
    # pinning the profile's hot experts beats LRU when the buffer is small
    assert eb.hit_rate_at(rows, "hot-set", 16) > eb.hit_rate_at(rows, "lru", 16)
    with pytest.raises(stmoe.ConfigError, match="not per layer"):
        eb.replacement_curves(data.scored, sizes=[16], profile=data.profile, per_layer=True)


def test_gain_over_the_cache_carries_a_paired_interval():
    data = small_held_out()
    g = ho.gain(data, "gpu-pcie", "st-moe", "lru-cache")
    cache = simulate(data.scored, "gpu-pcie", "lru-cache", dims=data.dims)
    st = simulate(data.scored, "gpu-pcie", "st-moe", predictions=data.predictions_for(1), dims=data.dims)
    assert g["speedup"] == pytest.approx(cache.latency_per_token_s / st.latency_per_token_s)
    for name in ("speedup", "energy_efficiency"):
        assert g[f"{name}_ci_low"] <= g[name] <= g[f"{name}_ci_high"]
    assert "over 4 sequences" in g["intervals"]
    same = ho.gain(data, "gpu-pcie", "lru-cache", "lru-cache")
    assert same["speedup_ci_low"] == same["speedup_ci_high"] == pytest.approx(1.0)
    # the hot set pins the experts the profile used most
    hot = simulate(data.scored, "gpu-pcie", "hot-set", dims=data.dims, profile=data.profile)
    assert ho.gain(data, "gpu-pcie", "st-moe", "hot-set")["speedup"] == \
        pytest.approx(hot.latency_per_token_s / st.latency_per_token_s)


def test_gain_of_a_profiled_system_uses_the_profile():
    data = small_held_out()
    g = ho.gain(data, "gpu-pcie", "hot-set", "lru-cache")
    cache = simulate(data.scored, "gpu-pcie", "lru-cache", dims=data.dims)
    hot = simulate(data.scored, "gpu-pcie", "hot-set", dims=data.dims, profile=data.profile)
    assert g["speedup"] == pytest.approx(cache.latency_per_token_s / hot.latency_per_token_s)
    assert g["speedup_ci_low"] <= g["speedup"] <= g["speedup_ci_high"]
