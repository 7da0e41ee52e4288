"""A test per class of hostile trace file (issue 16): special files, sizes claimed by headers
rather than held in the data, fields of the wrong type, ids that would wrap, and the silent
coercions (missing layer, duplicates, second header, partial gate weights) that must now be an
error or a caveat. Every one is a one-line TraceError naming the file, and exit 2 from the CLI."""

import io
import json
import os
import warnings
import zipfile

import numpy as np
import pytest

from stmoe import ConfigError, Trace, TraceError, load_trace, synthetic_trace
from stmoe.cli import main
from stmoe.trace import MAX_EXPERTS

CSV_HEAD = "# route_trace v1\n# model=m.gguf arch=toy n_layer={L} n_expert={E} n_expert_used={k}\n"
COLUMNS = "turn,phase,step,layer,slot,expert,weight\n"


def csv_file(tmp_path, rows, L=2, E=4, k=2, extra="", name="t.csv"):
    path = tmp_path / name
    path.write_text(CSV_HEAD.format(L=L, E=E, k=k) + extra + COLUMNS
                    + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def csv_token(turn, step, phase=1, experts=((1, 2), (3, 0))):
    return [(turn, phase, step, layer, slot, e, 0.5)
            for layer, pair in enumerate(experts) for slot, e in enumerate(pair)]


def jsonl_file(tmp_path, tokens, prov=None, header_extra=(), name="t.jsonl"):
    prov = {"expert_count": 4, "top_k": 2, "moe_layer_indices": [0, 1], "model_id": "m", **(prov or {})}
    header = json.dumps({"row_type": "header", "schema": "simllm-preplay-trace-v2", "provenance": prov})
    lines = [header, *header_extra, *(t if isinstance(t, str) else json.dumps(t) for t in tokens)]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def token(index, routing=None, **fields):
    routing = routing if routing is not None else [
        {"layer_index": 0, "expert_ids": [1, 2], "gate_weights": [0.6, 0.4]},
        {"layer_index": 1, "expert_ids": [3, 0], "gate_weights": [0.7, 0.3]}]
    return {"row_type": "observed-dispatch", "request_id": "r", "phase": "decode", "token_index": index,
            "token_id": 5, "routing": routing, **fields}


def refused(path, capsys, *words):
    """The CLI's answer: exit 2, one line, naming the file and each of `words`."""
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(path) in err, err
    for w in words:
        assert w in err, (w, err)
    return err


# ---------------------------------------------------------------- special files
def test_named_pipe_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    refused(fifo, capsys, "is a named pipe, not a regular file")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".npz"])
def test_symlink_to_dev_zero_is_refused(tmp_path, capsys, suffix):
    link = tmp_path / f"zero{suffix}"
    link.symlink_to("/dev/zero")
    refused(link, capsys, "is a character device, not a regular file")


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_directory_and_missing_file(tmp_path, capsys, suffix):
    (tmp_path / f"d{suffix}").mkdir()
    refused(tmp_path / f"d{suffix}", capsys, "is a directory")
    refused(tmp_path / f"none{suffix}", capsys, "no such file")
    (tmp_path / f"dangling{suffix}").symlink_to(tmp_path / "nowhere")
    refused(tmp_path / f"dangling{suffix}", capsys, "no such file")


def test_text_file_over_the_limit(tmp_path, capsys, monkeypatch):
    path = csv_file(tmp_path, csv_token(0, 0))
    monkeypatch.setattr("stmoe.files.MAX_TEXT_BYTES", 100)
    refused(path, capsys, "over the 100-byte limit", "STMOE_MAX_TEXT_BYTES")


# ---------------------------------------------------------------- sizes claimed by headers
@pytest.mark.parametrize("L,E,k,words", [
    (1000000000, 4, 2, "n_layer='1000000000' is not an integer in 1..4096"),
    (2, 40000, 2, "n_expert='40000' is not an integer in 1..32767"),
    (2, 4, 8, "n_expert_used=8 exceeds n_expert=4"),
    (2, 4, "2.0", "n_expert_used='2.0' is not an integer"),
])
def test_csv_header_caps(tmp_path, capsys, L, E, k, words):
    refused(csv_file(tmp_path, csv_token(0, 0), L=L, E=E, k=k), capsys, words)


