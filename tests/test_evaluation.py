"""The evaluation protocols, the CLI's predict/analyze, and the ranking on real traces."""

import json

import numpy as np
import pytest

from stmoe import ConfigError, Trace, evaluate, load_trace, synthetic_trace
from stmoe.cli import main
from stmoe.predictors.base import Predictor


class Spy(Predictor):
    """Records which tokens (by token id) it was profiled on and asked to score."""

    name = "spy"

    def __init__(self):
        super().__init__()
        self.calls = []

    def _predict(self, trace, budget, lookahead):
        prof = set() if self.profile is None else set(self.profile.token_ids.tolist())
        self.calls.append((prof, set(trace.token_ids.tolist())))
        return np.full((trace.num_tokens, trace.num_layers, budget), -1, dtype=np.int16)


def with_ids(trace):
    return Trace(trace.expert_ids, num_experts=trace.num_experts, phase=trace.phase,
                 sequence=trace.sequence, token_ids=np.arange(trace.num_tokens), meta=trace.meta)


@pytest.mark.parametrize("sequences", [1, 4])
def test_split_never_scores_profiled_tokens(sequences):
    tr = with_ids(synthetic_trace(40, 3, 16, 2, num_sequences=sequences, seed=1))
    spy = Spy()
    evaluate(tr, [spy])
    scored = set()
    for prof, score in spy.calls:
        assert prof and score and not prof & score
        scored |= score
    # Several sequences: every token scored once (two folds); one sequence: the second half.
    assert scored == (set(range(40)) if sequences > 1 else set(range(20, 40)))


def test_causal_has_no_profile_and_cross_domain_scores_everything():
    tr = with_ids(synthetic_trace(30, 3, 16, 2, seed=1))
    spy = Spy()
    evaluate(tr, [spy], protocol="causal")
    assert spy.calls == [(set(), set(range(30)))]
    other = with_ids(synthetic_trace(30, 3, 16, 2, seed=2, domain="code"))
    spy = Spy()
    res = evaluate(tr, [spy], profile=other)
    assert spy.calls[0][1] == set(range(30)) and res.info["profile"] == other.label
    with pytest.raises(ConfigError, match="causal"):
        evaluate(tr, ["cct"], protocol="causal", profile=other)


def test_rows_and_per_layer():
    tr = synthetic_trace(200, 4, 16, 2, num_sequences=4, prompt_tokens=10, seed=3)
    res = evaluate(tr, ["oracle", "random"], budget=4)
    assert {(r["predictor"], r["phase"]) for r in res.rows} == {
        (p, ph) for p in ("oracle", "random") for ph in ("decode", "prefill")}
    o = res.row("oracle")
    assert o["recall"] == 1.0 and o["exact"] == 1.0 and o["cells"] == (200 - 40) * 4
    assert res.row("random")["precision"] == pytest.approx(res.row("random")["recall"] / 2)
    assert all(len(p["recall"]) == 4 for p in res.per_layer)
    json.dumps(res.to_dict())
    # Unrouted cells are excluded from every count.
    ids = tr.expert_ids.copy()
    ids[:, 3] = -1
    res = evaluate(Trace(ids, num_experts=16, phase=tr.phase, sequence=tr.sequence), ["oracle"])
    assert res.row("oracle")["cells"] == (200 - 40) * 3 and res.per_layer[0]["recall"][3] is None


