"""Popularity charts draw the shares and statistics the package computes."""

import numpy as np

import stmoe
from stmoe.charts.base import render_svg
from stmoe.charts.trace_analysis import expert_share_chart, layer_stat_chart
from stmoe.book.trace_analysis import layer_popularity, phase_popularity


def test_expert_share_chart_is_sorted_shares_with_uniform_rule():
    counts = np.array([1, 6, 0, 3])
    chart = expert_share_chart(counts, "layer 0: top share 0.60")
    bars, rule = chart.to_dict()["layer"]
    assert bars["mark"]["type"] == "bar" and bars["encoding"]["y"]["field"] == "share"
    assert [(r["expert"], r["share"]) for r in bars["data"]["values"]] == [(1, 0.6), (3, 0.3), (0, 0.1), (2, 0.0)]
    assert rule["data"]["values"] == [{"share": 0.25}]
    assert "0.60" in render_svg(chart)


def test_layer_stat_chart_holds_each_layers_value():
    tr = stmoe.synthetic_trace(300, 3, 16, 2, seed=1)
    rows = [{"group": "a", **r} for r in layer_popularity(tr)]
    chart = layer_stat_chart(rows, "gini", "Gini per layer", baselines={"a": 0.1})
    lines, rule = chart.to_dict()["layer"]
    assert [r["gini"] for r in lines["data"]["values"]] == [r["gini"] for r in rows]
    assert rule["data"]["values"] == [{"group": "a", "gini": 0.1}]
    assert phase_popularity(tr, "decode")["counts"].sum() == sum(r["requests"] for r in rows)
