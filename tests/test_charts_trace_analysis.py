"""Popularity charts draw the shares and statistics the package computes."""

import numpy as np

import stmoe
from stmoe.book.trace_analysis import layer_popularity, phase_popularity
from stmoe.charts.base import render_svg
from stmoe.charts.trace_analysis import expert_share_chart, layer_stat_chart


def test_expert_share_chart_is_sorted_shares_with_uniform_rule():
    counts = np.array([1, 6, 0, 3])
    chart = expert_share_chart(counts, "layer 0: top share 0.60")
    bars, rule = chart.to_dict()["layer"]
    assert bars["mark"]["type"] == "bar" and bars["encoding"]["y"]["field"] == "share"
    assert [(r["expert"], r["share"]) for r in bars["data"]["values"]] == [(1, 0.6), (3, 0.3), (0, 0.1), (2, 0.0)]
    assert rule["data"]["values"] == [{"share": 0.25}]
    assert "0.60" in render_svg(chart)


def test_expert_share_chart_by_id_keeps_expert_order():
    chart = expert_share_chart(np.array([1, 6, 0, 3]), "layer 0", by_id=True)
    bars = chart.to_dict()["layer"][0]
    assert bars["encoding"]["x"]["field"] == "expert"
    assert [(r["expert"], r["share"]) for r in bars["data"]["values"]] == [(0, 0.1), (1, 0.6), (2, 0.0), (3, 0.3)]


def test_layer_stat_chart_holds_each_layers_value():
    tr = stmoe.synthetic_trace(300, 3, 16, 2, seed=1)
    rows = [{"group": "a", **r} for r in layer_popularity(tr)]
    chart = layer_stat_chart(rows, "gini", "Gini per layer", baselines={"a": 0.1})
    lines, rule = chart.to_dict()["layer"]
    assert [r["gini"] for r in lines["data"]["values"]] == [r["gini"] for r in rows]
    assert rule["data"]["values"] == [{"group": "a", "gini": 0.1}]
    assert phase_popularity(tr, "decode")["counts"].sum() == sum(r["requests"] for r in rows)


def test_training_curve_chart_draws_every_curve_point():
    from stmoe.charts.trace_analysis import training_curve_chart, training_curve_rows
    training = {"train_curve": [{"step": 50, "loss": 6.0}, {"step": 100, "loss": 5.0}],
                "heldout_curve": [{"step": 0, "code": 8.3, "prose": 8.3}, {"step": 100, "code": 5.5, "prose": 4.5}]}
    rows = training_curve_rows(training)
    assert {(r["curve"], r["step"], r["loss"]) for r in rows} == {
        ("training", 50, 6.0), ("training", 100, 5.0), ("held-out code", 0, 8.3),
        ("held-out prose", 0, 8.3), ("held-out code", 100, 5.5), ("held-out prose", 100, 4.5)}
    spec = training_curve_chart(training).to_dict()
    assert len(spec["data"]["values"]) == 6 and "held-out prose" in render_svg(training_curve_chart(training))
    try:
        training_curve_chart({})
    except ValueError as exc:
        assert "no loss curve" in str(exc)
    else:
        raise AssertionError("an empty training record must be refused")
