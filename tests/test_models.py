"""The model registry and the sizes of one decoded token, checked by hand."""

import numpy as np
import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.sim.hardware import model_dims, preset
from stmoe.sim.models import MODELS, find_model, get_model
from stmoe.sim.timing import simulate

ISSUE_MODELS = ["qwen3-30b-a3b", "qwen3-235b-a22b", "qwen1.5-moe-a2.7b", "mixtral-8x7b", "mixtral-8x22b",
                "olmoe-1b-7b", "deepseek-v2-lite", "deepseek-v3", "gpt-oss-20b", "gpt-oss-120b",
                "granite-3.0-1b-a400m", "granite-3.0-3b-a800m", "stmoe-bundled-qwen3moe-8x32"]


def test_registry_has_every_model_with_a_source():
    for name in ISSUE_MODELS:
        m = MODELS[name]
        assert m.name == name == name.lower() and m.source and m.checked
        assert 1 <= m.k <= m.experts and m.dense_layers < m.layers


@pytest.mark.parametrize("name, expected", [
    ("Qwen3-30B-A3B", "qwen3-30b-a3b"), ("Qwen/Qwen3-235B-A22B", "qwen3-235b-a22b"),
    ("/data/local/tmp/shardllm/Qwen3-30B-A3B-Q4_K_M.gguf", "qwen3-30b-a3b"),
    ("ibm-granite/granite-3.0-1b-a400m-instruct", "granite-3.0-1b-a400m"),
    ("qwen2-moe-a2.7b", "qwen1.5-moe-a2.7b"), ("mixtral-8x22b", "mixtral-8x22b"), ("mystery-moe", None)])
def test_find_model_by_name_id_or_path(name, expected):
    m = find_model(name)
    assert (m.name if m else None) == expected


def test_unknown_model_name_is_one_line():
    with pytest.raises(ConfigError, match="unknown model 'gpt-5'.*qwen3-30b-a3b"):
        get_model("gpt-5")


def test_published_parameter_counts():
    """The registry's shapes give the totals the model cards state (within 2%)."""
    def total(m):
        per_layer = m.attention_params() + m.hidden * m.experts + m.experts * 3 * m.hidden * m.ffn \
            + m.shared_experts * 3 * m.hidden * m.shared_ffn
        dense = m.dense_layers * (m.attention_params() + 3 * m.hidden * m.dense_ffn)
        return m.moe_layers * per_layer + dense + m.vocab * m.hidden * (1 if m.tied_embeddings else 2)
    # model cards: Qwen3-30B-A3B 30.5B, Mixtral-8x7B 46.7B, DeepSeek-V3 671B, OLMoE 6.9B
    for name, billions in [("qwen3-30b-a3b", 30.5), ("mixtral-8x7b", 46.7), ("deepseek-v3", 671),
                           ("olmoe-1b-7b", 6.9)]:
        assert total(MODELS[name]) / 1e9 == pytest.approx(billions, rel=0.02), name


def one_token_trace(model="Qwen3-30B-A3B", L=48, E=128, k=8):
    ids = (np.arange(L * k).reshape(1, L, k) % E).astype(np.int16)
    return stmoe.Trace(ids, num_experts=E, meta={"model": model, "name": "one-token"})


