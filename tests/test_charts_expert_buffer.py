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


def test_split_chart_has_the_key_numbers_in_its_title():
    rows = eb.split_outcomes(small_held_out(), 64, 0.1)
    chart = split_chart(rows)
    spec = chart.to_dict()
    assert f"hit rate {rows[-1]['hit_rate']:.2f}" in spec["title"]
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    wasted = [p for p in spec["hconcat"] if p["encoding"]["x"]["title"] == "wasted MB per token"][0]
    got = {v["system"]: v["value"] for v in wasted["data"]["values"]}
    assert got[rows[-1]["system"]] == pytest.approx(rows[-1]["wasted_bytes"] / rows[-1]["tokens"] / 1e6)
    assert "hit rate" in render_svg(chart)
