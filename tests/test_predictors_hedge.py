"""st-moe's hedge (stmoe.predictors.tables.STMoE, kernel.run_tables): never worse than the best
of its own tables beyond the regret bound, converging to a perfect member, exact members,
causal."""

import math

import numpy as np
import pytest

from stmoe import ConfigError, Trace, evaluate, load_trace, synthetic_trace
from stmoe.predictors import make, predict
from stmoe.predictors.kernel import POOL
from stmoe.splits import profile_half
from tests.test_predictors import functional_trace

SINGLE = ("popularity", "previous-token", "history", "cct")
DELTA = 1e-3  # the chance, over the draws, that the measured recall misses the bound


def tolerance(tokens: int, layers: int, warm_tokens: int = 0, runs: int = 1) -> float:
    """How far below the best single table st-moe's recall may fall on `tokens` scored tokens
    of full cells, in `runs` runs of consecutive decode tokens: AdaHedge's worst-case regret
    over the warm-up and scored rounds of `hedge_round` tokens (de Rooij et al., JMLR 2014,
    Theorem 8, relaxed to sqrt(R ln N) + (16/3) ln N + 2, times the round's tokens), plus the
    warm-up rounds' own loss (at most 1 a token), per scored token, plus the draws'
    Azuma-Hoeffding deviation and the two sampled-loss deviations (the hedge's and the best
    member's), each at confidence 1 - DELTA (see `stmoe.predictors.tables.STMoE`)."""
    n, r = len(POOL), make("st-moe").knobs["hedge_round"]
    rounds = (tokens + warm_tokens) / r + 2 * runs
    regret = r * (math.sqrt(rounds * math.log(n)) + 16 / 3 * math.log(n) + 2) + warm_tokens
    sampled = 2 * r * math.sqrt(rounds * math.log(1 / DELTA) / (2 * layers))
    return (regret + sampled) / tokens + math.sqrt(2 * math.log(1 / DELTA) / (tokens * layers))


def decode_runs(trace: Trace) -> int:
    """Runs of consecutive decode tokens (each may cut one more round)."""
    return int(np.count_nonzero(np.diff(np.r_[0, (trace.phase == 1).astype(int)]) == 1))


def prefill_then_decode(trace: Trace) -> tuple[Trace, Trace]:
    """(profile, scored): the prefill tokens of the profile half, the decode tokens of the rest
    (of a one-sequence trace: its prefill, then its decode)."""
    first = profile_half(trace) if len(trace.sequence_ids()) >= 2 else trace.phase == 0
    return trace.select(tokens=first & (trace.phase == 0)), trace.select(tokens=~first & (trace.phase == 1))


def decode_recalls(scored: Trace, profile: Trace) -> dict:
    """Decode recall at m = k of st-moe and the single tables; every decode cell is full (k
    experts routed), so recall is 1 - the bound's loss per token."""
    decode = scored.phase == 1
    assert (scored.expert_ids[decode] >= 0).all()
    res = evaluate(scored, [make("st-moe", hedge=True), *SINGLE], profile=profile, phases="decode")
    assert all(r["cells"] == decode.sum() * scored.num_layers for r in res.rows)
    return {r["predictor"].replace("[hedge=True]", ""): r["recall"] for r in res.rows}


@pytest.mark.parametrize("name", ["tiny-moe-code", "tiny-moe-prose", "qwen3-30b-a3b"])
def test_profiled_on_prefill_scored_on_decode(name):
    profile, scored = prefill_then_decode(load_trace(name))
    assert (profile.phase == 0).all() and (scored.phase == 1).all()
    r = decode_recalls(scored, profile)
    # The profile has no decode token: the decode weights start uniform on the scored tokens.
    tol = tolerance(scored.num_tokens, scored.num_layers, runs=decode_runs(scored))
    assert r["st-moe"] >= max(r[n] for n in SINGLE) - tol, (r, tol)


