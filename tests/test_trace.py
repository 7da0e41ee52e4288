import numpy as np
import pytest

from stmoe import DECODE, PREFILL, Trace, TraceError, load_trace, synthetic_trace


def small_ids():
    return np.array([[[0, 1], [2, 3]], [[1, 0], [3, -1]], [[2, 3], [0, 1]]])


def test_valid_trace_and_properties():
    tr = Trace(small_ids(), num_experts=4, phase=["prefill", "decode", "decode"], sequence=[0, 0, 1])
    assert (tr.num_tokens, tr.num_layers, tr.top_k, tr.num_experts) == (3, 2, 2, 4)
    assert tr.phase.tolist() == [PREFILL, DECODE, DECODE]
    assert tr.previous_token().tolist() == [-1, 0, -1]
    assert tr.summary()["sequences"] == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(expert_ids=[[[0, 4]]]), "expert id 4 at token 0, layer 0, slot 1 is outside 0..3"),
    (dict(expert_ids=[[[2, 2]]]), "expert id 2 appears twice at token 0, layer 0"),
    (dict(expert_ids=[[[0, 1]]], weights=[[[0.5, np.nan]]]), "weights: non-finite value nan at token 0"),
    (dict(expert_ids=[[[0, 1]]], phase=[3]), "phase: value 3 at token 0"),
    (dict(expert_ids=[[[0, 1]]], phase=["warmup"]), "phase: unknown value 'warmup'"),
    (dict(expert_ids=[[0, 1]]), "expert_ids: must have 3 dimension(s)"),
    (dict(expert_ids=[[[0, 1]], [[1, 2]], [[2, 3]]], sequence=[0, 1, 0]), "sequence 0 is not one contiguous run"),
    (dict(expert_ids=[[[0, 1]]], weights=[[[0.5]]]), "weights: shape (1, 1, 1) does not match"),
    (dict(expert_ids=[[[0, 1]]], stale_gate=[[[9]]]), "stale_gate: expert id 9"),
])
def test_validation_names_field_and_value(kwargs, message):
    with pytest.raises(TraceError) as err:
        Trace(num_experts=4, **kwargs)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_select_by_phase_sequence_and_layers():
    tr = Trace(small_ids(), num_experts=4, phase=[0, 1, 1], sequence=[0, 0, 1])
    dec = tr.select(phase="decode")
    assert dec.num_tokens == 2 and (dec.phase == DECODE).all()
    one = tr.select(sequences=[1], layers=(1, 2))
    assert one.expert_ids.tolist() == [[[0, 1]]]
    with pytest.raises(TraceError, match="no sequence 7"):
        tr.select(sequences=[7])
    with pytest.raises(TraceError, match=r"layers: range \[1, 5\)"):
        tr.select(layers=(1, 5))


def test_native_round_trip(tmp_path):
    tr = synthetic_trace(num_tokens=300, num_layers=4, num_experts=16, top_k=2, seed=3)
    path = tr.save(tmp_path / "t.npz")
    back = load_trace(path)
    assert np.array_equal(back.expert_ids, tr.expert_ids)
    assert np.array_equal(back.weights, tr.weights)
    assert np.array_equal(back.sequence, tr.sequence)
    assert back.meta == tr.meta
    assert back.is_synthetic and "(synthetic)" in back.label
    assert not list(tmp_path.glob("*.tmp"))


def test_stale_gate_round_trips_and_its_earlier_name_still_reads(tmp_path):
    import zipfile
    tr = synthetic_trace(num_tokens=40, num_layers=3, num_experts=8, top_k=2, seed=3)
    gated = Trace(tr.expert_ids, num_experts=8, stale_gate=np.roll(tr.expert_ids, 1, axis=0), meta={"x": 1})
    path = gated.save(tmp_path / "g.npz")
    with zipfile.ZipFile(path) as zf:
        assert "stale_gate.npy" in zf.namelist()
    assert np.array_equal(load_trace(path).stale_gate, gated.stale_gate)
    old = tmp_path / "old.npz"   # as written before the field was renamed
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for name in src.namelist():
            dst.writestr(name.replace("stale_gate", "lookahead"), src.read(name))
    assert np.array_equal(load_trace(old).stale_gate, gated.stale_gate)


