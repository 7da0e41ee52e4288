"""Recall by budget from one run per predictor equals stmoe.evaluate at each budget."""

import numpy as np
import pytest

import stmoe
from stmoe.book.predictor_design import budget_curves, budget_for_recall, chance, knob_curve, recall_by_budget
from stmoe.predictors import make
from stmoe.splits import split


@pytest.fixture(scope="module")
def trace():
    return stmoe.synthetic_trace(1200, 4, 16, 2, num_sequences=6, prompt_tokens=20,
                                 temporal_reuse=0.4, cross_layer_affinity=0.6, seed=3)


@pytest.mark.parametrize("name", ["popularity", "previous-token", "history", "cct", "st-moe"])
def test_recall_by_budget_matches_evaluate_at_each_budget(trace, name):
    budgets = [1, 2, 5, 9]
    got = recall_by_budget(trace, name, budgets)
    want = [stmoe.evaluate(trace, [name], budget=m, phases="decode").row(name)["recall"] for m in budgets]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.all(np.diff(got) >= 0)


def test_explicit_profile_matches_evaluate_with_profile(trace):
    profile, scored = split(trace, max_scored_tokens=300)
    pred = make("st-moe", combine="linear", history_weight=0.5)
    got = recall_by_budget(scored, pred, [3], profile=profile, phase="prefill")
    want = stmoe.evaluate(scored, [pred], budget=3, profile=profile, phases="prefill").rows[0]["recall"]
    assert got[0] == pytest.approx(want, abs=1e-12)


def test_chance_is_budget_over_experts():
    np.testing.assert_allclose(chance([1, 4], 16), [1 / 16, 4 / 16])


def test_bad_arguments_name_the_problem(trace):
    with pytest.raises(stmoe.ConfigError, match="not a table predictor"):
        recall_by_budget(trace, "random", [1])
    with pytest.raises(stmoe.ConfigError, match="budget"):
        recall_by_budget(trace, "cct", [0])


def test_budget_curves_rows_and_chance(trace):
    rows = budget_curves(trace, {"table": make("cct")}, [1, 4])
    assert [r["series"] for r in rows] == ["table", "table", "chance (m / E)", "chance (m / E)"]
    assert rows[1]["recall"] == pytest.approx(recall_by_budget(trace, "cct", [4])[0])
    assert rows[3]["recall"] == pytest.approx(4 / 16)


def test_knob_curve_runs_each_value(trace):
    rows = knob_curve(trace, "history", "history_length", [1, 4], budget=2, history_decay=0.5)
    want = recall_by_budget(trace, make("history", history_length=4, history_decay=0.5), [2])[0]
    assert rows[1] == {"series": "history", "history_length": 4, "recall": pytest.approx(want)}


def test_budget_for_recall_is_the_first_budget_reaching_target(trace):
    curve = recall_by_budget(trace, "cct", list(range(1, 17)))
    m = budget_for_recall(trace, "cct", 0.8)
    assert curve[m - 1] >= 0.8 and (m == 1 or curve[m - 2] < 0.8)
    assert budget_for_recall(trace, "cct", 1.0) == 16 or curve[-1] < 1.0
    with pytest.raises(stmoe.ConfigError, match="target"):
        budget_for_recall(trace, "cct", 1.5)
