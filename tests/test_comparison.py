"""`stmoe.sim.comparison`: st-moe against the fastest cache baseline, with its paired interval."""

import pytest

import stmoe
from stmoe.bootstrap import ratio_interval
from stmoe.sim.comparison import compare_systems, over_best_cache, reference_dims
from stmoe.sim.hardware import preset
from stmoe.sim.systems import without_predictions
from stmoe.splits import split_leading


@pytest.fixture(scope="module")
def case():
    """Eight sequences of a bundled trace, four simulated and four their profile, Qwen3-sized
    experts on gpu-pcie with a quarter of the experts buffered: the buffer caches, and st-moe's
    prefetches change its latency."""
    tr = stmoe.load_trace("tiny-moe-code")
    tr = tr.select(sequences=tr.sequence_ids()[:8])
    profile, sim = split_leading(tr, 4)
    dims = reference_dims(tr)
    hw = preset("gpu-pcie", buffer_bytes=64 * float(dims.expert_bytes.max()))
    return sim, profile, dims, hw


def test_over_best_cache_carries_a_paired_deterministic_interval(case):
    sim, profile, dims, hw = case
    rows, _ = compare_systems(sim, hw, ["lru-cache", "hot-set", "st-moe"], dims=dims, profile=profile)
    cache = over_best_cache(rows)
    by = {r["system"]: r for r in rows}
    best = min(("lru-cache", "hot-set"), key=lambda n: by[n]["latency_per_token_s"])
    assert cache["baseline"] == best and cache["intervals"].startswith("95% intervals: percentile bootstrap over 4 sequences")
    for field in ("speedup", "energy_efficiency"):
        assert cache[f"{field}_ci_low"] <= cache[field] <= cache[f"{field}_ci_high"]
    assert cache["speedup_ci_low"] < cache["speedup_ci_high"]      # two different systems vary apart
    # paired: both systems' units drawn alike, by the one bootstrap helper
    assert (cache["speedup_ci_low"], cache["speedup_ci_high"]) == ratio_interval(
        by[best]["per_unit"]["latency_s"], by["st-moe"]["per_unit"]["latency_s"])
    again, _ = compare_systems(sim, hw, ["lru-cache", "hot-set", "st-moe"], dims=dims, profile=profile)
    assert over_best_cache(again) == cache


def test_identical_systems_have_a_zero_width_interval_at_one(case):
    """st-moe with its predictions off is lru-cache exactly: every unit's totals agree, so every
    resample gives 1."""
    sim, profile, dims, hw = case
    off = without_predictions("st-moe")
    rows, _ = compare_systems(sim, hw, ["lru-cache", off], dims=dims, profile=profile)
    cache = over_best_cache(rows, system=off.name)
    assert cache["baseline"] == "lru-cache"
    for field in ("speedup", "energy_efficiency"):
        assert cache[field] == cache[f"{field}_ci_low"] == cache[f"{field}_ci_high"] == 1.0


def test_over_best_cache_needs_a_cache_baseline(case):
    sim, profile, dims, hw = case
    rows, _ = compare_systems(sim, hw, ["on-demand", "st-moe"], dims=dims, profile=profile)
    assert over_best_cache(rows) is None
