"""The cache/prefetch split explorer: every point simulated once when it is built, so a slider
looks rows up; what it shows is what the package computes at that point."""

import pytest

from stmoe.book import expert_buffer as eb
from stmoe.errors import ConfigError
from stmoe.sim.systems import SYSTEMS
from stmoe.widgets.expert_buffer import split_explorer
from tests.prefetch_data import small_held_out


def test_split_explorer_follows_its_sliders():
    data = small_held_out()
    ex = split_explorer(data, sequences=2, hardware="gpu-pcie", capacity_fractions=(0.1, 0.25), shares=(0.0, 0.5))
    assert ex.controls["share"].value == SYSTEMS["st-moe"].staging_share   # st-moe's own default
    grid = ex.grid
    ex.set(capacity=64, share=0.5)
    assert ex.grid is grid   # nothing simulated again
    cache, hot, st = eb.split_outcomes(data.subset(2), 64, 0.5, hardware="gpu-pcie")
    assert f"st-moe with 50% staging {st['latency_per_token_s'] * 1e6:.1f} µs per token" in ex.readout.value
    assert f"ready {st['hit_rate']:.3f}, in flight {st['late_prefetch_rate']:.3f}" in ex.readout.value
    assert f"cache only {cache['latency_per_token_s'] * 1e6:.1f} µs" in ex.readout.value
    assert f"hot-set (50% pinned) {hot['latency_per_token_s'] * 1e6:.1f} µs" in ex.readout.value
    assert f"{st['wasted_prefetches']} wasted" in ex.readout.value
    title = ex.chart_title()
    assert title.startswith("capacity 64 experts, staging 50%: st-moe")
    points = ex.jchart.spec["layer"][2]["data"]["values"]
    assert {p["share"] for p in points} == {0.5}
    assert next(p for p in points if p["series"] == "st-moe")["latency_us"] == \
        pytest.approx(st["latency_per_token_s"] * 1e6)
    assert ex.static().data.startswith("<svg")


def test_split_explorer_refuses_a_setting_it_has_not_simulated():
    with pytest.raises(ConfigError, match="share 0.33"):
        split_explorer(small_held_out(), sequences=2, share=0.33)
