"""The recall bars (report, recall explorer) and the systems' speedup bars hold the numbers
they were given, in the order asked for."""

from stmoe.charts import theme
from stmoe.charts.base import render_svg
from stmoe.charts.comparison import recall_bars_chart, system_speedup_chart

ROWS = [{"predictor": "cct", "recall": 0.61, "phase": "decode"},
        {"predictor": "popularity", "recall": 0.33, "phase": "decode"},
        {"predictor": "st-moe", "recall": 0.72, "phase": "decode"},
        {"predictor": "random", "recall": 0.12, "phase": "decode"}]


def test_recall_bars_in_the_given_order_with_chance_rule_and_svg_meta():
    chart = recall_bars_chart(ROWS, "recall 0.61 at m = 4", chance=0.125)
    spec = chart.to_dict()
    bars, rule = spec["layer"]
    assert bars["mark"]["type"] == "bar" and rule["mark"]["type"] == "rule"
    assert bars["data"]["values"] == [{"predictor": r["predictor"], "recall": r["recall"]} for r in ROWS]
    assert bars["encoding"]["y"]["sort"] == ["cct", "popularity", "st-moe", "random"]
    assert rule["data"]["values"] == [{"chance": 0.125}] and rule["encoding"]["x"]["field"] == "chance"
    assert spec["height"] == 24 * len(ROWS)
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    assert "recall 0.61 at m = 4" in render_svg(chart)


def test_recall_bars_sorted_by_recall_lowest_first():
    spec = recall_bars_chart(ROWS, "sorted", sort_by_recall=True).to_dict()
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["random", "popularity", "cct", "st-moe"]
    assert len(spec["layer"]) == 1  # no chance given, no rule


def test_recall_bars_sorting_keeps_the_data_and_the_colours():
    given, ranked = (recall_bars_chart(ROWS, "t", 0.1, sort_by_recall=s).to_dict()["layer"][0] for s in (False, True))
    assert given["data"] == ranked["data"]
    assert given["encoding"]["color"] == ranked["encoding"]["color"]
    scale = given["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"]))["st-moe"] == theme.PREDICTOR_COLORS["st-moe"]
    assert given["encoding"]["color"]["legend"] is None  # the axis names the bars


def test_system_speedup_chart_marks_routing_changes():
    rows = [{"system": "on-demand", "changes_routing": False, "speedup_vs_on_demand": 1.0,
             "energy_efficiency_vs_on_demand": 1.0},
            {"system": "pre-gated", "changes_routing": True, "speedup_vs_on_demand": 1.8,
             "energy_efficiency_vs_on_demand": 1.2}]
    spec = system_speedup_chart(rows, "systems").to_dict()
    assert spec["encoding"]["y"]["sort"] == ["on-demand", "pre-gated *"]
    assert {"system": "pre-gated *", "measure": "energy efficiency", "value": 1.2} in spec["data"]["values"]
    assert spec["encoding"]["color"]["scale"]["domain"] == ["speedup", "energy efficiency"]
