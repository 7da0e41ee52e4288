"""The one profile/scored split: disjoint, bounded, in time for one sequence, and the folds
score every token exactly once."""

import numpy as np
import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.splits import folds, profile_half, split, split_leading


@pytest.fixture(scope="module")
def trace():
    return stmoe.synthetic_trace(700, 3, 8, 2, num_sequences=7, prompt_tokens=10, seed=2)


def test_split_profiles_the_first_half_of_the_sequences_and_scores_the_rest(trace):
    profile, scored = split(trace)
    seqs = trace.sequence_ids()
    assert list(profile.sequence_ids()) == list(seqs[:3])
    assert list(scored.sequence_ids()) == list(seqs[3:])
    assert profile.num_tokens + scored.num_tokens == trace.num_tokens


def test_bounds_keep_whole_leading_scored_sequences(trace):
    seqs = trace.sequence_ids()
    assert list(split(trace, max_scored_sequences=2).scored.sequence_ids()) == list(seqs[3:5])
    bounded = split(trace, max_scored_tokens=250).scored   # sequences of 100 tokens
    assert list(bounded.sequence_ids()) == list(seqs[3:5]) and bounded.num_tokens == 200
    assert len(split(trace, max_scored_tokens=1).scored.sequence_ids()) == 1   # at least one


def test_one_sequence_is_split_in_time():
    one = stmoe.synthetic_trace(41, 3, 8, 2, num_sequences=1, prompt_tokens=4, seed=1)
    profile, scored = split(one, max_scored_tokens=5)   # a bound does not cut a time split
    assert profile.num_tokens == 20 and scored.num_tokens == 21
    assert np.array_equal(profile_half(one), np.arange(41) < 20)
    with pytest.raises(ConfigError, match="at least 2"):
        split(one.select(tokens=[0]))


def test_folds_score_every_token_once_and_never_on_their_own_profile(trace):
    scored = np.zeros(trace.num_tokens, int)
    for profile, mask in folds(trace):
        scored += mask
        assert not set(profile.sequence_ids()) & set(trace.sequence[mask])
    assert (scored == 1).all()
    one = trace.select(sequences=[trace.sequence_ids()[0]])
    ((profile, mask),) = folds(one)
    assert profile.num_tokens == 50 and mask.sum() == 50 and mask[50:].all()


def test_split_leading_scores_the_first_sequences_and_profiles_the_rest(trace):
    profile, scored = split_leading(trace, 2)
    assert list(scored.sequence_ids()) == list(trace.sequence_ids()[:2])
    assert list(profile.sequence_ids()) == list(trace.sequence_ids()[2:])
    assert len(split_leading(trace, 99).profile.sequence_ids()) == 1   # always a profile left
    alone = trace.select(sequences=[trace.sequence_ids()[0]])
    profile, scored = split_leading(alone, 3)
    assert profile is None and scored.num_tokens == alone.num_tokens


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_bounds_name_the_argument(trace, bad):
    with pytest.raises(ConfigError, match="max_scored_sequences"):
        split(trace, max_scored_sequences=bad)
    with pytest.raises(ConfigError, match="max_scored_tokens"):
        split(trace, max_scored_tokens=bad)
    with pytest.raises(ConfigError, match="max_sequences"):
        split_leading(trace, bad)