def test_csv_header_claims_more_than_the_data_holds(tmp_path, capsys):
    # 4096 layers x top-1024 for one token, with 4 ids present: refused before allocating.
    rows = [(0, 1, 0, 0, s, s, 0.25) for s in range(4)]
    refused(csv_file(tmp_path, rows, L=4096, E=2048, k=1024), capsys, "holds only 4 expert ids")


@pytest.mark.parametrize("prov,words", [
    ({"top_k": -1}, "provenance.top_k must be an integer in 1..4, got -1"),
    ({"top_k": 2.0}, "provenance.top_k must be an integer"),
    ({"expert_count": "abc"}, "provenance.expert_count must be an integer in 1..32767, got 'abc'"),
    ({"expert_count": None}, "provenance.expert_count"),
    ({"expert_count": float("inf")}, "provenance.expert_count"),
    ({"expert_count": True}, "provenance.expert_count"),
    ({"expert_count": 40000}, "1..32767, got 40000"),
    ({"moe_layer_indices": [0, 0]}, "moe_layer_indices"),
    ({"moe_layer_indices": "01"}, "moe_layer_indices"),
    ({"model_id": ["m"]}, "provenance.model_id must be a string"),
])
def test_jsonl_header_types(tmp_path, capsys, prov, words):
    refused(jsonl_file(tmp_path, [token(0)], prov=prov), capsys, words)


def test_jsonl_top_k_larger_than_data(tmp_path, capsys):
    layers = list(range(4096))
    refused(jsonl_file(tmp_path, [token(0, routing=[])], prov={"moe_layer_indices": layers}),
            capsys, "holds only 0 expert ids")


# ---------------------------------------------------------------- field types in JSON lines
@pytest.mark.parametrize("experts", [[1.5, 2], [True, 2], [1.0, 2], ["1", 2], [2 ** 63, 2], [-1, 2], [None, 2]])
def test_jsonl_expert_ids_must_be_integers_in_range(tmp_path, capsys, experts):
    routing = [{"layer_index": 0, "expert_ids": experts}, {"layer_index": 1, "expert_ids": [3, 0]}]
    refused(jsonl_file(tmp_path, [token(0, routing=routing)]), capsys, "line 2",
            "expert_ids must be a list of 2 integers")


@pytest.mark.parametrize("field,value,words", [
    ("token_index", 1.5, "token_index must be an integer"),
    ("token_index", True, "token_index must be an integer"),
    ("token_id", 2 ** 31, "token_id must be an integer in 0..2147483647"),
    ("request_id", [1], "request_id must be a string or integer"),
    ("routing", {"layer_index": 0}, "'routing' is not a list"),
])
def test_jsonl_token_field_types(tmp_path, capsys, field, value, words):
    refused(jsonl_file(tmp_path, [token(0, **{field: value})]), capsys, "line 2", words)


def test_jsonl_layer_index_a_list(tmp_path, capsys):
    routing = [{"layer_index": [0], "expert_ids": [1, 2]}]
    refused(jsonl_file(tmp_path, [token(0, routing=routing)]), capsys, "layer_index [0] is not one of")


def test_jsonl_deeply_nested_line(tmp_path, capsys):
    deep = "[" * 100000 + "]" * 100000
    refused(jsonl_file(tmp_path, [token(0), deep]), capsys, "line 3")


def test_jsonl_gate_weights_types(tmp_path, capsys):
    routing = [{"layer_index": 0, "expert_ids": [1, 2], "gate_weights": [True, 0.5]}]
    refused(jsonl_file(tmp_path, [token(0, routing=routing)]), capsys, "gate_weights must be 2 numbers")


# ---------------------------------------------------------------- ids that would wrap
def test_expert_ids_above_int16_are_refused_not_wrapped():
    ids = np.array([[[40000]]])
    with pytest.raises(TraceError, match=r"num_experts: 40001 is outside 1\.\.32767"):
        Trace(ids, num_experts=40001)
    assert MAX_EXPERTS == 32767


def test_largest_expert_id_survives_a_round_trip(tmp_path):
    ids = np.array([[[32766, 0]]])
    back = load_trace(Trace(ids, num_experts=32767).save(tmp_path / "big.npz"))
    assert back.expert_ids.tolist() == [[[32766, 0]]]


def test_sequence_numbers_above_int32_are_refused(tmp_path, capsys):
    rows = csv_token(0, 0) + csv_token(2 ** 31, 0)
    refused(csv_file(tmp_path, rows), capsys, "turn 2147483648 is outside 0..2147483647")
    with pytest.raises(TraceError, match="sequence: value 2147483648 does not fit int32"):
        Trace(np.zeros((2, 1, 1), int), num_experts=2, sequence=[0, 2 ** 31])


