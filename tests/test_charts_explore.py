"""The Pareto chart holds the explored points and marks exactly the front, and says its tolerance."""

import pytest

pytest.importorskip("pyarrow")

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
    assert "within 0.10% of each other count as equal" in spec["title"]["subtitle"]
    scale = points["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"]))["st-moe"] == theme.SYSTEM_COLORS["st-moe"]
    assert spec["layer"][0]["mark"]["type"] == "line"
    assert render_svg(chart).startswith("<svg")
    with pytest.raises(ValueError, match="axis 'hit_rate'"):
        pareto_chart(rows, y="hit_rate")


def test_near_ties_are_on_the_front_together():
    # 1 MiB apart is clear; 30.01 against 30 µs is a tie within 0.1%, not at tolerance 0
    rows = [_row("st-moe", 1, 30), _row("lru-cache", 1, 30.01), _row("st-moe", 8, 29.99)]
    on = {0.0: set(), 1e-3: set()}
    for tol in on:
        spec = pareto_chart(rows, tolerance=tol).to_dict()
        on[tol] = {(v["system"], v["buffer MiB"]) for v in spec["data"]["values"] if v["front"]}
    assert on[0.0] == {("st-moe", 1), ("st-moe", 8)}
    assert on[1e-3] == {("st-moe", 1), ("lru-cache", 1)}
    assert "strict: no tolerance" in pareto_chart(rows, tolerance=0).to_dict()["title"]["subtitle"]
