"""Specs of the recall curves (notebook 03) hold the numbers they were given."""

import pytest

from stmoe.charts.base import render_svg
from stmoe.charts.predictor_design import recall_curves_chart

ROWS = [{"budget": m, "recall": r, "series": s} for s, base in (("cct", 0.3), ("history", 0.2))
        for m, r in ((1, base), (2, base + 0.2))]


def test_recall_curves_chart_spec_and_render():
    chart = recall_curves_chart(ROWS, "budget", "recall against budget")
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"]["field"] == "budget" and spec["encoding"]["color"]["field"] == "series"
    assert spec["data"]["values"] == ROWS
    assert "<svg" in render_svg(chart)


def test_too_many_rows_is_refused():
    rows = [{"budget": i, "recall": 0.1, "series": "x"} for i in range(5001)]
    with pytest.raises(ValueError, match="aggregate"):
        recall_curves_chart(rows, "budget", "t")