def test_csv_integers_are_plain_digits(tmp_path, capsys):
    rows = csv_token(0, 0)
    rows[0] = (0, 1, 0, 0, 0, "1.0", 0.5)
    refused(csv_file(tmp_path, rows), capsys, "line 4", "expert '1.0' is not an integer")
    rows[0] = (0, 1, 0, 0, 0, "1_0", 0.5)
    refused(csv_file(tmp_path, rows), capsys, "expert '1_0' is not an integer")
    rows[0] = (0, 1, 0, 0, 0, "9" * 40, 0.5)
    refused(csv_file(tmp_path, rows), capsys, "is not an integer")


# ---------------------------------------------------------------- no silent coercion
def test_jsonl_missing_layer_is_a_caveat(tmp_path, capsys):
    partial = [{"layer_index": 0, "expert_ids": [1, 2], "gate_weights": [0.5, 0.5]}]
    path = jsonl_file(tmp_path, [token(0), token(1, routing=partial)])
    assert main(["info", str(path)]) == 0
    assert "caveat     decode: layer 1 routes only 1 of 2 tokens" in capsys.readouterr().out


def test_csv_missing_layer_is_a_caveat(tmp_path, capsys):
    rows = csv_token(0, 0) + [r for r in csv_token(0, 1) if r[3] == 0]
    assert main(["info", str(csv_file(tmp_path, rows))]) == 0
    assert "caveat     decode: layer 1 routes only 1 of 2 tokens" in capsys.readouterr().out


def test_jsonl_partial_gate_weights_is_a_caveat(tmp_path, capsys):
    routing = [{"layer_index": 0, "expert_ids": [1, 2]}, {"layer_index": 1, "expert_ids": [3, 0],
                                                          "gate_weights": [0.5, 0.5]}]
    path = jsonl_file(tmp_path, [token(0), token(1, routing=routing)])
    tr = load_trace(path)
    assert tr.weights is None
    assert "gate weights missing on 1 of 4 routing entries: the trace keeps no gate weights" in tr.meta["caveats"]
    assert main(["info", str(path)]) == 0 and "gate weights missing" in capsys.readouterr().out


def test_jsonl_duplicates_and_second_header(tmp_path, capsys):
    refused(jsonl_file(tmp_path, [token(0), token(0)]), capsys, "line 3",
            "decode token_index 0 is given twice (first on line 2)")
    twice = token(0)["routing"] * 2
    refused(jsonl_file(tmp_path, [token(0, routing=twice)]), capsys, "layer_index 0 is routed twice")
    header = json.dumps({"row_type": "header", "schema": "simllm-preplay-trace-v2", "provenance": {}})
    refused(jsonl_file(tmp_path, [token(0)], header_extra=[header]), capsys,
            "line 2: a second header row (the first is on line 1)")


def test_csv_duplicates_and_second_header(tmp_path, capsys):
    refused(csv_file(tmp_path, csv_token(0, 0) * 2), capsys, "appears more than once")
    refused(csv_file(tmp_path, csv_token(0, 0) + [tuple(COLUMNS.strip().split(","))]), capsys,
            "a second CSV header row")
    refused(csv_file(tmp_path, csv_token(0, 0), extra="# n_layer=3\n"), capsys,
            "n_layer= is given twice ('2', then '3')")
    refused(csv_file(tmp_path, csv_token(0, 0), extra="# layer=0 expert_bytes=1\n# layer=0 expert_bytes=2\n"),
            capsys, "layer 0 is described twice")


def test_csv_rows_out_of_step_order_load_in_step_order(tmp_path, capsys):
    # written last step first: read as written, the turn played backwards
    first, second = ((1, 2), (3, 0)), ((0, 3), (2, 1))
    rows = csv_token(0, 1, experts=second) + csv_token(0, 0, experts=first) + csv_token(1, 0)
    tr = load_trace(csv_file(tmp_path, rows))
    assert tr.expert_ids[:2].tolist() == [list(map(list, first)), list(map(list, second))]
    assert tr.sequence.tolist() == [0, 0, 1]
    assert "rows were not in step order: tokens are ordered by step within each turn" in tr.meta["caveats"]
    in_order = load_trace(csv_file(tmp_path, csv_token(0, 0) + csv_token(0, 1), name="in_order.csv"))
    assert not any("step order" in c for c in in_order.meta["caveats"])


