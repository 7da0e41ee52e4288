"""The PE array's cycle counts (stmoe.sim.systolic): by hand, against SCALE-Sim 3.0, and inside
the timing model (one bf16 Qwen3-30B-A3B decode token on the accelerator preset)."""

import sys

import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.sim.hardware import DATAFLOWS, model_dims, preset
from stmoe.sim.models import MODELS
from stmoe.sim.systolic import compute_time, cycles, dense_time, expert_time, head_time, matrices_cycles
from stmoe.sim.timing import layer_costs, roofline, simulate


def test_cycles_by_hand():
    # one token through a 2048 x 768 matrix on 128 x 128, folds x cycles per fold:
    # os: Sr=M=1, Sc=N=768 -> 1 x 6 folds of T=K=2048 + 128 + 128 - 2
    assert cycles(1, 2048, 768, 128, 128, "os") == 6 * (2048 + 254)
    # ws: Sr=K=2048, Sc=N=768 -> 16 x 6 folds of 128 (load) + T=M=1 + 254
    assert cycles(1, 2048, 768, 128, 128, "ws") == 96 * (128 + 1 + 254)
    # is: Sr=K=2048, Sc=M=1 -> 16 x 1 folds of 128 (load) + T=N=768 + 254
    assert cycles(1, 2048, 768, 128, 128, "is") == 16 * (128 + 768 + 254)
    # a GEMM that fits: one fold; rows and columns are not interchangeable
    assert cycles(8, 8, 8, 8, 8, "os") == 8 + 14
    assert cycles(8, 8, 8, 16, 4, "os") == 2 * (8 + 18)
    assert matrices_cycles(((4, 4), (4, 8)), 1, 4, 4, "ws") == (4 + 1 + 6) + 2 * (4 + 1 + 6)


@pytest.mark.parametrize("args,match", [
    ((0, 8, 8, 4, 4, "os"), "m must be a positive whole number, got 0"),
    ((1, 8, 8, 4.5, 4, "os"), "rows must be a positive whole number, got 4.5"),
    ((1, 8, 8, 4, 4, "rs"), "dataflow must be one of os, ws, is, got 'rs'"),
    ((1, 8, 8, 4, 4, "rs", "scalesim"), "dataflow must be one of os, ws, is, got 'rs'"),
])
def test_bad_shapes_are_one_line(args, match):
    with pytest.raises(ConfigError, match=match):
        cycles(*args)


# The grid checked against SCALE-Sim: GEMVs (one decode token) and small GEMMs, including shapes
# that do not divide the array and Qwen3-30B-A3B's three expert matrices.
GEMV = [(1, 64, 64), (1, 100, 30), (1, 7, 200)]
GEMM = [(4, 64, 64), (16, 40, 24), (3, 17, 50), (20, 20, 20)]
ARRAYS = [(8, 8), (16, 4)]
QWEN3_EXPERT = [(1, 2048, 768), (1, 768, 2048), (8, 2048, 768)]


@pytest.mark.parametrize("dataflow", list(DATAFLOWS))
def test_cycles_agree_with_scalesim(dataflow):
    """Exact agreement (tolerance 0 cycles) with SCALE-Sim 3.0's compute model (the "scalesim"
    backend, module docstring) on every shape of the grid, on both array shapes, and on Qwen3's
    expert matrices on the accelerator's 128 x 128 array."""
    pytest.importorskip("scalesim", reason="SCALE-Sim is the scalesim extra: pip install -e '.[scalesim]'")
    cases = [(s, a) for s in GEMV + GEMM for a in ARRAYS] + [(s, (128, 128)) for s in QWEN3_EXPERT]
    table = [(shape, array, cycles(*shape, *array, dataflow), cycles(*shape, *array, dataflow, "scalesim"))
             for shape, array in cases]
    wrong = [row for row in table if row[2] != row[3]]
    assert not wrong, f"(M, K, N), (rows, cols), ours, SCALE-Sim's: {wrong}"
    _, dims = _qwen3_bf16(8)
    hw = preset("accelerator", dataflow=dataflow)
    assert expert_time(hw, dims, backend="scalesim") == expert_time(hw, dims)


def test_unknown_backend_is_one_line():
    with pytest.raises(ConfigError, match="backend must be one of fold, scalesim, got 'rtl'"):
        cycles(1, 8, 8, 4, 4, "os", backend="rtl")


def _qwen3_bf16(tokens=64):
    trace = stmoe.synthetic_trace(tokens, 48, 128, 8, num_sequences=2, prompt_tokens=4, seed=3)
    return trace, model_dims(trace, model="qwen3-30b-a3b", dtype="bfloat16")


