"""`stmoe simulate`: the table, the JSON contract, errors."""

import json

import numpy as np
import pytest

from stmoe.cli import main

FIELDS = {"system", "latency_per_token_s", "speedup_vs_on_demand", "energy_per_token_j",
          "energy_efficiency_vs_on_demand", "hit_rate", "stall_share", "link_utilisation",
          "wasted_bytes"}


def test_json_contract(qwen, capsys):
    rc = main(["simulate", qwen, "--json", "--system", "on-demand", "--system", "oracle",
               "--system", "pre-gated", "--hardware", "edge-flash"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [r["system"] for r in out["results"]] == ["on-demand", "oracle", "pre-gated"]
    for r in out["results"]:
        assert FIELDS <= set(r)
    assert out["results"][0]["speedup_vs_on_demand"] == 1.0
    assert out["results"][1]["speedup_vs_on_demand"] > 1.0
    assert out["results"][2]["changes_routing"] is True


def test_table_and_sweep(qwen, capsys):
    assert main(["simulate", qwen, "--system", "lru-cache", "--hardware", "gpu-pcie"]) == 0
    out = capsys.readouterr().out
    assert "lru-cache" in out and "speedup" in out and "on gpu-pcie" in out
    assert main(["simulate", qwen, "--system", "oracle", "--sweep",
                 "link_bandwidth=1e10,1e12", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["value"] for r in rows] == [1e10, 1e12]
    assert rows[1]["latency_per_token_s"] < rows[0]["latency_per_token_s"]


def test_errors_are_one_line(qwen, tmp_path, capsys):
    assert main(["simulate", qwen, "--hardware", "tpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stmoe: error: unknown hardware preset 'tpu'") and err.count("\n") == 1
    assert main(["simulate", qwen, "--system", "warp"]) == 2
    assert "unknown system 'warp'" in capsys.readouterr().err
    assert main(["simulate", qwen, "--sweep", "colour=1,2"]) == 2
    assert "cannot sweep 'colour'" in capsys.readouterr().err


def test_unknown_dims_need_a_flag_and_flags_win(tmp_path, capsys):
    import stmoe

    path = stmoe.synthetic_trace(400, 6, 16, 2, num_sequences=4, prompt_tokens=20, seed=1).save(tmp_path / "syn.npz")
    assert main(["simulate", str(path), "--system", "on-demand", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "are unknown: give --model NAME" in err
    assert main(["simulate", str(path), "--system", "on-demand", "--model", "qwen3-30b-a3b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dims"]["model"] == "qwen3-30b-a3b" and "--model" in out["dims"]["source"]
    assert out["dims"]["expert_bytes"] == 3 * 2048 * 768 * 2
    assert main(["simulate", str(path), "--system", "on-demand", "--hidden", "512"]) == 2
    assert "--hidden/--ffn" in capsys.readouterr().err
    assert main(["simulate", str(path), "--system", "on-demand", "--system", "all-resident",
                 "--hidden", "512", "--ffn", "256", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert np.isclose(res[0]["speedup_vs_on_demand"], 1.0) and res[1]["speedup_vs_on_demand"] > 1


def test_dtype_moves_bf16_bytes_and_resident_latency_covers_expert_compute(qwen, capsys):
    assert main(["simulate", qwen, "--hardware", "accelerator", "--dtype", "bfloat16", "--system", "on-demand",
                 "--system", "all-resident", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dims"]["expert_bytes"] == 9_437_184 and out["dims"]["bytes_per_param"] == 2
    od, resident = out["results"]
    assert od["moved_bytes"] == od["requests"] * 9_437_184       # on-demand fetches every routed expert
    # all-resident: at least every routed expert's compute time, plus the attention, KV and LM head
    per_expert = (2 * 6 * 2302 + 16 * 1022) * 1e-9   # GEMV folds on the 128x128 os array (test_systolic)
    assert resident["latency_per_token_s"] >= resident["requests"] / resident["tokens"] * per_expert
    assert resident["time_experts_s"] == pytest.approx(resident["requests"] / resident["tokens"] * per_expert)
    for r in out["results"]:
        assert sum(r["energy_breakdown_j"].values()) == pytest.approx(r["energy_per_token_j"], rel=1e-12)
        assert set(r["energy_breakdown_j"]) == {"link", "buffer", "dense", "compute", "static"}


def test_cross_hardware_baseline(qwen, capsys):
    assert main(["simulate", qwen, "--system", "on-demand", "--system", "all-resident",
                 "--baseline", "on-demand@gpu-pcie", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["baseline"] == "on-demand@gpu-pcie"
    assert main(["simulate", qwen, "--hardware", "gpu-pcie", "--system", "on-demand", "--json"]) == 0
    gpu = json.loads(capsys.readouterr().out)["results"][0]
    for r in out["results"]:
        assert r["baseline"] == "on-demand@gpu-pcie"
        assert r["speedup_vs_baseline"] == pytest.approx(gpu["latency_per_token_s"] / r["latency_per_token_s"])
        assert r["energy_efficiency_vs_baseline"] == pytest.approx(gpu["energy_per_token_j"] / r["energy_per_token_j"])
    assert main(["simulate", qwen, "--system", "on-demand", "--baseline", "on-demand"]) == 2
    assert "SYSTEM@PRESET" in capsys.readouterr().err
    assert main(["simulate", qwen, "--system", "on-demand", "--baseline", "on-demand@tpu"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--sweep", "link_bandwidth"], "--sweep wants PARAM=V1,V2,..."),
    (["--sweep", "link_bandwidth=1e9,,2e9"], "--sweep values must be numbers"),
    (["--sweep", "budget=1.5"], "budget: sweep values must be whole numbers"),
    (["--sweep", "budget=0"], "budget: must be an integer from 1"),
    (["--ffn", "abc"], "argument --ffn: invalid int value: 'abc'"),
])
def test_bad_options_are_one_line(tmp_path, capsys, argv, message):
    import stmoe

    path = stmoe.synthetic_trace(200, 4, 16, 2, num_sequences=2, prompt_tokens=10, seed=3).save(tmp_path / "s.npz")
    try:
        rc = main(["simulate", str(path), "--system", "st-moe", "--hidden", "64", "--ffn", "128", *argv])
    except SystemExit as exc:   # argparse's own errors exit from parse_args
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_default_set_profiles_on_one_half_and_simulates_the_other(capsys):
    """With no --system every system runs; st-moe and hot-set are profiled on the first half of
    the trace's sequences, every system simulated on the other half; --profile simulates all."""
    import stmoe
    from stmoe.sim.systems import SYSTEMS
    from stmoe.splits import split
    from stmoe.trace import DECODE

    assert main(["simulate", "tiny-moe-code", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["system"] for r in out["results"]] == list(SYSTEMS)
    scored = split(stmoe.load_trace("tiny-moe-code")).scored
    assert out["results"][0]["tokens"] == int((scored.phase == DECODE).sum())
    decode = out["results"][0]["tokens"]
    assert any(n.startswith("profile: the first half of tiny-moe-code's sequences") and
               n.endswith(f"simulated on the other half's {decode} decode tokens (its {scored.num_tokens - decode} "
                          "prefill tokens are not simulated)") for n in out["notes"])
    assert any(n.startswith("hot-set: the ") for n in out["notes"])
    assert main(["simulate", "qwen3-30b-a3b", "--json", "--hardware", "gpu-pcie"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "speculative-gate" not in [r["system"] for r in out["results"]]
    assert any(n.startswith("speculative-gate skipped:") for n in out["notes"])
    rows = {r["system"]: r for r in out["results"]}
    assert rows["st-moe"]["latency_per_token_s"] <= rows["lru-cache"]["latency_per_token_s"]


def test_a_profile_holding_the_simulated_tokens_is_refused_for_every_system(capsys):
    assert main(["simulate", "tiny-moe-code", "--system", "hot-set", "--profile", "tiny-moe-code"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds 100% of the scored tokens" in err


def test_batch_is_printed_and_in_every_row(capsys):
    args = ["simulate", "tiny-moe-code", "--system", "on-demand", "--system", "st-moe", "--batch", "8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "decode tokens, batch 8 (" in out and "note: batch 8: " in out
    # three groups of 8 sequences: the intervals rest on 3 units, said; the experts a step needs
    # are the batch's union under the trace's routing, the same for both systems (one note)
    assert "bootstrap over 3 groups of up to 8 sequences" in out and "unreliable: it rests on 3 units" in out
    assert out.count("a step's layer needs") == 1
    assert "the union of the experts its 8 tokens route to (k=4 each), the same for every system" in out
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["batch"] for r in rows] == [8, 8] and rows[0]["steps"] < rows[0]["tokens"]
    assert main(["simulate", "qwen3-30b-a3b", "--batch", "2"]) == 2
    assert "batch 2 decodes 2 sequences in lockstep" in capsys.readouterr().err