def test_csv_conflicting_phases_for_one_token_are_refused(tmp_path, capsys):
    rows = [r for r in csv_token(0, 0, phase=0) if r[3] == 0] + [r for r in csv_token(0, 0, phase=1) if r[3] == 1]
    refused(csv_file(tmp_path, rows), capsys, "line 6: phase 1 for turn 0, step 0, which line 4 gives phase 0")


@pytest.mark.parametrize("weight", ["0_5", " 0.5", "0.5 ", "\u0665", "0x1p-1", "1/2", "0,5"])
def test_csv_weight_is_a_plain_decimal_number(tmp_path, capsys, weight):
    # float() reads "0_5" as 5.0, " 0.5" and an Arabic-Indic five as numbers too
    rows = csv_token(0, 0)
    rows[0] = (*rows[0][:6], f'"{weight}"')
    refused(csv_file(tmp_path, rows), capsys, f"line 4: weight {weight!r} is not a decimal number")


def test_csv_plain_weights_still_read_exactly(tmp_path):
    for name, texts in (("a.csv", ["1", "-0.25", ".5", "2."]), ("b.csv", ["1e-3", "+3E+2", "3.4e38", "-3.4e38"])):
        rows = [(*r[:6], w) for r, w in zip(csv_token(0, 0), texts)]
        got = load_trace(csv_file(tmp_path, rows, name=name)).weights.reshape(-1)
        assert got.tolist() == np.array([float(w) for w in texts], np.float32).tolist()


