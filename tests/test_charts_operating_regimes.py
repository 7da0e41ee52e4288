"""Specs of the operating-regimes charts hold the numbers the package computed."""

import pytest

import stmoe
from stmoe.book import operating_regimes as op
from stmoe.charts.base import render_svg
from stmoe.charts.operating_regimes import batch_chart, cpu_chart


def test_batch_chart_marks_the_chosen_batch():
    rows, _ = op.batch_rows(stmoe.load_trace("qwen3-30b-a3b"), "gpu-pcie", ("bfloat16",), (1, 4, 16))
    spec = batch_chart(rows, 4, "t", 0.9).to_dict()
    latency, share = spec["hconcat"]
    lines = {(v["regime"], v["batch"]): v["us_per_token"] for v in latency["layer"][0]["data"]["values"]}
    assert lines[("experts streamed", 16)] == pytest.approx(rows[2]["streamed_us_per_token"])
    assert latency["layer"][1]["mark"]["type"] == "rule" and latency["layer"][1]["data"]["values"] == [{"batch": 4}]
    assert {v["batch"] for v in latency["layer"][2]["data"]["values"]} == {4}
    assert share["layer"][1]["data"]["values"] == [{"share_touched": 0.9}]
    marked = {v["routing"]: v["share_touched"] for v in share["layer"][2]["data"]["values"]}
    assert marked == {"measured": pytest.approx(rows[1]["share_touched"]),
                      "uniform routing (chance)": pytest.approx(rows[1]["uniform_share_touched"])}
    assert render_svg(batch_chart(rows, 4, "t")).startswith("<svg")


def test_cpu_chart():
    dims = op.sizes(stmoe.load_trace("qwen3-30b-a3b"))
    rows = [r | {"dtype": "bfloat16"} for r in op.cpu_or_fetch(dims, tokens=(1, 8))]
    spec = cpu_chart(rows, "t").to_dict()
    got = {(v["where"], v["tokens"]): v["us"] for v in spec["data"]["values"]}
    assert got[("compute on the CPU", 8)] == pytest.approx(rows[1]["cpu_us"])
    assert got[("fetch to the GPU", 1)] == pytest.approx(rows[0]["fetch_us"])
    assert "µs" in render_svg(cpu_chart(rows, "t"))
