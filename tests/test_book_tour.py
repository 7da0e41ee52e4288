"""Load time against compute time, and the latency grid the tour's explorer looks up."""

import pytest

import stmoe
from stmoe.book.tour import gain_at, latency_grid, layer_budget
from stmoe.errors import ConfigError
from stmoe.sim.buffer import experts_held
from stmoe.sim.comparison import reference_dims
from stmoe.sim.hardware import model_dims, preset
from stmoe.sim.timing import layer_costs, simulate
from stmoe.splits import split_leading


def test_layer_budget_on_qwen(qwen):
    tr = stmoe.load_trace(qwen)
    dims = model_dims(tr)
    pcie, acc = layer_budget(tr, "gpu-pcie"), layer_budget(tr, "accelerator")
    hw = preset("gpu-pcie")
    # six copies back to back; the link's fixed latency overlaps them, so it is paid once
    assert pcie["load_layer_s"] == pytest.approx(hw.link_latency + 6 * dims.expert_bytes.mean() / hw.link_bandwidth)
    # over PCIe loading a layer's experts takes far longer than computing it
    assert pcie["load_to_compute"] > 10 * acc["load_to_compute"]
    # as the buffer counts its slots: each sized for the largest expert
    assert pcie["buffer_share"] == experts_held(hw.buffer_bytes, dims.expert_bytes) / (48 * 128)
    assert pcie["buffer_share"] < hw.buffer_bytes / (dims.expert_bytes.sum() * 128)


def test_layer_budget_load_is_what_the_simulator_waits_for():
    """On-demand keeps no expert from one layer to the next, and over PCIe one copy takes longer
    than one expert's compute, so each layer of each token waits for its k copies and then
    computes the last: the simulator's stalls plus expert compute per layer are the load time
    plus one expert's compute, exactly."""
    tr = stmoe.synthetic_trace(40, 4, 16, 3, seed=2)
    dims = reference_dims(tr)
    hw = preset("gpu-pcie")
    _, _, t_exp, _, xfer, _ = layer_costs(hw, dims)
    assert (xfer > t_exp).all()   # the case's premise: the link, not compute, sets the pace
    r = simulate(tr, hw, "on-demand", dims=dims, phase=None)
    assert r.hit_rate == 0.0
    waited = (r.time_breakdown_s["stalls"] + r.time_breakdown_s["experts"]) / tr.num_layers
    b = layer_budget(tr, hw, dims)
    assert b["load_layer_s"] + t_exp.mean() == pytest.approx(waited, rel=1e-9)
    # the latency charged once per copy, in series, would overstate the wait by (k - 1) latencies
    in_series = tr.top_k * (hw.link_latency + xfer.mean())
    assert in_series - (waited - t_exp.mean()) == pytest.approx((tr.top_k - 1) * hw.link_latency)


def test_grid_rows_are_what_the_timing_model_gives():
    tr = stmoe.synthetic_trace(300, 6, 16, 2, num_sequences=3, seed=4)
    dims = reference_dims(tr)   # synthetic routing, timed with Qwen3-30B-A3B's sizes
    profile, sim = split_leading(tr, 2)
    assert len(sim.sequence_ids()) == 2 and len(profile.sequence_ids()) == 1
    rows = latency_grid(sim, "gpu-pcie", bandwidths=[10e9, 40e9], buffer_shares=[0.25, 1.0],
                        systems=("on-demand", "oracle", "all-resident"), dims=dims, profile=profile)
    assert len(rows) == 2 * 2 * 3
    row = next(r for r in rows if r["system"] == "oracle" and r["value"] == 40e9 and r["buffer_share"] == 0.25)
    hw = preset("gpu-pcie", link_bandwidth=40e9, buffer_bytes=0.25 * 6 * 16 * dims.expert_bytes.max())
    direct = simulate(sim, hw, "oracle", dims=dims)
    assert row["latency_per_token_s"] == pytest.approx(direct.latency_per_token_s)
    # more bandwidth never makes on-demand slower; a bigger buffer never makes the oracle slower
    od = {(r["value"], r["buffer_share"]): r["latency_per_token_s"] for r in rows if r["system"] == "on-demand"}
    assert od[40e9, 0.25] < od[10e9, 0.25]
    orc = {(r["value"], r["buffer_share"]): r["latency_per_token_s"] for r in rows if r["system"] == "oracle"}
    assert orc[10e9, 1.0] <= orc[10e9, 0.25]


def test_gain_at_is_the_grid_ratio_with_an_interval_around_it():
    tr = stmoe.synthetic_trace(400, 6, 16, 2, num_sequences=4, seed=5)
    dims = reference_dims(tr)
    profile, sim = split_leading(tr, 3)
    rows = latency_grid(sim, "gpu-pcie", bandwidths=[preset("gpu-pcie").link_bandwidth], buffer_shares=[0.25],
                        systems=("lru-cache", "st-moe"), dims=dims, profile=profile)
    latency = {r["system"]: r["latency_per_token_s"] for r in rows}
    g = gain_at(sim, "gpu-pcie", 0.25, dims=dims, profile=profile)
    assert g["speedup"] == pytest.approx(latency["lru-cache"] / latency["st-moe"])
    assert g["speedup_ci_low"] <= g["speedup"] <= g["speedup_ci_high"]
    assert g["speedup_ci_low"] < g["speedup_ci_high"]


def test_bad_grid_arguments():
    tr = stmoe.synthetic_trace(50, 2, 8, 2, seed=0)
    dims = reference_dims(tr)   # synthetic routing, timed with Qwen3-30B-A3B's sizes
    with pytest.raises(ConfigError, match="buffer_shares"):
        latency_grid(tr, "gpu-pcie", bandwidths=[1e9], buffer_shares=[1.5], dims=dims)
