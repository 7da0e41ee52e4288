"""The recall explorer: moving a control drives the readout and the chart with the numbers the
package computes for that setting."""

import pytest

import stmoe
from stmoe.book.predictor_design import st_moe
from stmoe.predictors import make
from stmoe.splits import split
from stmoe.widgets.predictor_design import MIX, recall_explorer


@pytest.fixture(scope="module")
def trace():
    return stmoe.synthetic_trace(1600, 4, 16, 2, num_sequences=8, prompt_tokens=20,
                                 temporal_reuse=0.5, cross_layer_affinity=0.6, seed=5)


def _bars(explorer):
    return {r["predictor"]: r["recall"] for r in explorer.jchart.spec["layer"][0]["data"]["values"]}


def test_explorer_shows_evaluate_numbers_after_a_change(trace):
    explorer = recall_explorer(trace, max_scored_tokens=400)
    explorer.set(budget=3, history_length=4, history_decay=0.5, weight=1.0, combine="linear")
    profile, scored = split(trace, max_scored_tokens=400)
    mix = st_moe(combine="linear", spatial_weight=1.0, transition_weight=0.0, history_weight=1.0,
               history_length=4, history_decay=0.5)
    hist = make("history", history_length=4, history_decay=0.5)
    want = stmoe.evaluate(scored, [mix, hist, "cct"], budget=3, profile=profile, phases="decode")
    bars = _bars(explorer)
    assert bars[MIX] == pytest.approx(want.rows[0]["recall"], abs=1e-12)
    assert bars["history"] == pytest.approx(want.rows[1]["recall"], abs=1e-12)
    assert bars["cct"] == pytest.approx(want.rows[2]["recall"], abs=1e-12)
    title = explorer.jchart.spec["title"]
    assert f"recall {want.rows[0]['recall']:.2f} at m = 3" in title
    assert f"history {want.rows[1]['recall']:.3f}" in explorer.readout.value
    assert f"{scored.num_tokens} held-out tokens" in explorer.readout.value


def test_budget_change_reuses_cached_runs(trace):
    explorer = recall_explorer(trace, max_scored_tokens=400)
    runs = len(explorer.model._cache)
    explorer.set(budget=4)
    assert len(explorer.model._cache) == runs
    assert explorer.jchart.spec["layer"][1]["data"]["values"] == [{"chance": 4 / 16}]


def test_static_is_svg_of_current_state(trace):
    explorer = recall_explorer(trace, max_scored_tokens=400)
    assert "cct + history mix" in explorer.static().data
