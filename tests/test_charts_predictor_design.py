"""Specs of the recall charts (notebook 03) hold the numbers they were given."""

import pytest

from stmoe.charts.base import render_svg
from stmoe.charts.predictor_design import recall_bars_chart, recall_curves_chart

ROWS = [{"budget": m, "recall": r, "series": s} for s, base in (("cct", 0.3), ("history", 0.2))
        for m, r in ((1, base), (2, base + 0.2))]


def test_recall_curves_chart_spec_and_render():
    chart = recall_curves_chart(ROWS, "budget", "recall against budget")
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"]["field"] == "budget" and spec["encoding"]["color"]["field"] == "series"
    assert spec["data"]["values"] == ROWS
    assert "<svg" in render_svg(chart)


def test_recall_bars_chart_spec_chance_rule_and_svg_meta():
    rows = [{"predictor": "cct", "recall": 0.61}, {"predictor": "popularity", "recall": 0.33}]
    chart = recall_bars_chart(rows, "recall 0.61 at m = 4", chance=0.125)
    spec = chart.to_dict()
    bars, rule = spec["layer"]
    assert bars["mark"]["type"] == "bar" and rule["mark"]["type"] == "rule"
    assert bars["data"]["values"] == rows
    assert bars["encoding"]["y"]["sort"] == ["cct", "popularity"]
    assert rule["data"]["values"] == [{"chance": 0.125}]
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    assert "recall 0.61 at m = 4" in render_svg(chart)


def test_too_many_rows_is_refused():
    rows = [{"budget": i, "recall": 0.1, "series": "x"} for i in range(5001)]
    with pytest.raises(ValueError, match="aggregate"):
        recall_curves_chart(rows, "budget", "t")
