"""The tornado chart holds the numbers `stmoe.sim.sensitivity` computed, in its order."""

import pytest

from stmoe.book import hardware_tuning as ht
from stmoe.charts.base import render_svg
from stmoe.charts.sensitivity import tornado_chart
from tests.prefetch_data import small_held_out


def test_tornado_chart():
    result = ht.assumption_sensitivity(small_held_out(), "gpu-pcie")
    spec = tornado_chart(result, "tornado").to_dict()
    assert spec["title"] == "tornado" and spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    for panel, (key, base) in zip(spec["hconcat"], (("speedup", result.speedup),
                                                    ("energy_efficiency", result.energy_efficiency))):
        bars, rule = panel["layer"]
        assert bars["mark"]["type"] == "bar" and rule["mark"]["type"] == "rule"
        assert rule["data"]["values"] == [{"baseline": base}]
        assert bars["encoding"]["y"]["sort"] == [r["field"] for r in result.rows]
        got = {(v["constant"], v["end"]): v["value"] for v in bars["data"]["values"]}
        for r in result.rows:
            assert got[(r["field"], "at the low end")] == pytest.approx(r[f"{key}_low"])
            assert got[(r["field"], "at the high end")] == pytest.approx(r[f"{key}_high"])
    assert render_svg(tornado_chart(result, "t")).startswith("<svg")