@pytest.mark.parametrize("scored_name, profile_name", [("tiny-moe-prose", "tiny-moe-code"),
                                                       ("tiny-moe-code", "tiny-moe-prose")])
def test_cross_domain(scored_name, profile_name):
    """Profiled on one bundled domain, scored on the other's decode tokens: st-moe stays level
    with the best member of its pool (the combination, here), within the regret bound and, as
    measured, far within it."""
    scored, profile = load_trace(scored_name), load_trace(profile_name)
    r = decode_recalls(scored, profile)
    combination = evaluate(scored, [make("st-moe", hedge=False)], profile=profile, phases="decode").rows[0]["recall"]
    best = max(combination, *(r[n] for n in SINGLE))
    warm = min(make("st-moe").knobs["tune_tokens"], profile.num_tokens // 2)
    tol = tolerance(int((scored.phase == 1).sum()), scored.num_layers, warm_tokens=warm, runs=decode_runs(scored))
    # The worst-case bound grows as sqrt(r) with rounds of r tokens (STMoE's docstring): on these
    # 21504 decode tokens in 48 runs it is 0.0758 at the default r = 8, against 0.0391 at r = 1
    # (why this guard was 0.05 before r = 8). It checks that the bound still says something
    # (recall here is 0.54-0.55); the tight check is the measured one below.
    assert tol < 0.1
    assert r["st-moe"] >= best - tol, (r, combination, tol)
    # Measured, best member - st-moe, seeds 0-3 (prose scored; code scored): r = 8, -0.00040 to
    # +0.00024; -0.00045 to +0.00011. r = 1, 0.00000 to +0.00002; +0.00001 to +0.00004. The
    # 8-token rounds cost no measurable recall; 0.002 is about 8 times the largest shortfall.
    assert r["st-moe"] >= best - 0.002, (r, combination)


@pytest.mark.parametrize("hedge_round", [1, 8])
def test_converges_to_the_perfect_member(hedge_round):
    """cct is perfect on layers 1.. once it has seen f; the combination, fixed to the history
    of random routing, is no better than chance (2 of 8) there. The hedge must end on cct's
    predictions."""
    tr = functional_trace(T=600)
    bad = {"tune": "none", "spatial_weight": 0.0, "transition_weight": 0.0, "history_weight": 2.0}
    hedged = make("st-moe", hedge=True, hedge_round=hedge_round, **bad).fit(None)
    pred = hedged.predict_trace(tr, 2)
    combination = predict(tr, "st-moe", hedge=False, **bad)
    cct = predict(tr, "cct")
    late = slice(300, None)

    def recall(p):
        return (p[late, 1:, :, None] == tr.expert_ids[late, 1:, None, :]).any(axis=2).mean()

    assert recall(cct) == 1.0 and recall(combination) < 0.35
    assert hedged.hedge_weights["decode"][0, POOL.index("cct")] > 0.99
    assert (pred[late, 1:] == cct[late, 1:]).all(axis=2).mean() > 0.99
    assert recall(pred) > 0.99


@pytest.mark.parametrize("lookahead", [1, 2])
@pytest.mark.parametrize("budget", [2, 5])
@pytest.mark.parametrize("hedge_round", [1, 8])
def test_every_cell_stages_one_members_prediction(lookahead, budget, hedge_round):
    """Each member is ranked exactly as its own predictor ranks it, whether every member is
    ranked in the cell (scoring it) or the drawn one alone."""
    tr = synthetic_trace(300, 5, 16, 3, num_sequences=3, seed=3)
    profile = synthetic_trace(200, 5, 16, 3, num_sequences=2, seed=4)
    hedged = predict(tr, "st-moe", hedge=True, hedge_round=hedge_round, profile=profile, budget=budget,
                     lookahead=lookahead)
    members = [predict(tr, "st-moe", hedge=False, profile=profile, budget=budget, lookahead=lookahead)] + \
        [predict(tr, name, profile=profile, budget=budget, lookahead=lookahead) for name in SINGLE]
    same = np.stack([(hedged == m).all(axis=2) for m in members])
    assert same.any(axis=0).all()
    if budget == 5:  # here the hedge does stage other members than the combination
        assert (same[1:].any(axis=0) & ~same[0]).any()


@pytest.mark.parametrize("lookahead", [1, 2])
def test_future_routing_leaves_earlier_predictions_alone(lookahead):
    """The hedge learns from each token once routed: altering tokens from 150 on (layers above
    the issuing one of token 150) must leave every earlier prediction as it was, and change later ones."""
    tr = synthetic_trace(300, 4, 16, 2, num_sequences=2, seed=11)
    profile = synthetic_trace(100, 4, 16, 2, seed=12)
    for prof in (profile, None):
        base = predict(tr, "st-moe", hedge=True, profile=prof, lookahead=lookahead)
        ids = tr.expert_ids.copy()
        ids[150, lookahead:] = (ids[150, lookahead:] + 5) % 16
        ids[151:] = (ids[151:] + 3) % 16
        after = predict(Trace(ids, num_experts=16, sequence=tr.sequence, phase=tr.phase), "st-moe", hedge=True,
                        profile=prof, lookahead=lookahead)
        assert np.array_equal(base[:150], after[:150])
        assert np.array_equal(base[150, :lookahead + 1], after[150, :lookahead + 1])
        assert not np.array_equal(base[151:], after[151:])


def test_hedge_draws_are_seeded():
    tr = synthetic_trace(200, 4, 16, 2, seed=2)
    a, b = predict(tr, "st-moe", hedge=True), predict(tr, "st-moe", hedge=True)
    c = predict(tr, "st-moe", hedge=True, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["tiny-moe-untrained", "qwen3-30b-a3b"])
def test_rounds_cost_little_recall(name):
    """Scoring the members on one sampled token per layer of each 8-token round (the default)
    instead of on every token: decode recall within 0.005 (measured: 0.0000 and 0.0013)."""
    res = evaluate(load_trace(name), ["st-moe", make("st-moe", hedge_round=1)], phases="decode")
    sampled, every = (row["recall"] for row in res.rows)
    assert abs(sampled - every) <= 0.005, (sampled, every)


@pytest.mark.parametrize("knobs, match", [({"hedge": "yes"}, "hedge must be True or False"),
                                          ({"hedge_round": 0}, "hedge_round must be"),
                                          ({"seed": -1}, "seed must be an integer"),
                                          ({"seed": 0.5}, "seed must be an integer")])
def test_bad_hedge_knobs(knobs, match):
    with pytest.raises(ConfigError, match=match):
        make("st-moe", **knobs)


@pytest.mark.parametrize("name", ["tiny-moe-code", "tiny-moe-prose", "tiny-moe-untrained", "qwen3-30b-a3b",
                                  "granite-3.0-1b-a400m-sglang"])
def test_never_below_its_best_member_on_the_shipped_traces(name):
    """The default st-moe, scored as `stmoe predict` scores it (each half of the sequences with
    the other as profile), against each table it combines, on every shipped trace with decode
    tokens; the untrained control is the case the unhedged mix loses (history wins there)."""
    trace = load_trace(name)
    res = evaluate(trace, ["st-moe", *SINGLE], phases="decode")
    r = {row["predictor"]: row for row in res.rows}
    cells = r["st-moe"]["cells"]
    # each half is scored on its own (a call, which cuts rounds): two more runs
    tol = tolerance(cells // trace.num_layers, trace.num_layers, runs=decode_runs(trace) + 2)
    assert r["st-moe"]["recall"] >= max(r[n]["recall"] for n in SINGLE) - tol, (r, tol)
    if name == "tiny-moe-untrained":   # measured: the hedge keeps level with history here
        assert r["st-moe"]["recall"] >= r["history"]["recall"] - 0.005
