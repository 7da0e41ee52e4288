"""Analysis formulas on hand-made traces where the answer is known."""

import itertools

import numpy as np
import pytest

from stmoe import ConfigError, Trace, load_trace, synthetic_trace
from stmoe.analysis import (analyze, compare_domains, keyed_ceiling, popularity, spatial_affinity,
                            temporal_reuse)


def test_popularity_extremes():
    even = Trace(np.arange(8).reshape(8, 1, 1) % 4 + np.zeros((8, 2, 1), int), num_experts=4)
    pop = popularity(even)
    assert np.allclose(pop["entropy_bits"], 2.0) and np.allclose(pop["gini"], 0.0)
    assert np.allclose(pop["top10_share"], 0.25)
    one = Trace(np.zeros((8, 1, 1), int), num_experts=4)
    assert popularity(one)["entropy_bits"][0] == 0.0 and popularity(one)["gini"][0] == pytest.approx(0.75)


def test_temporal_reuse_and_distances():
    ids = np.array([[[0, 1]], [[0, 2]], [[3, 4]], [[0, 3]]])
    r = temporal_reuse(Trace(ids, num_experts=8), max_distance=4)
    assert r["reuse"][0] == pytest.approx(2 / 6)  # 0 at t=1, 3 at t=3
    assert r["distance_hist"].tolist() == [2, 1, 0, 0]  # 0: 1 then 2; 3: 1
    assert r["first_use"] == 5


def test_spatial_affinity_detects_dependence_only_when_present():
    rng = np.random.default_rng(0)
    a = np.stack([rng.choice(16, 2, replace=False) for _ in range(300)])
    linked = Trace(np.stack([a, (a + 5) % 16], axis=1), num_experts=16)
    indep = Trace(np.stack([a, np.stack([rng.choice(16, 2, replace=False) for _ in range(300)])], axis=1),
                  num_experts=16)
    s = spatial_affinity(linked, permutations=49)
    assert s["p_value"][0] == 1 / 50 and s["mi_bits"][0] > 5 * s["baseline_bits"][0]
    assert np.allclose(s["transition"][0][np.arange(16), (np.arange(16) + 5) % 16], 0.5)
    assert spatial_affinity(indep, permutations=49)["p_value"][0] > 0.05


def test_ceiling_is_one_for_a_function_and_bounds_cct():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 16, (100, 1))
    tr = Trace(np.stack([a, (a * 3) % 16], axis=1), num_experts=16)
    assert keyed_ceiling(tr, 1)["ceiling"] == 1.0
    syn = synthetic_trace(300, 4, 16, 1, seed=2)
    c = keyed_ceiling(syn, 1)["ceiling"]
    from stmoe import evaluate
    assert evaluate(syn, ["cct"], budget=1, phases="decode", protocol="causal").rows[0]["recall"] <= c + 1e-9


def test_compare_domains():
    a = synthetic_trace(200, 3, 16, 2, seed=1)
    same = compare_domains(a, a)
    assert np.allclose(same["js_bits"], 0) and np.allclose(same["top_overlap"], 1)
    other = compare_domains(a, synthetic_trace(200, 3, 16, 2, seed=9))
    assert (other["js_bits"] > 0.05).all()