@pytest.mark.parametrize("weight", ["1e39", "-1e39", "3.5e38"])
def test_csv_weight_beyond_float32_is_refused_without_warnings(tmp_path, capsys, weight):
    rows = csv_token(0, 0)
    rows[2] = (*rows[2][:6], weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the cast to float32 warned "overflow encountered in cast" first
        refused(csv_file(tmp_path, rows), capsys, f"line 6: weight {float(weight):g} is beyond float32's "
                                                  "range (+-3.403e+38)")
        with pytest.raises(TraceError, match=r"weights: value 1e\+39 at token 0, layer 1, slot 0 is beyond"):
            Trace(np.array([[[0], [1]]]), num_experts=2, weights=np.array([[[0.5], [1e39]]]))


def test_csv_column_named_twice_is_refused(tmp_path, capsys):
    # the reader used the first 'expert' column and ignored the second
    path = tmp_path / "t.csv"
    path.write_text(CSV_HEAD.format(L=2, E=4, k=2) + COLUMNS.strip() + ",expert\n"
                    + "".join(",".join(map(str, r)) + ",3\n" for r in csv_token(0, 0)))
    refused(path, capsys, "line 3: CSV header names column 'expert' twice (columns 6 and 8)")


@pytest.mark.parametrize("extra,words", [
    ("# layer=99\n", "bad layer line '# layer=99' (no expert_bytes="),
    ("# expert_bytes=100\n", "bad layer line '# expert_bytes=100' (no layer="),
    ("# layer=1 expert_bytes=100 n_expert=8\n", "(n_expert= belongs on the model line"),
    ("# layer=99 expert_bytes=100\n", "header: a layer line describes layer 99, but n_layer=2 (layers 0..1)"),
    ("# layer=-1 expert_bytes=100\n", "header: a layer line describes layer -1, but n_layer=2"),
    ("# layer=1 expert_bytes=1x\n", "expert_bytes='1x' is not an integer"),
    ("# layer=0 layer=1 expert_bytes=5\n", "header: layer= is given twice in '# layer=0 layer=1 expert_bytes=5'"),
])
def test_csv_layer_lines_must_fit_the_model_line(tmp_path, capsys, extra, words):
    # each was ignored: a layer line for a layer the model does not have, or with no bytes
    refused(csv_file(tmp_path, csv_token(0, 0), extra=extra), capsys, words)


def test_csv_unknown_header_keys_and_partial_layer_lines_are_caveats(tmp_path, capsys):
    extra = "# quant=Q4_K n_ctx=4096\n# layer=1 expert_bytes=100 dense_bytes=7\n# written by hand\n"
    path = csv_file(tmp_path, csv_token(0, 0), extra=extra)
    caveats = load_trace(path).meta["caveats"]
    keys = ("the model line has model, arch, n_layer, n_expert, n_expert_used; "
            "a layer line layer, expert_bytes, dense_bytes")
    partial = "header: layer lines give the expert bytes of 1 of 2 layers; measured sizes are used only when every"
    assert caveats[:3] == [f"header: quant=Q4_K is not a route_trace v1 key ({keys}): ignored",
                           f"header: n_ctx=4096 is not a route_trace v1 key ({keys}): ignored",
                           f"{partial} layer has them"], caveats
    assert main(["info", str(path)]) == 0 and "caveat     header: quant=Q4_K" in capsys.readouterr().out
    full = csv_file(tmp_path, csv_token(0, 0), extra="# layer=0 expert_bytes=5\n# layer=1 expert_bytes=6\n",
                    name="full.csv")
    tr = load_trace(full)
    assert tr.meta["expert_bytes"] == [5, 6] and not any("header" in c for c in tr.meta["caveats"])


# ---------------------------------------------------------------- native .npz
def npz(tmp_path, members: dict, header=None, name="t.npz"):
    """A native trace whose header and members are exactly what the test says."""
    good = synthetic_trace(8, 2, 4, 2, seed=0)
    arrays = {"expert_ids": good.expert_ids, "phase": good.phase, "sequence": good.sequence}
    if header is None:
        header = {"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4}}
    raw = {f"{n}.npy": _npy(a) for n, a in arrays.items()}
    raw["header_json.npy"] = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    raw.update(members)
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in raw.items():
            if data is not None:
                zf.writestr(n, data)
    return path


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def _npy_with_header(text: str) -> bytes:
    """An .npy version 1.0 member whose header is `text`, padded as numpy pads it."""
    body = text.encode("latin1")
    body += b" " * (64 - (10 + len(body) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def test_npz_good_baseline(tmp_path):
    assert load_trace(npz(tmp_path, {})).num_tokens == 8


def test_npz_claimed_shape_must_match_the_zip_directory(tmp_path, capsys):
    # A header claiming 2**30 int64 values over 8 bytes of data: refused before any allocation.
    bomb = _npy(np.zeros(1, np.int64)).replace(b"(1,)", b"(1073741824,)")
    refused(npz(tmp_path, {"phase.npy": bomb}), capsys, "phase.npy: claims shape (1073741824,)")


def test_npz_arrays_over_the_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("stmoe.trace.MAX_ARRAY_BYTES", 64)
    refused(npz(tmp_path, {}), capsys, "over the 64-byte limit", "STMOE_MAX_ARRAY_BYTES")


@pytest.mark.parametrize("header,words", [
    (["stmoe-trace"], "header_json must be a JSON object, got list"),
    ({"format": "stmoe-trace", "version": 1, "meta": [1]}, "meta must be a JSON object"),
    ({"format": "stmoe-trace", "version": True, "meta": {}}, "format version True"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": None}},
     "num_experts: must be an integer, got None"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": [4]}}, "num_experts: must be an integer"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4.0}}, "num_experts: must be an integer"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "synthetic": "false"}},
     "meta.synthetic: must be a bool, got 'false'"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "caveats": "x"}}, "meta.caveats"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "top_k": "2"}}, "meta.top_k"),
    # the machine model computes with these: true would be a 1-byte expert
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "expert_bytes": [True, True]}},
     ("meta.expert_bytes: must be a list of 2 byte counts", "got True")),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "expert_bytes": [8]}},
     ("meta.expert_bytes: must be a list of 2 byte counts", "got [8]")),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "expert_bytes": [8, 1.5]}},
     ("meta.expert_bytes", "got 1.5")),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "expert_bytes": "big"}},
     ("meta.expert_bytes", "got big")),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "model_config": [1]}},
     "meta.model_config: must be a dict"),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "model_config": {"hidden": "2048"}}},
     ("meta.model_config.hidden: must be an integer", "got 2048")),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "model_config": {"ffn": 0}}},
     ("meta.model_config.ffn", "got 0")),
    ({"format": "stmoe-trace", "version": 1, "meta": {"num_experts": 4, "dtype": 16}}, "meta.dtype: must be a str"),
])
def test_npz_header_and_meta_types(tmp_path, capsys, header, words):
    refused(npz(tmp_path, {}, header=header), capsys, *([words] if isinstance(words, str) else words))


