"""Specs of the expert-buffer chapter's charts hold the numbers the package computed."""

import pytest

from stmoe.book import expert_buffer as eb
from stmoe.charts.base import render_svg
from stmoe.charts.expert_buffer import outcome_chart, replacement_chart, share_chart, split_chart
from tests.prefetch_data import small_held_out, small_trace


def test_replacement_chart():
    rows = eb.replacement_curves(small_trace(), sizes=[16, 64])
    spec = replacement_chart(rows, "hit rate").to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"]["field"] == "capacity" and spec["encoding"]["color"]["field"] == "policy"
    values = {(v["policy"], v["capacity"]): v["hit_rate"] for v in spec["data"]["values"]}
    assert values[("belady", 64)] == eb.hit_rate_at(rows, "belady", 64)
    assert render_svg(replacement_chart(rows, "hit rate")).startswith("<svg")


def test_outcome_and_share_charts():
    data = small_held_out()
    rows = eb.split_outcomes(data, 48, 0.25)
    spec = outcome_chart(rows, "outcomes").to_dict()
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["x"]["stack"] == "zero"
    got = {(v["system"], v["outcome"]): v["share"] for v in spec["data"]["values"]}
    assert got[(rows[-1]["system"], "in flight when needed")] == pytest.approx(rows[-1]["late_prefetch_rate"])
    assert got[(rows[0]["system"], "fetched on demand")] == pytest.approx(rows[0]["miss_rate"])
    sweep = eb.share_sweep(data, 48, [0.1, 0.4])
    spec = share_chart(sweep, "split").to_dict()
    got = {(v["share"], v["measure"]): v["value"] for v in spec["data"]["values"]}
    assert got[(0.4, "stall share")] == pytest.approx(sweep[1]["stall_share"])


def test_split_chart_is_the_latency_curve_with_a_marker_at_the_share():
    data = small_held_out()
    grid = eb.split_grid(data, [48, 64], [0.0, 0.1, 0.3])
    chart = split_chart(grid, 64, 0.1, "the title")
    spec = chart.to_dict()
    assert spec["title"] == "the title" and spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    lines, rule, points = spec["layer"]
    st = {r["share"]: r["latency_per_token_s"] * 1e6 for r in grid if r["capacity"] == 64 and r["series"] == "st-moe"}
    curve = {v["share"]: v["latency_us"] for v in lines["data"]["values"] if v["series"] == "st-moe"}
    assert curve == pytest.approx(st)
    # the cache baselines stage nothing: one latency, drawn flat over every share of the curve
    cache = next(r for r in grid if r["capacity"] == 64 and r["series"] == "cache only (LRU)")
    flat = [v["latency_us"] for v in lines["data"]["values"] if v["series"] == "cache only (LRU)"]
    assert flat == pytest.approx([cache["latency_per_token_s"] * 1e6] * 3)
    assert rule["mark"]["type"] == "rule"
    assert {v["share"] for v in points["data"]["values"]} == {0.1} and len(points["data"]["values"]) == 3
    assert "staging share" in render_svg(chart)