@pytest.mark.parametrize("shape, message", [
    (dict(num_tokens=64, num_layers=1), "has 1 layer; the cross-layer measures need at least 2"),
    (dict(num_tokens=8, num_layers=3, num_sequences=8), "no sequence of 2 or more tokens"),
])
def test_analyze_refuses_unmeasurable_traces(tmp_path, capsys, shape, message):
    from stmoe.cli import main
    from stmoe import StmoeError
    tr = synthetic_trace(**shape, num_experts=16, top_k=2, prompt_tokens=0, seed=0)
    with pytest.raises(StmoeError, match=message):
        analyze(tr)
    assert main(["analyze", str(tr.save(tmp_path / "t.npz"))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_temporal_vs_static_reproduces_the_peer_table_on_qwen(qwen):
    """BigMoeOnEdge's route-trace findings on this trace: 38.0% (previous token), 37.6% (hottest,
    in-sample), 17.9% (hottest of the prompt), 4.7% (random), 26.7% (8 steps back)."""
    from stmoe.analysis import temporal_vs_static
    r = temporal_vs_static(load_trace(qwen))
    got = [r["previous_token"], r["hottest_in_sample"], r["hottest_prompt_only"], r["random"], r["lag_overlap"][7]]
    assert got == pytest.approx([0.380, 0.376, 0.179, 0.047, 0.267], abs=0.005)
    assert len(r["lag_overlap"]) == 8 and r["lag_overlap"][0] == r["previous_token"]
    assert r["cross_layer_in_sample"] > r["hottest_in_sample"] + 0.1


def test_temporal_vs_static_follows_the_generators_dials():
    from stmoe.analysis import temporal_vs_static
    sticky = synthetic_trace(600, 4, 32, 2, temporal_reuse=6.0, cross_layer_affinity=0.0, seed=1)
    wired = synthetic_trace(600, 4, 32, 2, temporal_reuse=0.0, cross_layer_affinity=6.0, seed=1)
    a, b = temporal_vs_static(sticky), temporal_vs_static(wired)
    assert a["previous_token"] > 0.5 > b["previous_token"]
    assert a["previous_token"] > a["hottest_in_sample"] + 0.2      # the temporal rule sees reuse
    assert b["cross_layer_in_sample"] > b["hottest_in_sample"] + 0.2  # the spatial rule sees wiring
    assert b["cross_layer_in_sample"] > b["previous_token"] + 0.2
    assert a["random"] == 2 / 32
    decode_only = sticky.select(phase="decode")
    assert temporal_vs_static(decode_only)["hottest_prompt_only"] is None
    with pytest.raises(ConfigError, match="max_lag"):
        temporal_vs_static(sticky, max_lag=0)


def test_holm_on_a_hand_example():
    from stmoe.analysis import holm
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


def test_shuffles_stay_within_sequences():
    from stmoe.analysis import sequence_segments, shuffle_within
    tr = synthetic_trace(120, 2, 8, 2, num_sequences=5, seed=0)
    order, bounds = sequence_segments(tr)
    perm = order.copy()
    shuffle_within(perm, bounds)
    assert (tr.sequence[perm] == tr.sequence[order]).all() and (perm != order).any()
    for lo, hi in itertools.pairwise(bounds):
        assert sorted(perm[lo:hi]) == sorted(order[lo:hi])


def test_a_link_made_by_sequences_alone_is_not_significant():
    # every token of sequence s routes expert s at both layers: across sequences the layers are
    # perfectly linked, within a sequence nothing varies, so no within-sequence shuffle changes
    # the pairs (p = 1); shuffling across sequences would call it significant
    ids = np.repeat(np.arange(8), 20)[:, None, None].repeat(2, axis=1)
    tr = Trace(ids, num_experts=8, sequence=np.repeat(np.arange(8), 20))
    s = spatial_affinity(tr, permutations=99)
    assert s["mi_bits"][0] == pytest.approx(3.0) and s["p_value"][0] == 1.0 and s["significant_pairs"] == 0


def test_permutation_test_separates_linked_from_independent_layers():
    linked = synthetic_trace(400, 6, 16, 2, temporal_reuse=0.0, cross_layer_affinity=4.0, num_sequences=4, seed=3)
    s = spatial_affinity(linked, permutations=999)
    assert (s["p_value"] == 1 / 1000).all() and s["significant_pairs"] == 5
    assert (s["p_holm"] == 5 / 1000).all()
    indep = synthetic_trace(300, 41, 16, 2, temporal_reuse=0.0, cross_layer_affinity=0.0, num_sequences=4, seed=3)
    p = spatial_affinity(indep, permutations=999)
    # under independence the 40 p-values are uniform: mean 0.5, about 10% below 0.1, none
    # surviving Holm
    assert 0.35 < p["p_value"].mean() < 0.65 and (p["p_value"] < 0.1).sum() <= 9
    assert p["significant_pairs"] == 0 and (p["p_holm"] >= p["p_value"]).all()
