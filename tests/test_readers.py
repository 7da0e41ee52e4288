"""Readers on the public traces' original files (data/sources) and on small files written here."""

import json

import numpy as np
import pytest

from stmoe import TraceError, load_trace
from stmoe.cli import main


def test_qwen_route_trace(qwen_csv):
    tr = load_trace(qwen_csv)
    s = tr.summary()
    assert (s["num_layers"], s["num_experts"], s["top_k"]) == (48, 128, 6)
    assert (s["prefill_tokens"], s["decode_tokens"]) == (28, 128)
    caveats = " ".join(s["caveats"])
    assert "stock top-8" in caveats
    assert "prefill: layer 47 routes only 1 of 28 tokens" in caveats
    dec = tr.select(phase="decode")
    assert (dec.expert_ids >= 0).all()
    assert np.allclose(dec.weights.sum(-1), 1, atol=1e-4)


def test_granite_sglang(granite_sglang):
    s = load_trace(granite_sglang).summary()
    assert (s["num_layers"], s["num_experts"], s["top_k"]) == (24, 32, 8)
    assert (s["sequences"], s["tokens"], s["prefill_tokens"], s["decode_tokens"]) == (8, 216, 64, 152)
    assert s["fields"]["token_ids"] and not s["fields"]["weights"]


def test_granite_transformers(granite_hf):
    tr = load_trace(granite_hf)
    assert (tr.num_layers, tr.num_experts, tr.top_k, tr.num_tokens) == (24, 32, 8, 22)
    assert tr.weights is not None and tr.token_ids[0] == 49152


def test_cli_info_json(qwen_csv, capsys):
    assert main(["info", str(qwen_csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_layers"] == 48 and out["decode_tokens"] == 128


# ---------------------------------------------------------------- small files written here
HEADER = "# route_trace v1\n# model=m.gguf arch=toy n_layer=2 n_expert=4 n_expert_used=2\n"
COLUMNS = "turn,phase,step,layer,slot,expert,weight,residency,expert_bytes\n"


def csv_rows(rows):
    return "".join(",".join(str(x) for x in r) + ",0,100\n" for r in rows)


GOOD_ROWS = [(0, 0, 0, 0, 0, 1, 0.6), (0, 0, 0, 0, 1, 2, 0.4), (0, 0, 0, 1, 0, 3, 0.7), (0, 0, 0, 1, 1, 0, 0.3),
             (0, 1, 1, 0, 0, 2, 0.5), (0, 1, 1, 0, 1, 1, 0.5), (0, 1, 1, 1, 0, 0, 0.9), (0, 1, 1, 1, 1, 3, 0.1)]


def test_small_route_trace(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text(HEADER + COLUMNS + csv_rows(GOOD_ROWS))
    tr = load_trace(path)
    assert tr.expert_ids.tolist() == [[[1, 2], [3, 0]], [[2, 1], [0, 3]]]
    assert tr.phase.tolist() == [0, 1]
    assert tr.meta["caveats"] == []


def test_small_simllm(tmp_path):
    head = {"row_type": "header", "schema": "simllm-preplay-trace-v2",
            "provenance": {"expert_count": 4, "top_k": 2, "moe_layer_indices": [0, 1], "model_id": "toy"}}
    rows = [head]
    for phase, idx, tok in (("decode", 0, 7), ("prefill", 0, 5)):
        rows.append({"row_type": "observed-dispatch", "schema": "simllm-preplay-trace-v2",
                     "request_id": "r", "phase": phase, "token_index": idx, "token_id": tok,
                     "routing": [{"layer_index": 0, "expert_ids": [0, 1]},
                                 {"layer_index": 1, "expert_ids": [2, 3]}]})
    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tr = load_trace(path)
    assert tr.phase.tolist() == [0, 1]  # prefill sorted before decode
    assert tr.token_ids.tolist() == [5, 7]


BAD_CSV = {
    "empty": ("", "file is empty"),
    "truncated": (HEADER + COLUMNS + csv_rows(GOOD_ROWS)[:-9], "fields, expected 9 (truncated file?)"),
    "missing_column": (HEADER + COLUMNS.replace("expert,", "") + csv_rows(GOOD_ROWS), "missing column(s) expert"),
    "expert_out_of_range": (HEADER + COLUMNS + csv_rows(GOOD_ROWS[:-1] + [(0, 1, 1, 1, 1, 4, 0.1)]),
                            "line 11: expert 4 is outside 0..3"),
    "duplicate_id": (HEADER + COLUMNS + csv_rows(GOOD_ROWS[:-1] + [(0, 1, 1, 1, 1, 0, 0.1)]),
                     "expert id 0 appears twice at token 1, layer 1"),
    "nan_weight": (HEADER + COLUMNS + csv_rows(GOOD_ROWS[:-1] + [(0, 1, 1, 1, 1, 3, "nan")]),
                   "line 11: weight nan is not finite"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv(tmp_path, capsys, case):
    text, message = BAD_CSV[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    with pytest.raises(TraceError) as err:
        load_trace(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert main(["info", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]
    assert "Traceback" not in lines[0]


def test_bad_jsonl_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    head = {"row_type": "header", "schema": "simllm-preplay-trace-v1",
            "provenance": {"expert_count": 4, "top_k": 2, "moe_layer_indices": [0]}}
    path.write_text(json.dumps(head) + "\n{not json\n")
    with pytest.raises(TraceError, match=r"bad.jsonl: line 2: not valid JSON"):
        load_trace(path)


def test_binary_file(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(TraceError, match="binary file"):
        load_trace(path)


def test_unknown_extension(tmp_path, capsys):
    path = tmp_path / "trace.parquet"
    path.write_text("x")
    with pytest.raises(TraceError, match="unknown trace format '.parquet'"):
        load_trace(path)
    assert main(["info", str(path)]) == 2
    assert "unknown trace format" in capsys.readouterr().err


def test_unknown_name():
    with pytest.raises(TraceError, match="neither a trace file nor a known trace name"):
        load_trace("no-such-trace")


@pytest.mark.parametrize("argv, message", [
    (["info", "{tmp}/plain"], "{tmp}/plain: is a directory"),
    (["info", ""], "trace: an empty path or name"),
    (["predict", "tiny-moe-code", "--profile", ""], "trace: an empty path or name"),
])
def test_directories_and_empty_names(tmp_path, capsys, argv, message):
    (tmp_path / "plain").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.replace("{tmp}", str(tmp_path)) in err
