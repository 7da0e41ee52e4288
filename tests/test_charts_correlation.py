"""Specs of the correlation charts (notebook 02) hold the numbers they were given."""

import json

import numpy as np
import pytest

from stmoe.charts.base import render_svg
from stmoe.charts.correlation import (fit_gap_chart, heatmap_experts, mutual_information_chart,
                                      reuse_by_layer_chart, reuse_distance_chart, transition_heatmap)


def test_reuse_by_layer_bars_and_chance_rule():
    spec = reuse_by_layer_chart(np.array([0.4, 0.5]), 0.125, "reuse").to_dict()
    bars, rule = spec["layer"]
    assert bars["mark"]["type"] == "bar"
    assert bars["data"]["values"] == [{"layer": 0, "reuse": 0.4}, {"layer": 1, "reuse": 0.5}]
    assert rule["data"]["values"] == [{"chance": 0.125}] and rule["encoding"]["y"]["field"] == "chance"


def test_reuse_distance_is_normalised_share():
    spec = reuse_distance_chart([6, 3, 1], "distance").to_dict()
    assert [v["share"] for v in spec["data"]["values"]] == pytest.approx([0.6, 0.3, 0.1])
    assert [v["distance"] for v in spec["data"]["values"]] == [1, 2, 3]


def heatmap_cells(spec):
    """(from, to) -> p as Vega derives them from the flat data (row-major, ids from the lists)."""
    calc = {t["as"]: t["calculate"] for t in spec["transform"] if "calculate" in t}
    rows = json.loads(calc["from"].split("[floor")[0])
    cols = json.loads(calc["to"].split("[(datum")[0])
    n = len(cols)
    return {(rows[c // n], cols[c % n]): v for c, v in enumerate(spec["data"]["values"])}


def test_transition_heatmap_cells_and_title_render():
    P = np.array([[0.75, 0.25, 0.0], [0.0, 1.0, 0.0], [0.1, 0.2, 0.7]])
    chart = transition_heatmap(P, "layer 2 -> 3: MI 0.31 bits", layer=2, rows=[0, 2], cols=[1, 2])
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "rect" and spec["encoding"]["color"]["field"] == "p"
    assert heatmap_cells(spec) == {(0, 1): 0.25, (0, 2): 0.0, (2, 1): 0.2, (2, 2): 0.7}
    assert spec["transform"][0]["window"][0]["op"] == "row_number"
    assert spec["encoding"]["y"]["title"] == "expert at layer 2"
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    svg = render_svg(chart)
    assert "MI 0.31 bits" in svg and svg.count("<path") >= 4


def test_heatmap_experts_keeps_the_most_used_when_too_many():
    rows, cols = heatmap_experts(np.arange(8), np.arange(8)[::-1], 16)
    assert rows.tolist() == [4, 5, 6, 7] and cols.tolist() == [0, 1, 2, 3]
    rows, cols = heatmap_experts(np.ones(4), np.ones(4), 16)
    assert rows.tolist() == cols.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="heat map"):
        transition_heatmap(np.zeros((80, 80)), "too big")


def test_mutual_information_and_fit_gap_charts():
    spec = mutual_information_chart([0.5, 0.4], [0.02, 0.03], "MI").to_dict()
    assert {"layer pair": "1->2", "pair": 1, "kind": "shuffled tokens", "bits": 0.03} in spec["data"]["values"]
    rows = [{"trace": "a", "scoring": "in-sample", "recall": 0.8}, {"trace": "a", "scoring": "held-out", "recall": 0.5}]
    chart = fit_gap_chart(rows, "gap")
    assert chart.to_dict()["data"]["values"] == rows and chart.to_dict()["mark"]["type"] == "bar"
    assert "<svg" in render_svg(chart)
