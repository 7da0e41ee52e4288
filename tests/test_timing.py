"""Timing and energy: ordering of the systems, conservation of bytes, edge cases."""

from dataclasses import replace

import numpy as np
import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.sim.comparison import compare_systems, dims_for, readable, reference_dims, split_for_comparison
from stmoe.sim.hardware import model_dims
from stmoe.sim.systems import ADAPTIVE_KEPT_FRACTION, SYSTEMS, calibrated_threshold, runnable, without_predictions
from stmoe.sim.timing import late_note, simulate
from stmoe.splits import split_leading
from stmoe.trace import Trace

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


def tiny_case():
    """Eight sequences of a bundled trace (it has gate weights and the stale gate): the first
    four simulated, the rest their profile; Qwen3-sized experts, so the buffers do not hold all."""
    tr = stmoe.load_trace("tiny-moe-code")
    tr = tr.select(sequences=tr.sequence_ids()[:8])
    profile, sim = split_leading(tr, 4)
    return sim, profile, reference_dims(tr)


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_bytes_are_conserved(qwen, system):
    tr, profile, dims = stmoe.load_trace(qwen), None, None
    if not runnable([system], tr)[0]:      # hot-set needs a profile, the stale-gate systems the stale gate
        tr, profile, dims = tiny_case()
    pred = noisy_oracle(tr, 0.5) if system == "st-moe" else None
    for hw in PRESETS:
        r = simulate(tr, hw, system, predictions=pred, profile=profile, dims=dims)
        assert r.prefetch_bytes == pytest.approx(r.useful_bytes + r.wasted_bytes, rel=1e-9)
        assert r.moved_bytes == pytest.approx(r.demand_bytes + r.prefetch_bytes, rel=1e-9)
        # every issued prefetch ends one way: used, wasted, or cancelled unstarted (demanded or not needed)
        assert r.prefetches_issued == (r.useful_prefetches + r.wasted_prefetches + r.demanded_unstarted_prefetches
                                       + r.unneeded_unstarted_prefetches)
        assert 0 <= r.hit_rate + r.late_prefetch_rate <= 1
        assert 0 <= r.stall_share < 1 and 0 <= r.link_utilisation <= 1


def test_what_each_system_moves(qwen):
    tr = stmoe.load_trace(qwen)
    r = {s: simulate(tr, "accelerator", s, predictions=noisy_oracle(tr, 0.6) if s == "st-moe" else None)
         for s in runnable(SYSTEMS, tr)[0]}
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


# st-moe against the same buffer used as a plain LRU cache, as `stmoe simulate` runs them (the
# trace's profile half fits the predictor, the other half is simulated). Nothing guarantees it:
# a wrong prefetch lands in the cache and can evict an expert LRU would have kept. We allow
# 0.5%: a gap below that is not one the book reports (it prints speedups to two decimals, which
# on these runs is about 1%), and the traces will be re-recorded, so the margin is not tuned to
# today's numbers (measured today: st-moe is faster on all six).
ST_MOE_VS_LRU_TOLERANCE = 0.005


@pytest.mark.parametrize("trace", ["tiny-moe-code", "tiny-moe-prose", "qwen3-30b-a3b"])
@pytest.mark.parametrize("hw", ["accelerator", "gpu-pcie"])
def test_st_moe_is_never_slower_than_lru_cache(trace, hw):
    tr = stmoe.load_trace(trace)
    profile, sim, _ = split_for_comparison(tr)
    dims, _ = dims_for(tr)
    rows, _ = compare_systems(sim, hw, ["lru-cache", "st-moe"], dims=dims, profile=profile)
    lru, st = (r["latency_per_token_s"] for r in rows)
    assert st <= lru * (1 + ST_MOE_VS_LRU_TOLERANCE), (trace, hw, st, lru)


def test_predictions_off_is_the_same_buffer_as_a_plain_cache():
    """The ablation: st-moe's buffer with no predictions. Its prediction-aware policy with
    nothing predicted evicts the least recently used, so with st-moe's staging share 0 it is
    lru-cache exactly; staging slots reserved for nothing only shrink the cache (LRU hits in a
    smaller cache are a subset of those in a larger one)."""
    sim, _, dims = tiny_case()
    off = without_predictions("st-moe")
    assert off.name == "st-moe, predictions off" and off.prefetch == "none" and off.policy == "predictive"
    slot = float(dims.expert_bytes.max())
    quarter = stmoe.sim.hardware.preset("gpu-pcie", buffer_bytes=64 * slot)   # a quarter of the 256 experts
    for hw in ("accelerator", "gpu-pcie", quarter):
        lru = simulate(sim, hw, "lru-cache", dims=dims)
        r = simulate(sim, hw, off, dims=dims)
        assert r.latency_per_token_s == lru.latency_per_token_s and r.hit_rate == lru.hit_rate
        staged = simulate(sim, hw, without_predictions(replace(SYSTEMS["st-moe"], staging_share=0.25)), dims=dims)
        assert staged.hit_rate <= lru.hit_rate
    assert 0 < staged.hit_rate < lru.hit_rate    # the quarter buffer caches, and loses hits to idle staging


