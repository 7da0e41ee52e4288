"""The Pareto front on hand-made points."""

import numpy as np
import pytest

from stmoe.errors import ConfigError
from stmoe.sim.pareto import pareto_front, pareto_mask


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
