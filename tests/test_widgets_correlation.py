"""The transition explorer: the layer slider drives the heat map and the MI in its title."""

import numpy as np
import pytest

import stmoe
from stmoe.analysis import spatial_affinity
from stmoe.widgets.correlation import transition_explorer
from tests.test_charts_correlation import heatmap_cells


@pytest.fixture(scope="module")
def trace():
    return stmoe.synthetic_trace(600, 4, 8, 2, num_sequences=3, prompt_tokens=20,
                                 cross_layer_affinity=0.7, seed=11)


def test_layer_slider_shows_that_layers_transition_and_mi(trace):
    explorer = transition_explorer(trace, permutations=9)
    explorer.set(layer=2)
    want = spatial_affinity(trace, permutations=9, seed=0)
    spec = explorer.jchart.spec
    assert f"layer 2 -> 3: MI {want['mi_bits'][2]:.2f} bits" in spec["title"]
    cells = heatmap_cells(spec)
    assert len(cells) == 64
    for (i, j), p in cells.items():
        assert p == pytest.approx(want["transition"][2][i, j])
    assert f"{want['p_value'][2]:.3f}" in explorer.readout.value


def test_large_expert_counts_are_cut_to_the_most_used():
    big = stmoe.synthetic_trace(300, 3, 96, 4, seed=2)
    explorer = transition_explorer(big, permutations=0)
    assert len(explorer.jchart.spec["data"]["values"]) <= 5000
    assert set(heatmap_cells(explorer.jchart.spec)) <= {(i, j) for i in range(96) for j in range(96)}
    assert "most used experts" in explorer.jchart.spec["title"]
    assert np.isfinite(explorer.result["mi_bits"])


def test_precomputed_affinity_is_used_and_checked(trace):
    affinity = spatial_affinity(trace, permutations=4, seed=3)
    explorer = transition_explorer(trace, affinity=affinity)
    assert explorer.model.affinity is affinity
    assert "(4 shuffles)" in explorer.readout.value
    other = stmoe.synthetic_trace(100, 3, 8, 2, seed=1)
    with pytest.raises(stmoe.ConfigError, match="affinity"):
        transition_explorer(other, affinity=affinity)
