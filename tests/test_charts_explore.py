"""The Pareto chart holds the explored points and marks exactly the front; chapter 05's shipped
results match their spec."""

import pytest

pytest.importorskip("pyarrow")

from stmoe.book import hardware_tuning as ht  # noqa: E402
from stmoe.charts import theme  # noqa: E402
from stmoe.charts.base import render_svg  # noqa: E402
from stmoe.charts.explore import pareto_chart  # noqa: E402


def _row(system, mib, latency_us):
    return {"system": system, "buffer_bytes": mib * 2 ** 20, "buffer_area_mm2": mib * 0.25,
            "latency_per_token_s": latency_us * 1e-6, "energy_per_token_j": 1e-4,
            "link_bandwidth": 256e9, "lookahead": 1}


def test_front_points_are_solid_and_coloured_by_system():
    rows = [_row("st-moe", 1, 30), _row("lru-cache", 1, 40), _row("lru-cache", 8, 20), _row("on-demand", 8, 50)]
    chart = pareto_chart(rows)
    spec = chart.to_dict()
    points = spec["layer"][1]
    front = {(v["system"], v["buffer MiB"]) for v in spec["data"]["values"] if v["front"]}
    assert front == {("st-moe", 1), ("lru-cache", 8)}
    scale = points["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"]))["st-moe"] == theme.SYSTEM_COLORS["st-moe"]
    assert spec["layer"][0]["mark"]["type"] == "line"
    assert render_svg(chart).startswith("<svg")
    with pytest.raises(ValueError, match="axis 'hit_rate'"):
        pareto_chart(rows, y="hit_rate")


def test_shipped_results_cover_the_spec_and_name_the_front():
    rows = ht.explored_designs()
    assert len(rows) == 290
    headline = ht.front_headline(rows)
    assert headline.startswith("7 of 290 designs on the front: st-moe 1-")