def test_one_bf16_qwen3_token_by_hand():
    """One decode token of bfloat16 Qwen3-30B-A3B on the accelerator, at 1,000 tokens of context.

    Expert: 3 x 2048 x 768 = 4,718,592 parameters, 9,437,184 bytes (9.44 MB); over the 256 GB/s
    HBM2 link 36.864 us + 0.1 us latency; computed on the 128 x 128 output-stationary array
    (stmoe.sim.systolic: folds x (K + 128 + 128 - 2) cycles at 1 GHz): gate and up 6 x 2,302,
    down 16 x 1,022 = 43.976 us (reading it from the buffer at 4 TB/s would take 2.359 us).
    Attention and router per layer: 2048 x 128 x (2 x 32 + 2 x 4) + 2048 x 128 = 19,136,512
    parameters, 38,273,024 bytes at 256 GB/s = 149.504 us; on the array q 32 x 2,302, k and v
    4 x 2,302 each, o 16 x 4,350, router 1 x 2,302 = 163.982 us, the slower. KV cache per layer:
    1,000 tokens x 2 x 4 heads x 128 x 2 bytes = 2,048,000 bytes = 8.0 us. LM head: 151,936 x
    2048 = 311,164,928 parameters, 622,329,856 bytes (+ the 4,096-byte embedding row) = 2,430.98
    us to read; on the array 1,187 folds x 2,302 = 2,732.474 us, the slower.
    """
    tr = one_token_trace()
    dims = model_dims(tr, dtype="bfloat16", context=1000)
    assert dims.expert_bytes[0] == 9_437_184 and dims.lm_head_bytes == 622_329_856
    hw = preset("accelerator")
    expert, link = (2 * 6 * 2302 + 16 * 1022) * 1e-9, 9_437_184 / 256e9 + 100e-9
    attention, kv, head = (32 + 4 + 4 + 1) * 2302e-9 + 16 * 4350e-9, 2_048_000 / 256e9, 1187 * 2302e-9
    resident = simulate(tr, hw, "all-resident", dims=dims)
    assert resident.latency_per_token_s == pytest.approx(48 * (attention + kv + 8 * expert) + head, rel=1e-9)
    # on demand: the layer's 8 experts queue on the link; each is computed once it arrives, and
    # the array (43.976 us an expert) is slower than the link (36.964 us), so after the first
    # arrives the 8 compute back to back
    od = simulate(tr, hw, "on-demand", dims=dims)
    assert od.latency_per_token_s == pytest.approx(48 * (attention + kv + link + 8 * expert) + head, rel=1e-9)
    assert od.time_breakdown_s["lm_head"] == pytest.approx(head)
    assert sum(od.time_breakdown_s.values()) == pytest.approx(od.latency_per_token_s, rel=1e-12)
    # energy by hand: bytes x pJ/byte, MACs x 1.5 pJ, static power x time
    moved = 48 * 8 * 9_437_184
    dense_read = 48 * (38_273_024 + 2_048_000) + 622_329_856 + 4096
    macs = 48 * 8 * 4_718_592 + 48 * (19_136_512 + 1000 * 2 * 32 * 128) + 311_164_928
    # logic + 64 MiB of 40 nm SRAM leakage: CACTI 7's lstp cell at 360 K (I_off, I_g_on through
    # 3.965 F and 1.655 F of width, 28.7 pA) at 1.06 V, interpolated 8/13 on 45 nm, 5/13 on 32 nm
    cell_a = 0.040 * (3.965 * (8 / 13 * 1.3e-10 + 5 / 13 * 2.4e-10) + 1.655 * (8 / 13 * 9.47e-12 + 5 / 13 * 3.73e-11))
    static_w = 1.0 + 64 * 2 ** 23 * cell_a * (8 / 13 * 1.1 + 5 / 13 * 1.0)
    expected = {"link": moved * 31.2e-12, "buffer": 2 * moved * 12.5e-12, "dense": dense_read * 31.2e-12,
                "compute": macs * 1.5e-12, "static": od.latency_per_token_s * static_w}
    assert od.energy_breakdown_j == pytest.approx(expected, rel=1e-9)
    assert od.energy_per_token_j == pytest.approx(sum(expected.values()), rel=1e-12)
    assert sum(od.energy_by_work_j.values()) == pytest.approx(od.energy_per_token_j, rel=1e-12)
    # the 64 MiB buffer holds 7 bf16 experts: fewer than one layer's 8, said in the notes
    assert any("holds 7 experts, fewer than its working set of 8" in n for n in od.notes)


def test_dtype_wins_over_recorded_bytes(qwen):
    tr = stmoe.load_trace(qwen)
    recorded = model_dims(tr)
    assert "measured by the recorder" in recorded.source and recorded.bytes_per_param < 1
    bf16 = model_dims(tr, dtype="bfloat16")
    assert np.all(bf16.expert_bytes == 9_437_184) and bf16.bytes_per_param == 2
    assert "bfloat16" in bf16.source and "measured" not in bf16.source


def test_route_trace_dense_bytes_are_kept_and_used(qwen_csv):
    tr = stmoe.load_trace(qwen_csv)
    assert len(tr.meta["dense_bytes"]) == tr.num_layers and tr.meta["dense_bytes"][0] == 11953152
    d = model_dims(tr)
    assert d.dense_bytes[0] == 11953152 and "expert and dense bytes measured" in d.source


def test_unknown_model_needs_a_flag_and_model_says_where_sizes_came_from():
    tr = one_token_trace(model="mystery-moe-9b")
    with pytest.raises(ConfigError, match=r"model sizes of trace .* are unknown: give --model NAME") as err:
        model_dims(tr)
    assert "\n" not in str(err.value)
    d = model_dims(tr, model="qwen3-30b-a3b")
    assert d.model == "qwen3-30b-a3b" and "--model" in d.source and "bfloat16 (default" in d.source
    bare = model_dims(tr, hidden=1024, ffn=512, dtype="int8")
    assert bare.lm_head_bytes == 0 and any("LM head" in n for n in bare.notes)


def test_context_defaults_to_the_traces_and_scales_kv(qwen):
    tr = stmoe.load_trace(qwen)
    d = model_dims(tr)
    assert d.context_tokens > 0 and "mean over the trace's decode tokens" in d.source
    assert model_dims(tr, context=2 * d.context_tokens).kv_bytes == pytest.approx(2 * d.kv_bytes)
    with pytest.raises(ConfigError, match="context must be"):
        model_dims(tr, context=-1)


def test_static_power_from_sram_node():
    hw = preset("accelerator")
    assert hw.sram_node_nm == 40 and hw.sram_area_mm2 == pytest.approx(64 * 2 ** 23 * 0.242e-6 / 0.7)
    # 64 MiB of 40 nm bitcells are ~130 mm^2 before periphery (the issue's figure)
    assert 64 * 2 ** 23 * 0.242e-6 == pytest.approx(130, rel=0.01)
    doubled = preset("accelerator", buffer_bytes=128 * 2 ** 20)
    assert doubled.static_power_w - hw.static_power_w == pytest.approx(hw.static_power_w - hw.static_w)
    assert preset("gpu-pcie").static_power_w == preset("gpu-pcie").static_w


def test_sram_node_must_have_a_leakage_figure():
    from stmoe.errors import HardwareError
    with pytest.raises(HardwareError, match="sram_node_nm must be one of \\[5, 40\\], got 22"):
        preset("accelerator", sram_node_nm=22)
    # 5 nm holds CACTI's 22 nm figure, which leaks more per cell than its 40 nm interpolation
    assert preset("accelerator", sram_node_nm=5).static_power_w > preset("accelerator").static_power_w