def test_hot_set_pins_what_lru_evicts():
    """One layer whose requests cycle through 8 experts, a buffer of 4: LRU never hits; hot-set
    pins 2 (the profile's most used, the lower ids on ties) and hits them every time but their
    first."""
    T, cycle = 800, 8
    ids = (np.arange(T) % cycle).reshape(T, 1, 1)
    trace = Trace(ids, num_experts=cycle, sequence=np.repeat([0, 1], T // 2))
    profile, sim = trace.select(sequences=[0]), trace.select(sequences=[1])
    dims = model_dims(trace, hidden=64, ffn=128, dtype="bfloat16")
    hw = stmoe.sim.hardware.preset("accelerator", buffer_bytes=4 * float(dims.expert_bytes.max()))
    assert simulate(sim, hw, "lru-cache", dims=dims).hit_rate == 0
    r = simulate(sim, hw, "hot-set", dims=dims, profile=profile)
    assert r.hit_rate == 2 * (T // 2 // cycle - 1) / (T // 2)
    assert any("the 2 experts most used by the profile's 400 decode tokens" in n for n in r.notes)


def test_stale_gate_systems():
    sim, profile, dims = tiny_case()
    r = {s: simulate(sim, "gpu-pcie", s, dims=dims, profile=profile)
         for s in ("lru-cache", "speculative-gate", "adapmoe", "adap-gating")}
    spec = r["speculative-gate"]
    assert spec.prefetches_issued > 0 and spec.useful_prefetches > 0 and not spec.changes_routing
    assert spec.requests == r["lru-cache"].requests
    assert any(n.startswith("predictions: stale-gate, budget 4, lookahead 1") for n in spec.notes)
    assert r["adapmoe"].changes_routing and r["adapmoe"].prefetches_issued > 0
    # both adaptive systems keep the same calibrated share of the requests
    assert r["adapmoe"].requests == r["adap-gating"].requests
    assert r["adapmoe"].requests == pytest.approx(ADAPTIVE_KEPT_FRACTION * r["lru-cache"].requests, rel=0.01)
    ahead = simulate(sim, "gpu-pcie", "speculative-gate", dims=dims, profile=profile, lookahead=2)
    assert any("lookahead 1, not 2" in n for n in ahead.notes)


@pytest.mark.parametrize("trace", ["tiny-moe-code", "qwen3-30b-a3b"])
def test_adaptive_gating_keeps_the_stated_fraction(trace):
    tr = stmoe.load_trace(trace).select(phase="decode")
    for kept in (0.5, ADAPTIVE_KEPT_FRACTION, 0.9):
        r = simulate(tr, "accelerator", "adap-gating", kept_fraction=kept)
        on_demand = simulate(tr, "accelerator", "on-demand")
        assert r.requests / on_demand.requests == pytest.approx(kept, abs=0.005)
        threshold = calibrated_threshold(tr, kept)
        assert any(f"threshold {threshold:.4g} (set on the simulated tokens' gate weights to keep "
                   f"{kept:.0%}) keeps {r.requests / on_demand.requests:.1%}" in n for n in r.notes)
    with pytest.raises(ConfigError, match="kept_fraction must be in"):
        simulate(tr, "accelerator", "adap-gating", kept_fraction=0)
    with pytest.raises(ConfigError, match="not both"):
        simulate(tr, "accelerator", "adap-gating", kept_fraction=0.5, threshold=0.1)


def test_systems_that_cannot_run_are_skipped_or_refused(qwen):
    tr = stmoe.load_trace(qwen)
    names, notes = runnable(SYSTEMS, tr)
    assert {"hot-set", "speculative-gate", "adapmoe"}.isdisjoint(names)
    assert any(n.startswith("speculative-gate skipped:") and "no stale_gate field" in n for n in notes)
    assert any(n.startswith("hot-set skipped:") and "needs a profile" in n for n in notes)
    with pytest.raises(ConfigError, match="hot-set needs a profile"):
        compare_systems(tr, "accelerator", ["on-demand", "hot-set"])
    with pytest.raises(ConfigError, match="speculative-gate needs the stale gate"):
        simulate(tr, "accelerator", "speculative-gate")
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


def test_unstarted_prefetches_are_told_apart_by_whether_they_were_needed():
    """One layer, k = 2, each token its own two experts; the prediction for each token is its two
    experts (right) and one never routed (wrong). On a link far slower than a layer, at each
    routing the first right prefetch is on the wire (late, useful), the second right one not yet
    started (demanded before the link started it: cancelled, fetched on demand) and the wrong one
    not started either (never needed: dropped, no byte moved). On a fast link every right one
    arrives in time and the wrong one too (wasted once, then kept in the buffer)."""
    T = 50
    ids = np.stack([np.arange(T) * 2, np.arange(T) * 2 + 1], axis=1).reshape(T, 1, 2)
    trace = Trace(ids, num_experts=2 * T + 1, phase=np.full(T, stmoe.DECODE))
    wrong = np.full((T, 1, 1), 2 * T)
    pred = np.concatenate([ids, wrong], axis=2).astype(np.int16)
    dims = model_dims(trace, hidden=64, ffn=128, dtype="bfloat16")
    roomy = 4 * T * float(dims.expert_bytes.max())   # never evicts
    slow = simulate(trace, stmoe.sim.hardware.preset("accelerator", link_bandwidth=1e6, buffer_bytes=roomy),
                    "st-moe", dims=dims, predictions=pred)
    assert (slow.prefetches_issued, slow.useful_prefetches, slow.demanded_unstarted_prefetches,
            slow.unneeded_unstarted_prefetches, slow.wasted_prefetches) == (3 * T, T, T, T, 0)
    assert slow.late_prefetch_rate == 0.5 and slow.hit_rate == 0
    fast = simulate(trace, stmoe.sim.hardware.preset("accelerator", link_bandwidth=1e12, buffer_bytes=roomy),
                    "st-moe", dims=dims, predictions=pred)
    assert fast.hit_rate == 1 and fast.useful_prefetches == 2 * T
    assert fast.demanded_unstarted_prefetches == fast.unneeded_unstarted_prefetches == 0
    assert fast.wasted_prefetches == 1 and fast.prefetches_issued == 2 * T + 1


def test_pre_gated_hits_nothing_when_its_prefetches_arrive_late_and_says_why():
    """pre-gated prefetches exactly the next layer's experts and keeps only two layers'. On the
    accelerator the link brings them during one layer: hits. On gpu-pcie it cannot: every
    request finds its prefetch on the wire (late) or not yet started (a right prediction too
    late: cancelled and fetched on demand, a miss), so the hit rate is 0 although every request
    was prefetched; the notes say so."""
    tr = stmoe.load_trace("tiny-moe-code")
    tr = tr.select(sequences=tr.sequence_ids()[:2])
    dims, _ = dims_for(tr)
    fast = simulate(tr, "accelerator", "pre-gated", dims=dims)
    assert fast.hit_rate > 0.99 and not any("still on the link" in n for n in fast.notes)
    slow = simulate(tr, "gpu-pcie", "pre-gated", dims=dims)
    assert slow.prefetches_issued == slow.requests and slow.hit_rate == 0 and slow.late_prefetch_rate > 0
    # each prefetch was used late or, not yet started, cancelled for a demand fetch (a miss)
    assert slow.useful_prefetches == round(slow.late_prefetch_rate * slow.requests)
    assert slow.demanded_unstarted_prefetches == slow.requests - slow.useful_prefetches > 0
    assert slow.wasted_prefetches == slow.unneeded_unstarted_prefetches == 0
    assert late_note("pre-gated", 0.0, slow.late_prefetch_rate, slow.link_utilisation, slow.requests,
                     slow.requests) in slow.notes
    assert readable(slow.row())["late"] == slow.late_prefetch_rate


def lockstep_case(routes, E=16):
    """A decode trace of one sequence per entry of `routes` ([B][S][L][k] expert ids), with
    sizes given (hidden 2048, expert FFN 768, bf16)."""
    ids = np.asarray(routes, np.int16)
    B, S = ids.shape[:2]
    tr = Trace(ids.reshape(B * S, *ids.shape[2:]), num_experts=E, phase=np.full(B * S, stmoe.DECODE),
               sequence=np.repeat(np.arange(B), S))
    return tr, model_dims(tr, hidden=2048, ffn=768, dtype="bfloat16")


def expert_seconds(hw, dims, m):
    """One expert's time for m tokens by hand: its three matrices' fold cycles at the clock, or
    reading its weights from the buffer, whichever is slower."""
    rows, cols = hw.pe_array
    cyc = sum(stmoe.sim.systolic.cycles(m, k, n, rows, cols, hw.dataflow) for k, n in dims.expert_matrices)
    return max(cyc / hw.clock_hz, float(dims.expert_bytes[0]) / hw.local_bandwidth)


def fixed_seconds(hw, dims, m):
    """A step's time outside the experts for m tokens of m sequences: per layer attention and
    router (weights read once) and the KV caches (one each), then the LM head."""
    from stmoe.sim.systolic import dense_time, head_time
    from stmoe.sim.timing import roofline
    bw = hw.dense_read_bandwidth
    per_layer = (np.maximum(dense_time(hw, dims, m), dims.dense_bytes / bw)
                 + roofline(m * dims.kv_macs, m * dims.kv_bytes, hw, bw))
    return float(per_layer.sum()) + max(head_time(hw, dims, m), dims.head_bytes / bw)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_identical_sequences_batch_to_one_load_per_expert_with_m_tokens(dataflow):
    B, S, L, k = 4, 5, 2, 2
    one = [[[(s + l) % 16, (s + l + 3) % 16] for l in range(L)] for s in range(S)]
    tr, dims = lockstep_case([one] * B)
    hw = stmoe.sim.hardware.preset("accelerator", dataflow=dataflow)
    res = simulate(tr, hw, "all-resident", dims=dims, batch=B)
    assert (res.batch, res.steps, res.tokens, res.requests) == (B, S, B * S, S * L * k)
    step = fixed_seconds(hw, dims, B) + L * k * expert_seconds(hw, dims, B)
    # output-stationary maps the B tokens onto the array's rows (no more folds); weight-stationary
    # streams them, B - 1 more cycles a fold
    more = expert_seconds(hw, dims, B) - expert_seconds(hw, dims, 1)
    assert more == 0 if dataflow == "os" else more > 0
    assert res.latency_per_token_s == pytest.approx(step / B, rel=1e-12)
    assert res.time_breakdown_s["experts"] == pytest.approx(L * k * expert_seconds(hw, dims, B) / B, rel=1e-12)
    assert sum(res.time_breakdown_s.values()) == pytest.approx(res.latency_per_token_s, rel=1e-12)
    single = simulate(tr, hw, "all-resident", dims=dims)
    assert single.requests == B * S * L * k and single.batch == 1 and single.steps == B * S
    # every token still does its MACs: the compute energy per token is batch 1's
    assert res.energy_breakdown_j["compute"] == pytest.approx(single.energy_breakdown_j["compute"], rel=1e-12)
    # on demand, each expert of a step crosses the link once for the B tokens
    od, od1 = (simulate(tr, hw, "on-demand", dims=dims, batch=b) for b in (B, 1))
    assert od.demand_bytes == S * L * k * float(dims.expert_bytes[0]) == od1.demand_bytes / B
    assert any(n.startswith(f"batch {B}: ") and "union" in n for n in res.notes)


def test_disjoint_experts_make_a_union_of_batch_times_k():
    B, S, L, k = 3, 4, 2, 2
    routes = [[[[j * k + (s + l) % k, j * k + (s + l + 1) % k] for l in range(L)] for s in range(S)]
              for j in range(B)]
    tr, dims = lockstep_case(routes)
    hw = stmoe.sim.hardware.preset("accelerator")
    res = simulate(tr, hw, "all-resident", dims=dims, batch=B)
    assert res.requests == S * L * B * k
    step = fixed_seconds(hw, dims, B) + L * B * k * expert_seconds(hw, dims, 1)
    assert res.latency_per_token_s == pytest.approx(step / B, rel=1e-12)
    assert any(f"needs {B * k:.2f} experts on average" in n for n in res.notes)


def test_batch_left_over_sequences_and_errors():
    tr, dims = lockstep_case([[[[s % 16, (s + 1) % 16]] for s in range(3)]] * 5)
    res = simulate(tr, "accelerator", "oracle", dims=dims, batch=2)
    assert res.tokens == 15 and res.steps == 9     # 3 groups of 3 steps, the last of one sequence
    assert any("the last of 1 (a smaller last batch)" in n for n in res.notes)
    assert any("predictions are the union" in n for n in res.notes)
    assert res.per_unit.units == "3 groups of up to 2 sequences decoded in lockstep"
    with pytest.raises(ConfigError, match="batch 8 decodes 8 sequences in lockstep; trace .* has 5"):
        simulate(tr, "accelerator", "oracle", dims=dims, batch=8)
    with pytest.raises(ConfigError, match="batch must be a positive whole number"):
        simulate(tr, "accelerator", "oracle", dims=dims, batch=0)


def test_batched_comparison_runs_every_system_at_the_batch():
    sim, profile, dims = tiny_case()
    rows, notes = compare_systems(sim, "accelerator", None, dims=dims, profile=profile, batch=2)
    assert {r["batch"] for r in rows} == {2} and all(r["steps"] * 2 == r["tokens"] for r in rows)
    by = {r["system"]: r for r in rows}
    assert by["all-resident"]["latency_per_token_s"] <= by["on-demand"]["latency_per_token_s"]
    assert by["st-moe"]["speedup_vs_on_demand_ci_low"] is not None
    assert "2 groups of up to 2 sequences decoded in lockstep" in " ".join(notes)
