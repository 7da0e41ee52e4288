"""The operating-regimes chapter's numbers: the union of a step's experts, the step model on the
PE array, quantised experts through the simulator, and the CPU-or-fetch comparison."""

import numpy as np
import pytest

import stmoe
from stmoe.book import operating_regimes as op
from stmoe.errors import ConfigError
from stmoe.sim.hardware import preset
from stmoe.sim.systolic import expert_time
from stmoe.sim.timing import simulate
from tests.prefetch_data import small_held_out


@pytest.fixture(scope="module")
def code():
    return stmoe.load_trace("tiny-moe-code")


def test_windows_are_consecutive_decode_tokens_of_one_sequence(code):
    steps = op.windows(code, 8)
    assert steps.shape[1] == 8 and len(steps) == sum((code.phase[code.sequence == s] == 1).sum() // 8
                                                      for s in code.sequence_ids())
    assert (np.diff(steps, axis=1) == 1).all()
    assert (code.phase[steps] == 1).all() and (code.sequence[steps] == code.sequence[steps[:, :1]]).all()
    with pytest.raises(ConfigError, match="batch"):
        op.windows(code, 0)


def test_routing_counts_the_union_of_the_steps_experts(code):
    steps = op.windows(code, 4)[:3]
    routing = op.step_routing(code, steps)
    for w, idx in enumerate(steps):
        for layer in (0, code.num_layers - 1):
            ids = code.expert_ids[idx, layer].ravel()
            _, per_expert = np.unique(ids, return_counts=True)
            assert sorted(routing[w, layer][routing[w, layer] > 0]) == sorted(per_expert)
            assert routing[w, layer].sum() == len(ids)


@pytest.mark.parametrize("trace, batches", [("tiny-moe-code", (1, 4, 8)), ("qwen3-30b-a3b", (1,))])
def test_step_times_are_the_simulators_all_resident_and_on_demand(trace, batches):
    # the chapter's rows against the simulator on the same steps: every decode token in a full
    # step of sequences in lockstep, so the totals per token must agree to rounding
    t = stmoe.load_trace(trace)
    rows, _ = op.batch_rows(t, op.MACHINES, ("bfloat16",), batches, across="sequences")
    assert len(rows) == len(op.MACHINES) * len(batches)
    for r in rows:
        assert r["steps"] * r["batch"] == int((t.phase == stmoe.DECODE).sum())
        kw = {"dims": op.sizes(t), "batch": r["batch"]}
        resident = simulate(t, r["hardware"], "all-resident", **kw)
        on_demand = simulate(t, r["hardware"], "on-demand", **kw)
        assert on_demand.hit_rate == 0    # its buffer kept nothing from one step to the next
        assert r["resident_us_per_token"] == pytest.approx(resident.latency_per_token_s * 1e6, rel=1e-9)
        assert r["streamed_us_per_token"] == pytest.approx(on_demand.latency_per_token_s * 1e6, rel=1e-9)


def test_batch_rows_union_grows_and_one_token_costs_as_the_simulator_says(code):
    rows, notes = op.batch_rows(code, "accelerator", ("bfloat16",), (1, 4, 448, 512))
    assert [r["batch"] for r in rows] == [1, 4, 448] and "batch 512: tiny-moe-code has no step" in notes[0]
    assert rows[0]["union_per_layer"] == code.top_k
    assert rows[0]["share_touched"] < rows[1]["share_touched"] < rows[2]["share_touched"] <= 1
    # one token: each layer computes its k experts one at a time on the PE array (os: the same
    # cycles for 1 to 128 tokens), so B = 4 costs less per token
    hw, dims = preset("accelerator"), op.sizes(code)
    assert expert_time(hw, dims, 1) == expert_time(hw, dims, 128) < expert_time(hw, dims, 129)
    assert rows[1]["resident_us_per_token"] < rows[0]["resident_us_per_token"]
    # a streamed step is never faster than a resident one
    pcie, _ = op.batch_rows(code, "gpu-pcie", ("bfloat16",), (1, 8))
    assert all(r["streamed_us_per_token"] >= r["resident_us_per_token"] for r in rows + pcie)
    assert pcie[0]["streamed_us_per_token"] > 10 * pcie[0]["resident_us_per_token"]


def test_nearly_all_is_the_first_batch_over_the_share():
    rows = [{"batch": 1, "share_touched": 0.2, "uniform_share_touched": 0.95},
            {"batch": 2, "share_touched": 0.95, "uniform_share_touched": 0.99}]
    assert op.nearly_all(rows) == 2 and op.nearly_all(rows, 0.99) is None
    assert op.nearly_all(rows, field="uniform_share_touched") == 1


