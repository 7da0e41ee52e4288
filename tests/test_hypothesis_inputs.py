"""Property-based tests (hypothesis) of every reader and of the CLI's argument parsing (issue 16).

The property everywhere: whatever the bytes or arguments, the outcome is either a valid result
or one StmoeError / exit status 2 with one line; never another exception, a traceback or a
silently different value. Where the input is valid, what is read back equals what was written.

Example budget: `BUDGET` examples per property (9 properties), no deadline (numba compiles on
first use), derandomized so CI is reproducible; 6 to 16 s in all on a shared 2-core machine. Raise it
locally with STMOE_HYPOTHESIS_EXAMPLES=1000 for a long fuzzing run.
"""

import json
import os
import string

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stmoe import StmoeError, Trace, load_trace  # noqa: E402
from stmoe.cli import build_parser, main  # noqa: E402

BUDGET = int(os.environ.get("STMOE_HYPOTHESIS_EXAMPLES", 60))
FUZZ = settings(max_examples=BUDGET, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Values a hostile JSON file may hold where the reader expects something else.
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.text(max_size=5), c, max_size=4), max_leaves=12)


def _read(path):
    """load_trace's outcome: a Trace, or the StmoeError it raised (anything else fails the test)."""
    try:
        trace = load_trace(path)
    except StmoeError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        event("refused")
        return exc
    event("read")  # --hypothesis-show-statistics: both outcomes must occur, or the property is vacuous
    assert isinstance(trace, Trace)
    assert trace.expert_ids.dtype == np.int16
    assert ((trace.expert_ids >= -1) & (trace.expert_ids < trace.num_experts)).all()
    return trace


# ---------------------------------------------------------------- valid traces, the readers' ground truth
@st.composite
def traces(draw, max_experts=32767):
    T, L = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    E = draw(st.sampled_from([e for e in (2, 8, 255, 256, 32767) if e <= max_experts]))
    k = draw(st.integers(1, min(E, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    ids = np.stack([rng.choice(E, size=k, replace=False) for _ in range(T * L)]).reshape(T, L, k)
    unrouted = rng.random((T, L)) < 0.2
    ids[unrouted] = -1
    weights = rng.random((T, L, k)).astype(np.float32) if draw(st.booleans()) else None
    seq = np.sort(rng.integers(0, 2 ** 31 - 1, size=T)) if draw(st.booleans()) else None
    meta = draw(st.dictionaries(st.sampled_from(["domain", "license", "extra", "caveats"]),
                                st.text(max_size=8), max_size=3))
    if "caveats" in meta:
        meta["caveats"] = [meta["caveats"]]
    return Trace(ids, num_experts=E, weights=weights, sequence=seq, meta=meta,
                 phase=rng.integers(0, 2, size=T))


# ---------------------------------------------------------------- route_trace CSV
csv_cell = st.one_of(st.integers(0, 5).map(str), st.integers(-2 ** 64, 2 ** 64).map(str),
                     st.sampled_from(["", "1.0", "1_0", "+1", " 1", "nan", "inf", "x", "-0"]))


def _cells(trace):
    """(token, layer, slot, expert) of every routed cell."""
    t, l, s = np.nonzero(trace.expert_ids >= 0)
    return list(zip(t.tolist(), l.tolist(), s.tolist(), trace.expert_ids[t, l, s].tolist()))


@FUZZ
@given(trace=traces(max_experts=255), header=st.lists(st.tuples(st.integers(0, 2), csv_cell), max_size=1),
       corrupt=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 6), csv_cell), max_size=2))
def test_route_trace_fuzz(tmp_path, trace, header, corrupt):
    """A route_trace CSV written from a valid trace, then maybe corrupted: read back exactly when
    untouched; else read or refused in one line."""
    dims = [str(trace.num_layers), str(trace.num_experts), str(trace.top_k)]
    for i, value in header:
        dims[i] = value
    rows = [[str(trace.sequence[t]), str(trace.phase[t]), str(t), str(l), str(s), str(e), "0.5"]
            for t, l, s, e in _cells(trace)]
    for where, col, value in corrupt:
        if rows:
            rows[int(where * (len(rows) - 1))][col] = value
    path = tmp_path / "fuzz.csv"
    path.write_text(f"# route_trace v1\n# model=m arch=a n_layer={dims[0]} n_expert={dims[1]} "
                    f"n_expert_used={dims[2]}\nturn,phase,step,layer,slot,expert,weight\n"
                    + "".join(",".join(r) + "\n" for r in rows))
    out = _read(path)
    untouched = not header and not corrupt
    routed_tokens = (trace.expert_ids >= 0).any(axis=(1, 2))
    if untouched and routed_tokens.all():
        assert isinstance(out, Trace)
        assert np.array_equal(out.expert_ids, trace.expert_ids)
        assert np.array_equal(out.phase, trace.phase)


