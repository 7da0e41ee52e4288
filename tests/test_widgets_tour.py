"""The tour's explorer: moving a slider shows the grid's numbers for that setting."""

import pytest

import stmoe
from stmoe.sim.comparison import reference_dims
from stmoe.widgets.tour import latency_explorer


@pytest.fixture(scope="module")
def explorer():
    tr = stmoe.synthetic_trace(240, 4, 16, 2, num_sequences=2, seed=6)
    dims = reference_dims(tr)   # synthetic routing, timed with Qwen3-30B-A3B's sizes
    return latency_explorer(tr, "gpu-pcie", dims=dims, steps=(0.5, 1, 2), buffer_shares=(0.25, 1.0))


def test_slider_changes_drive_chart_and_readout(explorer):
    explorer.set(bandwidth=50e9, buffer_share=1.0)
    at = {r["system"]: r for r in explorer.grid if r["value"] == 50e9 and r["buffer_share"] == 1.0}
    title = explorer.jchart.spec["title"]
    assert title.startswith("50 GB/s, 100% of experts buffered")
    assert f"oracle {at['oracle']['speedup_vs_on_demand']:.2f}x" in title
    assert f"on-demand {at['on-demand']['latency_per_token_s'] * 1e3:.3g} ms" in explorer.readout.value
    points = [l for l in explorer.jchart.spec["layer"] if l["mark"]["type"] == "point"][0]
    assert {r["system"]: r["latency_ms"] for r in points["data"]["values"]} == \
        {s: r["latency_per_token_s"] * 1e3 for s, r in at.items()}


def test_unknown_control_is_refused(explorer):
    with pytest.raises(KeyError, match="no control"):
        explorer.set(speed=1)
