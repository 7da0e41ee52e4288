"""The recorder on tiny randomly initialised models of every supported architecture: what it
stores must be exactly what each router computed, and the stale gate what layer l's router gives
on the input of layer l-1's router."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import ROOT  # noqa: E402

from stmoe import DECODE, PREFILL  # noqa: E402
from stmoe.recording.recorder import RecordError, find_routers, record  # noqa: E402
from stmoe.recording.toy_model import spread_routers  # noqa: E402

COMMON = dict(vocab_size=96, hidden_size=32, intermediate_size=32, num_hidden_layers=3,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
E, K = 8, 2


def _configs() -> dict:
    t = transformers
    found = {
        "mixtral": ("MixtralForCausalLM", "MixtralConfig", dict(num_local_experts=E)),
        "qwen2_moe": ("Qwen2MoeForCausalLM", "Qwen2MoeConfig",
                      dict(num_experts=E, moe_intermediate_size=16, shared_expert_intermediate_size=16)),
        "qwen3_moe": ("Qwen3MoeForCausalLM", "Qwen3MoeConfig",
                      dict(num_experts=E, moe_intermediate_size=16, head_dim=8)),
        "olmoe": ("OlmoeForCausalLM", "OlmoeConfig", dict(num_experts=E)),
        "granitemoe": ("GraniteMoeForCausalLM", "GraniteMoeConfig", dict(num_local_experts=E)),
        # first layer dense: the trace has only the MoE layers
        "deepseek_v3": ("DeepseekV3ForCausalLM", "DeepseekV3Config",
                        dict(n_routed_experts=E, moe_intermediate_size=16, n_group=2, topk_group=1,
                             first_k_dense_replace=1, kv_lora_rank=8, q_lora_rank=8,
                             qk_rope_head_dim=4, qk_nope_head_dim=4, v_head_dim=8,
                             n_shared_experts=1)),
        "gpt_oss": ("GptOssForCausalLM", "GptOssConfig", dict(num_local_experts=E, head_dim=8)),
    }
    return {name: spec for name, spec in found.items() if hasattr(t, spec[0])}


ARCHS = _configs()


def tiny_model(arch: str, seed: int = 0):
    model_cls, config_cls, extra = ARCHS[arch]
    config = getattr(transformers, config_cls)(**COMMON, num_experts_per_tok=K, **extra)
    torch.manual_seed(seed)
    return spread_routers(getattr(transformers, model_cls)(config).eval())


def test_at_least_five_architectures_available():
    assert len(ARCHS) >= 5, sorted(ARCHS)


def _router_calls(model, ids):
    """Each router's own (input, weights, ids) on one plain forward pass, via a separate hook."""
    calls = []
    handles = [r.register_forward_hook(
        lambda m, a, out, j=j: calls.append((j, a[0].reshape(-1, a[0].shape[-1]).clone(),
                                             out[1].detach().clone(), out[2].clone())))
        for j, r in enumerate(find_routers(model))]
    with torch.no_grad():
        model(input_ids=torch.tensor([ids]))
    for h in handles:
        h.remove()
    return calls


def _ranked(weights, ids):
    w, i = weights.float().numpy(), ids.numpy()
    order = np.argsort(-w, axis=-1, kind="stable")
    return np.take_along_axis(w, order, -1), np.take_along_axis(i, order, -1)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_recorded_ids_and_weights_are_the_routers_output(arch):
    model = tiny_model(arch)
    seqs = [[3, 14, 15, 92, 65, 35, 8, 9], [27, 18, 28]]
    trace = record(model, seqs, prompt_tokens=3, progress=False)
    assert trace.num_tokens == 11 and trace.top_k == K and trace.num_experts == E
    for s, ids in enumerate(seqs):
        rows = trace.sequence == s
        calls = _router_calls(model, ids)
        assert [c[0] for c in calls] == list(range(trace.num_layers))
        for j, _, w, i in calls:
            want_w, want_i = _ranked(w, i)
            np.testing.assert_array_equal(trace.expert_ids[rows, j], want_i)
            np.testing.assert_allclose(trace.weights[rows, j], want_w, rtol=1e-6)
        np.testing.assert_array_equal(trace.token_ids[rows], ids)
    assert (np.diff(trace.weights, axis=-1) <= 0).all(), "slots must be in rank order"