def test_cli_predict_json(capsys, tmp_path):
    path = synthetic_trace(60, 3, 16, 2, num_sequences=2, prompt_tokens=10, seed=4).save(tmp_path / "t.npz")
    assert main(["predict", str(path), "--predictor", "cct", "--predictor", "oracle", "--budget", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["predictor"] for r in out["results"]] == ["cct", "cct", "oracle", "oracle"]
    for r in out["results"]:
        assert set(r) == {"predictor", "phase", "budget", "recall", "recall_ci_low", "recall_ci_high",
                          "precision", "exact", "cells"}
        assert r["recall_ci_low"] <= r["recall"] <= r["recall_ci_high"]
        assert r["budget"] == 3
    assert main(["predict", str(path), "--budget", "17"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["predict", str(path), "--lookahead", "9"]) == 2
    assert "lookahead" in capsys.readouterr().err


def test_cli_analyze(capsys, tmp_path):
    path = synthetic_trace(80, 4, 16, 2, seed=4).save(tmp_path / "t.npz")
    assert main(["analyze", str(path), "--json", "--permutations", "9"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["popularity"]["gini"]) == 4 and len(out["spatial"]["p_value"]) == 3
    assert main(["analyze", str(path)]) == 0
    assert "reuse of previous token" in capsys.readouterr().out


@pytest.fixture
def real_traces(qwen, granite):
    return {"qwen": load_trace(qwen), "granite": load_trace(granite),
            "synthetic": synthetic_trace(2048, 16, 64, 4, seed=1)}


def test_stmoe_beats_every_single_signal_on_real_traces(real_traces):
    for name, tr in real_traces.items():
        res = evaluate(tr, ["st-moe", "cct", "history", "previous-token", "popularity"], phases="decode")
        r = {row["predictor"]: row["recall"] for row in res.rows}
        assert r["st-moe"] > max(r["cct"], r["history"], r["previous-token"], r["popularity"]), (name, r)


def test_qwen_reaches_the_design_bar(qwen):
    r = evaluate(load_trace(qwen), ["st-moe"], phases="decode").row("st-moe")
    assert r["recall"] > 0.586 and r["cells"] == 78 * 48


@pytest.mark.parametrize("profile_of", [lambda t: t, lambda t: t.select(phase="decode"),
                                        lambda t: t.select(sequences=t.sequence_ids()[:3])])
def test_profile_holding_the_scored_tokens_is_refused(profile_of, tmp_path, capsys):
    from stmoe.sim.hardware import model_dims
    from stmoe.sim.timing import simulate
    tr = synthetic_trace(400, 4, 16, 2, num_sequences=4, prompt_tokens=10, seed=5)
    with pytest.raises(ConfigError, match=r"profile: .* holds \d+% of the scored tokens"):
        evaluate(tr, "cct", profile=profile_of(tr))
    with pytest.raises(ConfigError, match="of the scored tokens"):
        simulate(tr, "accelerator", "st-moe", profile=profile_of(tr), dims=model_dims(tr, hidden=64, ffn=128))
    path = tr.save(tmp_path / "t.npz")
    assert main(["predict", str(path), "--profile", str(path)]) == 2
    assert "of the scored tokens" in capsys.readouterr().err
    seqs = tr.sequence_ids()
    held_out = evaluate(tr.select(sequences=seqs[3:]), "cct", profile=tr.select(sequences=seqs[:3]))
    assert 0 < held_out.rows[0]["recall"] < 1


def test_recall_interval_holds_the_estimate_narrows_with_sequences_and_repeats():
    def cct(sequences):
        tr = synthetic_trace(48 * sequences, 4, 16, 2, num_sequences=sequences, prompt_tokens=8, seed=5)
        return evaluate(tr, ["cct"], phases="decode")
    few, many = cct(16), cct(256)
    widths = []
    for res in (few, many):
        r = res.row("cct")
        assert r["recall_ci_low"] < r["recall"] < r["recall_ci_high"]
        widths.append(r["recall_ci_high"] - r["recall_ci_low"])
    assert widths[1] < widths[0] / 2   # 16x the sequences: about a quarter of the width
    assert "256 sequences" in many.info["intervals"]["decode"]
    assert cct(16).row("cct") == few.row("cct")


def test_one_sequence_is_resampled_in_blocks():
    res = evaluate(synthetic_trace(200, 3, 16, 2, num_sequences=1, prompt_tokens=8, seed=1), ["cct"], phases="decode")
    r = res.row("cct")
    assert r["recall_ci_low"] < r["recall"] < r["recall_ci_high"]
    assert "13 blocks of 8 consecutive tokens (one sequence)" in res.info["intervals"]["decode"]   # 100 scored
