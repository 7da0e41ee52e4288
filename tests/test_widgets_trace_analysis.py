"""The popularity explorer: trace, phase and layer controls drive the chart and the readout."""

import pytest

import stmoe
from stmoe.book.trace_analysis import phase_popularity
from stmoe.errors import ConfigError
from stmoe.widgets.trace_analysis import popularity_explorer


@pytest.fixture(scope="module")
def traces():
    a = stmoe.synthetic_trace(400, 6, 16, 2, popularity_skew=1.0, seed=1)
    a.meta["name"] = "six-layers"
    b = stmoe.synthetic_trace(400, 3, 16, 2, seed=2)
    b.meta["name"] = "three-layers"
    return a, b


def test_controls_drive_chart_and_readout(traces):
    a, b = traces
    ex = popularity_explorer([a, b])
    ex.set(layer=4, phase="all")
    stats = phase_popularity(a, "all")
    title = ex.jchart.spec["title"]
    assert title.startswith(f"{a.label}, layer 4 (all)")
    assert f"Gini {stats['gini'][4]:.2f}" in title
    assert f"top-10% share {stats['top10_share'][4]:.2f}" in ex.readout.value
    bars = ex.jchart.spec["layer"][0]["data"]["values"]
    counts = stats["counts"][4]
    assert bars[0]["share"] == pytest.approx(counts.max() / counts.sum())


def test_layer_range_follows_the_trace(traces):
    a, b = traces
    ex = popularity_explorer([a, b], layer=5)
    ex.set(trace=b.label)
    assert ex.controls["layer"].max == 2 and ex.result["layer"] == 2
    assert f"{b.label}, layer 2" in ex.jchart.spec["title"]


def test_bars_by_expert_id_show_the_same_counts_in_id_order(traces):
    a, b = traces
    ex = popularity_explorer([a, b], layer=1)
    by_share = ex.jchart.spec["layer"][0]["data"]["values"]
    ex.set(order="by expert id")
    by_id = ex.jchart.spec["layer"][0]["data"]["values"]
    assert [r["expert"] for r in by_id] == list(range(a.num_experts))
    assert sorted((r["expert"], r["share"]) for r in by_share) == [(r["expert"], r["share"]) for r in by_id]
    counts = phase_popularity(a, "decode")["counts"][1]
    assert [r["share"] for r in by_id] == pytest.approx(list(counts / counts.sum()))


def test_unknown_bar_order_is_one_clear_error(traces):
    with pytest.raises(ConfigError, match="order: must be one of by share, by expert id, got 'by name'"):
        popularity_explorer(list(traces), order="by name")