weight_text = st.one_of(
    st.floats(width=64).map(repr),
    st.text(alphabet="0123456789._+-eEinfaINFA \u0665", max_size=8),
    st.sampled_from(["0_5", "1e39", "-3.5e38", "3.4e38", " 0.5", "0.5 ", "1_000.5", "Infinity", "-nan"]))


@FUZZ
@given(weight=weight_text)
def test_route_trace_weight_is_read_exactly_or_refused(tmp_path, weight):
    """A weight is read as the float32 of what it says, exactly when it is an ASCII decimal
    number within float32's range; anything else is refused in one line, with no warning."""
    import re
    import warnings
    path = tmp_path / "w.csv"
    path.write_text("# route_trace v1\n# model=m arch=a n_layer=1 n_expert=2 n_expert_used=1\n"
                    f'turn,phase,step,layer,slot,expert,weight\n0,1,0,0,0,1,"{weight}"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _read(path)
    plain = re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", weight) is not None
    readable = plain and abs(float(weight)) <= float(np.finfo(np.float32).max)
    assert isinstance(out, Trace) == readable, (weight, out)
    if readable:
        assert out.weights[0, 0, 0] == np.float32(float(weight))


# ---------------------------------------------------------------- simllm JSON lines
@FUZZ
@given(trace=traces(max_experts=255), field=st.sampled_from(
           [None, "expert_count", "top_k", "moe_layer_indices", "request_id", "token_index", "token_id",
            "routing", "layer_index", "expert_ids", "gate_weights"]),
       value=json_values)
def test_simllm_fuzz(tmp_path, trace, field, value):
    """A simllm file written from a valid trace with one field replaced by any JSON value: read
    back exactly when untouched; else read or refused in one line."""
    prov = {"expert_count": trace.num_experts, "top_k": trace.top_k,
            "moe_layer_indices": list(range(trace.num_layers)), "model_id": "m"}
    rows = []
    for t in range(trace.num_tokens):
        routing = [{"layer_index": l, "expert_ids": trace.expert_ids[t, l].tolist(),
                    "gate_weights": [0.5] * trace.top_k}
                   for l in range(trace.num_layers) if trace.expert_ids[t, l, 0] >= 0]
        rows.append({"row_type": "forward-token", "request_id": f"r{trace.sequence[t]}",
                     "phase": ["prefill", "decode"][trace.phase[t]], "token_index": t, "token_id": 7,
                     "routing": routing})
    if field in prov:
        prov[field] = value
    elif field in ("request_id", "token_index", "token_id", "routing"):
        rows[0][field] = value
    elif field is not None and rows[0]["routing"]:
        rows[0]["routing"][0][field] = value
    header = {"row_type": "header", "schema": "simllm-preplay-trace-v1", "provenance": prov}
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [header, *rows]) + "\n")
    out = _read(path)
    if field is None and (trace.expert_ids >= 0).sum() * 64 >= trace.expert_ids.size:
        # (prefill before decode within a request is the reader's order; the trace's phases are random)
        assert isinstance(out, Trace)
        assert sorted(map(tuple, out.expert_ids.reshape(out.num_tokens, -1).tolist())) == \
            sorted(map(tuple, trace.expert_ids.reshape(trace.num_tokens, -1).tolist()))


@FUZZ
@given(text=st.text(alphabet=string.printable + "\x00é{}[]\"", max_size=300),
       suffix=st.sampled_from([".csv", ".jsonl"]))
def test_text_readers_on_any_text(tmp_path, text, suffix):
    path = tmp_path / f"any{suffix}"
    path.write_text(text, encoding="utf-8")
    _read(path)


