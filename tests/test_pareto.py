"""The Pareto front on hand-made points."""

import numpy as np
import pytest

from stmoe.errors import ConfigError
from stmoe.sim.pareto import pareto_front, pareto_mask, tolerance_note


def test_mask_on_a_hand_made_set():
    pts = [[1, 5], [2, 3], [3, 3], [4, 1], [2, 4], [5, 5], [4, 1]]
    # [3,3] loses to [2,3]; [2,4] to [2,3]; [5,5] to all; the two [4,1] tie and both stay
    assert pareto_mask(pts).tolist() == [True, True, False, True, False, False, True]


def test_three_objectives_keep_what_two_would_drop():
    rows = [dict(name="small slow", latency_per_token_s=3.0, energy_per_token_j=3.0, buffer_area_mm2=1.0),
            dict(name="big fast", latency_per_token_s=1.0, energy_per_token_j=1.0, buffer_area_mm2=8.0),
            dict(name="big slow", latency_per_token_s=2.0, energy_per_token_j=2.0, buffer_area_mm2=9.0)]
    assert [r["name"] for r in pareto_front(rows)] == ["big fast", "small slow"]
    assert [r["name"] for r in pareto_front(rows, ("latency_per_token_s", "energy_per_token_j"))] == ["big fast"]


def test_matches_brute_force():
    v = np.random.default_rng(0).integers(0, 6, size=(200, 3)).astype(float)
    brute = [not any((w <= x).all() and (w < x).any() for w in v) for x in v]
    assert pareto_mask(v).tolist() == brute


def test_errors():
    with pytest.raises(ConfigError, match="at least two different objectives"):
        pareto_front([{"a": 1}], ("a",))
    with pytest.raises(ConfigError, match="no field 'speed'"):
        pareto_front([{"a": 1}], ("a", "speed"))
    with pytest.raises(ConfigError, match="NaN"):
        pareto_mask([[1.0, float("nan")]])


def _brute(v, tol):
    v = np.asarray(v, float)
    s = tol * np.abs(v)
    return [not any((w <= x + sx).all() and (w < x - sx).any() for w in v) for x, sx in zip(v, s)]


def test_tolerance_zero_is_the_strict_front():
    v = np.random.default_rng(1).integers(0, 6, size=(200, 3)).astype(float)
    strict = [not any((w <= x).all() and (w < x).any() for w in v) for x in v]
    assert pareto_mask(v, tolerance=0).tolist() == strict


def test_near_ties_collapse():
    # the shape of chapter 05's case: a design 6e-6 faster with 5x the energy, one 6e-5 slower
    pts = [[96.840629, 512.0], [96.840027, 2492.0], [96.845, 511.8], [97.5, 400.0]]
    assert pareto_mask(pts, tolerance=0).tolist() == [True, True, True, True]
    # within 0.1% the first three latencies tie: the 2492 one loses on energy, the other two tie
    assert pareto_mask(pts).tolist() == [True, False, True, True]
    # within 1% the last one's latency (0.7% slower) ties too, and its energy beats all
    assert pareto_mask(pts, tolerance=0.01).tolist() == [False, False, False, True]


def test_clear_fronts_do_not_move():
    pts = [[1, 5], [2, 3], [3, 3], [4, 1], [2, 4], [5, 5], [4, 1]]
    assert pareto_mask(pts).tolist() == pareto_mask(pts, tolerance=0).tolist()
    rows = [{"name": n, "latency_per_token_s": l, "energy_per_token_j": e, "buffer_area_mm2": a}
            for n, l, e, a in [("a", 3.0, 3.0, 1.0), ("b", 1.0, 1.0, 8.0), ("c", 2.0, 2.0, 9.0)]]
    assert [r["name"] for r in pareto_front(rows)] == [r["name"] for r in pareto_front(rows, tolerance=0)]


@pytest.mark.parametrize("tol", [1e-3, 0.05, 0.3])
def test_tolerant_front_matches_brute_force(tol):
    # values spread so that many pairs fall within the tolerance; negatives and zeros included
    v = np.random.default_rng(2).normal(10, 2, size=(300, 3)).round(1)
    v[:20, 1] = -v[:20, 1]
    v[20:25, 2] = 0
    assert pareto_mask(v, tol).tolist() == _brute(v, tol)


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), True, "0.1"])
def test_tolerance_refused(bad):
    with pytest.raises(ConfigError, match="tolerance"):
        pareto_mask([[1.0, 2.0]], bad)


def test_tolerance_note_says_the_tolerance_in_one_wording():
    assert tolerance_note() == "objectives within 0.10% of each other count as equal"
    assert tolerance_note(0.02) == "objectives within 2.00% of each other count as equal"
    assert tolerance_note(0) == "strict: no tolerance"
    with pytest.raises(ConfigError, match="got -0.1"):
        tolerance_note(-0.1)
