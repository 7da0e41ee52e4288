"""The tour's latency chart draws exactly the grid the timing model computed."""

import stmoe
from stmoe.charts.base import render_svg
from stmoe.charts.tour import latency_chart
from stmoe.sim.comparison import reference_dims
from stmoe.book.tour import latency_grid


def test_latency_chart_spec_and_render():
    tr = stmoe.synthetic_trace(200, 4, 16, 2, num_sequences=2, seed=5)
    dims = reference_dims(tr)   # synthetic routing, timed with Qwen3-30B-A3B's sizes
    grid = latency_grid(tr, "gpu-pcie", bandwidths=[10e9, 20e9, 40e9], buffer_shares=[0.5, 1.0],
                        systems=("on-demand", "oracle"), dims=dims)
    chart = latency_chart(grid, 0.5, 20e9, "title with 1.23x")
    spec = chart.to_dict()
    lines, rule, points = spec["layer"]
    assert lines["mark"]["type"] == "line" and rule["mark"]["type"] == "rule"
    assert lines["encoding"]["x"]["field"] == "bandwidth_gbs" and lines["encoding"]["x"]["scale"]["type"] == "log"
    assert lines["encoding"]["y"]["field"] == "latency_ms"
    drawn = {(r["system"], r["bandwidth_gbs"]): r["latency_ms"] for r in lines["data"]["values"]}
    expect = {(r["system"], r["value"] / 1e9): r["latency_per_token_s"] * 1e3 for r in grid if r["buffer_share"] == 0.5}
    assert drawn == expect
    assert {r["bandwidth_gbs"] for r in points["data"]["values"]} == {20.0}
    assert rule["data"]["values"] == [{"bandwidth_gbs": 20.0}]
    assert spec["title"] == "title with 1.23x"
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    assert "1.23x" in render_svg(chart)
