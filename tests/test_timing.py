"""Timing and energy: ordering of the systems, conservation of bytes, edge cases."""

import numpy as np
import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.sim.hardware import model_dims
from stmoe.sim.systems import SYSTEMS
from stmoe.sim.timing import simulate

PRESETS = ("accelerator", "gpu-pcie", "edge-flash")


def previous_token_predictions(trace):
    """A causal predictor built here: each layer's experts of the previous token."""
    dec = trace.select(phase="decode")
    pred = np.full_like(dec.expert_ids, -1)
    prev = dec.previous_token()
    pred[prev >= 0] = dec.expert_ids[prev[prev >= 0]]
    return pred


def noisy_oracle(trace, keep, seed=0):
    """The true experts with a share (1 - keep) replaced by random wrong ones."""
    dec = trace.select(phase="decode")
    rng = np.random.default_rng(seed)
    pred = dec.expert_ids.copy()
    swap = rng.random(pred.shape) > keep
    pred[swap] = (pred[swap] + rng.integers(1, trace.num_experts, swap.sum())) % trace.num_experts
    return pred


@pytest.fixture(scope="module")
def synthetic():
    tr = stmoe.synthetic_trace(600, 12, 32, 4, seed=7)
    return tr, model_dims(tr, hidden=2048, ffn=768, dtype="bfloat16")


def cases(qwen):
    syn = stmoe.synthetic_trace(600, 12, 32, 4, seed=7)
    return [(qwen, model_dims(qwen)), (syn, model_dims(syn, hidden=2048, ffn=768))]


@pytest.mark.parametrize("hw", PRESETS)
def test_systems_are_ordered(qwen, hw):
    for tr, dims in cases(stmoe.load_trace(qwen)):
        for pred in (previous_token_predictions(tr), noisy_oracle(tr, 0.8)):
            lat = {s: simulate(tr, hw, s, dims=dims, predictions=pred if s == "st-moe" else None)
                   .latency_per_token_s for s in ("all-resident", "oracle", "st-moe", "on-demand")}
            assert lat["all-resident"] <= lat["oracle"] <= lat["st-moe"] <= lat["on-demand"], (hw, lat)


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_bytes_are_conserved(qwen, system):
    tr = stmoe.load_trace(qwen)
    pred = noisy_oracle(tr, 0.5) if system == "st-moe" else None
    for hw in PRESETS:
        r = simulate(tr, hw, system, predictions=pred)
        assert r.prefetch_bytes == pytest.approx(r.useful_bytes + r.wasted_bytes, rel=1e-9)
        assert r.moved_bytes == pytest.approx(r.demand_bytes + r.prefetch_bytes, rel=1e-9)
        assert r.useful_prefetches + r.wasted_prefetches <= r.prefetches_issued
        assert 0 <= r.hit_rate + r.late_prefetch_rate <= 1
        assert 0 <= r.stall_share < 1 and 0 <= r.link_utilisation <= 1


def test_what_each_system_moves(qwen):
    tr = stmoe.load_trace(qwen)
    r = {s: simulate(tr, "accelerator", s, predictions=noisy_oracle(tr, 0.6) if s == "st-moe" else None)
         for s in SYSTEMS}
    assert r["all-resident"].moved_bytes == 0 and r["all-resident"].hit_rate == 1
    assert r["on-demand"].prefetch_bytes == 0 and r["lru-cache"].prefetch_bytes == 0
    assert r["oracle"].wasted_bytes == 0 and r["pre-gated"].wasted_bytes == 0
    assert r["st-moe"].wasted_bytes > 0 and r["st-moe"].useful_bytes > 0
    assert r["pre-gated"].changes_routing and r["adap-gating"].changes_routing
    assert not r["st-moe"].changes_routing
    # adap-gating runs fewer experts, so it moves fewer bytes than on-demand
    assert r["adap-gating"].requests < r["on-demand"].requests
    assert r["adap-gating"].demand_bytes < r["on-demand"].demand_bytes


def test_timing_kernel_buffer_matches_replay(qwen):
    """Demand-only LRU through the timing kernel hits exactly as the buffer replay (and so as
    libCacheSim, see test_buffer)."""
    from stmoe.sim.buffer import BufferSpec, replay, request_stream

    tr = stmoe.load_trace(qwen)
    dec = tr.select(phase="decode")
    for cap in (40, 400):
        r = simulate(tr, "gpu-pcie", "lru-cache", buffer=BufferSpec(cap, prefetch_share=0))
        assert round(r.hit_rate * r.requests) == replay(request_stream(dec.expert_ids, dec.num_experts), cap, "lru")


def test_faster_link_never_slower(synthetic):
    tr, dims = synthetic
    pred = noisy_oracle(tr, 0.7)
    lat = [simulate(tr, stmoe.sim.hardware.preset("accelerator", link_bandwidth=bw), "st-moe",
                    predictions=pred, dims=dims).latency_per_token_s for bw in (64e9, 256e9, 1e12)]
    assert lat[0] > lat[1] > lat[2]