@pytest.mark.parametrize("arch", sorted({"mixtral", "qwen3_moe", "olmoe"} & set(ARCHS)))
def test_ids_are_top_k_of_the_models_own_router_logits(arch):
    """Independent of any hook: the model's own `output_router_logits`, top-k taken here
    (softmax routers: top-k of the logits is top-k of the probabilities)."""
    model = tiny_model(arch, seed=2)
    ids = [9, 8, 7, 6, 5, 4]
    trace = record(model, [ids], progress=False)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), output_router_logits=True).router_logits
    assert len(logits) == trace.num_layers
    for j, layer_logits in enumerate(logits):
        want = torch.topk(layer_logits.float(), K, dim=-1).indices.numpy()
        np.testing.assert_array_equal(trace.expert_ids[:, j], want)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_stale_gate_is_next_router_on_previous_router_input(arch):
    model = tiny_model(arch, seed=1)
    ids = [5, 6, 7, 8, 9, 10, 11]
    trace = record(model, [ids], progress=False)
    calls = _router_calls(model, ids)
    routers = find_routers(model)
    assert (trace.stale_gate[:, 0] == -1).all()
    for j in range(1, len(routers)):
        with torch.no_grad():
            out = routers[j](calls[j - 1][1])
        np.testing.assert_array_equal(trace.stale_gate[:, j], _ranked(out[1], out[2])[1])
    # the stale gate is a real prediction: not identical to what the router then picked
    assert not np.array_equal(trace.stale_gate[:, 1:], trace.expert_ids[:, 1:])


def test_dense_layers_are_not_in_the_trace():
    if "deepseek_v3" not in ARCHS:
        pytest.skip("this transformers has no DeepSeek-V3")
    model = tiny_model("deepseek_v3")
    assert record(model, [[1, 2, 3]], progress=False).num_layers == COMMON["num_hidden_layers"] - 1


def test_generation_routes_like_teacher_forcing():
    model = tiny_model("qwen3_moe")
    gen = record(model, [[4, 8, 15, 16]], generate=5, progress=False)
    assert gen.num_tokens == 9
    assert list(gen.phase) == [PREFILL] * 4 + [DECODE] * 5
    forced = record(model, [gen.token_ids.tolist()], prompt_tokens=4, progress=False)
    np.testing.assert_array_equal(forced.expert_ids, gen.expert_ids)
    np.testing.assert_array_equal(forced.phase, gen.phase)
    np.testing.assert_allclose(forced.weights, gen.weights, atol=1e-5)


