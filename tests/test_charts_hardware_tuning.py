"""Specs of the hardware-tuning chapter's charts hold the numbers the package computed."""

import pytest

from stmoe.book import hardware_tuning as ht
from stmoe.charts.base import render_svg
from stmoe.charts.hardware_tuning import LABELS, knee_chart, sweep_chart, tuning_chart, tuning_curve_chart
from tests.prefetch_data import small_held_out


def test_sweep_and_knee_charts():
    data = small_held_out()
    hw = ht.machine("accelerator", buffer_mib=2)
    rows = ht.bandwidth_rows(data, hw, [16e9, 256e9, 4e12])
    spec = sweep_chart(rows, "link_utilisation", "util", log_x=True, scale_x=1e-9).to_dict()
    assert spec["encoding"]["x"]["scale"]["type"] == "log" and spec["mark"]["type"] == "line"
    got = {(v["system"], v["value"]): v["link_utilisation"] for v in spec["data"]["values"]}
    st = [r for r in rows if r["system"] == "st-moe" and r["value"] == 16e9][0]
    assert got[("st-moe", 16.0)] == pytest.approx(st["link_utilisation"])
    gains = ht.gain_rows(rows)
    knee = ht.bandwidth_knee(rows)
    chart = knee_chart(gains, knee, "knee")
    spec = chart.to_dict()
    gain_layer = spec["vconcat"][0]["layer"][0]
    got = {(v["system"], v["bandwidth"]): v["gain"] for v in gain_layer["data"]["values"]}
    assert got[("st-moe", knee.peak_bandwidth / 1e9)] == pytest.approx(knee.peak_gain)
    rule = spec["vconcat"][0]["layer"][1]
    assert rule["mark"]["type"] == "rule"
    assert rule["data"]["values"][0]["bandwidth"] == knee.peak_bandwidth / 1e9
    assert render_svg(chart).startswith("<svg")


def test_tuning_chart():
    rows = ht.tuning_rows(small_held_out(), ht.machine("accelerator", buffer_mib=2))
    spec = tuning_chart(rows, "title 1").to_dict()
    assert spec["title"] == "title 1" and spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    lat = {v["system"]: v["value"] for v in spec["hconcat"][0]["data"]["values"]}
    energy = {v["system"]: v["value"] for v in spec["hconcat"][1]["data"]["values"]}
    for r in rows:
        assert lat[r["system"]] == pytest.approx(r["latency_per_token_s"] * 1e6)
        assert energy[r["system"]] == pytest.approx(r["energy_per_token_j"] * 1e6)
    assert "µs" in render_svg(tuning_chart(rows, "t"))



def test_tuning_curve_chart_marks_the_chosen_link():
    data = small_held_out()
    rows = ht.bandwidth_rows(data, ht.machine("accelerator", buffer_mib=2), [16e9, 64e9, 256e9],
                             systems=("on-demand", "lru-cache", "st-moe"))
    spec = tuning_curve_chart(rows, 64e9, "title 2").to_dict()
    assert spec["title"] == "title 2" and spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    assert spec["facet"]["column"]["field"] == "measure" and spec["resolve"]["scale"]["y"] == "independent"
    lines, rule, points = spec["spec"]["layer"]
    assert lines["encoding"]["x"]["scale"]["type"] == "log" and rule["mark"]["type"] == "rule"
    values = spec["data"]["values"]
    for field, factor in (("latency_per_token_s", 1e6), ("energy_per_token_j", 1e6)):
        label = LABELS[field][0]
        got = {(v["system"], v["bandwidth"]): v["value"] for v in values if v["measure"] == label}
        for r in rows:
            assert got[r["system"], r["value"] / 1e9] == pytest.approx(r[field] * factor)
    # the rule and points draw the chosen link's rows only
    assert rule["transform"] == points["transform"] == [{"filter": "datum.here"}]
    assert {v["bandwidth"] for v in values if v["here"]} == {64.0}
    assert len([v for v in values if v["here"]]) == 2 * 3
    assert render_svg(tuning_curve_chart(rows, 16e9, "t")).startswith("<svg")
