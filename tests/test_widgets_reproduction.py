"""The paper explorer: preset and bandwidth drive the comparison the package computes."""

import pytest

import stmoe
from stmoe.book import reproduction as R
from stmoe.sim.hardware import model_dims, preset
from stmoe.widgets.reproduction import paper_explorer


@pytest.fixture(scope="module")
def setup():
    trace = stmoe.synthetic_trace(1200, 4, 16, 2, num_sequences=6, prompt_tokens=16, seed=7)
    dims = model_dims(trace, hidden=128, ffn=64, dtype="float32")
    return trace, dims


def test_controls_drive_chart_and_readout(setup):
    trace, dims = setup
    ex = paper_explorer(trace, dims=dims, max_scored_sequences=2)
    ex.set(hardware="edge-flash", bandwidth=0.5, experts="own")
    hw = preset("edge-flash")
    hw = hw.with_(link_bandwidth=hw.link_bandwidth * 0.5)
    rows, _ = R.compare(trace, hw, systems=("on-demand", "adap-gating", "pre-gated", "st-moe"), dims=dims,
                        max_scored_sequences=2)
    want = {(g["baseline"], g["measure"]): g["measured"] for g in R.gains(rows)}
    got = {(v["baseline"][3:], v["measure"]): v["gain"]
           for v in ex.jchart.spec["data"]["values"] if v["source"] == "measured"}
    assert got == pytest.approx(want)
    assert f"{want['on-demand', 'speedup']:.2f}x faster" in ex.jchart.spec["title"]
    assert "edge-flash with own expert sizes" in ex.readout.value and "2.1 GB/s" in ex.readout.value
    assert f"vs pre-gated {want['pre-gated', 'speedup']:.2f}x" in ex.readout.value
    rows, _ = R.compare(trace, hw, systems=("on-demand", "lru-cache", "hot-set", "st-moe"), dims=dims,
                        max_scored_sequences=2)
    caches = R.cache_gains(rows)
    assert [g["baseline"] for g in caches] == ["lru-cache", "hot-set"]
    assert R.cache_gains_text(caches, digits=2) in ex.readout.value


def test_reference_expert_size_times_the_same_routing_with_larger_experts(setup):
    trace, dims = setup
    ex = paper_explorer(trace, dims=dims, max_scored_sequences=2)
    assert ex.values == {"bandwidth": 1.0, "hardware": "accelerator", "experts": "Qwen3-30B-A3B"}
    big = model_dims(trace, model="qwen3-30b-a3b", dtype="bfloat16")
    rows, _ = R.compare(trace, "accelerator", systems=("on-demand", "adap-gating", "pre-gated", "st-moe"),
                        dims=big, max_scored_sequences=2)
    assert ex.result.gain("pre-gated") == pytest.approx(R.gains(rows)[4]["measured"])
    assert "Qwen3-30B-A3B experts" in ex.chart_title()
