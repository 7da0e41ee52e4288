"""`stmoe sensitivity`: the table sorted by swing, the JSON contract, errors."""

import json

from stmoe.cli import main
from stmoe.sim.sensitivity import ranges_for


def test_table_sorted_by_swing(capsys):
    assert main(["sensitivity", "tiny-moe-code", "--hardware", "gpu-pcie"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny-moe-code") and "on gpu-pcie" in out and "energy swing" in out
    listed = [line.split()[0] for line in out.splitlines()[3:] if line and not line.startswith("note:")]
    assert sorted(listed) == sorted(r.field for r in ranges_for("gpu-pcie"))
    assert "note: the gpu-pcie buffer holds" in out


def test_json_has_every_row_and_notes(qwen, capsys):
    assert main(["sensitivity", qwen, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hardware"] == "accelerator" and out["trace"] == qwen
    assert [r["field"] for r in out["rows"]] == [r["field"] for r in
                                                 sorted(out["rows"], key=lambda r: -r["relative_swing"])]
    assert {r["field"] for r in out["rows"]} == {r.field for r in ranges_for("accelerator")}
    for r in out["rows"]:
        assert r["source"] and r["speedup_swing"] == r["speedup_high"] - r["speedup_low"]
    assert any(n.startswith("predictions: st-moe") for n in out["notes"])


def test_errors_are_one_line(qwen, capsys):
    assert main(["sensitivity", qwen, "--hardware", "tpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stmoe: error: unknown hardware preset 'tpu'") and err.count("\n") == 1
    assert main(["sensitivity", "no-such-trace"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stmoe: error: no-such-trace") and err.count("\n") == 1


def test_model_and_dtype_flags_set_the_sizes(capsys):
    """The unknown-model error tells the user to give --model: sensitivity has it."""
    from stmoe.cli import main
    assert main(["sensitivity", "tiny-moe-code", "--model", "qwen3-30b-a3b", "--dtype", "bfloat16", "--json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert "qwen3-30b-a3b" in str(out["model_dims"]).lower()