def test_uniform_share_by_hand_and_real_routing_repeats_itself(code):
    assert op.uniform_share(32, 4, 1) == pytest.approx(4 / 32)
    assert op.uniform_share(32, 4, 2) == pytest.approx(1 - (28 / 32) ** 2)
    rows, _ = op.batch_rows(code, "accelerator", ("bfloat16",), (1, 8))
    assert rows[0]["share_touched"] == pytest.approx(rows[0]["uniform_share_touched"])
    assert rows[1]["share_touched"] < rows[1]["uniform_share_touched"]


def test_nearly_every_expert_touched_by_a_large_step():
    t = stmoe.synthetic_trace(512, 2, 8, 2, num_sequences=1, prompt_tokens=0, seed=0)
    rows, _ = op.batch_rows(t, "accelerator", ("bfloat16",), (64,), model="qwen3-30b-a3b")
    assert rows[0]["share_touched"] > 0.99 and op.nearly_all(rows) == 64


def test_prefill_is_cheaper_per_token_than_decode(code):
    pre, dec = op.prefill_decode(code)
    assert pre["phase"] == "prefill" and pre["tokens_per_step"] == 64 and dec["tokens_per_step"] == 1
    assert pre["us_per_token"] < dec["us_per_token"]
    for r in (pre, dec):
        assert r["us_per_token"] >= max(r["compute_us_per_token"], r["reads_us_per_token"]) - 1e-9


def test_quantised_experts_move_fewer_bytes():
    data = small_held_out()
    rows = op.quantised_rows(data, "gpu-pcie", systems=("on-demand",))
    by = {r["dtype"]: r for r in rows}
    assert by["bfloat16"]["vs_bfloat16"] == 1.0
    assert by["int8"]["expert_mib"] == pytest.approx(by["bfloat16"]["expert_mib"] / 2)
    assert by["bfloat16"]["latency_us"] > by["int8"]["latency_us"] > by["int4"]["latency_us"]


def test_cpu_or_fetch_by_hand(code):
    dims = op.sizes(code)
    hw = preset("gpu-pcie")
    (r,) = op.cpu_or_fetch(dims, "gpu-pcie", (1,))
    nbytes = float(np.mean(dims.expert_bytes))
    assert r["fetch_us"] == pytest.approx((hw.link_latency + nbytes / hw.link_bandwidth
                                           + max(expert_time(hw, dims, 1), nbytes / hw.local_bandwidth)) * 1e6)
    cpu = 2 * (hw.link_latency + 2 * 2048 * 1 / hw.link_bandwidth) + nbytes / op.CPU_BANDWIDTH
    assert r["cpu_us"] == pytest.approx(cpu * 1e6) and r["faster"] == "cpu"
    rows = op.cpu_or_fetch(dims, "gpu-pcie", (1, 64, 4096))
    assert op.cpu_crossover(rows) == 4096 and op.cpu_crossover(rows[:2]) is None
    with pytest.raises(ConfigError, match="cpu_bandwidth"):
        op.cpu_or_fetch(dims, cpu_bandwidth=0)


def test_sequences_in_lockstep_touch_more_experts_and_read_more_kv(code):
    steps = op.windows(code, 4, across="sequences")
    seqs = code.sequence_ids()
    assert steps.shape == (12 * 448, 4)
    assert set(code.sequence[steps[0]]) == set(seqs[:4]) and (code.phase[steps] == 1).all()
    tokens, _ = op.batch_rows(code, "accelerator", ("bfloat16",), (8,))
    lockstep, notes = op.batch_rows(code, "accelerator", ("bfloat16",), (8, 64), across="sequences")
    assert [r["batch"] for r in lockstep] == [8] and "batch 64" in notes[0]
    assert lockstep[0]["share_touched"] > tokens[0]["share_touched"]
    routing = op.step_routing(code, steps[:2])
    one = op.step_times("accelerator", op.sizes(code), routing, 4)
    four = op.step_times("accelerator", op.sizes(code), routing, 4, kv_reads=4)
    assert (four["reads"] > one["reads"]).all()
    with pytest.raises(ConfigError, match="across"):
        op.windows(code, 4, across="layers")


def test_table_prints_each_row_in_its_format():
    text = op.table([{"b": 1, "x": 0.12345}, {"b": 64, "x": 2.0}], [("b", "B", "d"), ("x", "time", ".2f")])
    assert text.splitlines() == [" B  time", " 1  0.12", "64  2.00"]


def test_quantised_gain_is_the_rows_ratio_with_an_interval():
    data = small_held_out()
    rows = op.quantised_rows(data, "gpu-pcie", dtypes=("int4",), systems=("lru-cache", "st-moe"))
    by = {r["system"]: r for r in rows}
    g = op.quantised_gain(data, "gpu-pcie", "int4")
    assert g["speedup"] == pytest.approx(by["lru-cache"]["latency_us"] / by["st-moe"]["latency_us"])
    assert g["speedup_ci_low"] <= g["speedup"] <= g["speedup_ci_high"]