# ---------------------------------------------------------------- native .npz
@FUZZ
@given(trace=traces())
def test_native_round_trip(tmp_path, trace):
    back = load_trace(trace.save(tmp_path / "rt.npz"))
    assert np.array_equal(back.expert_ids, trace.expert_ids)
    assert np.array_equal(back.sequence, trace.sequence) and np.array_equal(back.phase, trace.phase)
    assert (back.weights is None) == (trace.weights is None)
    if trace.weights is not None:
        assert np.array_equal(back.weights, trace.weights)
    assert back.meta == trace.meta


@FUZZ
@given(trace=traces(), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_native_corrupted_bytes(tmp_path, trace, flips):
    path = trace.save(tmp_path / "c.npz")
    data = bytearray(path.read_bytes())
    for where, xor in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= xor
    path.write_bytes(bytes(data))
    out = _read(path)
    if isinstance(out, Trace):  # a flip the zip's CRC cannot see (its directory, say) must change nothing read
        assert np.array_equal(out.expert_ids, trace.expert_ids)


@FUZZ
@given(meta=st.dictionaries(st.sampled_from(["num_experts", "top_k", "synthetic", "caveats", "name", "model", "x"]),
                            json_values, max_size=5),
       header_extra=st.dictionaries(st.sampled_from(["format", "version"]), json_values, max_size=2))
def test_native_any_header(tmp_path, meta, header_extra):
    import io
    import zipfile
    header = {"format": "stmoe-trace", "version": 1, "meta": meta, **header_extra}
    path = tmp_path / "h.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in {"expert_ids": np.zeros((2, 1, 1), np.int16), "phase": np.ones(2, np.uint8),
                          "sequence": np.zeros(2, np.int32),
                          "header_json": np.frombuffer(json.dumps(header).encode(), np.uint8)}.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr)
            zf.writestr(f"{name}.npy", buf.getvalue())
    out = _read(path)
    if isinstance(out, Trace):
        assert isinstance(meta.get("num_experts"), int) and not isinstance(meta["num_experts"], bool)
        assert out.is_synthetic is meta.get("synthetic", False)


# ---------------------------------------------------------------- the CLI's arguments
OPTIONS = ["--json", "--phase", "--permutations", "--predictor", "--budget", "--lookahead", "--protocol",
           "--profile", "--hardware", "--system", "--sweep", "--hidden", "--ffn", "--dtype", "--out", "--debug"]
VALUES = st.one_of(st.sampled_from(["decode", "prefill", "split", "causal", "st-moe", "on-demand", "accelerator",
                                    "0", "-1", "1", "2", "1e30", "nan", "", "=", "lookahead=1,2", "buffer_bytes=1e30",
                                    "float7", "bfloat16", "x" * 300, "qwen3-30b-a3b", "on-demand@gpu-pcie"]),
                   st.integers(-2 ** 40, 2 ** 40).map(str), st.text(max_size=8))


@FUZZ
@given(command=st.sampled_from(["info", "analyze", "predict", "simulate", "datasets", "bogus"]),
       args=st.lists(st.one_of(st.sampled_from(OPTIONS), VALUES), max_size=6))
def test_cli_argument_parsing(command, args):
    """Parsing any argument list either succeeds or exits 2 with a one-line usage error."""
    try:
        build_parser().parse_args([command, "TRACE", *args])
    except SystemExit as exc:
        assert exc.code in (0, 2)


@FUZZ
@given(args=st.lists(st.one_of(st.sampled_from(["--json", "--budget", "--lookahead", "--sweep", "--dtype",
                                                "--hidden", "--ffn", "--system", "--hardware", "--predictor",
                                                "--model", "--context", "--baseline"]),
                               VALUES), max_size=5),
       command=st.sampled_from(["info", "predict", "simulate"]))
def test_cli_runs_any_arguments(tmp_path_factory, capsys, small_trace_file, command, args):
    """Running the CLI on a small trace with any arguments: exit 0, or 2 with one line on stderr."""
    try:
        code = main([command, str(small_trace_file), *args])
    except SystemExit as exc:  # argparse's usage errors and --help
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert err.strip().count("\n") == 0 and "Traceback" not in err, err


@pytest.fixture(scope="module")
def small_trace_file(tmp_path_factory):
    from stmoe import synthetic_trace
    trace = synthetic_trace(48, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0)
    trace.meta["model_config"] = None
    return trace.save(tmp_path_factory.mktemp("cli") / "small.npz")
