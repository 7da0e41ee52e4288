"""Per-layer popularity statistics: exact on hand-made counts, and against chance."""

import numpy as np
import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.popularity import (expert_counts, layer_popularity, layer_stats, mean_stats, share_overlap,
                              uniform_baseline)


def test_counts_follow_the_routing_and_skip_unrouted_cells():
    ids = np.array([[[0, 1], [2, 3]], [[0, 2], [-1, -1]], [[1, 0], [3, 2]]])
    tr = stmoe.Trace(ids, num_experts=4, phase=[0, 1, 1])
    assert expert_counts(tr).tolist() == [[3, 2, 1, 0], [0, 0, 2, 2]]
    assert expert_counts(tr, "decode").tolist() == [[2, 1, 1, 0], [0, 0, 1, 1]]
    assert expert_counts(tr, "prefill").tolist() == [[1, 1, 0, 0], [0, 0, 1, 1]]


def test_statistics_of_equal_and_concentrated_counts():
    counts = np.array([[5, 5, 5, 5, 5, 5, 5, 5, 5, 5], [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    s = layer_stats(counts)
    assert s["entropy_bits"] == pytest.approx([np.log2(10), 0.0])
    assert s["normalised_entropy"] == pytest.approx([1.0, 0.0])
    assert s["gini"] == pytest.approx([0.0, 0.9])   # (E - 1) / E for one expert taking all
    assert s["top10_share"] == pytest.approx([0.1, 1.0])


def test_gini_matches_the_mean_absolute_difference_definition():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=(5, 16))
    mad = np.abs(counts[:, :, None] - counts[:, None, :]).mean(axis=(1, 2))
    assert layer_stats(counts)["gini"] == pytest.approx(mad / (2 * counts.mean(axis=1)))


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


def test_overlap_of_hot_sets():
    a = np.array([[9, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]])
    assert share_overlap(a, a, 0.1).tolist() == [1.0]
    b = a[:, ::-1]
    assert share_overlap(a, b, 0.1).tolist() == [0.0]
    with pytest.raises(ConfigError, match="same shape"):
        share_overlap(a, a[:, :10])


def test_bad_arguments_name_the_problem():
    with pytest.raises(ConfigError, match="top_fraction"):
        layer_stats(np.ones((2, 4)), top_fraction=0)
    with pytest.raises(ConfigError, match="counts must be"):
        layer_stats(np.ones(4))
