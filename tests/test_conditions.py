"""The paper's gains as conditions over the machine model's assumptions."""

import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.predictors import predict
from stmoe.sim.comparison import compare_systems, dims_for, split_for_comparison
from stmoe.sim.conditions import PAPER_GAINS, conditions_summary, search_conditions, top_k_trace


def test_rows_are_the_simulated_gains_and_the_summary_counts_them(qwen):
    tr = stmoe.load_trace(qwen)
    grid = {"buffer_bytes": [64 * 2 ** 20, 8 * 2 ** 30], "baseline_hardware": [None, "gpu-pcie"]}
    rows, notes = search_conditions(tr, grid)
    assert len(rows) == 4 and set(PAPER_GAINS) == {"on-demand", "adap-gating", "pre-gated"}
    # a point's gains are those of compare_systems on that machine
    big = next(r for r in rows if r["buffer_bytes"] == 8 * 2 ** 30 and r["baseline_hardware"] is None)
    hw = stmoe.sim.hardware.preset("accelerator", buffer_bytes=8 * 2 ** 30)
    direct, _ = _direct(tr, hw)
    assert big["speedup_vs_on-demand"] == pytest.approx(direct[1]["speedup_vs_on_demand"])
    assert big["meets_speedup_vs_on-demand"] == (big["speedup_vs_on-demand"] >= 2.5)
    # profiled on the first half of the sequences, simulated on the other, as every comparison
    assert notes == split_for_comparison(tr)[2] and "profile: the first half" in notes[0]
    summary = conditions_summary(rows, grid)
    assert summary["all"]["points"] == sum(r["meets_all"] for r in rows)
    assert len(summary["all"]["where"]) == summary["all"]["points"]


def _direct(tr, hw, **kw):
    """compare_systems of on-demand and st-moe as search_conditions runs them: st-moe profiled
    on the first half of the sequences, both simulated on the other."""
    profile, simulated, _ = split_for_comparison(tr)
    return compare_systems(simulated, hw, ["on-demand", "st-moe"], dims=dims_for(tr)[0], **kw,
                           predictions=predict(simulated.select(phase="decode"), "st-moe", profile=profile))


def test_top_k_and_bad_grids(qwen):
    tr = stmoe.load_trace(qwen)
    two = top_k_trace(tr, 2)
    assert two.top_k == 2 and (two.expert_ids == tr.expert_ids[:, :, :2]).all()
    with pytest.raises(ConfigError, match="k must be between 1 and the trace's top_k"):
        top_k_trace(tr, 7)
    with pytest.raises(ConfigError, match="cannot vary 'colour'"):
        search_conditions(tr, {"colour": [1]})


def test_the_dataflow_is_a_condition(qwen):
    tr = stmoe.load_trace(qwen)
    rows, _ = search_conditions(tr, {"dataflow": ["os", "ws"]})
    assert [r["dataflow"] for r in rows] == ["os", "ws"]
    # a point's gains are those of compare_systems on a machine of that dataflow
    hw = stmoe.sim.hardware.preset("accelerator", dataflow="ws")
    direct, _ = _direct(tr, hw)
    assert rows[1]["speedup_vs_on-demand"] == pytest.approx(direct[1]["speedup_vs_on_demand"])
    with pytest.raises(ConfigError, match="dataflow must be one of os, ws, is"):
        search_conditions(tr, {"dataflow": ["rs"]})


def test_the_batch_is_a_condition():
    tr = stmoe.load_trace("tiny-moe-code")
    rows, _ = search_conditions(tr, {"batch": [1, 4]})
    assert [r["batch"] for r in rows] == [1, 4]
    direct, _ = _direct(tr, "accelerator", batch=4)
    assert direct[1]["batch"] == 4
    assert rows[1]["speedup_vs_on-demand"] == pytest.approx(direct[1]["speedup_vs_on_demand"])
    assert rows[0]["speedup_vs_on-demand"] != rows[1]["speedup_vs_on-demand"]
