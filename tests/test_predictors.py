"""Each predictor's semantics on tiny hand-made traces, and the causal contract."""

import numpy as np
import pytest

from stmoe import ConfigError, StmoeError, Trace, evaluate, synthetic_trace
from stmoe.predictors import PREDICTORS, issue_layer, make, predict

E = 8


def functional_trace(T=60, L=4, seed=0):
    """Layer 0 random top-2; layer l+1 = f(layer l) with f(i) = (3 i + 1) mod E, per slot."""
    rng = np.random.default_rng(seed)
    ids = np.empty((T, L, 2), dtype=np.int16)
    ids[:, 0] = np.stack([rng.choice(E, 2, replace=False) for _ in range(T)])
    for l in range(1, L):
        ids[:, l] = (3 * ids[:, l - 1] + 1) % E
    return Trace(ids, num_experts=E)


def recall(pred, ids):
    from stmoe.predictors.base import cell_hits
    hits, routed, _ = cell_hits(pred, ids)
    return hits.sum() / routed.sum()


def test_names_match_contract():
    assert list(PREDICTORS) == ["popularity", "previous-token", "history", "cct", "st-moe",
                                "stale-gate", "trained", "random", "oracle"]


def test_cct_learns_a_function_between_layers():
    tr = functional_trace()
    profile, scored = tr.select(tokens=np.arange(30)), tr.select(tokens=np.arange(30, 60))
    pred = predict(scored, "cct", profile=profile)
    assert pred.shape == (30, 4, 2) and pred.dtype == np.int16
    # Layers >= 1 are issued after layer l-1 of the same token: exactly determined.
    assert recall(pred[:, 1:], scored.expert_ids[:, 1:]) == 1.0
    # Layer 0 is issued after layer 3 of the previous token: unrelated, so far below 1.
    assert recall(pred[:, :1], scored.expert_ids[:, :1]) < 0.6


def test_oracle_and_random():
    tr = synthetic_trace(200, 4, 32, 4, seed=3)
    assert recall(predict(tr, "oracle"), tr.expert_ids) == 1.0
    assert recall(predict(tr, "oracle", budget=2), tr.expert_ids) == 0.5
    r = recall(predict(tr, "random", budget=8, seed=1), tr.expert_ids)
    assert abs(r - 8 / 32) < 0.03
    assert np.array_equal(predict(tr, "random", seed=1), predict(tr, "random", seed=1))
    assert not np.array_equal(predict(tr, "random", seed=1), predict(tr, "random", seed=2))


def test_previous_token_and_popularity():
    ids = np.array([[[0, 1]], [[2, 3]], [[2, 4]], [[5, 6]]], dtype=np.int16)  # L=1
    tr = Trace(np.repeat(ids, 2, axis=1), num_experts=E, sequence=[0, 0, 0, 1])
    pred = predict(tr, "previous-token", budget=3)
    assert pred[1, 0, :2].tolist() == [0, 1]  # the previous token's, in rank order
    assert pred[2, 0, :2].tolist() == [2, 3]
    assert pred[2, 0, 2] == 0  # the filler: most popular so far, lower id on a tie
    assert pred[3, 0, 0] == 2  # new sequence: popularity only (2 was routed twice)
    pop = predict(tr, "popularity", budget=1)
    assert pop[3, 0, 0] == 2 and pop[0, 0, 0] == 0


def test_history_weights_recent_tokens():
    ids = np.array([[[0, 1]], [[0, 2]], [[3, 4]], [[5, 6]]], dtype=np.int16)
    tr = Trace(ids, num_experts=E)
    pred = predict(tr, "history", budget=3, history_length=3, history_decay=0.5)
    # At t=3: weights 1 for {3,4}, 0.5 for {0,2}, 0.25 for {0,1}: 0 totals 0.75 > 2's 0.5.
    assert pred[3, 0].tolist() == [3, 4, 0]
    assert predict(tr, "history", budget=2, history_length=1)[3, 0].tolist() == [3, 4]


def test_stmoe_combines_both_signals():
    tr = synthetic_trace(1500, 6, 32, 4, temporal_reuse=2.0, cross_layer_affinity=2.5, seed=5)
    res = evaluate(tr, ["st-moe", "cct", "history", "previous-token", "popularity"], phases="decode")
    r = {row["predictor"]: row["recall"] for row in res.rows}
    assert r["st-moe"] > max(r["cct"], r["history"], r["previous-token"], r["popularity"])