@pytest.mark.parametrize("members,words", [
    ({"phase.npy": None, "phase": _npy(np.ones(8, np.uint8))}, "missing array(s) phase"),
    ({"phase.npy": _npy(np.array([None] * 8, dtype=object))}, "phase.npy: dtype object is not a plain number type"),
    ({"phase.npy": b"not an npy file"}, "phase.npy: malformed .npy header (the magic string is not correct"),
    ({"phase.npy": _npy_with_header("garbage")}, "phase.npy: malformed .npy header (malformed node or string"),
    ({"phase.npy": _npy_with_header("[1, 2]")}, "phase.npy: malformed .npy header (Header is not a dictionary"),
    ({"phase.npy": _npy_with_header("{'descr': '<q9', 'fortran_order': False, 'shape': (8,)}")},
     "phase.npy: malformed .npy header (descr is not a valid dtype descriptor: '<q9')"),
    ({"phase.npy": _npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (-8,)}")},
     "phase.npy: malformed .npy header (negative dimension in shape (-8,))"),
    ({"phase.npy": _npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (8,), 'x': '"
                                    + "a" * 20000 + "'}")},
     "phase.npy: malformed .npy header (Header info length (20086) is large and may not be safe to load securely)"),
    ({"phase.npy": b"\x93NUMPY\x01\x00"}, "phase.npy: malformed .npy header (EOF: reading array header length"),
    ({"expert_ids.npy": _npy(np.ones((8, 2, 2), bool))}, "expert_ids: must hold integers, got dtype bool"),
    ({"sequence.npy": _npy(np.full(8, 2 ** 40))}, "sequence: value 1099511627776 does not fit int32"),
])
def test_npz_members(tmp_path, capsys, members, words):
    refused(npz(tmp_path, members), capsys, words)


def test_npz_deep_header(tmp_path, capsys):
    path = tmp_path / "deep.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("header_json.npy", _npy(np.frombuffer(b"[" * 100000 + b"]" * 100000, np.uint8)))
    refused(path, capsys, "header_json is not JSON")


def test_npz_member_compressed_other_than_deflate_is_refused(tmp_path, capsys):
    """zipfile inflates bzip2 and lzma members past the size the directory states (a 7 KB file
    can hold gigabytes of zeros); stmoe and numpy write stored or deflated members only."""
    import zipfile

    good = synthetic_trace(20, 2, 4, 2, seed=0).save(tmp_path / "good.npz")
    bad = tmp_path / "bz2.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            method = zipfile.ZIP_BZIP2 if info.filename == "expert_ids.npy" else zipfile.ZIP_STORED
            dst.writestr(info.filename, src.read(info.filename), compress_type=method)
    refused(bad, capsys, "expert_ids.npy is compressed with zip method 12")