def test_provenance_and_atomic_save(tmp_path):
    from stmoe import __version__, load_trace
    model = tiny_model("mixtral")
    out = tmp_path / "t.npz"
    trace = record(model, [[1, 2, 3, 4]], prompt_tokens=2, model_id="tiny-mixtral",
                   prompt_source="unit test", meta={"domain": "code"}, progress=False, path=out)
    meta = load_trace(out).meta
    assert meta["model"] == "tiny-mixtral" and meta["architecture"] == "MixtralForCausalLM"
    assert meta["dtype"] == "float32" and meta["device"] == "cpu"
    assert meta["prompt_source"] == "unit test" and meta["domain"] == "code"
    assert __version__ in meta["recorded_with"] and meta["date"].startswith("20")
    assert meta["top_k"] == K and meta["synthetic"] is False
    assert list(trace.phase) == [PREFILL, PREFILL, DECODE, DECODE]
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(generate=-1), "generate"),
    (dict(prompt_tokens=-2), "prompt_tokens"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(RecordError, match=match):
        record(tiny_model("mixtral"), [[1, 2]], progress=False, **kwargs)


def test_text_without_tokenizer_and_dense_model_are_refused():
    with pytest.raises(RecordError, match="tokenizer"):
        record(tiny_model("mixtral"), ["some text"], progress=False)
    dense = transformers.LlamaForCausalLM(transformers.LlamaConfig(**COMMON))
    with pytest.raises(RecordError, match="no MoE router"):
        record(dense, [[1, 2]], progress=False)


def _tiny_model_dir(tmp_path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast
    text = "def f(x):\n    return x + 1\n" * 50 + "In the beginning was the word. " * 50
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([text], vocab_size=300, min_frequency=1, show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)
    model_cls, config_cls, extra = ARCHS["olmoe"]
    config = getattr(transformers, config_cls)(**{**COMMON, "vocab_size": 300},
                                               num_experts_per_tok=K, **extra)
    torch.manual_seed(0)
    getattr(transformers, model_cls)(config).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    (tmp_path / "in.txt").write_text(text)
    return tmp_path / "m", tmp_path / "in.txt"


def test_cli_records_text_windows(tmp_path, capsys):
    import json

    from stmoe.cli import main
    model_dir, text = _tiny_model_dir(tmp_path)
    out = tmp_path / "rec.npz"
    assert main(["record", str(model_dir), "--text", str(text), "-o", str(out), "--quiet",
                 "--sequence-tokens", "16", "--prompt-tokens", "4", "--max-sequences", "3",
                 "--domain", "code"]) == 0
    summary = json.loads(capsys.readouterr().out)
    from stmoe import load_trace
    trace = load_trace(out)
    assert trace.num_tokens == 48 and len(set(trace.sequence.tolist())) == 3
    assert (trace.phase == DECODE).sum() == 36 and trace.meta["domain"] == "code"
    assert summary["output"] == str(out)


def test_cli_bad_window_is_one_line_error(tmp_path, capsys):
    from stmoe.cli import main
    model_dir, text = _tiny_model_dir(tmp_path)
    assert main(["record", str(model_dir), "--text", str(text), "-o", str(tmp_path / "x.npz"),
                 "--sequence-tokens", "16", "--prompt-tokens", "16"]) == 2
    assert "--prompt-tokens 16" in capsys.readouterr().err


def test_import_stmoe_needs_no_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
            "import stmoe, stmoe.recording.recorder, stmoe.cli.record_command; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_cli_prompt_and_generate(tmp_path, capsys):
    from stmoe import load_trace
    from stmoe.cli import main
    model_dir, _ = _tiny_model_dir(tmp_path)
    out = tmp_path / "gen.npz"
    assert main(["record", str(model_dir), "--prompt", "def f(x):", "--prompt", "In the",
                 "--generate", "3", "-o", str(out), "--quiet", "--no-stale-gate"]) == 0
    trace = load_trace(out)
    assert (trace.phase == DECODE).sum() == 6 and trace.stale_gate is None
    assert trace.meta["generated_tokens_per_sequence"] == 3
    assert trace.meta["prompt_source"] == "prompts given on the command line"


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "hi", "-o", "{tmp}/out.txt"], "saved as .npz"),
    (["--prompt", "hi", "-o", "{tmp}/d.npz"], "is a directory"),
    (["--text", "{tmp}/missing.txt", "-o", "{tmp}/o.npz"], "--text {tmp}/missing.txt: no such file"),
    (["--prompt", "hi", "--generate", "-1", "-o", "{tmp}/o.npz"], "--generate must be >= 0"),
    (["--prompt", "hi", "-o", "{tmp}/o.npz"], "cannot load"),   # {tmp} is no model directory
])
def test_cli_bad_record_is_one_line_error(tmp_path, capsys, argv, message):
    from stmoe.cli import main
    (tmp_path / "d.npz").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["record", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.replace("{tmp}", str(tmp_path)) in err
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def test_unloadable_model_is_a_record_error(tmp_path):
    with pytest.raises(RecordError, match=f"model '{tmp_path}': cannot load"):
        record(str(tmp_path), [[1, 2]], progress=False)