@pytest.mark.parametrize("name", ["popularity", "previous-token", "history", "cct", "st-moe", "trained"])
@pytest.mark.parametrize("lookahead", [1, 2])
def test_causal_contract(name, lookahead):
    """P(t, l) may not change when anything routed after its issue point changes."""
    tr = synthetic_trace(40, 5, 16, 3, num_sequences=2, seed=7)
    profile = synthetic_trace(40, 5, 16, 3, num_sequences=2, seed=8)
    knobs = {"block": 4} if name == "trained" else {}
    base = predict(tr, name, profile=profile, lookahead=lookahead, **knobs)
    t, l = 13, 3
    offset, layer = issue_layer(tr.num_layers, lookahead)
    assert offset[l] == 0 and layer[l] == l - lookahead
    ids = tr.expert_ids.copy()
    rng = np.random.default_rng(0)
    ids[t, layer[l] + 1:] = np.stack([rng.permutation(16)[:3] for _ in range(5 - layer[l] - 1)])
    ids[t + 1:] = ids[t + 1:][:, :, ::-1]  # later tokens: different rank order...
    ids[t + 1:] = (ids[t + 1:] + 5) % 16   # ...and different experts
    altered = Trace(ids, num_experts=16, sequence=tr.sequence, phase=tr.phase)
    after = predict(altered, name, profile=profile, lookahead=lookahead, **knobs)
    assert np.array_equal(base[:t], after[:t])
    assert np.array_equal(base[t, :l + 1], after[t, :l + 1])
    assert not np.array_equal(base[t + 1:], after[t + 1:])  # the alteration did matter


def test_issue_layer_wraps_to_previous_token():
    offset, layer = issue_layer(4, 2)
    assert offset.tolist() == [-1, -1, 0, 0] and layer.tolist() == [2, 3, 0, 1]


def test_lookahead_gate_uses_the_recorded_field():
    tr = synthetic_trace(20, 3, 16, 2, seed=1)
    with pytest.raises(ConfigError, match="no stale_gate field"):
        predict(tr, "stale-gate")
    la = np.full((20, 3, 1), -1, dtype=np.int16)
    la[:, 1:, 0] = tr.expert_ids[:, 1:, 0]  # a gate that knows the top expert
    gated = Trace(tr.expert_ids, num_experts=16, stale_gate=la)
    pred = predict(gated, "stale-gate")
    assert np.array_equal(pred[:, 1:, 0], tr.expert_ids[:, 1:, 0])
    assert (pred >= 0).all() and (pred[:, :, 0] != pred[:, :, 1]).all()
    with pytest.raises(ConfigError, match="lookahead 2"):
        predict(gated, "stale-gate", lookahead=2)


def test_trained_is_labelled_and_learns():
    tr = functional_trace(T=80)
    assert make("trained").trained and not make("cct").trained
    pred = predict(tr.select(tokens=np.arange(40, 80)), "trained", profile=tr.select(tokens=np.arange(40)))
    assert recall(pred[:, 1:], tr.expert_ids[40:, 1:]) > 0.9


def test_predict_does_not_mutate_fitted_tables():
    tr = synthetic_trace(50, 3, 16, 2, seed=2)
    p = make("st-moe").fit(tr.select(tokens=np.arange(25)))
    scored = tr.select(tokens=np.arange(25, 50))
    assert np.array_equal(p.predict_trace(scored, 2), p.predict_trace(scored, 2))


@pytest.mark.parametrize("call, match", [
    (lambda tr: make("nope"), "unknown predictor 'nope'.*st-moe"),
    (lambda tr: make("cct", colour=1), "unknown knob 'colour'.*decay"),
    (lambda tr: make("cct", decay=0), "decay"),
    (lambda tr: make("st-moe", combine="sum"), "combine"),
    (lambda tr: predict(tr, "cct", budget=0), "budget.*got 0"),
    (lambda tr: predict(tr, "cct", budget=17), "budget.*got 17"),
    (lambda tr: predict(tr, "cct", lookahead=4), "lookahead.*1 to 3.*got 4"),
    (lambda tr: predict(tr, "cct", lookahead=0), "lookahead.*got 0"),
    (lambda tr: predict(tr, "cct", profile=synthetic_trace(20, 4, 16, 2)), "profile.*4 layers.*3 x 16"),
    (lambda tr: evaluate(tr.select(tokens=[0])), "1 token"),
    (lambda tr: evaluate(tr, protocol="both"), "protocol"),
])
def test_bad_arguments(call, match):
    tr = synthetic_trace(20, 3, 16, 2, seed=1)
    with pytest.raises(StmoeError, match=match):
        call(tr)


def test_stmoe_retuning_without_profile_stays_causal():
    """Without a profile st-moe retunes on its own past at 64 and 128 tokens: altering tokens
    from 100 on must leave every earlier prediction alone, and change later ones."""
    tr = synthetic_trace(200, 4, 16, 2, seed=11)
    base = predict(tr, "st-moe")
    ids = tr.expert_ids.copy()
    ids[100:] = (ids[100:] + 3) % 16
    after = predict(Trace(ids, num_experts=16, sequence=tr.sequence, phase=tr.phase), "st-moe")
    assert np.array_equal(base[:100], after[:100]) and not np.array_equal(base[100:], after[100:])


def test_refitting_forgets_weights_tuned_on_the_previous_profile():
    tr = synthetic_trace(100, 3, 16, 2, seed=4)
    p = make("st-moe").fit(tr.select(tokens=np.arange(60)))
    p.predict_trace(tr.select(tokens=np.arange(60, 100)), 2)
    assert p.tuned_weights
    p.fit(tr.select(tokens=[60, 61]))  # too short to tune on: the knobs' weights, not stale ones
    p.predict_trace(tr.select(tokens=np.arange(62, 100)), 2)
    assert not p.tuned_weights