def test_a_limit_that_is_not_a_number_keeps_the_default(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import stmoe.files as f; print(f.MAX_TEXT_BYTES, f.MAX_ARRAY_BYTES)"],
                          env={**os.environ, "STMOE_MAX_TEXT_BYTES": "abc", "STMOE_MAX_ARRAY_BYTES": "1e9"},
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == [str(128 << 20), "1000000000"]
    assert done.stderr.count("\n") == 1 and "STMOE_MAX_TEXT_BYTES='abc'" in done.stderr


def test_meta_with_a_lone_surrogate_is_refused_at_read(tmp_path, capsys):
    """A legal JSON escape ("\\ud800") that is not Unicode would load, then stop `info` and
    the report from writing text out."""
    with pytest.raises(TraceError, match="lone surrogate"):
        Trace(np.zeros((2, 1, 1), int), num_experts=2, meta={"model": "\ud800"})


def test_duplicate_check_at_top_1024_is_fast_and_still_finds_a_duplicate(tmp_path, capsys):
    # k(k-1)/2 slot compares took about 9 s for these 100 cells; sorting each cell takes ms
    import time
    rng = np.random.default_rng(0)
    ids = np.argsort(rng.random((100, 1, 2048)), axis=2)[:, :, :1024]
    start = time.perf_counter()
    Trace(ids, num_experts=2048)
    assert time.perf_counter() - start < 2.0
    ids[57, 0, 900] = ids[57, 0, 3]
    with pytest.raises(TraceError, match=f"expert id {ids[57, 0, 3]} appears twice at token 57, layer 0"):
        Trace(ids, num_experts=2048)


# ---------------------------------------------------------------- library errors that are not stmoe's
def test_csv_field_over_the_csv_module_limit(tmp_path, capsys):
    rows = csv_token(0, 0) + [(0, 1, 1, 0, 0, 1, "5" * 140_000)]
    refused(csv_file(tmp_path, rows), capsys, "line 8: not CSV (field larger than field limit")


@pytest.mark.parametrize("where", ["header", "row"])
def test_jsonl_integer_too_long_for_python(tmp_path, capsys, where):
    big = "9" * 5000
    if where == "header":
        path = tmp_path / "t.jsonl"
        path.write_text('{"row_type": "header", "schema": "simllm-preplay-trace-v2", "provenance": '
                        f'{{"expert_count": {big}, "top_k": 2, "moe_layer_indices": [0, 1]}}}}\n'
                        + json.dumps(token(0)) + "\n")
        refused(path, capsys, "not a simllm trace")
    else:
        line = json.dumps(token(0, request_id=0)).replace('"request_id": 0', f'"request_id": {big}')
        refused(jsonl_file(tmp_path, [line]), capsys, "line 2: a number too long to read")


def test_jsonl_gate_weight_beyond_any_float(tmp_path, capsys):
    routing = [{"layer_index": 0, "expert_ids": [1, 2], "gate_weights": [10 ** 400, 0.4]},
               {"layer_index": 1, "expert_ids": [3, 0], "gate_weights": [0.7, 0.3]}]
    refused(jsonl_file(tmp_path, [token(0, routing=routing)]), capsys,
            "line 2: layer 0: gate_weights", "holds a number too large for a float")


@pytest.mark.parametrize("name", ["b" * 5000 + ".npz", "b" * 5000, "x" * 300 + ".csv"])
def test_file_name_too_long_is_one_line_that_keeps_the_problem(tmp_path, capsys, name):
    assert main(["info", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "unexpected" not in err, err
    assert err.rstrip().endswith("File name too long)") and str(tmp_path) in err, err


def test_nul_byte_in_a_file_name(tmp_path, capsys):
    for name in ("a\x00b.csv", "a\x00b.npz", "a\x00b"):
        with pytest.raises(TraceError, match="a file name cannot hold a NUL byte"):
            load_trace(tmp_path / name)
        assert main(["info", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "\\x00" in err and "\x00" not in err and "unexpected" not in err, err
    with pytest.raises(TraceError, match="a file name cannot hold a NUL byte"):
        synthetic_trace(8, 2, 4, 2, seed=0).save(tmp_path / "a\x00.npz")
    assert main(["report", "--out", str(tmp_path / "r\x00"), "tiny-moe-code"]) == 2
    assert "a file name cannot hold a NUL byte" in capsys.readouterr().err


# ---------------------------------------------------------------- memory by the trace's shape
@pytest.fixture
def wide(tmp_path):
    """A valid trace of 512 experts: its layer x expert x expert tables are MBs, not GBs."""
    rng = np.random.default_rng(0)
    ids = np.argsort(rng.random((200, 64)), axis=1)[:, :4].reshape(100, 2, 4) * 8
    return Trace(ids, num_experts=512, sequence=np.repeat([0, 1], 50)).save(tmp_path / "wide.npz")


@pytest.mark.parametrize("argv,what", [
    (["predict", "--predictor", "st-moe"], "predictor 'st-moe'"),
    (["predict", "--predictor", "trained"], "predictor 'trained'"),
    (["simulate", "--system", "st-moe", "--hidden", "64", "--ffn", "32"], "predictor 'st-moe'"),
    (["analyze"], "analyze"),
])
def test_tables_over_the_memory_limit_are_refused_before_allocating(monkeypatch, capsys, wide, argv, what):
    monkeypatch.setattr("stmoe.predictors.base.MAX_TABLE_BYTES", 1 << 20)
    assert main([argv[0], str(wide), *argv[1:]]) == 2
    all_err = capsys.readouterr().err
    err = all_err.splitlines()[-1]   # after any progress lines
    assert err.startswith("stmoe: error: ") and "Traceback" not in all_err, all_err
    assert f"{wide}: {what} needs about" in err and "2 layers x 512 experts" in err, err
    assert "over the 1,048,576-byte limit (raise STMOE_MAX_TABLE_BYTES" in err, err
    # a predictor without pair tables still runs at that limit
    assert main(["predict", str(wide), "--predictor", "popularity"]) == 0


@pytest.mark.parametrize("predictor,estimate", [("popularity", "32,768"), ("history", "32,768"),
                                                 ("random", "819,200")])
def test_per_expert_state_of_predictors_without_pair_tables_is_estimated_too(monkeypatch, capsys, wide,
                                                                          predictor, estimate):
    # popularity's and history's counts (32 bytes per layer and expert), random's keys (16 per
    # scored token, layer and expert): 4,096 layers x 32,767 experts ran out of memory unannounced
    monkeypatch.setattr("stmoe.predictors.base.MAX_TABLE_BYTES", 30_000)
    assert main(["predict", str(wide), "--predictor", predictor]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert (f"{wide}: predictor {predictor!r} needs about {estimate} bytes for 2 layers x 512 experts (tables "
            "grow as layers x experts), over the 30,000-byte limit (raise STMOE_MAX_TABLE_BYTES") in err, err
    assert main(["predict", str(wide), "--predictor", "oracle"]) == 0


def test_the_default_table_limit_refuses_32767_experts():
    from stmoe.predictors.base import MAX_TABLE_BYTES, check_table_memory
    ids = np.arange(8, dtype=np.int16).reshape(1, 1, 8) * 4000
    tr = Trace(np.concatenate([ids, ids + 1]), num_experts=MAX_EXPERTS)
    assert MAX_TABLE_BYTES == 2 << 30
    with pytest.raises(ConfigError, match="st-moe.* needs about 8,589,410,312 bytes for 1 layer x 32767 experts"):
        check_table_memory(tr, "predictor 'st-moe'", 8)


def test_buffer_state_over_the_memory_limit_is_refused_before_allocating(monkeypatch, capsys, wide):
    # 2 layers x 512 experts at 104 bytes each: 106,496 bytes, over a 100,000-byte limit
    monkeypatch.setattr("stmoe.sim.timing.MAX_STATE_BYTES", 100_000)
    allocated = []
    monkeypatch.setattr("stmoe.sim.timing.new_state", lambda *a: allocated.append(a))
    assert main(["simulate", str(wide), "--system", "on-demand", "--hidden", "64", "--ffn", "32"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not allocated, err
    assert (f"{wide}: simulating needs about 106,496 bytes of buffer state for 2 layers x 512 experts "
            "(104 bytes each), over the 100,000-byte limit (raise STMOE_MAX_STATE_BYTES to run it)") in err, err


def test_the_default_state_limit_refuses_4096_layers_of_32767_experts():
    # within every cap a reader checks, yet 14 GB of buffer state: refused, not attempted
    from stmoe.sim.timing import MAX_STATE_BYTES, check_state_memory
    tr = Trace(np.zeros((2, 4096, 1), np.int16), num_experts=MAX_EXPERTS)
    assert MAX_STATE_BYTES == 2 << 30
    with pytest.raises(ConfigError, match="needs about 13,958,217,728 bytes of buffer state for 4096 layers"):
        check_state_memory(tr)
    qwen_shape = np.broadcast_to(np.arange(8, dtype=np.int16), (2, 48, 8))   # Qwen3-30B-A3B's 48 x 128
    check_state_memory(Trace(qwen_shape, num_experts=128))


# ---------------------------------------------------------------- memory while reading
def _peak_bytes_per_cell(path):
    import tracemalloc  # numpy reports its buffers to tracemalloc: deterministic, unlike RSS

    from stmoe.readers import read_trace_file
    read_trace_file(path)   # modules a first read imports are not the reader's memory
    tracemalloc.start()
    try:
        trace = read_trace_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / trace.expert_ids.size


def test_a_sparse_csv_reads_without_a_count_per_cell(tmp_path):
    # 48 layers claimed, one routed (1/48 of the grid): a count per grid cell (8 bytes) and the
    # rows as Python ints took 20.9 bytes a cell at peak; the trace itself holds 6 (ids + weights)
    rows = "".join(f"0,1,{s},0,{j},{(s * 7 + 16 * j) % 128},0.123456\n" for s in range(10_000) for j in range(8))
    path = tmp_path / "sparse.csv"
    path.write_text(CSV_HEAD.format(L=48, E=128, k=8) + COLUMNS + rows)
    assert _peak_bytes_per_cell(path) < 14


def test_a_native_trace_reads_without_a_second_id_grid(tmp_path):
    # ids stored as bytes are widened to int16 in place: 5.0 bytes a cell at peak before, 3.2 now
    rng = np.random.default_rng(0)
    ids = (rng.integers(0, 128, size=(2000, 48, 1), dtype=np.int16) + np.arange(8, dtype=np.int16) * 16) % 128
    path = Trace(ids, num_experts=128).save(tmp_path / "t.npz")
    assert _peak_bytes_per_cell(path) < 4
