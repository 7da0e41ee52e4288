"""Fitting versus held-out scoring: the same static table, scored on its profile and off it."""

import numpy as np
import pytest

import stmoe
from stmoe.book.correlation import fitting_gap, recall_on, recall_with_interval
from stmoe.predictors import make
from stmoe.splits import split


@pytest.fixture(scope="module")
def trace():
    return stmoe.synthetic_trace(2400, 4, 16, 2, num_sequences=12, prompt_tokens=20,
                                 cross_layer_affinity=0.6, seed=7)


def test_fitting_gap_scores_the_same_table_in_and_out_of_sample(trace):
    rows = fitting_gap(trace, profile_sizes=[1, 6])
    profile, scored = split(trace)
    part = profile.select(sequences=profile.sequence_ids()[:1])
    table = make("cct", online=False).fit(part)
    assert rows[0]["in_sample"] == pytest.approx(recall_on(part, table.predict_trace(part, 2)))
    assert rows[0]["held_out"] == pytest.approx(recall_on(scored, table.predict_trace(scored, 2)))
    assert rows[0]["tokens"] == part.num_tokens and rows[1]["profile_sequences"] == 6
    # one sequence of 200 tokens for a 16 x 16 table per layer pair overfits more than six
    assert rows[0]["gap"] > rows[1]["gap"] > -0.02
    assert rows[0]["gap"] == pytest.approx(rows[0]["in_sample"] - rows[0]["held_out"])


def test_each_score_has_its_interval_over_the_tokens_it_was_taken_on(trace):
    one, six = fitting_gap(trace, profile_sizes=[1, 6])
    for row in (one, six):
        for f in ("in_sample", "held_out"):
            assert row[f"{f}_ci_low"] < row[f] < row[f"{f}_ci_high"]
    assert "over 6 sequences" in one["held_out_units"] and "over 6 sequences" in six["in_sample_units"]
    # one profile sequence is resampled in blocks of its tokens; its 20 prompt tokens route no
    # decode cell, so their block has nothing to resample and is said to be left out
    assert "blocks of 8 consecutive tokens" in one["in_sample_units"]
    assert "without routed decode cells left out" in one["in_sample_units"]


def test_one_sequence_trace_is_split_in_time(trace):
    single = trace.select(sequences=[trace.sequence_ids()[0]])
    rows = fitting_gap(single, profile_sizes=[60, 100])
    assert [r["profile_tokens"] for r in rows] == [60, 100]


def test_recall_on_counts_only_the_phase(trace):
    oracle = make("oracle").predict_trace(trace, 2)
    assert recall_on(trace, oracle, "prefill") == 1.0
    assert recall_on(trace, np.full_like(oracle, -1)) == 0.0


def test_bad_profile_sizes_are_named(trace):
    with pytest.raises(stmoe.ConfigError, match="profile_sizes"):
        fitting_gap(trace, profile_sizes=[0])
    with pytest.raises(stmoe.ConfigError, match="profile_sizes"):
        fitting_gap(trace, profile_sizes=[7])


def test_an_interval_is_judged_by_the_units_it_rests_on_not_those_named(trace):
    """A one-sequence trace's 200 tokens make 25 blocks, but only the 3 holding its 20 prompt
    tokens have prefill cells: the prefill interval rests on 3 units and is flagged unreliable,
    whatever count the wording of the units starts with."""
    single = trace.select(sequences=[trace.sequence_ids()[0]])
    pred = make("cct", online=False).fit(single).predict_trace(single, 2)
    row = recall_with_interval(single, pred, "recall", phase="prefill")
    assert "over 25 blocks of 8 consecutive tokens" in row["recall_units"]
    assert "(22 without routed prefill cells left out)" in row["recall_units"]
    assert "unreliable: it rests on 3 units" in row["recall_units"]
    assert "unreliable" not in recall_with_interval(single, pred, "recall")["recall_units"]   # 25 decode blocks
