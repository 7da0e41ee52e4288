"""Design-space sweeps: tidy rows, and the shape the book argues from."""

import pytest

import stmoe
from stmoe.errors import ConfigError
from stmoe.sim.sweeps import sweep
from stmoe.sim.timing import NESTED, SimulationResult


def test_prefetching_stops_helping_when_the_link_saturates(qwen):
    """Perfect prefetching gains most where link time and compute time are comparable (about
    32 GB/s on this trace, whose 6 experts a layer take 264 us on the preset's PE array): on a
    link 4x slower it cannot create bandwidth, on one 250x faster there is nothing left to hide."""
    tr = stmoe.load_trace(qwen)
    rows = sweep(tr, "link_bandwidth", [8e9, 32e9, 8e12], systems=("oracle",))
    gain = {r["value"]: r["speedup_vs_on_demand"] for r in rows}
    assert gain[32e9] > 1.3
    assert gain[8e9] < gain[32e9] and gain[8e12] < gain[32e9]
    util = [r["link_utilisation"] for r in rows]
    assert util[0] > 0.99 and util[2] < 0.5


def test_rows_are_tidy(qwen):
    tr = stmoe.load_trace(qwen)
    rows = sweep(tr, "buffer_bytes", [64 * 2 ** 20, 4 * 2 ** 30], systems=("lru-cache", "oracle"))
    assert [(r["value"], r["system"]) for r in rows] == [
        (64 * 2 ** 20, "lru-cache"), (64 * 2 ** 20, "oracle"), (4 * 2 ** 30, "lru-cache"), (4 * 2 ** 30, "oracle")]
    every_result = set(SimulationResult.__dataclass_fields__) - set(NESTED) - {"per_unit"}
    parts = {f"energy_{k}_j" for k in ("link", "buffer", "dense", "compute", "static")} | {
        f"time_{k}_s" for k in ("attention_router", "kv_cache", "lm_head", "experts", "stalls")}
    assert all(set(r) == every_result | parts | {"parameter", "value"} for r in rows)
    # a bigger buffer caches across tokens: the LRU cache starts to hit
    assert rows[2]["hit_rate"] > rows[0]["hit_rate"] + 0.3


def test_split_and_lookahead_sweeps_run(qwen):
    tr = stmoe.load_trace(qwen)
    split = sweep(tr, "prefetch_share", [0.05, 0.5], systems=("oracle",), hardware="gpu-pcie")
    assert split[0]["hit_rate"] != split[1]["hit_rate"]
    ahead = sweep(tr, "lookahead", [1, 3], systems=("oracle",))
    assert all(r["speedup_vs_on_demand"] > 1 for r in ahead)


def test_bad_sweeps(qwen):
    tr = stmoe.load_trace(qwen)
    with pytest.raises(ConfigError, match="cannot sweep 'colour'"):
        sweep(tr, "colour", [1])
    with pytest.raises(ConfigError, match="at least one value"):
        sweep(tr, "link_bandwidth", [])
    with pytest.raises(stmoe.StmoeError, match="link_bandwidth must be positive"):
        sweep(tr, "link_bandwidth", [0.0])


def test_lookahead_sweep_needs_predictions_per_depth():
    import pytest

    import stmoe
    from stmoe.errors import ConfigError
    from stmoe.sim.sweeps import sweep

    tr = stmoe.synthetic_trace(300, 4, 16, 2, num_sequences=2, prompt_tokens=10, seed=3)
    dec = tr.select(phase="decode")
    with pytest.raises(ConfigError, match="needs predictions per depth"):
        sweep(tr, "lookahead", [1, 2], predictions=dec.expert_ids)
    with pytest.raises(ConfigError, match="no array for lookahead 2"):
        sweep(tr, "lookahead", [1, 2], predictions={1: dec.expert_ids})


@pytest.mark.parametrize("parameter, values, match", [
    ("budget", [1.5], "budget: sweep values must be whole numbers, got 1.5"),
    ("lookahead", [1.5], "lookahead: sweep values must be whole numbers, got 1.5"),
    ("budget", [0], "budget: must be an integer from 1"),
    ("link_bandwidth", ["fast"], "link_bandwidth: sweep values must be numbers, got 'fast'"),
    ("link_bandwidth", 5e9, "values: a list of link_bandwidth values"),
])
def test_sweep_values_are_checked(parameter, values, match):
    tr = stmoe.synthetic_trace(200, 4, 16, 2, num_sequences=2, prompt_tokens=10, seed=3)
    dims = stmoe.sim.hardware.model_dims(tr, hidden=64, ffn=128)
    with pytest.raises(ConfigError, match=match):
        sweep(tr, parameter, values, systems=("st-moe",), dims=dims)
