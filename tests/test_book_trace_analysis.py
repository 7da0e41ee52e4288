"""Popularity by phase, read against chance."""

import numpy as np
import pytest

import stmoe
from stmoe.analysis import popularity
from stmoe.errors import ConfigError
from stmoe.book.trace_analysis import layer_popularity, mean_stats, phase_popularity, uniform_baseline


def test_phase_selects_tokens_and_skips_empty_layers():
    ids = np.array([[[0, 1], [2, 3]], [[0, 2], [-1, -1]], [[1, 0], [3, 2]]])
    tr = stmoe.Trace(ids, num_experts=4, phase=[0, 1, 1])
    dec = phase_popularity(tr, "decode")
    assert dec["counts"].tolist() == [[2, 1, 1, 0], [0, 0, 1, 1]]
    pre = phase_popularity(tr, "prefill")
    assert pre["counts"].tolist() == [[1, 1, 0, 0], [0, 0, 1, 1]]
    assert pre["normalised_entropy"].tolist() == [0.5, 0.5]   # two of four experts, equally
    assert phase_popularity(tr, "all")["requests"].tolist() == [6, 4]
    only_prefill = stmoe.Trace(ids[:1], num_experts=4, phase=[0])
    with pytest.raises(ConfigError, match="no decode tokens"):
        phase_popularity(only_prefill, "decode")


def test_rows_match_the_analysis_module():
    tr = stmoe.synthetic_trace(600, 4, 16, 2, seed=3)
    rows = layer_popularity(tr, "decode")
    ref = popularity(tr.select(phase="decode"))
    assert [r["gini"] for r in rows] == pytest.approx(ref["gini"])
    assert [r["top10_share"] for r in rows] == pytest.approx(ref["top10_share"])
    assert mean_stats(rows)["gini"] == pytest.approx(np.mean(ref["gini"]))


def test_mean_skips_layers_without_requests():
    rows = [{"entropy_bits": 1.0, "normalised_entropy": 0.5, "gini": 0.2, "top10_share": 0.3},
            {"entropy_bits": np.nan, "normalised_entropy": np.nan, "gini": np.nan, "top10_share": np.nan}]
    assert mean_stats(rows)["gini"] == pytest.approx(0.2)


def test_skewed_synthetic_routing_is_more_concentrated_than_chance():
    tr = stmoe.synthetic_trace(1500, 4, 32, 4, popularity_skew=1.2, seed=2)
    measured = mean_stats(layer_popularity(tr))
    chance = uniform_baseline(tr, seed=1)
    assert measured["top10_share"] > chance["top10_share"] + 0.1
    assert measured["gini"] > chance["gini"] + 0.2
    assert chance["normalised_entropy"] > 0.99


def test_uniform_baseline_is_uneven_for_short_traces():
    """A few hundred requests over many experts are uneven by chance: the reason the notebook
    reads every figure against this baseline."""
    short = stmoe.synthetic_trace(20, 2, 128, 6, popularity_skew=0.0, seed=0)
    long = stmoe.synthetic_trace(4000, 2, 128, 6, popularity_skew=0.0, seed=0)
    assert uniform_baseline(short, None)["gini"] > uniform_baseline(long, None)["gini"] + 0.2


def test_training_summary_and_control_come_from_the_bundled_traces():
    from stmoe.book.trace_analysis import trained_against_control, training_summary
    code, control = stmoe.load_trace("tiny-moe-code"), stmoe.load_trace("tiny-moe-untrained")
    summary = training_summary(code)
    assert summary["steps"] == code.meta["training"]["steps"] and summary["tokens_seen"] >= 6_144_000
    assert summary["heldout_loss"] == code.meta["training"]["heldout_loss"]
    trained, untrained = trained_against_control(code, control)
    assert trained["heldout_loss"] < untrained["heldout_loss"]
    assert untrained["reuse"] > trained["reuse"] > trained["chance"]
    with pytest.raises(stmoe.StmoeError, match="records no training"):
        training_summary(stmoe.load_trace("qwen3-30b-a3b"))
    with pytest.raises(stmoe.StmoeError, match="same tokens"):
        trained_against_control(code, stmoe.load_trace("tiny-moe-prose"))
