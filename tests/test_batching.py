"""Steps of sequences decoding in lockstep, and the union of their experts."""

import numpy as np
import pytest

from stmoe.errors import ConfigError
from stmoe.sim.batching import batch_routing, expert_counts, lockstep_steps, step_union


def test_lockstep_steps_run_each_group_to_its_longest_sequence():
    runs = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7, 8]), np.array([9])]
    steps, group = lockstep_steps(runs, 3)
    # group 0: sequences 0..2 until the longest (4 tokens) ends; group 1: the smaller last batch
    assert steps.tolist() == [[0, 3, 5], [1, 4, 6], [2, -1, 7], [-1, -1, 8], [9, -1, -1]]
    assert group.tolist() == [0, 0, 0, 0, 1]
    assert lockstep_steps(runs, 1)[0].ravel().tolist() == list(range(10))
    with pytest.raises(ConfigError, match="batch must be a positive whole number"):
        lockstep_steps(runs, 0)


def test_union_in_order_of_first_appearance_with_counts():
    # 3 tokens, 1 layer, k = 2; experts of 6
    ids = np.array([[[4, 1]], [[1, 5]], [[2, -1]]], np.int16)
    steps = np.array([[0, 1], [2, -1]])
    union, tokens = batch_routing(ids, steps, 6)
    assert union.tolist() == [[[4, 1, 5]], [[2, -1, -1]]]
    assert tokens.tolist() == [[[1, 2, 1]], [[1, 0, 0]]]
    counts = expert_counts(ids, steps, 6)
    assert counts[0, 0].tolist() == [0, 2, 0, 0, 1, 1] and counts[1, 0].tolist() == [0, 0, 1, 0, 0, 0]
    # identical tokens batch to one token's list, each expert used by all of them
    same = np.repeat(ids[:1], 4, axis=0)
    u, m = batch_routing(same, np.array([[0, 1, 2, 3]]), 6)
    assert u.tolist() == [[[4, 1]]] and m.tolist() == [[[4, 4]]]


def test_union_of_a_broadcast_prediction_is_every_expert():
    pred = np.broadcast_to(np.arange(6, dtype=np.int16), (5, 2, 6))
    steps, _ = lockstep_steps([np.array([0, 1, 2]), np.array([3, 4])], 2)
    union = step_union(pred, steps, 6)
    assert union.shape == (3, 2, 6) and (union == np.arange(6)).all()