def test_native_rejects_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(TraceError, match="not an stmoe trace"):
        load_trace(path)


def test_synthetic_is_seeded_and_dialable():
    a = synthetic_trace(num_tokens=400, num_layers=6, num_experts=32, top_k=4, seed=1)
    b = synthetic_trace(num_tokens=400, num_layers=6, num_experts=32, top_k=4, seed=1)
    assert np.array_equal(a.expert_ids, b.expert_ids)
    assert a.meta["synthetic"] is True

    def reuse(tr):
        ids = tr.expert_ids
        prev = tr.previous_token()
        ok = prev >= 0
        cur, before = ids[ok], ids[prev[ok]]
        hits = (cur[..., :, None] == before[..., None, :]).any(-1)
        return hits.mean()

    sticky = synthetic_trace(num_tokens=400, num_layers=6, num_experts=32, top_k=4, seed=1,
                             temporal_reuse=4.0, cross_layer_affinity=0, popularity_skew=0)
    flat = synthetic_trace(num_tokens=400, num_layers=6, num_experts=32, top_k=4, seed=1,
                           temporal_reuse=0, cross_layer_affinity=0, popularity_skew=0)
    assert reuse(sticky) > 0.6
    assert abs(reuse(flat) - 4 / 32) < 0.03  # uniform random routing reuses k/E by chance


def test_synthetic_rejects_bad_arguments():
    from stmoe import StmoeError
    with pytest.raises(StmoeError, match="top_k 9 exceeds num_experts 8"):
        synthetic_trace(num_experts=8, top_k=9)


def _saved(tmp_path):
    return synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0).save(tmp_path / "t.npz")


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:len(b) // 2], "cannot read as an .npz trace"),
    (lambda b: b[:30], "cannot read as an .npz trace"),
    (lambda b: b"\x93NUMPY junk" + b[10:], r"not an \.npz \(zip\) archive"),
])
def test_damaged_npz_is_a_trace_error(tmp_path, capsys, damage, message):
    from stmoe.cli import main
    path = _saved(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(TraceError, match=message):
        load_trace(path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("target, message", [
    ("trace.csv", "saved as .npz"),
    ("adir.npz", "is a directory"),
    ("afile/t.npz", "is a file, not a directory"),
])
def test_save_refuses_bad_paths(tmp_path, target, message):
    (tmp_path / "adir.npz").mkdir()
    (tmp_path / "afile").write_text("x")
    tr = synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0)
    with pytest.raises(TraceError, match=message):
        tr.save(tmp_path / target)
    assert (tmp_path / "afile").read_text() == "x" and not list(tmp_path.glob("**/*.tmp"))


@pytest.mark.parametrize("tokens", [[-1], [64], [0.5]])
def test_select_token_indices_in_range(tokens):
    tr = synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0)
    with pytest.raises(TraceError, match="tokens: indices must be integers in 0..63"):
        tr.select(tokens=np.array(tokens))
    assert tr.select(tokens=np.array([0, 63])).num_tokens == 2


@pytest.mark.parametrize("kwargs", [dict(num_tokens=64.5), dict(num_layers=True), dict(top_k=2.0)])
def test_synthetic_counts_must_be_integers(kwargs):
    from stmoe import StmoeError
    name = next(iter(kwargs))
    with pytest.raises(StmoeError, match=f"{name} must be an integer"):
        synthetic_trace(**{**dict(num_tokens=64, num_layers=3, num_experts=8, top_k=2), **kwargs})


def test_repr_is_one_readable_line():
    ids = np.zeros((6, 2, 1), np.int16)
    tr = Trace(ids, num_experts=3, sequence=[0, 0, 1, 1, 2, 2], meta={"name": "toy"})
    assert repr(tr) == "Trace toy: 2 MoE layers of 3 experts, top-1; 6 tokens in 3 sequence(s)"