def test_one_qwen3_decode_token_on_the_accelerator_by_hand():
    """One bf16 Qwen3-30B-A3B decode token on the accelerator preset (128 x 128 PEs, 1 GHz):
    GEMV cycles of the gate, up (2048 -> 768) and down (768 -> 2048) matrices per dataflow."""
    _, dims = _qwen3_bf16()
    assert dims.expert_matrices == ((2048, 768), (2048, 768), (768, 2048))
    assert dims.expert_bytes[0] == 3 * 2048 * 768 * 2 == 9_437_184
    by_hand = {                      # gate and up, down (see test_cycles_by_hand for the folds)
        "os": 2 * 6 * (2048 + 254) + 16 * (768 + 254),          # 43,976
        "ws": 2 * 96 * (128 + 1 + 254) + 96 * (128 + 1 + 254),  # 110,304
        "is": 2 * 16 * (128 + 768 + 254) + 6 * (128 + 2048 + 254),  # 51,380
    }
    for dataflow, n in by_hand.items():
        hw = preset("accelerator", dataflow=dataflow)
        assert expert_time(hw, dims) == pytest.approx(n * 1e-9, rel=1e-12)
        # never below the array's intake: at one token it takes in at most 128 weights a cycle
        assert n >= 3 * 2048 * 768 / 128
    assert preset("accelerator").dataflow == "os"
    # attention projections (q 2048->4096, k and v 2048->512, o 4096->2048) and router (2048->128)
    os_dense = 32 * (2048 + 254) + 2 * 4 * (2048 + 254) + 16 * (4096 + 254) + (2048 + 254)
    assert dense_time(preset("accelerator"), dims) == pytest.approx(os_dense * 1e-9, rel=1e-12)


@pytest.mark.parametrize("dataflow", list(DATAFLOWS))
def test_all_resident_latency_includes_the_gemv_of_every_routed_expert(dataflow):
    trace, dims = _qwen3_bf16()
    hw = preset("accelerator", dataflow=dataflow)
    r = simulate(trace, hw, "all-resident", dims=dims)
    decode = trace.select(phase="decode")
    routed = int((decode.expert_ids >= 0).sum())
    gemv = expert_time(hw, dims)
    # attention streams its 38 MB per layer from HBM at 256 GB/s (150 us) or computes, if slower;
    # so does the LM head (622 MB, 2.4 ms); the KV cache is a roofline
    bw = hw.dense_bandwidth
    t_dense = max(dense_time(hw, dims), float(dims.dense_bytes[0]) / bw)
    t_head = max(head_time(hw, dims), dims.head_bytes / bw)
    t_kv = float(roofline(dims.kv_macs, dims.kv_bytes, hw, bw))
    assert layer_costs(hw, dims)[3] == t_head and layer_costs(hw, dims)[0][0] == t_dense
    total = r.latency_per_token_s * r.tokens
    assert total >= routed * gemv
    # with every expert resident nothing stalls: exactly dense + routed experts, one after another
    assert total == pytest.approx(decode.num_tokens * (48 * (t_dense + t_kv) + t_head) + routed * gemv, rel=1e-9)
    assert any("PE array" in n and "one token per step" in n for n in r.notes)


def test_every_registry_model_has_its_macs_in_matrices():
    """The matrices the PE array computes hold every MAC of expert and attention/router/shared
    experts; the once-per-token part's only MACs outside them are the non-MoE layers' KV reads."""
    for name, cfg in MODELS.items():
        trace = stmoe.synthetic_trace(8, cfg.moe_layers, cfg.experts, min(cfg.k, 2), num_sequences=1, seed=0)
        d = model_dims(trace, model=name, dtype="bfloat16", context=100)
        assert sum(k * n for k, n in d.expert_matrices) == d.expert_macs, name
        assert sum(k * n for k, n in d.dense_matrices) == d.dense_macs, name
        assert d.head_macs - sum(k * n for k, n in d.head_matrices) == cfg.dense_layers * d.kv_macs, name


def test_a_hardware_without_dataflow_is_a_roofline():
    _, dims = _qwen3_bf16(8)
    gpu = preset("gpu-pcie")
    assert gpu.dataflow is None and gpu.pe_array is None
    assert expert_time(gpu, dims) == pytest.approx(3 * 2048 * 768 / gpu.peak_macs)
    assert compute_time(gpu, dims.expert_matrices, dims.expert_macs, tokens=4) == pytest.approx(
        4 * expert_time(gpu, dims))
    with pytest.raises(ConfigError, match="tokens per step must be a positive whole number, got 0"):
        expert_time(gpu, dims, tokens=0)


def test_batching_tokens_reuses_the_folds():
    """More tokens per step fill the rows an output-stationary GEMV left idle: 8 tokens cost
    the same cycles as one until M exceeds the array's rows."""
    _, dims = _qwen3_bf16(8)
    hw = preset("accelerator")
    assert expert_time(hw, dims, tokens=8) == expert_time(hw, dims, tokens=1)
    assert expert_time(hw, dims, tokens=129) == 2 * expert_time(hw, dims, tokens=1)


def test_scalesim_backend_without_scalesim_is_one_line(monkeypatch):
    for name in ("scalesim", "scalesim.scale_config", "scalesim.compute.systolic_compute_os",
                 "scalesim.compute.systolic_compute_ws", "scalesim.compute.systolic_compute_is"):
        monkeypatch.setitem(sys.modules, name, None)     # as if not installed
    with pytest.raises(ConfigError, match=r"backend 'scalesim' needs SCALE-Sim: pip install -e '\.\[scalesim\]'"):
        cycles(1, 9, 11, 3, 5, "ws", backend="scalesim")   # a shape no other test caches