def test_bad_arguments(qwen, granite):
    tr = stmoe.load_trace(qwen)
    with pytest.raises(ConfigError, match="unknown system 'gpu'"):
        simulate(tr, "accelerator", "gpu")
    with pytest.raises(ConfigError, match=r"predictions must have shape \[128, 48, budget\]"):
        simulate(tr, "accelerator", "st-moe", predictions=np.zeros((5, 48, 6), np.int16))
    with pytest.raises(ConfigError, match="lookahead"):
        simulate(tr, "accelerator", "oracle", lookahead=0)
    with pytest.raises(ConfigError, match="needs gate weights"):
        simulate(stmoe.load_trace(granite), "accelerator", "adap-gating")


def test_deeper_lookahead_keeps_nearer_prefetches(qwen):
    """With perfect predictions issued 3 layers ahead, staging holds the nearest layers first;
    the prefetches still arrive and are used."""
    tr = stmoe.load_trace(qwen)
    dec = tr.select(phase="decode")
    r = simulate(tr, "gpu-pcie", "st-moe", predictions=dec.expert_ids, lookahead=3)
    assert r.useful_prefetches > 0 and r.wasted_bytes == 0
    assert r.latency_per_token_s < simulate(tr, "gpu-pcie", "on-demand").latency_per_token_s


@pytest.mark.parametrize("hw", PRESETS)
def test_ordering_with_the_st_moe_predictor(qwen, hw):
    pytest.importorskip("stmoe.predictors")
    tr = stmoe.load_trace(qwen)
    lat = {s: simulate(tr, hw, s).latency_per_token_s for s in ("all-resident", "oracle", "st-moe", "on-demand")}
    assert lat["all-resident"] <= lat["oracle"] <= lat["st-moe"] <= lat["on-demand"], lat


@pytest.mark.parametrize("kwargs, match", [
    (dict(budget=0), "budget: must be an integer from 1"),
    (dict(budget=17), "budget: must be an integer from 1"),
    (dict(colour=1), "unknown argument 'colour'"),
])
def test_bad_knobs_are_named(kwargs, match):
    tr = stmoe.synthetic_trace(200, 4, 16, 2, num_sequences=2, prompt_tokens=10, seed=3)
    with pytest.raises(ConfigError, match=match):
        simulate(tr, "accelerator", "st-moe", dims=model_dims(tr, hidden=64, ffn=128), **kwargs)


def test_unit_totals_add_up_and_ratios_carry_paired_intervals():
    from stmoe.bootstrap import ratio_interval
    tr = stmoe.synthetic_trace(1200, 6, 16, 2, num_sequences=12, prompt_tokens=8, seed=2)
    dims = model_dims(tr, hidden=2048, ffn=768, dtype="bfloat16")
    base = simulate(tr, "gpu-pcie", "on-demand", dims=dims)
    cache = simulate(tr, "gpu-pcie", "lru-cache", dims=dims).relative_to(base)
    for r in (base, cache):
        assert len(r.per_unit.latency_s) == 12 and r.per_unit.units == "12 sequences"
        assert r.per_unit.latency_s.sum() == pytest.approx(r.latency_per_token_s * r.tokens, rel=1e-12)
        assert r.per_unit.energy_j.sum() == pytest.approx(r.energy_per_token_j * r.tokens, rel=1e-12)
    row = cache.row()
    for name in ("speedup_vs_on_demand", "energy_efficiency_vs_on_demand"):
        assert row[f"{name}_ci_low"] < row[name] < row[f"{name}_ci_high"]
    # paired: the same units drawn for the system and for on-demand
    assert (row["speedup_vs_on_demand_ci_low"], row["speedup_vs_on_demand_ci_high"]) == \
        ratio_interval(base.per_unit.latency_s, cache.per_unit.latency_s)
    again = simulate(tr, "gpu-pcie", "lru-cache", dims=dims).relative_to(base).row()
    assert again == row
    other = simulate(tr, "accelerator", "on-demand", dims=dims)   # a baseline on another machine
    vs = simulate(tr, "gpu-pcie", "lru-cache", dims=dims).relative_to_baseline(other).row()
    assert vs["speedup_vs_baseline_ci_low"] < vs["speedup_vs_baseline"] < vs["speedup_vs_baseline_ci_high"]
    assert base.relative_to(base).row()["speedup_vs_on_demand_ci_low"] == pytest.approx(1.0)


def test_speedup_interval_narrows_with_more_sequences():
    widths = []
    for sequences in (4, 64):
        tr = stmoe.synthetic_trace(100 * sequences, 6, 16, 2, num_sequences=sequences, prompt_tokens=8, seed=2)
        dims = model_dims(tr, hidden=2048, ffn=768, dtype="bfloat16")
        base = simulate(tr, "gpu-pcie", "on-demand", dims=dims)
        row = simulate(tr, "gpu-pcie", "lru-cache", dims=dims).relative_to(base).row()
        widths.append(row["speedup_vs_on_demand_ci_high"] - row["speedup_vs_on_demand_ci_low"])
    assert widths[1] < widths[0] / 2
