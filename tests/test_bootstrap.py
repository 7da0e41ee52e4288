"""Bootstrap intervals over sequences or blocks of tokens."""

import numpy as np
import pytest

from stmoe import ConfigError
from stmoe.bootstrap import BLOCK_TOKENS, MAX_BLOCKS, interval_fields, ratio_interval, resampling_units, with_interval


def test_units_are_sequences_or_blocks():
    unit, units = resampling_units(np.array([3, 3, 7, 7, 7, 9]))
    assert unit.tolist() == [0, 0, 1, 1, 1, 2] and units == "3 sequences"
    unit, units = resampling_units(np.zeros(2 * BLOCK_TOKENS + 3, int))
    assert unit.tolist() == [0] * BLOCK_TOKENS + [1] * BLOCK_TOKENS + [2] * 3
    assert units == f"3 blocks of {BLOCK_TOKENS} consecutive tokens (one sequence)"
    unit, units = resampling_units(np.zeros(MAX_BLOCKS * BLOCK_TOKENS * 3, int))   # long: longer blocks
    assert unit.max() + 1 == MAX_BLOCKS and units.startswith(f"{MAX_BLOCKS} blocks of {3 * BLOCK_TOKENS} ")
    with pytest.raises(ConfigError, match="block_tokens: must be an integer >= 1, got 0"):
        resampling_units(np.zeros(4, int), 0)


def _units(n, seed=0):
    rng = np.random.default_rng(seed)
    den = rng.integers(50, 150, n).astype(float)
    return rng.binomial(den.astype(int), 0.6).astype(float), den


def test_interval_holds_the_estimate_and_repeats_with_its_seed():
    num, den = _units(40)
    lo, hi = ratio_interval(num, den)
    assert lo < num.sum() / den.sum() < hi
    assert ratio_interval(num, den) == (lo, hi)
    assert ratio_interval(num, den, seed=1) != (lo, hi)


def test_interval_narrows_with_more_units():
    widths = []
    for n in (10, 100, 1000):
        lo, hi = ratio_interval(*_units(n))
        widths.append(hi - lo)
    assert widths[0] > 2 * widths[1] > 4 * widths[2]   # about 1 / sqrt(n): x3.2 per step


def test_interval_covers_at_its_level():
    # units drawn afresh from one population: the 95% interval holds the population's ratio
    # (0.6) in about 95 of 100 draws
    held = sum(lo <= 0.6 <= hi for lo, hi in (ratio_interval(*_units(50, seed=s), resamples=400)
                                              for s in range(100)))
    assert 88 <= held <= 100


def test_paired_draws_cancel_a_shared_swing():
    # a system that is always 2x faster than the base on the same units, whatever the unit's
    # length: the paired ratio has no spread although the units differ 10-fold
    base = np.linspace(1, 10, 30)
    assert ratio_interval(base, base / 2) == pytest.approx((2.0, 2.0))


def test_one_unit_has_no_interval_and_bad_input_is_refused():
    assert ratio_interval([1.0], [2.0]) is None
    assert interval_fields("recall", None) == {"recall_ci_low": None, "recall_ci_high": None}
    with pytest.raises(ConfigError, match="positive denominator"):
        ratio_interval([1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ConfigError, match="resamples: must be an integer >= 1, got 0"):
        ratio_interval([1.0, 1.0], [1.0, 1.0], resamples=0)


def test_with_interval_prints_value_and_bounds():
    row = {"speedup": 2.3141, **interval_fields("speedup", (2.2, 2.449))}
    assert with_interval(row, "speedup", 2) == "2.31 [2.20, 2.45]"
    assert with_interval({"speedup": 2.3141}, "speedup", 2) == "2.31"


def test_an_interval_over_few_units_is_described_as_unreliable():
    """Three units give at most 10 distinct resamples (multisets of 3 from 3): the description
    says the interval rests on them; from MIN_RELIABLE_UNITS units on it does not."""
    from math import comb

    from stmoe.bootstrap import MIN_RELIABLE_UNITS, describe
    rng = np.random.default_rng(0)
    picks = {tuple(sorted(p)) for p in rng.integers(0, 3, size=(1000, 3))}
    assert len(picks) == comb(2 * 3 - 1, 3) == 10
    unit, units = resampling_units(np.array([0, 1, 1, 2]))
    few = describe(units, count=int(unit.max()) + 1)
    assert few.endswith(f"unreliable: it rests on 3 units, fewer than {MIN_RELIABLE_UNITS} (so few give few "
                        "distinct resamples, and a percentile interval narrower than the truth)")
    unit, units = resampling_units(np.arange(MIN_RELIABLE_UNITS))
    enough = describe(units, count=int(unit.max()) + 1)
    assert "unreliable" not in enough and enough.startswith(f"95% intervals: percentile bootstrap over {MIN_RELIABLE_UNITS} sequences")


@pytest.mark.parametrize("units, count, unreliable", [
    ("sequences", 3, True),                       # no number in the text
    ("blocks of 8 consecutive tokens", 3, True),  # a number that is not the count
    ("blocks of 8 consecutive tokens", 40, False),
    ("3 groups of up to 8 sequences", 40, False),  # the text's leading number is not the count
    ("40 sequences (37 left out)", 3, True),
])
def test_the_verdict_follows_the_count_given_not_the_text(units, count, unreliable):
    from stmoe.bootstrap import describe
    text = describe(units, count=count)
    assert ("unreliable" in text) is unreliable
    assert (f"it rests on {count} units" in text) is unreliable


@pytest.mark.parametrize("count", [-1, 2.0, True, "3"])
def test_describe_refuses_a_count_that_is_not_a_number_of_units(count):
    from stmoe.bootstrap import describe
    with pytest.raises(ConfigError, match=f"count: must be an integer >= 0, got {count!r}"):
        describe("3 sequences", count=count)
