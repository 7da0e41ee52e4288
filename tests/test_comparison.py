"""`stmoe.sim.comparison`: st-moe against the fastest pure cache or other prefetcher, with its paired interval."""

import pytest

import stmoe
from stmoe.bootstrap import ratio_interval
from stmoe.sim.comparison import compare_systems, over_best, reference_dims
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


def test_over_best_carries_a_paired_deterministic_interval(case):
    sim, profile, dims, hw = case
    rows, _ = compare_systems(sim, hw, ["lru-cache", "hot-set", "st-moe"], dims=dims, profile=profile)
    cache = over_best(rows)
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
    assert over_best(again) == cache


def test_identical_systems_have_a_zero_width_interval_at_one(case):
    """st-moe with its predictions off is lru-cache exactly: every unit's totals agree, so every
    resample gives 1."""
    sim, profile, dims, hw = case
    off = without_predictions("st-moe")
    rows, _ = compare_systems(sim, hw, ["lru-cache", off], dims=dims, profile=profile)
    cache = over_best(rows, system=off.name)
    assert cache["baseline"] == "lru-cache"
    for field in ("speedup", "energy_efficiency"):
        assert cache[field] == cache[f"{field}_ci_low"] == cache[f"{field}_ci_high"] == 1.0


def test_over_best_needs_a_cache_baseline(case):
    sim, profile, dims, hw = case
    rows, _ = compare_systems(sim, hw, ["on-demand", "st-moe"], dims=dims, profile=profile)
    assert over_best(rows) is None


def test_pure_caches_prefetch_nothing_and_the_other_prefetcher_is_compared_apart(case):
    """The pure caches are the systems that prefetch nothing; speculative-gate prefetches (by the
    stale gate), so the fastest "cache" is never it."""
    from stmoe.sim.systems import CACHE_BASELINES, OTHER_PREFETCHERS, PURE_CACHES, get_system
    assert all(get_system(n).prefetch == "none" for n in PURE_CACHES)
    assert all(get_system(n).prefetch != "none" for n in OTHER_PREFETCHERS)
    assert set(CACHE_BASELINES) == set(PURE_CACHES) | set(OTHER_PREFETCHERS)
    sim, profile, dims, hw = case
    rows, _ = compare_systems(sim, hw, ["lru-cache", "speculative-gate", "st-moe"], dims=dims, profile=profile)
    by = {r["system"]: r for r in rows}
    # here the prefetcher is faster than the cache, so a "best cache" drawn from both would be it
    assert by["speculative-gate"]["latency_per_token_s"] < by["lru-cache"]["latency_per_token_s"]
    assert over_best(rows)["baseline"] == "lru-cache"
    assert over_best(rows, OTHER_PREFETCHERS)["baseline"] == "speculative-gate"
